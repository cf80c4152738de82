//! The default reward of the jump task, "stand tall": be high and level, move smoothly.

use crate::api::*;

pub struct Reward;

impl RewardFunction for Reward {
    const TERMS: &'static [&'static str] = &["height", "upright", "action_rate"];

    fn new() -> Self {
        Reward
    }

    fn terms(&mut self, step: &Step, terms: &mut [f64]) {
        let o = &step.observation;
        terms[0] = 10.0 * o.base_position[2];
        terms[1] = -2.0 * (o.projected_gravity[0].powi(2) + o.projected_gravity[1].powi(2));
        let rate: f64 = step.action.iter().zip(&step.previous_action).map(|(a, b)| (a - b).powi(2)).sum();
        terms[2] = -0.01 * rate;
    }
}
