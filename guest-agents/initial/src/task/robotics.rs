//! Robot reward design: the answer is the Rust source of a reward function for a Go2 quadruped
//! (the interface arrives in the payload). Offline the reward is made of named terms whose
//! weights sit in `robotics_weights.rs`; when the host offers the task agent an LLM, the LLM
//! writes the reward from the task's description and the interface, as the original task agent
//! does (an unusable answer falls back to the weighted terms).

use super::robotics_weights as w;
use agent_sdk::serde_json::{self, Value, json};
use agent_sdk::{AgentError, TaskRequest, llm, log};

/// The reward writer's instructions.
pub const PROMPT: &str = "You are an expert in reinforcement learning for legged robots. You write reward \
                          functions in Rust against the interface you are given. Answer with one ```rust block \
                          holding the whole reward source and nothing else.";

/// Longest reward source answered, bytes (the host refuses more).
const MAX_SOURCE_BYTES: usize = 60 * 1024;

/// The answer: `{"reward": "<Rust source>"}`.
pub fn solve(request: &TaskRequest) -> Result<String, AgentError> {
    Ok(json!({ "reward": reward(request)? }).to_string())
}

fn reward(request: &TaskRequest) -> Result<String, AgentError> {
    let payload: Value = serde_json::from_str(&request.payload)
        .map_err(|e| AgentError::InvalidRequest(format!("payload is not JSON: {e}")))?;
    let goal = payload["spec"]["goal"].as_str().unwrap_or("walk");
    if llm::available() {
        let description = payload["description"].as_str().unwrap_or("");
        let interface = payload["interface"].as_str().unwrap_or("");
        let question = format!(
            "{description}\n\nThe reward interface, `crate::api`:\n```rust\n{interface}\n```\n\n\
             A reward that works for walking, for reference:\n```rust\n{}```",
            walk_reward()
        );
        match llm::ask(PROMPT, &question, 4096) {
            Ok(answer) => match code_block(&answer) {
                Some(source) if source.len() <= MAX_SOURCE_BYTES => return Ok(source),
                _ => log::warn("the LLM's answer holds no usable reward; answering with the weighted terms"),
            },
            Err(e) => log::warn(format!("LLM unusable ({}); answering with the weighted terms", llm::describe(&e))),
        }
    }
    Ok(match goal {
        "jump" => jump_reward(),
        _ => walk_reward(),
    })
}

/// The first fenced block of `answer` (its language tag dropped), or `None` without one.
pub fn code_block(answer: &str) -> Option<String> {
    let start = answer.find("```")?;
    let rest = &answer[start + 3..];
    let body = &rest[rest.find('\n')? + 1..];
    let end = body.find("```")?;
    Some(body[..end].to_owned())
}

/// Fills `@NAME@` in `template` with each (name, value), printed as Rust float literals.
fn fill(template: &str, values: &[(&str, f64)]) -> String {
    values
        .iter()
        .fold(template.to_owned(), |text, (name, value)| text.replace(&format!("@{name}@"), &format!("{value:?}")))
}

/// The walking reward with this agent's weights.
pub fn walk_reward() -> String {
    fill(
        WALK_TEMPLATE,
        &[
            ("TRACKING", w::TRACKING),
            ("TRACKING_SIGMA", w::TRACKING_SIGMA.max(0.01)),
            ("YAW", w::YAW),
            ("LIN_VEL_Z", w::LIN_VEL_Z),
            ("HEIGHT", w::HEIGHT),
            ("HEIGHT_TARGET", w::HEIGHT_TARGET),
            ("ORIENTATION", w::ORIENTATION),
            ("ACTION_RATE", w::ACTION_RATE),
            ("DEFAULT_POSE", w::DEFAULT_POSE),
            ("FEET_AIR_TIME", w::FEET_AIR_TIME),
            ("AIR_TIME_TARGET", w::AIR_TIME_TARGET),
        ],
    )
}

/// The jumping reward with this agent's weights.
pub fn jump_reward() -> String {
    fill(
        JUMP_TEMPLATE,
        &[("NEW_HEIGHT", w::JUMP_NEW_HEIGHT), ("AIR_HEIGHT", w::JUMP_AIR_HEIGHT), ("UPRIGHT", w::JUMP_UPRIGHT)],
    )
}

const WALK_TEMPLATE: &str = r#"use crate::api::*;

pub struct Reward {
    air_time: [f64; FEET],
}

impl RewardFunction for Reward {
    const TERMS: &'static [&'static str] = &[
        "tracking_lin_vel", "tracking_ang_vel", "lin_vel_z", "base_height", "orientation",
        "action_rate", "similar_to_default", "feet_air_time",
    ];

    fn new() -> Self {
        Reward { air_time: [0.0; FEET] }
    }

    fn terms(&mut self, step: &Step, terms: &mut [f64]) {
        let o = &step.observation;
        let v = o.base_linear_velocity;
        let error = (step.command.forward_speed - v[0]).powi(2) + v[1].powi(2);
        terms[0] = @TRACKING@ * (-error / @TRACKING_SIGMA@).exp();
        terms[1] = @YAW@ * (-o.base_angular_velocity[2].powi(2) / 0.25).exp();
        terms[2] = -@LIN_VEL_Z@ * v[2].powi(2);
        terms[3] = -@HEIGHT@ * (o.base_position[2] - @HEIGHT_TARGET@).powi(2);
        terms[4] = -@ORIENTATION@ * (o.projected_gravity[0].powi(2) + o.projected_gravity[1].powi(2));
        let rate: f64 = step.action.iter().zip(&step.previous_action).map(|(a, b)| (a - b).powi(2)).sum();
        terms[5] = -@ACTION_RATE@ * rate;
        terms[6] = -@DEFAULT_POSE@ * o.joint_positions.iter().map(|q| q.abs()).sum::<f64>();
        let mut landed = 0.0;
        for foot in 0..FEET {
            if o.foot_contacts[foot] {
                if self.air_time[foot] > 0.0 {
                    landed += self.air_time[foot] - @AIR_TIME_TARGET@;
                }
                self.air_time[foot] = 0.0;
            } else {
                self.air_time[foot] += step.dt;
            }
        }
        terms[7] = @FEET_AIR_TIME@ * landed;
    }
}
"#;

const JUMP_TEMPLATE: &str = r#"use crate::api::*;

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
        // The robot starts above the ground and lands within half a second: that is no jump.
        if step.step < 25 {
            return;
        }
        let highest = *self.highest.get_or_insert(height);
        if height > highest {
            terms[0] = @NEW_HEIGHT@ * (height - highest);
            self.highest = Some(height);
        }
        terms[1] = @AIR_HEIGHT@ * (height - 0.25).max(0.0);
        terms[2] = -@UPRIGHT@ * (o.projected_gravity[0].powi(2) + o.projected_gravity[1].powi(2));
    }
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rewards_are_filled_in_whole() {
        for source in [walk_reward(), jump_reward()] {
            assert!(!source.contains('@'), "{source}");
            assert!(source.contains("pub struct Reward") && source.contains("impl RewardFunction for Reward"));
        }
        assert!(walk_reward().contains("terms[0] = 1.0 * (-error / 0.25).exp();"), "{}", walk_reward());
        assert_eq!(code_block("Here:\n```rust\nfn a() {}\n```\nDone"), Some("fn a() {}\n".into()));
        assert_eq!(code_block("no fence"), None);
    }
}
