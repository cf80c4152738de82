//! The tasks of robot reward design: walking at a commanded speed (training, validation, and a
//! test set) and jumping (a test set). A task's payload is what the task agent sees: what to do,
//! the training budget it will be trained with, and the reward interface to write against.

use crate::api::JOINTS;
use crate::component::API_SOURCE;
use crate::rng::Rng;
use crate::rollout::Episode;
use hyperagent_domains::{Split, Task};
use serde::{Deserialize, Serialize};

/// Commanded forward speeds of the walking tasks, m/s (the original task's range).
pub const WALK_SPEEDS: (f64, f64) = (0.2, 0.8);
/// Control steps per second.
pub const CONTROL_HZ: f64 = 50.0;

/// What a task asks of the robot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Goal {
    /// Fitness: the mean over the episode of exp(−4·(v_cmd − v_x)²), in [0, 1].
    Walk,
    /// Fitness: the highest the base reaches after the landing from its start, m.
    Jump,
}

/// One task, as the host makes it and reads it back (the payload's host-made fields).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    pub goal: Goal,
    /// Commanded forward speed, m/s (0 for jumping).
    pub forward_speed: f64,
    /// Control steps per rollout.
    pub episode_steps: u32,
    /// The optimiser's seed.
    pub seed: u64,
}

impl TaskSpec {
    pub fn episode(&self) -> Episode {
        Episode { steps: self.episode_steps, forward_speed: self.forward_speed }
    }

    /// The spec in a payload the host made; `None` for anything else.
    pub fn of(task: &Task) -> Option<TaskSpec> {
        let payload: serde_json::Value = serde_json::from_str(&task.payload).ok()?;
        serde_json::from_value(payload.get("spec")?.clone()).ok()
    }
}

/// What the task agent reads besides the spec.
fn description(spec: &TaskSpec, rollouts: usize) -> String {
    let seconds = spec.episode_steps as f64 / CONTROL_HZ;
    let what = match spec.goal {
        Goal::Walk => format!(
            "Write a reward function that trains a Unitree Go2 quadruped to walk forward at {:.2} m/s \
             (the command's forward_speed). The trained policy is scored by the mean over a {seconds} s \
             episode of exp(-4 * (forward_speed - v_x)^2), where v_x is the base's forward velocity in its \
             own frame; steps after a fall (roll or pitch past 30 degrees) count 0.",
            spec.forward_speed
        ),
        Goal::Jump => format!(
            "Write a reward function that trains a Unitree Go2 quadruped to jump as high as it can. The \
             trained policy is scored by the highest the base (torso) reaches during a {seconds} s episode, \
             after the first 0.5 s (the robot starts 0.42 m up and lands first); a fall (roll or pitch past \
             30 degrees) ends the episode."
        ),
    };
    format!(
        "{what} The policy is an open-loop gait generator (11 parameters: frequency, amplitudes, offsets and \
         phases of the {JOINTS} joints) trained by the cross-entropy method with a budget of {rollouts} \
         rollouts, keeping the gait whose rollout your reward summed highest; your reward never sees the \
         score. Answer with the JSON object {{\"reward\": \"<Rust source>\"}}: the source defines `pub struct \
         Reward` implementing `RewardFunction` from `crate::api` (the interface below; start with `use \
         crate::api::*;`). The \
         source must not use files, the environment, the network, `include_*!` or `env!`. A reward that \
         panics, loops, runs out of memory or returns a value that is not finite ends its rollouts with \
         fitness 0."
    )
}

/// The task `spec` under `id`.
pub fn task(id: String, spec: TaskSpec, rollouts: usize) -> Task {
    let payload = serde_json::json!({
        "spec": spec,
        "description": description(&spec, rollouts),
        "interface": API_SOURCE,
    });
    Task { id, payload: payload.to_string() }
}

/// `count` tasks named `{prefix}/NNNN` with specs drawn from `seed`: walking speeds uniform in
/// [`WALK_SPEEDS`] for walking, seeds alone for jumping.
pub fn split(name: &str, prefix: &str, goal: Goal, count: usize, seed: u64, steps: u32, rollouts: usize) -> Split {
    let mut rng = Rng::new(seed);
    let tasks = (0..count)
        .map(|i| {
            let forward_speed = match goal {
                Goal::Walk => round_speed(WALK_SPEEDS.0 + (WALK_SPEEDS.1 - WALK_SPEEDS.0) * rng.uniform()),
                Goal::Jump => 0.0,
            };
            let spec = TaskSpec { goal, forward_speed, episode_steps: steps, seed: rng.next_u64() >> 11 };
            task(format!("{prefix}/{i:04}"), spec, rollouts)
        })
        .collect();
    Split { name: name.to_owned(), tasks, generated: true }
}

/// Speeds to the centimetre per second, so that payloads read plainly.
fn round_speed(speed: f64) -> f64 {
    (speed * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_are_seeded_and_in_range() {
        let a = split("train", "train", Goal::Walk, 6, 7, 250, 48);
        assert_eq!(a, split("train", "train", Goal::Walk, 6, 7, 250, 48));
        assert_ne!(a, split("train", "train", Goal::Walk, 6, 8, 250, 48));
        for task in &a.tasks {
            let spec = TaskSpec::of(task).unwrap();
            assert!((WALK_SPEEDS.0..=WALK_SPEEDS.1).contains(&spec.forward_speed), "{spec:?}");
            // Seeds stay within what JSON carries exactly.
            assert!(spec.seed < 1 << 53);
        }
        let jump = split("jump", "test/jump", Goal::Jump, 2, 7, 250, 48);
        assert_eq!(TaskSpec::of(&jump.tasks[1]).unwrap().goal, Goal::Jump);
        assert!(jump.tasks[0].payload.contains("RewardFunction"));
        assert_eq!(TaskSpec::of(&Task { id: "x".into(), payload: "{}".into() }), None);
    }
}
