//! A hand-written jump reward: pays for every new highest point of the base once the robot has
//! landed from its start (after half a second), so that the term's sum over a rollout is
//! proportional to the peak height reached above where it stood then; a little for every moment
//! spent high; and a little for staying level.

use crate::api::*;

pub struct Reward {
    highest: Option<f64>,
}

impl RewardFunction for Reward {
    const TERMS: &'static [&'static str] = &["new_height", "air_height", "upright"];

    fn new() -> Self {
        Reward { highest: None }
    }

    fn terms(&mut self, step: &Step, terms: &mut [f64]) {
        let o = &step.observation;
        let height = o.base_position[2];
        if step.step < 25 {
            return;
        }
        let highest = *self.highest.get_or_insert(height);
        if height > highest {
            terms[0] = 300.0 * (height - highest);
            self.highest = Some(height);
        }
        terms[1] = 2.0 * (height - 0.25).max(0.0);
        terms[2] = -0.1 * (o.projected_gravity[0].powi(2) + o.projected_gravity[1].powi(2));
    }
}
