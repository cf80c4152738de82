//! The host's tools over a meta call's `/repo`: `check-build` runs the source policy and the
//! jailed compiler on the source as it stands, exactly as the child will be built; `try-task`
//! builds it the same way and runs its task agent on one training task. Builds go to a scratch
//! archive beside the call, so that checked but abandoned trees never reach the run's archive; a
//! tree built before in the same call is answered from memory.

use super::evaluate::{self, RunDomain, TaskSettings};
use crate::archive::Archive;
use crate::compiler::{BuildOutcome, GuestCompiler};
use crate::hash::ContentHash;
use crate::sandbox::{BuildCheck, Sandbox, TaskTrial, Workbench};
use crate::source_tree::SourceTree;
use hyperagent_domains::{Domain, Task};
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

/// Build checks one meta call may make.
pub const MAX_CHECKS_PER_CALL: u32 = 8;
/// Task trials one meta call may make.
pub const MAX_TRIALS_PER_CALL: u32 = 8;
/// The fuel all of a meta call's trials may spend together, in task budgets: the run's task fuel
/// times this. A trial runs with the task fuel or what is left, whichever is less.
pub const TRIAL_FUEL_TASKS: u64 = 4;

/// One domain's training tasks, as trials may reach them (validation and test tasks are not here).
pub struct TrialDomain {
    pub domain: Arc<dyn Domain>,
    pub tasks: Vec<Task>,
}

/// What `try-task` needs besides the compiler: a sandbox, the training tasks and the task budget.
#[derive(Clone)]
pub struct Trials {
    pub sandbox: Arc<Sandbox>,
    pub domains: Arc<Vec<TrialDomain>>,
    pub task_fuel: u64,
    pub memory_mib: u64,
}

/// The training tasks of a run's domains, for [`Trials`].
pub fn trial_domains(domains: &[RunDomain]) -> Arc<Vec<TrialDomain>> {
    Arc::new(domains.iter().map(|d| TrialDomain { domain: d.domain.clone(), tasks: d.train.tasks.clone() }).collect())
}

pub struct RepoWorkbench {
    repo: PathBuf,
    compiler: Arc<GuestCompiler>,
    scratch: Archive,
    trials: Option<Trials>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    checks: u32,
    trials: u32,
    trial_fuel: u64,
    /// What building each tree gave, and its component when it built.
    seen: HashMap<ContentHash, (BuildCheck, Option<ContentHash>)>,
}

impl RepoWorkbench {
    /// Tools over `repo`; built trees are kept in a scratch archive at `scratch`. Without `trials`,
    /// `try-task` answers that it is not offered.
    pub fn new(
        repo: PathBuf,
        compiler: Arc<GuestCompiler>,
        scratch: PathBuf,
        trials: Option<Trials>,
    ) -> Result<RepoWorkbench, String> {
        let scratch =
            Archive::open(&scratch).map_err(|e| format!("cannot open the workbench's scratch archive: {e}"))?;
        Ok(RepoWorkbench { repo, compiler, scratch, trials, state: Mutex::new(State::default()) })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn check(&self) -> Result<BuildCheck, String> {
        {
            let mut state = self.state();
            if state.checks >= MAX_CHECKS_PER_CALL {
                return Err(format!("this meta call's {MAX_CHECKS_PER_CALL} build checks are spent"));
            }
            state.checks += 1;
        }
        Ok(self.build().await?.0)
    }

    /// Builds `/repo` as it stands (or recalls the build of the same tree).
    async fn build(&self) -> Result<(BuildCheck, Option<ContentHash>), String> {
        let tree = SourceTree::read_dir(&self.repo, self.compiler.tree_limits());
        let hash = match &tree {
            Ok(tree) => Some(self.scratch.put_tree(tree).map_err(|e| format!("cannot store the tree: {e}"))?),
            Err(_) => None,
        };
        if let Some((seen, component)) = hash.and_then(|h| self.state().seen.get(&h).cloned()) {
            return Ok((BuildCheck { cached: true, ..seen }, component));
        }
        let (compiler, scratch, repo) = (self.compiler.clone(), self.scratch.clone(), self.repo.clone());
        let outcome = tokio::task::spawn_blocking(move || match tree {
            Ok(tree) => compiler.build(&tree, &scratch),
            // The compiler says what was wrong with a tree that cannot be read whole.
            Err(_) => compiler.build_dir(&repo, &scratch),
        })
        .await
        .map_err(|e| format!("the build failed: {e}"))?
        .map_err(|e| format!("the build failed: {e}"))?;
        let built = match outcome {
            BuildOutcome::Built { warnings, component, .. } => {
                (BuildCheck { status: "built".into(), diagnostics: warnings, cached: false }, Some(component))
            }
            BuildOutcome::Rejected { violations, .. } => (
                BuildCheck {
                    status: "rejected".into(),
                    diagnostics: violations.iter().map(|v| format!("{v}\n")).collect(),
                    cached: false,
                },
                None,
            ),
            BuildOutcome::Failed { diagnostics, .. } => {
                (BuildCheck { status: "failed".into(), diagnostics, cached: false }, None)
            }
        };
        if let Some(hash) = hash {
            self.state().seen.insert(hash, built.clone());
        }
        Ok(built)
    }

    async fn trial(&self, domain: &str, task_id: &str) -> Result<TaskTrial, String> {
        let Some(trials) = &self.trials else {
            return Err("try-task is not offered here".to_owned());
        };
        let Some(run) = trials.domains.iter().find(|d| d.domain.name() == domain) else {
            let names: Vec<&str> = trials.domains.iter().map(|d| d.domain.name()).collect();
            return Err(format!("the run has no domain `{}`; its domains are {}", shown(domain), names.join(", ")));
        };
        let Some(task) = run.tasks.iter().find(|t| t.id == task_id) else {
            return Err(format!(
                "`{}` is not a training task of {domain}; /history/tasks/{domain}.json lists them",
                shown(task_id)
            ));
        };
        let budget = trials.task_fuel.saturating_mul(TRIAL_FUEL_TASKS);
        let fuel = {
            let mut state = self.state();
            if state.trials >= MAX_TRIALS_PER_CALL {
                return Err(format!("this meta call's {MAX_TRIALS_PER_CALL} task trials are spent"));
            }
            let left = budget.saturating_sub(state.trial_fuel);
            if left == 0 {
                return Err(format!("this meta call's trial fuel ({budget}) is spent"));
            }
            state.trials += 1;
            trials.task_fuel.min(left)
        };
        let (check, component) = self.build().await?;
        let Some(component) = component else {
            return Err(format!(
                "the source does not build (status {}); check-build gives the diagnostics",
                check.status
            ));
        };
        let blob = self.scratch.get_blob(&component).map_err(|e| format!("cannot read the built component: {e}"))?;
        let loaded = match trials.sandbox.load(&blob) {
            Ok(loaded) => loaded,
            Err(e) => return Err(format!("the built component cannot be loaded: {e}")),
        };
        let settings = TaskSettings { fuel, memory_mib: trials.memory_mib, parallelism: 1, llm: None };
        let record = evaluate::run_task(&trials.sandbox, &loaded, &run.domain, task, &settings, true).await;
        self.state().trial_fuel += record.fuel;
        let feedback = run.domain.feedback(task, &record.task_score());
        Ok(TaskTrial {
            outcome: record.outcome,
            score: record.score,
            invalid: record.invalid,
            feedback: feedback.to_string(),
            answer: record.answer,
            fuel: record.fuel,
            cached_build: check.cached,
        })
    }
}

/// A guest-given name as an error message quotes it: at most 64 characters.
fn shown(name: &str) -> String {
    name.chars().take(64).collect()
}

impl Workbench for RepoWorkbench {
    fn check_build<'a>(&'a self) -> Pin<Box<dyn Future<Output = Result<BuildCheck, String>> + Send + 'a>> {
        Box::pin(self.check())
    }

    fn try_task<'a>(
        &'a self,
        domain: &'a str,
        task_id: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<TaskTrial, String>> + Send + 'a>> {
        Box::pin(self.trial(domain, task_id))
    }
}
