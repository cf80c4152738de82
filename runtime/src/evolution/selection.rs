//! Parent selection.
//!
//! The DGM-H rule (Hyperagents paper, App. A.2): `s_i = sigmoid(λ(α_i − α_mid))` with λ = 10 and
//! α_mid the mean of the top-3 scores, `h_i = 1/(1 + n_i)` with n_i the number of children of i,
//! and `p_i = s_i·h_i / Σ_j s_j·h_j` (uniform when the sum is 0). Also `random` (uniform), `best`
//! (highest score, oldest on ties) and `latest` (the newest candidate).

use serde::{Deserialize, Serialize};

pub const LAMBDA: f64 = 10.0;
pub const TOP_M: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Selection {
    #[default]
    DgmH,
    Random,
    Best,
    Latest,
}

impl std::str::FromStr for Selection {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "dgm-h" => Ok(Selection::DgmH),
            "random" => Ok(Selection::Random),
            "best" => Ok(Selection::Best),
            "latest" => Ok(Selection::Latest),
            other => Err(format!("unknown selection `{other}` (dgm-h, random, best, latest)")),
        }
    }
}

/// A node that may be chosen as a parent, in archive order (oldest first).
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub score: f64,
    pub children: u32,
}

/// The probability of choosing each candidate.
pub fn probabilities(rule: Selection, candidates: &[Candidate]) -> Vec<f64> {
    let n = candidates.len();
    if n == 0 {
        return Vec::new();
    }
    let one_hot = |index: usize| (0..n).map(|i| if i == index { 1.0 } else { 0.0 }).collect();
    match rule {
        Selection::Random => vec![1.0 / n as f64; n],
        Selection::Latest => one_hot(n - 1),
        Selection::Best => {
            let best = (0..n).fold(0, |best, i| if candidates[i].score > candidates[best].score { i } else { best });
            one_hot(best)
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
            .map(|&(score, children)| Candidate { score, children })
            .collect()
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
}
