//! Screening: before it writes a child, the meta agent tries candidate programs on a few of the
//! run's training instances (their inputs are in `/history/tasks/bin_packing.json`) with the
//! interpreter (`interpret.rs`), packing exactly as the task agent does, and keeps the best.
//!
//! The work is bounded by an estimate of the fuel it costs, a share of the call's budget set by
//! the strategy; a program the interpreter does not understand is not screened.

use crate::interpret::{self, Scope};
use crate::task::bin_packing::pack_while;
use agent_sdk::history::History;
use agent_sdk::rng::Rng;
use agent_sdk::serde_json::{self, Value};
use syn::Expr;

/// Largest instance screened, in items (training instances are the run's, but still bounded).
const MAX_ITEMS: usize = 20_000;
/// Estimated fuel of packing: per priority call, a fixed part and a part per compiled node; per
/// bin an item passes over. Measured against the host's fuel meter (wasmtime's default costs):
/// over the meta calls of a default run (seed 0), the whole call took a median 1.8 times (at most
/// 2.3 times) what constants 1.8 times smaller estimated for its screening, most of the call.
const FUEL_PER_CALL: f64 = 145.0;
const FUEL_PER_NODE: f64 = 29.0;
const FUEL_PER_BIN_VISIT: f64 = 18.0;
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

/// What screening says of a candidate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Packed every instance with this excess, no worse than the best so far: the new best.
    Best(f64),
    /// Worse than the best so far, or given up on once it fell behind it.
    Worse,
    /// Not interpreted, or the budget would run out.
    Unscreened,
}

/// Screens programs on fixed instances within a fuel estimate. Candidates race the best so far:
/// the bins a candidate has open, counted over the instances in order, are compared after each
/// item with what the best had at that point, and a candidate more than `margin` behind is given
/// up on (it is very likely worse, and most edits are).
pub struct Screen<'a> {
    instances: Vec<Instance>,
    scope: Scope<'a>,
    fuel_left: f64,
    last_cost: f64,
    margin: f64,
    /// The best candidate's excess and its bins open after each item, counted over the instances.
    best: Option<(f64, Vec<u32>)>,
    /// Estimated fuel spent so far.
    pub spent: f64,
    /// Programs screened so far, those given up on, and whether one was refused for want of fuel.
    pub screened: usize,
    pub given_up: usize,
    pub exhausted: bool,
}

/// One packing of the instances: bins open after each item (stopped where it was given up).
struct Packing {
    open: Vec<u32>,
    finished: bool,
    cost: f64,
}

impl<'a> Screen<'a> {
    /// A screen over `instances` spending at most `fuel` (estimated); a candidate is given up on
    /// when it has more than `margin` (relative) plus 2 bins more open than the best had.
    pub fn new(instances: Vec<Instance>, scope: Scope<'a>, fuel: f64, margin: f64) -> Screen<'a> {
        Screen {
            instances,
            scope,
            fuel_left: fuel,
            last_cost: 0.0,
            margin: margin.max(0.0),
            best: None,
            spent: 0.0,
            screened: 0,
            given_up: 0,
            exhausted: false,
        }
    }

    /// The instances screened on.
    pub fn instances(&self) -> usize {
        self.instances.len()
    }

    /// The program's excess over the L1 bound on the instances (bins over bound, summed), without
    /// racing, or `None` when it cannot be interpreted or the budget would run out. It does not
    /// take part in the race.
    pub fn excess(&mut self, body: &Expr) -> Option<f64> {
        let packing = self.pack(body, false)?;
        Some(self.excess_of(&packing))
    }

    /// Races a candidate against the best so far; a finished candidate no worse than it becomes
    /// the best.
    pub fn race(&mut self, body: &Expr) -> Verdict {
        let Some(packing) = self.pack(body, true) else { return Verdict::Unscreened };
        if !packing.finished {
            self.given_up += 1;
            return Verdict::Worse;
        }
        let excess = self.excess_of(&packing);
        if self.best.as_ref().is_some_and(|(top, _)| excess > *top) {
            return Verdict::Worse;
        }
        self.best = Some((excess, packing.open));
        Verdict::Best(excess)
    }

    fn excess_of(&self, packing: &Packing) -> f64 {
        let used = packing.open.last().copied().unwrap_or(0) as f64;
        let bound: u64 = self.instances.iter().map(|i| i.bound).sum();
        (used - bound as f64) / bound as f64
    }

    /// Packs every instance with the program, counting open bins over the instances; when
    /// `racing`, stops once it falls behind the best.
    fn pack(&mut self, body: &Expr, racing: bool) -> Option<Packing> {
        let code = interpret::compile(body, &self.scope)?;
        if self.last_cost * FUEL_MARGIN > self.fuel_left {
            self.exhausted = true;
            return None;
        }
        let per_call = FUEL_PER_CALL + FUEL_PER_NODE * code.size() as f64;
        let reference = self.best.as_ref().filter(|_| racing).map(|(_, open)| open.as_slice());
        let mut packing = Packing { open: Vec::new(), finished: true, cost: 0.0 };
        let mut closed = 0u32;
        for instance in &self.instances {
            let calls = std::cell::Cell::new(0u64);
            let mut visits = 0u64;
            let packed = pack_while(
                instance.capacity,
                &instance.items,
                |a, b, c, d, e| {
                    calls.set(calls.get() + 1);
                    code.eval(&[a, b, c, d, e])
                },
                |open| {
                    visits += open as u64;
                    let total = closed + open as u32;
                    let step = packing.open.len();
                    packing.open.push(total);
                    reference.is_none_or(|best| {
                        best.get(step).is_none_or(|&b| f64::from(total) <= f64::from(b) * (1.0 + self.margin) + 2.0)
                    })
                },
            );
            packing.cost += calls.get() as f64 * per_call + visits as f64 * FUEL_PER_BIN_VISIT;
            match packed {
                Some(_) => closed = packing.open.last().copied().unwrap_or(closed),
                None => {
                    packing.finished = false;
                    break;
                }
            }
        }
        self.fuel_left -= packing.cost;
        self.spent += packing.cost;
        // The next candidate is let in while the fuel left covers a whole packing.
        if packing.finished {
            self.last_cost = packing.cost;
        }
        self.screened += 1;
        Some(packing)
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
        let mut screen = Screen::new(instances, scope, 1e9, 0.0);
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
            0.0,
        );
        assert!(poor.excess(&fn_of("remaining")).is_some(), "the first program is screened on any budget");
        assert!(poor.spent > 0.0);
        assert_eq!(poor.excess(&fn_of("remaining")), None, "the second would overrun it");
        assert!(poor.exhausted && poor.screened == 1);

        // Racing: the first candidate sets the pace; one that falls more than 2 bins behind it is
        // given up on before the end, and one that keeps up and ties becomes the best.
        let mut race = Screen::new(
            training_instances(&history, 5, &mut Rng::new(1)),
            Scope { parameters: &parameters, constants: &constants },
            1e9,
            0.0,
        );
        assert_eq!(race.race(&fn_of("-(remaining - item) * WASTE_WEIGHT")), Verdict::Best(0.0));
        let spent = race.spent;
        assert_eq!(race.race(&fn_of("remaining")), Verdict::Worse);
        assert_eq!((race.screened, race.given_up), (2, 1));
        assert!(race.spent - spent < spent, "giving up costs less than a whole packing");
        assert_eq!(race.race(&fn_of("item - remaining")), Verdict::Best(0.0));
        assert_eq!(race.race(&fn_of("0.0 - unknown")), Verdict::Unscreened);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
