//! The default reward of the walking task: track the commanded forward speed, no sideways drift
//! or turning, no bouncing, keep the body at walking height and the legs near home, move smoothly.

use crate::api::*;

pub struct Reward;

impl RewardFunction for Reward {
    const TERMS: &'static [&'static str] =
        &["tracking_lin_vel", "tracking_ang_vel", "lin_vel_z", "base_height", "action_rate", "similar_to_default"];

    fn new() -> Self {
        Reward
    }

    fn terms(&mut self, step: &Step, terms: &mut [f64]) {
        let o = &step.observation;
        let v = o.base_linear_velocity;
        let error = (step.command.forward_speed - v[0]).powi(2) + v[1].powi(2);
        terms[0] = (-error / 0.25).exp();
        terms[1] = 0.2 * (-o.base_angular_velocity[2].powi(2) / 0.25).exp();
        terms[2] = -0.5 * v[2].powi(2);
        terms[3] = -10.0 * (o.base_position[2] - 0.25).powi(2);
        let rate: f64 = step.action.iter().zip(&step.previous_action).map(|(a, b)| (a - b).powi(2)).sum();
        terms[4] = -0.005 * rate;
        terms[5] = -0.01 * o.joint_positions.iter().map(|q| q.abs()).sum::<f64>();
    }
}
