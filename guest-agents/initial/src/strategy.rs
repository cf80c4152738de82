//! The program search's strategy: data the meta agent reads as compiled into itself, and may
//! rewrite in its child (each line ending in `// evolve lo..hi` is a gene), so a lineage's way of
//! searching evolves with what it finds. The fixed-meta ablation keeps these values.
//!
//! An operator's weight for one child is its base weight below, multiplied by
//! `1 + CREDIT_GAIN × (score gained by the lineage's edits that used it)` and by
//! `1 − FAILURE_DISCOUNT × (share of the run's children using it that failed)`.

use crate::operators::Operator;

/// Base weight of replacing a subexpression with a random one.
pub const W_REPLACE: f64 = 1.0; // evolve 0.0..4.0
/// Base weight of wrapping a subexpression into a new term (`old op new`, `f(old)`, `if`).
pub const W_INSERT: f64 = 1.0; // evolve 0.0..4.0
/// Base weight of deleting a term (a node gives way to one of its operands).
pub const W_DELETE: f64 = 0.5; // evolve 0.0..4.0
/// Base weight of swapping the operands of `-`, `div`, two-argument calls or a comparison.
pub const W_SWAP: f64 = 0.3; // evolve 0.0..4.0
/// Base weight of perturbing a constant.
pub const W_PERTURB: f64 = 1.5; // evolve 0.0..4.0
/// Base weight of crossover: a subexpression of another node's program.
pub const W_CROSSOVER: f64 = 0.5; // evolve 0.0..4.0
/// Base weight of folding a constant subexpression.
pub const W_SIMPLIFY: f64 = 0.2; // evolve 0.0..4.0
/// Base weight of rewriting a `// evolve` constant of the priority file.
pub const W_GENE: f64 = 0.2; // evolve 0.0..4.0
/// How strongly score gained in the lineage attracts an operator (scores are in [0, 1]).
pub const CREDIT_GAIN: f64 = 100.0; // evolve 0.0..1000.0
/// How strongly failed children (no score) repel the operators that made them.
pub const FAILURE_DISCOUNT: f64 = 0.5; // evolve 0.0..0.95
/// Probability of one more edit in the same child, after each edit.
pub const EXTRA_EDIT: f64 = 0.35; // evolve 0.0..0.9
/// Most edits in one child.
pub const MAX_EDITS: f64 = 4.0; // evolve 1.0..8.0
/// Largest program, in syntax-tree nodes; past it the agent deletes terms until it fits.
pub const MAX_NODES: f64 = 60.0; // evolve 10.0..200.0
/// Deepest new subexpression.
pub const NEW_DEPTH: f64 = 3.0; // evolve 1.0..5.0
/// Spread of a constant's perturbation (relative, log scale).
pub const PERTURB_SCALE: f64 = 0.3; // evolve 0.01..1.5
/// Probability that crossover takes the best other node's program rather than a random one's.
pub const BEST_PARTNER: f64 = 0.5; // evolve 0.0..1.0
/// Most candidate programs screened on training instances per child (when `/history` shows them).
pub const SCREEN_CANDIDATES: f64 = 200.0; // evolve 1.0..1000.0
/// Training instances each candidate is screened on.
pub const SCREEN_INSTANCES: f64 = 4.0; // evolve 1.0..10.0
/// Share of the call's fuel that screening may spend (by estimate).
pub const SCREEN_FUEL_SHARE: f64 = 0.5; // evolve 0.1..0.6
/// How far (relative, plus 2 bins) a candidate may fall behind the best so far, in bins open at
/// the same point of the screening instances, before screening gives up on it.
pub const RACE_MARGIN: f64 = 0.02; // evolve 0.0..0.3
/// Probability that the next candidate edits the best one so far rather than the parent.
pub const CLIMB: f64 = 0.7; // evolve 0.0..1.0
/// Probability of also rewriting one of these settings in the child.
pub const SELF_MUTATION_RATE: f64 = 0.3; // evolve 0.0..0.8

/// The parameters new code may use. `index` and `bins` are in the signature too, but they grow with
/// the instance's length, which differs between training (hundreds of items) and the tests (up to
/// thousands): a program that keys on them learns the training lengths.
pub const VARIABLES: [&str; 3] = ["item", "remaining", "capacity"];

pub const STRATEGY_FILE: &str = "src/strategy.rs";

/// The base weight of each operator.
pub fn base_weight(op: Operator) -> f64 {
    match op {
        Operator::Replace => W_REPLACE,
        Operator::Insert => W_INSERT,
        Operator::Delete => W_DELETE,
        Operator::Swap => W_SWAP,
        Operator::Perturb => W_PERTURB,
        Operator::Crossover => W_CROSSOVER,
        Operator::Simplify => W_SIMPLIFY,
        Operator::Gene => W_GENE,
    }
}

/// What the history says of one operator.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Credit {
    /// Score gained by lineage edits that used it (improvements only).
    pub gain: f64,
    /// Children of the run that used it, and those among them that failed.
    pub uses: usize,
    pub failures: usize,
}

/// An operator's weight for this child.
pub fn weight(op: Operator, credit: &Credit) -> f64 {
    let failed = credit.failures as f64 / (credit.uses as f64 + 1.0);
    base_weight(op).max(0.0) * (1.0 + CREDIT_GAIN * credit.gain.max(0.0)) * (1.0 - FAILURE_DISCOUNT * failed).max(0.05)
}

/// The operators of a meta report's summary (`ops: replace+perturb; …`).
pub fn operators_of(summary: &str) -> Vec<Operator> {
    summary
        .split(';')
        .filter_map(|part| part.trim().strip_prefix("ops:"))
        .flat_map(|ops| ops.split('+').filter_map(Operator::from_name).collect::<Vec<_>>())
        .collect()
}

/// Credit per operator (in [`Operator::ALL`] order) from the lineage's (summary, score) pairs,
/// root first, and the run's nodes as (summary, whether it was scored).
pub fn credit(lineage: &[(String, Option<f64>)], nodes: &[(String, bool)]) -> Vec<Credit> {
    let mut credit = vec![Credit::default(); Operator::ALL.len()];
    let index = |op: Operator| Operator::ALL.iter().position(|o| *o == op).expect("every operator is listed");
    for pair in lineage.windows(2) {
        let (Some(before), Some(after)) = (pair[0].1, pair[1].1) else { continue };
        for op in operators_of(&pair[1].0) {
            credit[index(op)].gain += (after - before).max(0.0);
        }
    }
    for (summary, scored) in nodes {
        for op in operators_of(summary) {
            credit[index(op)].uses += 1;
            credit[index(op)].failures += usize::from(!scored);
        }
    }
    credit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_counts_lineage_gains_and_run_failures() {
        let lineage = vec![
            ("initial".to_owned(), Some(0.9)),
            ("ops: replace+perturb".to_owned(), Some(0.95)),
            ("ops: perturb; src/strategy.rs W_SWAP: 0.3 -> 0.4".to_owned(), Some(0.94)),
            ("ops: insert".to_owned(), None),
        ];
        let nodes = vec![("ops: insert".to_owned(), false), ("ops: insert+delete".to_owned(), true)];
        let credit = credit(&lineage, &nodes);
        let of = |op: Operator| credit[Operator::ALL.iter().position(|o| *o == op).unwrap()];
        assert!((of(Operator::Replace).gain - 0.05).abs() < 1e-12);
        assert!((of(Operator::Perturb).gain - 0.05).abs() < 1e-12, "a loss is not negative credit");
        assert_eq!((of(Operator::Insert).uses, of(Operator::Insert).failures), (2, 1));
        assert!(weight(Operator::Replace, &of(Operator::Replace)) > W_REPLACE);
        assert!(weight(Operator::Insert, &of(Operator::Insert)) < W_INSERT);
        assert_eq!(weight(Operator::Swap, &of(Operator::Swap)), W_SWAP);
    }
}
