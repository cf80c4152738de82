//! Parent selection.
//!
//! The DGM-H rule (Hyperagents paper, App. A.2): `s_i = sigmoid(λ(α_i − α_mid))` with λ = 10 and
//! α_mid the mean of the top-3 scores, `h_i = 1/(1 + n_i)` with n_i the number of children of i,
//! and `p_i = s_i·h_i / Σ_j s_j·h_j` (uniform when the sum is 0). Also `random` (uniform), `best`
//! (highest score, oldest on ties) and `latest` (the newest candidate).
//!
//! The `hgm` rule is the Huxley-Gödel Machine's expansion policy (Wang et al., arXiv 2510.21614,
//! and its public code): a node is judged by its clade, itself and all its descendants, through
//! their task-level results. Each candidate's clade gives a Beta(1 + passes, 1 + failures)
//! posterior, one value is drawn from each, and the largest wins (Thompson sampling). As there,
//! only nodes whose own results include a success can be expanded (here: all candidates, when
//! none has one). HGM also decides whether to expand or to evaluate a node further; this loop
//! evaluates every child when it is made (staged, then in full), so only the expansion policy
//! applies. Its optional cool-down (off in its published configuration) is not used.

use crate::sandbox::virtual_env::SeededRng;
use rand_distr::{Beta, Distribution};
use serde::{Deserialize, Serialize};

pub const LAMBDA: f64 = 10.0;
pub const TOP_M: usize = 3;
/// Draws behind the chances `probabilities` gives for `hgm` (which chooses by one draw).
pub const HGM_CHANCE_DRAWS: u32 = 4000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Selection {
    #[default]
    DgmH,
    Random,
    Best,
    Latest,
    Hgm,
    /// The hyperagent's own `select` export chooses (see `selector.rs`); the host resolves this
    /// to the run's fallback rule wherever it must choose itself.
    Agent,
}

impl std::str::FromStr for Selection {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "dgm-h" => Ok(Selection::DgmH),
            "random" => Ok(Selection::Random),
            "best" => Ok(Selection::Best),
            "latest" => Ok(Selection::Latest),
            "hgm" => Ok(Selection::Hgm),
            "agent" => Ok(Selection::Agent),
            other => Err(format!("unknown selection `{other}` (dgm-h, random, best, latest, hgm, agent)")),
        }
    }
}

/// Task-level results: the sum of the task scores (each in [0, 1]; a pass scores 1) and the
/// number of tasks they came from.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Tally {
    pub passes: f64,
    pub tasks: u32,
}

impl Tally {
    pub fn plus(self, other: Tally) -> Tally {
        Tally { passes: self.passes + other.passes, tasks: self.tasks + other.tasks }
    }

    /// The Beta posterior's parameters under a uniform prior, Beta(1, 1).
    pub fn posterior(self) -> (f64, f64) {
        let passes = self.passes.clamp(0.0, f64::from(self.tasks));
        (1.0 + passes, 1.0 + f64::from(self.tasks) - passes)
    }

    pub fn posterior_mean(self) -> f64 {
        let (a, b) = self.posterior();
        a / (a + b)
    }
}

/// A node that may be chosen as a parent, in archive order (oldest first).
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub score: f64,
    pub children: u32,
    /// Its own task-level results (those its score comes from).
    pub own: Tally,
    /// Its own and all its descendants' results, in the archive the choice is made from.
    pub clade: Tally,
}

/// Chooses a candidate by `rule` with randomness derived from `seed` alone.
pub fn choose(rule: Selection, candidates: &[Candidate], seed: u64) -> usize {
    match rule {
        Selection::Hgm => thompson(candidates, &mut SeededRng::new(seed, "hgm thompson")),
        _ => draw(&probabilities(rule, candidates), unit_from_seed(seed)),
    }
}

/// The probability of choosing each candidate. For `hgm`, the share of [`HGM_CHANCE_DRAWS`]
/// Thompson draws (from a fixed seed) each one wins: an estimate, shown to people and to meta
/// agents, never used to choose.
pub fn probabilities(rule: Selection, candidates: &[Candidate]) -> Vec<f64> {
    let n = candidates.len();
    if n == 0 {
        return Vec::new();
    }
    let one_hot = |index: usize| (0..n).map(|i| if i == index { 1.0 } else { 0.0 }).collect();
    match rule {
        // `agent` is resolved before a choice; uniform is the initial selector's distribution.
        Selection::Random | Selection::Agent => vec![1.0 / n as f64; n],
        Selection::Latest => one_hot(n - 1),
        Selection::Best => {
            let best = (0..n).fold(0, |best, i| if candidates[i].score > candidates[best].score { i } else { best });
            one_hot(best)
        }
        Selection::Hgm => {
            let mut wins = vec![0u32; n];
            let mut rng = SeededRng::new(0, "hgm chances");
            for _ in 0..HGM_CHANCE_DRAWS {
                wins[thompson(candidates, &mut rng)] += 1;
            }
            wins.iter().map(|&w| f64::from(w) / f64::from(HGM_CHANCE_DRAWS)).collect()
        }
        Selection::DgmH => {
            let mut scores: Vec<f64> = candidates.iter().map(|c| c.score).collect();
            scores.sort_by(|a, b| b.total_cmp(a));
            let top = &scores[..scores.len().min(TOP_M)];
            let mid = top.iter().sum::<f64>() / top.len() as f64;
            let weights: Vec<f64> =
                candidates.iter().map(|c| sigmoid(LAMBDA * (c.score - mid)) / (1.0 + f64::from(c.children))).collect();
            let total: f64 = weights.iter().sum();
            if total > 0.0 { weights.iter().map(|w| w / total).collect() } else { vec![1.0 / n as f64; n] }
        }
    }
}

/// One Thompson draw over the eligible candidates' clade posteriors; the largest value wins
/// (the oldest on ties).
fn thompson(candidates: &[Candidate], rng: &mut SeededRng) -> usize {
    let any_success = candidates.iter().any(|c| c.own.passes > 0.0);
    let mut best: Option<(usize, f64)> = None;
    for (i, candidate) in candidates.iter().enumerate() {
        if any_success && candidate.own.passes <= 0.0 {
            continue;
        }
        let (a, b) = candidate.clade.posterior();
        let theta = Beta::new(a, b).expect("both parameters are at least 1").sample(rng);
        if best.is_none_or(|(_, top)| theta > top) {
            best = Some((i, theta));
        }
    }
    best.map_or(0, |(i, _)| i)
}

/// A number in [0, 1) from the top 53 bits of `seed`.
pub fn unit_from_seed(seed: u64) -> f64 {
    (seed >> 11) as f64 / (1u64 << 53) as f64
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Draws an index from `probabilities` with `unit`, a number in [0, 1).
pub fn draw(probabilities: &[f64], unit: f64) -> usize {
    let mut left = unit;
    for (i, p) in probabilities.iter().enumerate() {
        if left < *p {
            return i;
        }
        left -= p;
    }
    probabilities.len().saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive() -> Vec<Candidate> {
        [(0.90, 0), (0.80, 2), (0.50, 1), (0.95, 0), (0.70, 3)]
            .iter()
            .map(|&(score, children)| Candidate { score, children, own: Tally::default(), clade: Tally::default() })
            .collect()
    }

    fn tallied(own: (f64, u32), clade: (f64, u32)) -> Candidate {
        let tally = |(passes, tasks)| Tally { passes, tasks };
        Candidate { score: 0.5, children: 0, own: tally(own), clade: tally(clade) }
    }

    #[test]
    fn dgm_h_probabilities_match_the_formula() {
        // α_mid = mean of the top three scores (0.95, 0.90, 0.80).
        let mid = (0.95 + 0.90 + 0.80) / 3.0;
        let weight = |score: f64, children: f64| 1.0 / (1.0 + (-10.0 * (score - mid)).exp()) / (1.0 + children);
        let weights = [weight(0.90, 0.0), weight(0.80, 2.0), weight(0.50, 1.0), weight(0.95, 0.0), weight(0.70, 3.0)];
        let total: f64 = weights.iter().sum();
        let probabilities = probabilities(Selection::DgmH, &archive());
        for (p, w) in probabilities.iter().zip(weights) {
            assert!((p - w / total).abs() < 1e-12, "{p} vs {}", w / total);
        }
        assert!((probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // A value computed independently (by hand, in Python): the best node with no children.
        assert!((probabilities[3] - 0.490_045_5).abs() < 1e-6, "{}", probabilities[3]);
    }

    #[test]
    fn other_rules() {
        assert_eq!(probabilities(Selection::Random, &archive()), vec![0.2; 5]);
        assert_eq!(probabilities(Selection::Best, &archive()), vec![0.0, 0.0, 0.0, 1.0, 0.0]);
        assert_eq!(probabilities(Selection::Latest, &archive()), vec![0.0, 0.0, 0.0, 0.0, 1.0]);
        assert!(probabilities(Selection::DgmH, &[]).is_empty());
    }

    #[test]
    fn draws_follow_the_probabilities() {
        let probabilities = [0.25, 0.5, 0.25];
        assert_eq!(draw(&probabilities, 0.0), 0);
        assert_eq!(draw(&probabilities, 0.3), 1);
        assert_eq!(draw(&probabilities, 0.76), 2);
        assert_eq!(draw(&probabilities, 0.999_999), 2);
    }

    #[test]
    fn a_tally_gives_the_beta_posterior_of_a_uniform_prior() {
        let tally = Tally { passes: 3.0, tasks: 10 };
        assert_eq!(tally.posterior(), (4.0, 8.0));
        assert!((tally.posterior_mean() - 4.0 / 12.0).abs() < 1e-15);
        assert_eq!(Tally::default().posterior(), (1.0, 1.0));
        // Fractional task scores count as fractional passes; claims beyond the tasks are cut.
        assert_eq!(Tally { passes: 2.5, tasks: 4 }.posterior(), (3.5, 2.5));
        assert_eq!(Tally { passes: 7.0, tasks: 4 }.posterior(), (5.0, 1.0));
        assert_eq!(tally.plus(Tally { passes: 1.0, tasks: 2 }), Tally { passes: 4.0, tasks: 12 });
    }

    #[test]
    fn hgm_chances_match_a_posterior_computed_by_hand() {
        // Clades Beta(2, 1) and Beta(1, 2): P(X > Y) = ∫₀¹ 2x · (2x − x²) dx = 4/3 − 1/2 = 5/6.
        // Neither node has a success of its own, so both may be expanded.
        let candidates = [tallied((0.0, 0), (1.0, 1)), tallied((0.0, 1), (0.0, 1))];
        let chances = probabilities(Selection::Hgm, &candidates);
        assert!((chances[0] - 5.0 / 6.0).abs() < 0.03, "{chances:?}");
        assert!((chances.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // Equal clades: an even split.
        let even = probabilities(Selection::Hgm, &[tallied((1.0, 2), (3.0, 6)), tallied((2.0, 4), (3.0, 6))]);
        assert!((even[0] - 0.5).abs() < 0.03, "{even:?}");
    }

    #[test]
    fn hgm_expands_only_nodes_with_a_success_of_their_own() {
        // The second node's clade is excellent, but it never succeeded itself.
        let candidates =
            [tallied((1.0, 10), (1.0, 10)), tallied((0.0, 10), (900.0, 1000)), tallied((2.0, 10), (2.0, 10))];
        let chances = probabilities(Selection::Hgm, &candidates);
        assert_eq!(chances[1], 0.0, "{chances:?}");
        for seed in 0..200 {
            assert_ne!(choose(Selection::Hgm, &candidates, seed), 1);
        }
    }

    #[test]
    fn hgm_prefers_the_clade_over_the_node_and_is_deterministic() {
        // A modest node with a strong clade against a strong node whose clade is poor.
        let candidates = [tallied((3.0, 10), (45.0, 60)), tallied((8.0, 10), (15.0, 60))];
        let chances = probabilities(Selection::Hgm, &candidates);
        assert!(chances[0] > 0.99, "{chances:?}");
        let picks: Vec<usize> = (0..50).map(|seed| choose(Selection::Hgm, &candidates, seed)).collect();
        assert_eq!(picks, (0..50).map(|seed| choose(Selection::Hgm, &candidates, seed)).collect::<Vec<_>>());
        assert!(picks.iter().all(|&p| p == 0), "{picks:?}");
        // Uncertain clades: different seeds choose differently.
        let close = [tallied((1.0, 2), (1.0, 2)), tallied((1.0, 2), (1.0, 2))];
        let picks: std::collections::BTreeSet<usize> =
            (0..50).map(|seed| choose(Selection::Hgm, &close, seed)).collect();
        assert_eq!(picks.len(), 2);
    }

    #[test]
    fn the_other_rules_choose_by_one_unit_from_the_seed() {
        // As they always have: so runs made before `choose` existed replay unchanged.
        for seed in [0, 1, 0xdead_beef, u64::MAX] {
            let expected = draw(&probabilities(Selection::DgmH, &archive()), unit_from_seed(seed));
            assert_eq!(choose(Selection::DgmH, &archive(), seed), expected);
        }
    }
}
