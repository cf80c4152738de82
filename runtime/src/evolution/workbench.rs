//! The host's tools over a meta call's `/repo`: `check-build` runs the source policy and the
//! jailed compiler on the source as it stands, exactly as the child will be built. Builds go to a
//! scratch archive beside the call, so that checked but abandoned trees never reach the run's
//! archive; a tree checked before in the same call is answered from memory.

use crate::archive::Archive;
use crate::compiler::{BuildOutcome, GuestCompiler};
use crate::hash::ContentHash;
use crate::sandbox::{BuildCheck, Workbench};
use crate::source_tree::SourceTree;
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

/// Build checks one meta call may make.
pub const MAX_CHECKS_PER_CALL: u32 = 8;

pub struct RepoWorkbench {
    repo: PathBuf,
    compiler: Arc<GuestCompiler>,
    scratch: Archive,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    checks: u32,
    seen: HashMap<ContentHash, BuildCheck>,
}

impl RepoWorkbench {
    /// Tools over `repo`; checked builds are kept in a scratch archive at `scratch`.
    pub fn new(repo: PathBuf, compiler: Arc<GuestCompiler>, scratch: PathBuf) -> Result<RepoWorkbench, String> {
        let scratch =
            Archive::open(&scratch).map_err(|e| format!("cannot open the workbench's scratch archive: {e}"))?;
        Ok(RepoWorkbench { repo, compiler, scratch, state: Mutex::new(State::default()) })
    }

    async fn check(&self) -> Result<BuildCheck, String> {
        {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if state.checks >= MAX_CHECKS_PER_CALL {
                return Err(format!("this meta call's {MAX_CHECKS_PER_CALL} build checks are spent"));
            }
            state.checks += 1;
        }
        let tree = SourceTree::read_dir(&self.repo, self.compiler.tree_limits());
        let hash = match &tree {
            Ok(tree) => Some(self.scratch.put_tree(tree).map_err(|e| format!("cannot store the tree: {e}"))?),
            Err(_) => None,
        };
        if let Some(seen) =
            hash.and_then(|h| self.state.lock().unwrap_or_else(|p| p.into_inner()).seen.get(&h).cloned())
        {
            return Ok(BuildCheck { cached: true, ..seen });
        }
        let (compiler, scratch, repo) = (self.compiler.clone(), self.scratch.clone(), self.repo.clone());
        let outcome = tokio::task::spawn_blocking(move || match tree {
            Ok(tree) => compiler.build(&tree, &scratch),
            // The compiler says what was wrong with a tree that cannot be read whole.
            Err(_) => compiler.build_dir(&repo, &scratch),
        })
        .await
        .map_err(|e| format!("the build check failed: {e}"))?
        .map_err(|e| format!("the build check failed: {e}"))?;
        let check = match outcome {
            BuildOutcome::Built { warnings, .. } => {
                BuildCheck { status: "built".into(), diagnostics: warnings, cached: false }
            }
            BuildOutcome::Rejected { violations, .. } => BuildCheck {
                status: "rejected".into(),
                diagnostics: violations.iter().map(|v| format!("{v}\n")).collect(),
                cached: false,
            },
            BuildOutcome::Failed { diagnostics, .. } => {
                BuildCheck { status: "failed".into(), diagnostics, cached: false }
            }
        };
        if let Some(hash) = hash {
            self.state.lock().unwrap_or_else(|p| p.into_inner()).seen.insert(hash, check.clone());
        }
        Ok(check)
    }
}

impl Workbench for RepoWorkbench {
    fn check_build<'a>(&'a self) -> Pin<Box<dyn Future<Output = Result<BuildCheck, String>> + Send + 'a>> {
        Box::pin(self.check())
    }
}
