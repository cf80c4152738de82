//! An open-loop gait generator (a central pattern generator): every leg follows the same pair of
//! sines, shifted by its own phase, around offsets. Eleven numbers in [-1, 1] set it, which is
//! what the optimiser searches; [`Gait::action`] turns them into the 12 joint actions at time t.
//!
//! All zeros is a 2.5 Hz pronk (every leg in phase) of moderate amplitude; trots, bounds and
//! crouch-and-extend jumps are all in reach.

use crate::api::JOINTS;
use std::f64::consts::PI;

/// Parameters of a gait.
pub const GAIT_PARAMETERS: usize = 11;

/// A gait, as its normalised parameters.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Gait {
    pub params: [f64; GAIT_PARAMETERS],
}

impl Gait {
    /// Parameters outside [-1, 1] are clipped.
    pub fn new(params: [f64; GAIT_PARAMETERS]) -> Gait {
        Gait { params: params.map(|p| if p.is_finite() { p.clamp(-1.0, 1.0) } else { 0.0 }) }
    }

    /// Standing still in the home pose.
    pub fn stand() -> Gait {
        // Amplitudes 0 (parameters 1 and 2 at -1, parameter 9 at 0) and offsets 0.
        let mut params = [0.0; GAIT_PARAMETERS];
        params[1] = -1.0;
        params[2] = -1.0;
        Gait::new(params)
    }

    /// Frequency in Hz: 1 to 4.
    pub fn frequency(&self) -> f64 {
        2.5 + 1.5 * self.params[0]
    }

    /// The 12 joint actions (in units of the action scale) at time `t` seconds.
    pub fn action(&self, t: f64) -> [f64; JOINTS] {
        let p = &self.params;
        let thigh_amplitude = 1.5 * (1.0 + p[1]);
        let calf_amplitude = 2.0 * (1.0 + p[2]);
        let thigh_offset = 2.0 * p[3];
        let calf_offset = 2.0 * p[4];
        let calf_lag = PI * p[5];
        // FL leads; FR, RL and RR follow at their own phases.
        let phases = [0.0, PI * p[6], PI * p[7], PI * p[8]];
        let abduction_amplitude = 0.5 * p[9];
        let abduction_offset = 0.5 * p[10];
        let clock = 2.0 * PI * self.frequency() * t;
        let mut action = [0.0; JOINTS];
        for (leg, phase) in phases.iter().enumerate() {
            // Right legs (FR, RR) mirror the abduction so that the pair moves symmetrically.
            let side = if leg % 2 == 0 { 1.0 } else { -1.0 };
            let swing = libm::sin(clock + phase);
            action[3 * leg] = side * (abduction_offset + abduction_amplitude * swing);
            action[3 * leg + 1] = thigh_offset + thigh_amplitude * swing;
            action[3 * leg + 2] = calf_offset + calf_amplitude * libm::sin(clock + phase + calf_lag);
        }
        action
    }
}
