//! Reward functions as WebAssembly: an agent-written reward (Rust source in the reward
//! interface, `robotics/src/api.rs`) is built into a component of the `reward` world
//! (`robotics/wit/reward.wit`) through the source policy and the jail ([`build`]), and run from
//! one fresh instance per rollout with a fuel budget, a memory cap and a wall-clock backstop per
//! rollout ([`engine`]). Whatever the reward does ends as a [`RewardFailure`] of that rollout.
//!
//! [`WasmRewards`] joins the two behind the robotics crate's [`RewardCompiler`] seam, which is all
//! the robotics domain knows of this module.

pub mod build;
pub mod engine;

pub use engine::{RewardEngine, RewardLimits, WasmReward};

use crate::archive::Archive;
use crate::compiler::{BuildOutcome, GuestCompiler};
use hyperagent_robotics::reward::{RewardCompiler, RewardSource};
use std::sync::Arc;

/// Builds and loads agent-written rewards: the runtime's side of [`RewardCompiler`].
pub struct WasmRewards {
    compiler: Arc<GuestCompiler>,
    archive: Archive,
    engine: RewardEngine,
    limits: RewardLimits,
}

impl WasmRewards {
    pub fn new(compiler: Arc<GuestCompiler>, archive: Archive, engine: RewardEngine, limits: RewardLimits) -> Self {
        WasmRewards { compiler, archive, engine, limits }
    }
}

impl RewardCompiler for WasmRewards {
    fn compile(&self, source: &str) -> Result<Arc<dyn RewardSource>, String> {
        let tree = build::reward_tree(source, self.compiler.template_manifest())?;
        let outcome =
            self.compiler.build(&tree, &self.archive).map_err(|e| format!("the reward build could not run: {e}"))?;
        let component = match outcome {
            BuildOutcome::Built { component, .. } => component,
            BuildOutcome::Rejected { violations, .. } => {
                let reasons: Vec<String> = violations.iter().map(|v| v.to_string()).collect();
                return Err(format!("the source policy refused the reward: {}", reasons.join("; ")));
            }
            BuildOutcome::Failed { diagnostics, .. } => {
                return Err(format!("the reward did not compile:\n{diagnostics}"));
            }
        };
        let wasm = self.archive.get_blob(&component).map_err(|e| format!("cannot read the reward component: {e}"))?;
        let reward = self.engine.load(&wasm, self.limits).map_err(|e| e.to_string())?;
        Ok(Arc::new(reward))
    }
}
