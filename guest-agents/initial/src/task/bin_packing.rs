//! Online bin packing: items arrive in order; each goes into an open bin or a new one.
//!
//! Every option is scored by the evolvable priority function: each open bin the item fits in, and
//! one empty bin (a new one), scored last so that a tie keeps a used bin. A priority that is not a
//! number ranks below every number.

use crate::priority::priority;
use agent_sdk::serde_json::{self, Value, json};
use agent_sdk::{AgentError, TaskRequest};

pub fn solve(request: &TaskRequest) -> Result<String, AgentError> {
    let payload: Value = serde_json::from_str(&request.payload)
        .map_err(|e| AgentError::InvalidRequest(format!("payload is not JSON: {e}")))?;
    let capacity = payload["capacity"]
        .as_u64()
        .filter(|c| *c > 0)
        .ok_or_else(|| AgentError::InvalidRequest("`capacity` must be a positive integer".into()))?;
    let items: Vec<u64> = payload["items"]
        .as_array()
        .ok_or_else(|| AgentError::InvalidRequest("`items` must be an array".into()))?
        .iter()
        .map(|v| v.as_u64().ok_or_else(|| AgentError::InvalidRequest("items must be integers".into())))
        .collect::<Result<_, _>>()?;
    if let Some(big) = items.iter().find(|&&s| s > capacity) {
        return Err(AgentError::InvalidRequest(format!("item {big} is larger than the capacity {capacity}")));
    }
    Ok(json!({ "bins": pack(capacity, &items) }).to_string())
}

/// The bin of each item, by the priority function.
pub fn pack(capacity: u64, items: &[u64]) -> Vec<usize> {
    pack_by(capacity, items, priority)
}

/// The bin of each item: the option with the highest `priority(item, remaining, capacity, index,
/// bins)`, the empty bin last. Items must fit in an empty bin.
pub fn pack_by(capacity: u64, items: &[u64], priority: impl Fn(f64, f64, f64, f64, f64) -> f64) -> Vec<usize> {
    pack_while(capacity, items, priority, |_| true).expect("packing that is never stopped finishes")
}

/// [`pack_by`], asking `go_on(bins open)` after each item; `None` when it says to stop (screening
/// gives up on a program that falls behind).
pub fn pack_while(
    capacity: u64,
    items: &[u64],
    priority: impl Fn(f64, f64, f64, f64, f64) -> f64,
    mut go_on: impl FnMut(usize) -> bool,
) -> Option<Vec<usize>> {
    let rank = |p: f64| if p.is_nan() { f64::NEG_INFINITY } else { p };
    let cap = capacity as f64;
    let mut remaining: Vec<u64> = Vec::new();
    let mut assignment = Vec::with_capacity(items.len());
    for &item in items {
        let size = item as f64;
        let bins = remaining.len() as f64;
        let mut best: Option<(usize, f64)> = None;
        for (index, &free) in remaining.iter().enumerate() {
            if free < item {
                continue;
            }
            let score = rank(priority(size, free as f64, cap, index as f64, bins));
            if best.is_none_or(|(_, top)| score > top) {
                best = Some((index, score));
            }
        }
        let fresh = rank(priority(size, cap, cap, bins, bins));
        let bin = match best {
            Some((index, top)) if top >= fresh => index,
            _ => {
                remaining.push(capacity);
                remaining.len() - 1
            }
        };
        remaining[bin] -= item;
        assignment.push(bin);
        if !go_on(remaining.len()) {
            return None;
        }
    }
    Some(assignment)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Best fit as the host's baseline packs: the fitting bin with the least room, lowest first.
    fn best_fit(capacity: u64, items: &[u64]) -> Vec<usize> {
        let mut free: Vec<u64> = Vec::new();
        items
            .iter()
            .map(|&size| {
                let best = free.iter().enumerate().filter(|(_, f)| **f >= size).min_by_key(|(b, f)| (**f, *b));
                match best.map(|(b, _)| b) {
                    Some(b) => {
                        free[b] -= size;
                        b
                    }
                    None => {
                        free.push(capacity - size);
                        free.len() - 1
                    }
                }
            })
            .collect()
    }

    #[test]
    fn the_initial_priority_packs_as_best_fit() {
        let mut rng = agent_sdk::rng::Rng::new(3);
        for capacity in [100, 150] {
            let items: Vec<u64> = (0..400).map(|_| 1 + rng.below(capacity)).collect();
            assert_eq!(pack(capacity, &items), best_fit(capacity, &items));
        }
    }

    #[test]
    fn oversized_items_and_bad_payloads_are_refused() {
        let request =
            |payload: &str| TaskRequest { domain: "bin_packing".into(), task_id: "t".into(), payload: payload.into() };
        assert!(solve(&request(r#"{"capacity": 10, "items": [11]}"#)).is_err());
        assert!(solve(&request(r#"{"capacity": 0, "items": []}"#)).is_err());
        assert_eq!(solve(&request(r#"{"capacity": 10, "items": [6, 5, 4]}"#)).unwrap(), r#"{"bins":[0,1,0]}"#);
    }
}
