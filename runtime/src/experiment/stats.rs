//! The statistics of an experiment's summary: medians, bootstrap confidence intervals of the
//! median, and the Wilcoxon signed-rank test of paired per-seed values.
//!
//! Everything here is deterministic: the bootstrap draws from a fixed seed, so a summary written
//! twice from the same runs is the same bytes.

/// The median of `values` (the mean of the middle two for an even count); `None` for none.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 { sorted[mid] } else { (sorted[mid - 1] + sorted[mid]) / 2.0 })
}

/// A percentile bootstrap interval of the median: `resamples` samples drawn with replacement
/// (seeded), the medians sorted, and the `(1 - level) / 2` and `(1 + level) / 2` quantiles taken
/// (nearest rank). `None` for no values.
pub fn bootstrap_median_interval(values: &[f64], resamples: usize, level: f64, seed: u64) -> Option<(f64, f64)> {
    if values.is_empty() || resamples == 0 {
        return None;
    }
    let mut state = seed;
    let mut medians: Vec<f64> = (0..resamples)
        .map(|_| {
            let sample: Vec<f64> =
                (0..values.len()).map(|_| values[(splitmix(&mut state) % values.len() as u64) as usize]).collect();
            median(&sample).expect("not empty")
        })
        .collect();
    medians.sort_by(f64::total_cmp);
    let at = |q: f64| medians[((q * resamples as f64).ceil() as usize).clamp(1, resamples) - 1];
    Some((at((1.0 - level) / 2.0), at((1.0 + level) / 2.0)))
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The result of a Wilcoxon signed-rank test.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Wilcoxon {
    /// Pairs with a non-zero difference (the test's n).
    pub n: usize,
    /// Pairs whose difference was zero, left out (Wilcoxon's own treatment).
    pub zeros: usize,
    /// The sum of the ranks of the positive differences.
    pub statistic: f64,
    /// The two-sided p-value, exact: from every assignment of signs to the ranks.
    pub p_value: f64,
}

/// The Wilcoxon signed-rank test of the paired differences `differences` (x − y per pair).
///
/// Zero differences are left out. Tied absolute differences share the mean of their ranks
/// (mid-ranks), and the p-value is exact for those ranks: the distribution of the positive-rank
/// sum over all 2^n sign assignments, counted by dynamic programming over doubled ranks (so
/// mid-ranks stay integers). Two-sided: twice the smaller tail, at most 1. `None` when every
/// difference is zero (or there are none).
pub fn wilcoxon_signed_rank(differences: &[f64]) -> Option<Wilcoxon> {
    let nonzero: Vec<f64> = differences.iter().copied().filter(|d| *d != 0.0 && d.is_finite()).collect();
    let zeros = differences.len() - nonzero.len();
    let n = nonzero.len();
    if n == 0 {
        return None;
    }
    let doubled = doubled_mid_ranks(&nonzero);
    // counts[s]: sign assignments whose doubled positive-rank sum is s.
    let total: usize = doubled.iter().sum();
    let mut counts = vec![0f64; total + 1];
    counts[0] = 1.0;
    for &rank in &doubled {
        for s in (rank..=total).rev() {
            counts[s] += counts[s - rank];
        }
    }
    let observed: usize = nonzero.iter().zip(&doubled).filter(|(d, _)| **d > 0.0).map(|(_, r)| r).sum();
    let all = 2f64.powi(n as i32);
    let lower: f64 = counts[..=observed].iter().sum::<f64>() / all;
    let upper: f64 = counts[observed..].iter().sum::<f64>() / all;
    Some(Wilcoxon { n, zeros, statistic: observed as f64 / 2.0, p_value: (2.0 * lower.min(upper)).min(1.0) })
}

/// Twice the mid-rank of each |value| among all (ranks from 1; ties share the mean rank).
fn doubled_mid_ranks(values: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].abs().total_cmp(&values[b].abs()));
    let mut ranks = vec![0usize; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]].abs() == values[order[start]].abs() {
            end += 1;
        }
        // Ranks start + 1 ..= end share their mean, (start + 1 + end) / 2; doubled, an integer.
        for &i in &order[start..end] {
            ranks[i] = start + 1 + end;
        }
        start = end;
    }
    ranks
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values from scipy.stats.wilcoxon 1.17.1 (method="exact"), and for the tied case
    // from enumerating all 2^n sign assignments of scipy.stats.rankdata's mid-ranks.

    #[test]
    fn matches_scipy_without_ties() {
        let w = wilcoxon_signed_rank(&[0.1, 0.3, -0.2, 0.5, 0.4, 0.25, -0.05, 0.6]).unwrap();
        assert_eq!((w.n, w.zeros, w.statistic), (8, 0, 32.0));
        assert!((w.p_value - 0.0546875).abs() < 1e-12, "{w:?}");
        let w = wilcoxon_signed_rank(&[1.5, 2.0, -1.0, 3.0, 4.0]).unwrap();
        assert_eq!(w.statistic, 14.0);
        assert!((w.p_value - 0.125).abs() < 1e-12, "{w:?}");
    }

    #[test]
    fn ties_share_mid_ranks_and_zeros_are_left_out() {
        let w = wilcoxon_signed_rank(&[1.0, 1.0, -1.0, 2.0, 2.0, 3.0, -0.5, 0.0]).unwrap();
        assert_eq!((w.n, w.zeros, w.statistic), (7, 1, 24.0));
        assert!((w.p_value - 0.125).abs() < 1e-12, "{w:?}");
        assert_eq!(doubled_mid_ranks(&[1.0, -1.0, 2.0]), [3, 3, 6]);
    }

    #[test]
    fn five_pairs_all_one_way_give_the_smallest_p() {
        // With 5 pairs, the two-sided p can never be below 2/32: the paper's 5 seeds cannot reach 0.05.
        let w = wilcoxon_signed_rank(&[0.1, 0.2, 0.3, 0.4, 0.5]).unwrap();
        assert_eq!(w.p_value, 0.0625);
        assert_eq!(wilcoxon_signed_rank(&[0.0, 0.0]), None);
    }

    #[test]
    fn medians_and_intervals() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        let values = [0.50, 0.52, 0.55, 0.58, 0.61];
        let (lo, hi) = bootstrap_median_interval(&values, 1000, 0.95, 0).unwrap();
        assert!(lo <= 0.55 && hi >= 0.55 && lo >= 0.50 && hi <= 0.61, "({lo}, {hi})");
        assert!(lo < hi, "five distinct values give an interval, not a point");
        assert_eq!(bootstrap_median_interval(&values, 1000, 0.95, 0), Some((lo, hi)), "seeded: the same");
        assert_eq!(bootstrap_median_interval(&[0.7; 4], 1000, 0.95, 3), Some((0.7, 0.7)));
    }
}
