//! Compute kernels shared by guests and the host's benchmarks, so that "the same code" in the
//! sandbox and natively is literally the same source.

/// Online first-fit bin packing of `items` pseudo-random items (sizes 1..=100, capacity 100),
/// repeated `rounds` times. Returns the total number of bins opened, so the work cannot be
/// optimised away.
pub fn first_fit_bins(items: usize, rounds: usize, seed: u64) -> u64 {
    let mut rng = crate::rng::Rng::new(seed);
    let mut total = 0u64;
    let mut remaining: Vec<u32> = Vec::with_capacity(items);
    for _ in 0..rounds {
        remaining.clear();
        for _ in 0..items {
            let size = 1 + rng.below(100) as u32;
            match remaining.iter_mut().find(|free| **free >= size) {
                Some(free) => *free -= size,
                None => remaining.push(100 - size),
            }
        }
        total += remaining.len() as u64;
    }
    total
}

/// Online packing that scores every fitting bin with a floating-point priority function, the
/// shape of work a bin-packing task agent does (sizes 1..=100, capacity 100). Returns the total
/// number of bins opened.
pub fn priority_fit_bins(items: usize, rounds: usize, seed: u64) -> u64 {
    let mut rng = crate::rng::Rng::new(seed);
    let mut total = 0u64;
    let mut remaining: Vec<f64> = Vec::with_capacity(items);
    for _ in 0..rounds {
        remaining.clear();
        for _ in 0..items {
            let size = (1 + rng.below(100)) as f64;
            let mut best: Option<(usize, f64)> = None;
            for (index, free) in remaining.iter().enumerate() {
                if *free < size {
                    continue;
                }
                let left = free - size;
                let score = -left + 0.1 * (100.0 - left) / 100.0 + if left == 0.0 { 1.0 } else { 0.0 };
                if best.is_none_or(|(_, top)| score > top) {
                    best = Some((index, score));
                }
            }
            match best {
                Some((index, _)) => remaining[index] -= size,
                None => remaining.push(100.0 - size),
            }
        }
        total += remaining.len() as u64;
    }
    total
}

#[cfg(test)]
mod tests {
    #[test]
    fn first_fit_is_deterministic_and_plausible() {
        let bins = super::first_fit_bins(1000, 1, 3);
        assert_eq!(bins, super::first_fit_bins(1000, 1, 3));
        // Mean size is about 50, so at least 1000 * 50 / 100 bins are needed.
        assert!((500..=1000).contains(&bins), "{bins}");
        let scored = super::priority_fit_bins(1000, 1, 3);
        assert!(scored >= 500 && scored <= bins, "best-fit-like scoring packs at least as well: {scored} vs {bins}");
    }
}
