//! Online bin packing: items arrive in order; each goes into an open bin or a new one.

use crate::priority::priority;
use agent_sdk::serde_json::{self, Value, json};
use agent_sdk::{AgentError, TaskRequest};

pub fn solve(request: &TaskRequest) -> Result<String, AgentError> {
    let payload: Value = serde_json::from_str(&request.payload)
        .map_err(|e| AgentError::InvalidRequest(format!("payload is not JSON: {e}")))?;
    let capacity = payload["capacity"]
        .as_u64()
        .ok_or_else(|| AgentError::InvalidRequest("`capacity` must be a positive integer".into()))?;
    let items: Vec<u64> = payload["items"]
        .as_array()
        .ok_or_else(|| AgentError::InvalidRequest("`items` must be an array".into()))?
        .iter()
        .map(|v| v.as_u64().ok_or_else(|| AgentError::InvalidRequest("items must be integers".into())))
        .collect::<Result<_, _>>()?;
    let mut remaining: Vec<u64> = Vec::new();
    let mut assignment = Vec::with_capacity(items.len());
    for &item in &items {
        let best = remaining
            .iter()
            .enumerate()
            .filter(|(_, free)| **free >= item)
            .map(|(index, free)| (index, priority(item as f64, *free as f64, capacity as f64)))
            .fold(None, |best: Option<(usize, f64)>, (index, score)| match best {
                Some((_, top)) if top >= score => best,
                _ => Some((index, score)),
            });
        let bin = match best {
            Some((index, _)) => index,
            None => {
                remaining.push(capacity);
                remaining.len() - 1
            }
        };
        remaining[bin] -= item.min(remaining[bin]);
        assignment.push(bin);
    }
    Ok(json!({ "bins": assignment }).to_string())
}
