//! A reward component: the reward function in `reward.rs`, written against `api.rs`, exported
//! through the `reward` world. The host writes this file; the reward's author writes `reward.rs`.

mod api;
mod reward;

agent_sdk::__private::wit_bindgen::generate!({
    inline: r#"__REWARD_WIT__"#,
    world: "reward",
    runtime_path: "agent_sdk::__private::wit_bindgen::rt",
});

use api::RewardFunction;
use std::cell::RefCell;

thread_local! {
    /// The reward's state for this instance's rollout (one instance per rollout).
    static STATE: RefCell<Option<reward::Reward>> = const { RefCell::new(None) };
}

fn triple(v: (f64, f64, f64)) -> [f64; 3] {
    [v.0, v.1, v.2]
}

/// Copies what fits of `values` into an array (the host always sends the documented lengths).
fn array<T: Copy + Default, const N: usize>(values: &[T]) -> [T; N] {
    let mut out = [T::default(); N];
    for (slot, value) in out.iter_mut().zip(values) {
        *slot = *value;
    }
    out
}

fn convert(input: &StepInput) -> api::Step {
    let o = &input.observation;
    api::Step {
        observation: api::Observation {
            base_position: triple(o.base_position),
            base_linear_velocity: triple(o.base_linear_velocity),
            base_angular_velocity: triple(o.base_angular_velocity),
            projected_gravity: triple(o.projected_gravity),
            roll: o.roll,
            pitch: o.pitch,
            joint_positions: array(&o.joint_positions),
            joint_velocities: array(&o.joint_velocities),
            foot_contacts: array(&o.foot_contacts),
            foot_heights: array(&o.foot_heights),
        },
        action: array(&input.action),
        previous_action: array(&input.previous_action),
        command: api::Command { forward_speed: input.forward_speed },
        step: input.step,
        dt: input.dt,
    }
}

struct Component;

impl Guest for Component {
    fn terms() -> Vec<String> {
        <reward::Reward as RewardFunction>::TERMS.iter().map(|t| t.to_string()).collect()
    }

    fn step(input: StepInput) -> Vec<f64> {
        let step = convert(&input);
        let mut terms = vec![0.0; <reward::Reward as RewardFunction>::TERMS.len()];
        STATE.with(|state| {
            let mut state = state.borrow_mut();
            state.get_or_insert_with(<reward::Reward as RewardFunction>::new).terms(&step, &mut terms);
        });
        terms
    }
}

export!(Component);
