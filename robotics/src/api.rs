//! The interface of a reward function, as its author sees it.
//!
//! A reward function is a type that implements [`RewardFunction`]: it names its terms once and, at
//! every control step of a rollout (50 Hz), fills in one value per term from what the robot senses
//! and does. The step's reward is the sum of the terms, so weights belong inside the terms; the
//! host keeps each term's sum over the rollout so that a reader of the training results can see
//! which term drove the behaviour. One value is made per rollout (`new`), so a reward may keep
//! state across steps (time in the air, the highest point so far...).
//!
//! This file is plain Rust with no dependencies: the host compiles it natively for its own
//! baseline rewards, and copies it as `src/api.rs` into every reward component it builds, where
//! the reward's source reaches it as `crate::api`.

/// Actuated joints, in the order FL hip, FL thigh, FL calf, FR..., RL..., RR... (hip = abduction).
pub const JOINTS: usize = 12;
/// Feet, in the order FL, FR, RL, RR.
pub const FEET: usize = 4;
/// Most terms a reward may have.
pub const MAX_TERMS: usize = 32;

/// What the robot senses at one control step.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Observation {
    /// Position of the base (torso) in the world, m; `[2]` is its height above the ground.
    pub base_position: [f64; 3],
    /// Linear velocity of the base in its own frame (x forward, y left, z up), m/s.
    pub base_linear_velocity: [f64; 3],
    /// Angular velocity of the base in its own frame, rad/s.
    pub base_angular_velocity: [f64; 3],
    /// The direction of gravity in the base frame (`[0, 0, -1]` when level).
    pub projected_gravity: [f64; 3],
    /// Roll and pitch of the base, rad. A rollout ends when either passes 30°.
    pub roll: f64,
    pub pitch: f64,
    /// Joint angles relative to the default (home) pose, rad.
    pub joint_positions: [f64; JOINTS],
    /// Joint velocities, rad/s.
    pub joint_velocities: [f64; JOINTS],
    /// Whether each foot touches the ground.
    pub foot_contacts: [bool; FEET],
    /// Height of the bottom of each foot above the ground, m.
    pub foot_heights: [f64; FEET],
}

/// What the robot is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Command {
    /// Commanded forward speed, m/s (0 when the task is not about walking).
    pub forward_speed: f64,
}

/// One control step: the observation after the action took effect.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Step {
    pub observation: Observation,
    /// The action of this step: the joint targets are the home pose plus 0.25 rad times the
    /// action.
    pub action: [f64; JOINTS],
    /// The action of the step before (zeros at the first step).
    pub previous_action: [f64; JOINTS],
    pub command: Command,
    /// The step's number in the rollout, from 0.
    pub step: u32,
    /// Seconds per control step (0.02).
    pub dt: f64,
}

/// A reward function. The step's reward is the sum of the values written into `terms`.
pub trait RewardFunction {
    /// The names of the terms, in the order of `terms` (at most [`MAX_TERMS`]).
    const TERMS: &'static [&'static str];

    /// A fresh reward for one rollout.
    fn new() -> Self;

    /// Writes one value per term for this step (`terms.len() == Self::TERMS.len()`; every entry
    /// starts at 0). A value that is not finite ends the rollout with a fitness of 0.
    fn terms(&mut self, step: &Step, terms: &mut [f64]);
}
