//! One rollout: a gait drives the Go2 for an episode while a reward scores every step; the
//! task's own fitness figures are measured on the side (they never depend on the reward).

use crate::api::{Command, JOINTS, MAX_TERMS, Step};
use crate::gait::Gait;
use crate::go2::Go2;
use crate::reward::{FailureKind, RewardFailure, RewardSource};
use crate::sim::{SimSettings, Simulation};
use serde::{Deserialize, Serialize};

/// What one rollout is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    /// Control steps (50 per second).
    pub steps: u32,
    /// Commanded forward speed, m/s.
    pub forward_speed: f64,
}

/// Control steps before the jump fitness counts: the robot starts 0.42 m up and lands within
/// half a second, and that drop is not a jump.
pub const SETTLE_STEPS: u32 = 25;

/// Most control steps in a rollout (a minute at 50 Hz).
pub const MAX_EPISODE_STEPS: u32 = 3000;

/// What a rollout gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    /// The sum of the reward over the steps taken (0 without a reward).
    pub reward: f64,
    /// Each term's sum, in the reward's term order.
    pub terms: Vec<f64>,
    /// Control steps taken before the rollout ended.
    pub steps: u32,
    /// Whether the robot tilted past the limit.
    pub fell: bool,
    /// Mean over the episode's steps of exp(−4·(v_cmd − v_x)²); steps after a fall count 0.
    pub walk_fitness: f64,
    /// The highest the base reached after the first [`SETTLE_STEPS`] steps, m.
    pub max_height: f64,
    /// Mean forward speed over the steps taken, m/s.
    pub mean_forward_speed: f64,
    /// Why the reward stopped the rollout, if it did.
    pub failure: Option<RewardFailure>,
}

/// Runs `gait` for an episode, scored by `reward` when one is given.
pub fn run(
    robot: &Go2,
    settings: SimSettings,
    gait: &Gait,
    reward: Option<&dyn RewardSource>,
    episode: &Episode,
) -> Rollout {
    let steps = episode.steps.min(MAX_EPISODE_STEPS);
    let mut sim = Simulation::new(robot, settings);
    let mut result = Rollout {
        reward: 0.0,
        terms: Vec::new(),
        steps: 0,
        fell: false,
        walk_fitness: 0.0,
        max_height: 0.0,
        mean_forward_speed: 0.0,
        failure: None,
    };
    let mut scorer = match reward.map(start_reward).transpose() {
        Ok(scorer) => scorer,
        Err(failure) => {
            result.failure = Some(failure);
            return result;
        }
    };
    if let Some((names, _)) = &scorer {
        result.terms = vec![0.0; names.len()];
    }
    let mut values = vec![0.0; result.terms.len()];
    let mut previous_action = [0.0; JOINTS];
    let (mut walk_sum, mut speed_sum) = (0.0, 0.0);
    for step in 0..steps {
        let action = gait.action(step as f64 * sim.dt());
        sim.step(&action);
        let observation = sim.observe();
        result.steps = step + 1;
        let vx = observation.base_linear_velocity[0];
        walk_sum += (-4.0 * (episode.forward_speed - vx).powi(2)).exp();
        speed_sum += vx;
        if step >= SETTLE_STEPS {
            result.max_height = result.max_height.max(observation.base_position[2]);
        }
        if let Some((names, rollout)) = &mut scorer {
            let input = Step {
                observation,
                action,
                previous_action,
                command: Command { forward_speed: episode.forward_speed },
                step,
                dt: sim.dt(),
            };
            values.iter_mut().for_each(|v| *v = 0.0);
            if let Err(failure) = rollout.step(&input, &mut values) {
                result.failure = Some(failure);
                break;
            }
            if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
                let message = format!("term `{}` was {} at step {step}", names[bad], values[bad]);
                result.failure = Some(RewardFailure::new(FailureKind::NotFinite, message));
                break;
            }
            for (sum, value) in result.terms.iter_mut().zip(&values) {
                *sum += value;
            }
            result.reward += values.iter().sum::<f64>();
        }
        previous_action = action;
        if sim.fallen(&observation) {
            result.fell = true;
            break;
        }
    }
    result.walk_fitness = if steps == 0 { 0.0 } else { walk_sum / steps as f64 };
    result.mean_forward_speed = if result.steps == 0 { 0.0 } else { speed_sum / result.steps as f64 };
    if result.failure.is_some() {
        // A rollout the reward broke has no fitness.
        result.walk_fitness = 0.0;
        result.max_height = 0.0;
    }
    result
}

type Scorer<'a> = (Vec<String>, Box<dyn crate::reward::RewardRollout + 'a>);

fn start_reward(reward: &dyn RewardSource) -> Result<Scorer<'_>, RewardFailure> {
    let names = reward.term_names();
    if names.len() > MAX_TERMS {
        let message = format!("{} terms; the limit is {MAX_TERMS}", names.len());
        return Err(RewardFailure::new(FailureKind::Start, message));
    }
    Ok((names, reward.start()?))
}
