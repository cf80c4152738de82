//! Where the host keeps things, from command-line flags and environment variables.

use crate::compiler::CompilerSettings;
use crate::compiler::confinement::ConfinementSettings;
use crate::source_tree::TreeLimits;
use std::path::PathBuf;
use std::time::Duration;

/// The directories a host process works with.
#[derive(Debug, Clone)]
pub struct Paths {
    /// Root of the host's state: archive and caches (default `.hyperagent`).
    pub home: PathBuf,
    /// The checkout holding `agent-sdk/` and `guest-agents/`.
    pub project_root: PathBuf,
    /// Shared build directory for guest builds.
    pub guest_target: PathBuf,
    /// Build guest source even on a kernel without Landlock (explicit, logged opt-out).
    pub allow_unconfined_builds: bool,
}

impl Paths {
    pub fn new(home: PathBuf, project_root: Option<PathBuf>, guest_target: Option<PathBuf>) -> Paths {
        // Absolute paths: cargo runs in a build slot, and relative paths would point elsewhere.
        let absolute = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
        let home = absolute(home);
        let project_root = project_root.unwrap_or_else(default_project_root);
        let project_root = std::fs::canonicalize(&project_root).unwrap_or_else(|_| absolute(project_root));
        let guest_target = absolute(guest_target.unwrap_or_else(|| home.join("guest-target")));
        Paths { home, project_root, guest_target, allow_unconfined_builds: false }
    }

    pub fn archive(&self) -> PathBuf {
        self.home.join("archive")
    }

    pub fn artifacts(&self) -> PathBuf {
        self.home.join("cache").join("artifacts")
    }

    pub fn sdk_dir(&self) -> PathBuf {
        self.project_root.join("agent-sdk")
    }

    pub fn guest_agents(&self) -> PathBuf {
        self.project_root.join("guest-agents")
    }

    /// The benchmark data directory when none is named: `data/` beside the checkout, as
    /// `<project root>/../shared/data`. The one place this default is spelled.
    pub fn default_data_dir(&self) -> PathBuf {
        self.project_root.join("..").join("shared").join("data")
    }

    pub fn compiler_settings(&self, timeout: Duration) -> CompilerSettings {
        CompilerSettings {
            sdk_dir: self.sdk_dir(),
            template_dir: self.guest_agents().join("build-template"),
            exercise_deps_dir: self.guest_agents().join("exercise-deps"),
            target_dir: self.guest_target.clone(),
            cache_dir: self.home.join("cache"),
            timeout,
            tree_limits: TreeLimits::default(),
            confinement: ConfinementSettings {
                allow_unconfined: self.allow_unconfined_builds,
                ..ConfinementSettings::default()
            },
        }
    }
}

/// The checkout this binary was built from; `HYPERAGENT_ROOT` overrides it for installed copies.
pub fn default_project_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}
