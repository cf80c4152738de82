//! The domains this host runs, by name: the domains crate's registry, robot reward design and
//! coding.
//!
//! Robot reward design and coding are registered here rather than in `hyperagent-domains` because
//! they score an answer by building agent-written code in the runtime's jail and running it in one
//! of the runtime's engines, and the domains crate depends on nothing of the runtime (nor on
//! rapier3d). So a
//! domain that needs host services gets them through [`HostServices`], which the runtime fills in
//! where it has a compiler and an archive (a run, a worker, a replay, an audit) and leaves empty
//! where it only lists or checks domains.

use crate::archive::Archive;
use crate::compiler::GuestCompiler;
use crate::reward::{RewardEngine, RewardLimits, WasmRewards};
use hyperagent_domains::Domain;
use hyperagent_robotics::reward::{RewardCompiler, RewardSource};
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// What the host lends the domains besides their settings and data.
#[derive(Clone, Default)]
pub struct HostServices {
    /// Builds agent-written rewards (robot reward design). Without it, such answers score 0 with
    /// the reason.
    pub rewards: Option<Arc<dyn RewardCompiler>>,
    /// Builds solutions with their exercise's tests (coding). Without it, such answers score 0
    /// with the reason.
    pub compiler: Option<Arc<GuestCompiler>>,
}

impl HostServices {
    /// No services: enough to list domains, check configurations and make splits.
    pub fn none() -> HostServices {
        HostServices::default()
    }

    /// The services of a host that builds guests with `compiler`. Reward builds go to an archive
    /// of their own under the compiler's cache, not to the run's: no node refers to them, and an
    /// audit builds them again from the answers. The reward engine starts at the first reward.
    pub fn with_compiler(compiler: Arc<GuestCompiler>) -> HostServices {
        let rewards = LazyRewards { compiler: compiler.clone(), made: OnceLock::new() };
        HostServices { rewards: Some(Arc::new(rewards)), compiler: Some(compiler) }
    }
}

/// A domain that needs the host's services, and its constructor.
type HostedConstructor = fn(&serde_json::Value, &Path, &HostServices) -> Result<Arc<dyn Domain>, String>;

const HOSTED: &[(&str, HostedConstructor)] = &[
    (hyperagent_robotics::domain::DOMAIN, |settings, data_dir, host| {
        hyperagent_robotics::domain::Robotics::open(settings, data_dir, host.rewards.clone())
    }),
    (crate::coding::DOMAIN, |settings, data_dir, host| {
        crate::coding::Coding::open(settings, data_dir, host.compiler.clone())
    }),
];

/// Every domain this host knows, the domains crate's first (the first is a run's default).
pub fn names() -> Vec<&'static str> {
    let mut names = hyperagent_domains::domain::names();
    names.extend(HOSTED.iter().map(|(name, _)| *name));
    names
}

/// Whether the domain called `name` scores with the host's services (a host that only reads a
/// run's results need not set them up otherwise).
pub fn needs_services(name: &str) -> bool {
    HOSTED.iter().any(|(n, _)| *n == name)
}

/// The domain called `name`, built from `settings` (`null` for the defaults) with its data in
/// `data_dir` and the host's `services`.
pub fn open(
    name: &str,
    settings: &serde_json::Value,
    data_dir: &Path,
    services: &HostServices,
) -> Result<Arc<dyn Domain>, String> {
    if let Some((_, constructor)) = HOSTED.iter().find(|(n, _)| *n == name) {
        return constructor(settings, data_dir, services).map_err(|e| format!("domain `{name}`: {e}"));
    }
    if !hyperagent_domains::domain::names().contains(&name) {
        return Err(format!("unknown domain `{name}` (available: {})", names().join(", ")));
    }
    hyperagent_domains::domain::open(name, settings, data_dir)
}

/// The runtime's reward compiler, made at its first use: most runs build no reward.
struct LazyRewards {
    compiler: Arc<GuestCompiler>,
    made: OnceLock<Result<WasmRewards, String>>,
}

impl RewardCompiler for LazyRewards {
    fn compile(&self, source: &str) -> Result<Arc<dyn RewardSource>, String> {
        let rewards = self.made.get_or_init(|| {
            let store = self.compiler.cache_dir().join("reward-builds");
            let builds = Archive::open(&store).map_err(|e| format!("cannot open {}: {e}", store.display()))?;
            let engine = RewardEngine::new()?;
            Ok(WasmRewards::new(self.compiler.clone(), builds, engine, RewardLimits::default()))
        });
        match rewards {
            Ok(rewards) => rewards.compile(source),
            Err(e) => Err(e.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_domain_is_listed_once_and_opens_without_services() {
        let names = names();
        assert!(names.contains(&"robotics") && names.contains(&"bin_packing"), "{names:?}");
        let unique: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        for name in names {
            let domain = open(name, &serde_json::Value::Null, Path::new("."), &HostServices::none()).unwrap();
            assert_eq!(domain.name(), name);
        }
        assert!(needs_services("robotics") && needs_services("coding") && !needs_services("bin_packing"));
        let unknown = open("chess", &serde_json::Value::Null, Path::new("."), &HostServices::none()).err().unwrap();
        assert!(unknown.contains("unknown domain") && unknown.contains("robotics"), "{unknown}");
    }
}
