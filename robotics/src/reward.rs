//! Rewards as the optimiser sees them: a [`RewardSource`] names its terms and starts one
//! [`RewardRollout`] per rollout, which fills in the terms at every control step or stops the
//! rollout with a [`RewardFailure`]. The host's own rewards are [`Native`]; agent-written ones are
//! implemented over WebAssembly by the runtime, which is why this is a trait and not a function.

use crate::api::{MAX_TERMS, RewardFunction, Step};
use serde::{Deserialize, Serialize};

/// Why a reward stopped a rollout. The rollout ends there; its fitness is 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct RewardFailure {
    pub kind: FailureKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The reward could not be started (instantiation failed, too many terms...).
    Start,
    /// The reward's code trapped (a panic, an out-of-bounds access...).
    Trap,
    /// The rollout's fuel ran out.
    OutOfFuel,
    /// The reward asked for more memory than its cap.
    OutOfMemory,
    /// The wall-clock backstop fired.
    Deadline,
    /// A term was NaN or infinite.
    NotFinite,
    /// The reward answered something malformed (a wrong number of terms...).
    BadOutput,
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            FailureKind::Start => "cannot start",
            FailureKind::Trap => "trapped",
            FailureKind::OutOfFuel => "out of fuel",
            FailureKind::OutOfMemory => "out of memory",
            FailureKind::Deadline => "deadline",
            FailureKind::NotFinite => "not finite",
            FailureKind::BadOutput => "bad output",
        };
        f.write_str(text)
    }
}

impl RewardFailure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> RewardFailure {
        RewardFailure { kind, message: message.into() }
    }
}

/// A reward function that rollouts can be started with. Shared by the optimiser's threads.
pub trait RewardSource: Send + Sync {
    /// The names of the terms (at most [`MAX_TERMS`]).
    fn term_names(&self) -> Vec<String>;

    /// The reward's state for one rollout.
    fn start(&self) -> Result<Box<dyn RewardRollout + '_>, RewardFailure>;
}

/// One rollout's reward.
pub trait RewardRollout {
    /// Fills `terms` (one per term name, zeroed by the caller) for this step.
    fn step(&mut self, step: &Step, terms: &mut [f64]) -> Result<(), RewardFailure>;
}

/// A reward compiled into the host.
pub struct Native<R: RewardFunction> {
    _reward: std::marker::PhantomData<fn() -> R>,
}

impl<R: RewardFunction> Native<R> {
    pub fn new() -> Native<R> {
        assert!(R::TERMS.len() <= MAX_TERMS, "a host reward has at most {MAX_TERMS} terms");
        Native { _reward: std::marker::PhantomData }
    }
}

impl<R: RewardFunction> Default for Native<R> {
    fn default() -> Self {
        Native::new()
    }
}

struct NativeRollout<R>(R);

impl<R: RewardFunction> RewardRollout for NativeRollout<R> {
    fn step(&mut self, step: &Step, terms: &mut [f64]) -> Result<(), RewardFailure> {
        self.0.terms(step, terms);
        Ok(())
    }
}

impl<R: RewardFunction + 'static> RewardSource for Native<R> {
    fn term_names(&self) -> Vec<String> {
        R::TERMS.iter().map(|t| t.to_string()).collect()
    }

    fn start(&self) -> Result<Box<dyn RewardRollout + '_>, RewardFailure> {
        Ok(Box::new(NativeRollout(R::new())))
    }
}

/// Turns a reward's source into a [`RewardSource`]: the host service that the robotics domain
/// scores an answer with. The runtime implements it by building the source into a WebAssembly
/// component in its jail and running it in its reward engine; the domain never compiles or runs
/// untrusted code itself.
pub trait RewardCompiler: Send + Sync {
    /// The reward, or why it cannot be used (refused by the source policy, does not compile, is
    /// not a reward component...), in words for the reward's author.
    fn compile(&self, source: &str) -> Result<std::sync::Arc<dyn RewardSource>, String>;
}
