//! The weights and shapes of the walking reward's terms (`robotics.rs` writes them into the
//! reward's source). Lines ending in `// evolve lo..hi` are genes the meta agent mutates
//! (`reward_design.rs`), credited by the score changes of earlier mutations. Every weight is a
//! magnitude: the sign of each term is fixed in the reward.

/// Pay for tracking the commanded forward speed: weight, and the squared error at which the pay
/// falls to 1/e.
pub const TRACKING: f64 = 1.0; // evolve 0.0..3.0
pub const TRACKING_SIGMA: f64 = 0.25; // evolve 0.05..1.0
/// Pay for not turning.
pub const YAW: f64 = 0.2; // evolve 0.0..1.0
/// Penalty on vertical speed (bouncing).
pub const LIN_VEL_Z: f64 = 0.5; // evolve 0.0..4.0
/// Penalty on the squared distance of the base from its walking height, and that height (m).
pub const HEIGHT: f64 = 10.0; // evolve 0.0..50.0
pub const HEIGHT_TARGET: f64 = 0.25; // evolve 0.15..0.4
/// Penalty on tilt (the horizontal part of gravity in the base frame).
pub const ORIENTATION: f64 = 0.5; // evolve 0.0..5.0
/// Penalty on the change of action between steps.
pub const ACTION_RATE: f64 = 0.005; // evolve 0.0..0.05
/// Penalty on the joints' distance from the home pose.
pub const DEFAULT_POSE: f64 = 0.01; // evolve 0.0..0.2
/// Pay per second of a foot's swing beyond `AIR_TIME_TARGET`, when it lands.
pub const FEET_AIR_TIME: f64 = 0.1; // evolve 0.0..2.0
pub const AIR_TIME_TARGET: f64 = 0.1; // evolve 0.0..0.5

/// The jump reward's weights: pay per metre of each new peak of the base after the landing, pay
/// for height above 0.25 m at every step, penalty on tilt. Not genes: the training split holds
/// only walking tasks, so no score would tell a mutation of these apart.
pub const JUMP_NEW_HEIGHT: f64 = 300.0;
pub const JUMP_AIR_HEIGHT: f64 = 2.0;
pub const JUMP_UPRIGHT: f64 = 0.1;
