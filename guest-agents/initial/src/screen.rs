//! Screening: before it writes a child, the meta agent tries candidate programs on a few of the
//! run's training instances (their inputs are in `/history/tasks/bin_packing.json`) with the
//! interpreter (`interpret.rs`), packing exactly as the task agent does, and keeps the best.
//!
//! The work is bounded by an estimate of the fuel it costs, a share of the call's budget set by
//! the strategy; a program the interpreter does not understand is not screened.

use crate::interpret::{self, Scope};
use crate::program;
use crate::task::bin_packing::pack_by;
use agent_sdk::history::History;
use agent_sdk::rng::Rng;
use agent_sdk::serde_json::{self, Value};
use syn::Expr;

/// Largest instance screened, in items (training instances are the run's, but still bounded).
const MAX_ITEMS: usize = 20_000;
/// Estimated fuel of packing: per priority call, a fixed part and a part per syntax-tree node; per
/// bin an item passes over. Measured against the host's fuel meter (wasmtime's default costs).
const FUEL_PER_CALL: f64 = 80.0;
const FUEL_PER_NODE: f64 = 16.0;
const FUEL_PER_BIN_VISIT: f64 = 10.0;
/// A candidate is screened only while the fuel left covers this many times the last one's cost.
const FUEL_MARGIN: f64 = 1.5;

/// A training instance, as the task agent receives it.
pub struct Instance {
    capacity: u64,
    items: Vec<u64>,
    bound: u64,
}

/// Up to `count` training instances of the run, drawn with `rng` (in the order the run lists them
/// when it has no more than `count`).
pub fn training_instances(history: &History, count: usize, rng: &mut Rng) -> Vec<Instance> {
    let mut tasks = history.training_tasks("bin_packing").unwrap_or_default();
    let mut chosen = Vec::new();
    while chosen.len() < count && !tasks.is_empty() {
        let index = if tasks.len() <= count - chosen.len() { 0 } else { rng.below(tasks.len() as u64) as usize };
        let (_, payload) = tasks.remove(index);
        if let Some(instance) = parse(&payload) {
            chosen.push(instance);
        }
    }
    chosen
}

fn parse(payload: &str) -> Option<Instance> {
    let value: Value = serde_json::from_str(payload).ok()?;
    let capacity = value["capacity"].as_u64().filter(|c| *c > 0)?;
    let items: Vec<u64> = value["items"].as_array()?.iter().map(Value::as_u64).collect::<Option<_>>()?;
    if items.len() > MAX_ITEMS || items.iter().any(|&s| s > capacity) {
        return None;
    }
    let bound = items.iter().sum::<u64>().div_ceil(capacity).max(1);
    Some(Instance { capacity, items, bound })
}

/// Screens programs on fixed instances within a fuel estimate.
pub struct Screen<'a> {
    instances: Vec<Instance>,
    scope: Scope<'a>,
    fuel_left: f64,
    last_cost: f64,
    /// Estimated fuel spent so far.
    pub spent: f64,
    /// Programs screened so far, and whether one was refused for want of fuel.
    pub screened: usize,
    pub exhausted: bool,
}

impl<'a> Screen<'a> {
    pub fn new(instances: Vec<Instance>, scope: Scope<'a>, fuel: f64) -> Screen<'a> {
        Screen { instances, scope, fuel_left: fuel, last_cost: 0.0, spent: 0.0, screened: 0, exhausted: false }
    }

    /// The instances screened on.
    pub fn instances(&self) -> usize {
        self.instances.len()
    }

    /// The program's excess over the L1 bound on the instances (bins over bound, summed), or
    /// `None` when it cannot be interpreted or the budget would run out.
    pub fn excess(&mut self, body: &Expr) -> Option<f64> {
        let code = interpret::compile(body, &self.scope)?;
        if self.last_cost * FUEL_MARGIN > self.fuel_left {
            self.exhausted = true;
            return None;
        }
        let per_call = FUEL_PER_CALL + FUEL_PER_NODE * program::size(body) as f64;
        let (mut used, mut bound, mut cost) = (0u64, 0u64, 0.0);
        for instance in &self.instances {
            let calls = std::cell::Cell::new(0u64);
            let assignment = pack_by(instance.capacity, &instance.items, |a, b, c, d, e| {
                calls.set(calls.get() + 1);
                code.eval(&[a, b, c, d, e])
            });
            // Each item passes over every bin open when it arrives.
            let (mut open, mut visits) = (0usize, 0u64);
            for &bin in &assignment {
                visits += open as u64;
                open = open.max(bin + 1);
            }
            cost += calls.get() as f64 * per_call + visits as f64 * FUEL_PER_BIN_VISIT;
            used += open as u64;
            bound += instance.bound;
        }
        self.fuel_left -= cost;
        self.spent += cost;
        self.last_cost = cost;
        self.screened += 1;
        Some((used as f64 - bound as f64) / bound as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::body_of;

    fn history_with(payloads: &[&str]) -> (std::path::PathBuf, History) {
        let dir = std::env::temp_dir().join(format!("screen-test-{}-{}", std::process::id(), payloads.len()));
        std::fs::create_dir_all(dir.join("tasks")).unwrap();
        let tasks: Vec<Value> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| serde_json::json!({"id": format!("train/{i}"), "payload": p}))
            .collect();
        std::fs::write(dir.join("tasks/bin_packing.json"), Value::Array(tasks).to_string()).unwrap();
        (dir.clone(), History::open(dir))
    }

    #[test]
    fn screening_ranks_programs_as_packing_does_and_respects_its_budget() {
        let (dir, history) = history_with(&[
            r#"{"capacity": 10, "items": [6, 4, 6, 4, 5, 5]}"#,
            r#"{"capacity": 10, "items": [11]}"#,
            r#"{"capacity": 10, "items": [3, 3, 3, 3]}"#,
        ]);
        let instances = training_instances(&history, 5, &mut Rng::new(1));
        assert_eq!(instances.len(), 2, "the oversized item's instance is left out");
        let parameters: Vec<String> = ["item", "remaining", "capacity", "index", "bins"].map(String::from).into();
        let constants = [("WASTE_WEIGHT".to_owned(), 1.0)];
        let scope = Scope { parameters: &parameters, constants: &constants };
        let mut screen = Screen::new(instances, scope, 1e9);
        let fn_of = |body: &str| {
            body_of(&format!(
                "fn priority(item: f64, remaining: f64, capacity: f64, index: f64, bins: f64) -> f64 {{ {body} }}"
            ))
            .unwrap()
        };
        // Best fit meets the bounds (3 + 2 bins); always opening a new bin uses 10.
        assert_eq!(screen.excess(&fn_of("-(remaining - item) * WASTE_WEIGHT")), Some(0.0));
        assert_eq!(screen.excess(&fn_of("remaining")), Some(1.0));
        assert_eq!(screen.excess(&fn_of("unknown")), None);
        assert!(!screen.exhausted);
        let mut poor = Screen::new(
            training_instances(&history, 5, &mut Rng::new(1)),
            Scope { parameters: &parameters, constants: &constants },
            600.0,
        );
        assert!(poor.excess(&fn_of("remaining")).is_some(), "the first program is screened on any budget");
        assert!(poor.spent > 0.0);
        assert_eq!(poor.excess(&fn_of("remaining")), None, "the second would overrun it");
        assert!(poor.exhausted && poor.screened == 1);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
