//! Scoring a reward: train a gait with it under the task's budget and seed, then run the trained
//! gait once more without the reward and measure the task's own fitness. Deterministic: the same
//! reward, task and budget give the same score, bit for bit.

use super::tasks::{Goal, TaskSpec};
use crate::cem::{self, CemSettings, Training};
use crate::go2::Go2;
use crate::reward::{RewardCompiler, RewardSource};
use crate::rollout;
use crate::sim::SimSettings;
use hyperagent_domains::TaskScore;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Reward sources kept built, by the blake3 of their text.
const MAX_CACHED_REWARDS: usize = 64;

type Built = Result<Arc<dyn RewardSource>, String>;

/// Builds agent-written rewards through the host's compiler, once per distinct source: the tasks
/// of one answer (and the concurrent scorings of the same source) share one build.
pub struct RewardCache {
    compiler: Option<Arc<dyn RewardCompiler>>,
    built: Mutex<HashMap<[u8; 32], Arc<OnceLock<Built>>>>,
}

impl RewardCache {
    pub fn new(compiler: Option<Arc<dyn RewardCompiler>>) -> RewardCache {
        RewardCache { compiler, built: Mutex::new(HashMap::new()) }
    }

    /// The reward of `source`, or why it cannot be used.
    pub fn get(&self, source: &str) -> Built {
        let Some(compiler) = &self.compiler else {
            return Err("this host offers no reward compiler: robotics answers are scored where the \
                        runtime builds them (hyperagent run, replay, audit)"
                .into());
        };
        let cell = {
            let mut built = self.built.lock().unwrap_or_else(|p| p.into_inner());
            if built.len() >= MAX_CACHED_REWARDS {
                built.retain(|_, cell| cell.get().is_none());
            }
            built.entry(*blake3::hash(source.as_bytes()).as_bytes()).or_default().clone()
        };
        // Outside the map's lock: other sources build meanwhile; this one builds once.
        cell.get_or_init(|| compiler.compile(source)).clone()
    }
}

/// Trains with `reward` on `spec` and scores the trained gait on the task's fitness.
pub fn score(robot: &Go2, reward: &dyn RewardSource, spec: &TaskSpec, settings: &CemSettings) -> TaskScore {
    let training = cem::train(robot, SimSettings::default(), reward, &spec.episode(), settings, spec.seed);
    let details = training_details(reward, &training);
    if training.best.failure.is_some() {
        let why = training.first_failure.as_ref().map_or_else(String::new, |f| f.to_string());
        let reason = format!("the reward stopped every one of its {} training rollouts: {why}", training.rollouts);
        return TaskScore { score: 0.0, invalid: Some(reason), details };
    }
    let evaluation = rollout::run(robot, SimSettings::default(), &training.gait, None, &spec.episode());
    let (score, mut details) = match spec.goal {
        Goal::Walk => (evaluation.walk_fitness, details),
        // Heights past a metre are beyond this robot; the score stays in [0, 1].
        Goal::Jump => (evaluation.max_height.clamp(0.0, 1.0), details),
    };
    details["goal"] = json!(spec.goal);
    details["forward_speed"] = json!(spec.forward_speed);
    details["fitness"] = json!({
        "walk_fitness": evaluation.walk_fitness,
        "peak_height_m": evaluation.max_height,
        "mean_forward_speed": evaluation.mean_forward_speed,
        "fell": evaluation.fell,
        "steps": evaluation.steps,
    });
    debug_assert!((0.0..=1.0).contains(&score));
    TaskScore { score, invalid: None, details }
}

/// What the training tells a reader of the results: the reward's terms over the rollout it rated
/// best, each generation's best reward, and the rollouts it stopped.
fn training_details(reward: &dyn RewardSource, training: &Training) -> serde_json::Value {
    let terms: serde_json::Map<String, serde_json::Value> =
        reward.term_names().into_iter().zip(&training.best.terms).map(|(name, sum)| (name, json!(sum))).collect();
    json!({
        "rollouts": training.rollouts,
        "failed_rollouts": training.failed_rollouts,
        "first_failure": training.first_failure.as_ref().map(|f| f.to_string()),
        "best_reward": finite_or_null(training.best.reward),
        "term_sums": terms,
        "generation_best": training.generation_best.iter().map(|r| finite_or_null(*r)).collect::<Vec<_>>(),
        "gait": training.gait.params,
    })
}

/// JSON has no infinities: a generation whose every rollout failed shows as null.
fn finite_or_null(value: f64) -> serde_json::Value {
    if value.is_finite() { json!(value) } else { serde_json::Value::Null }
}
