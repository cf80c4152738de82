//! The evolvable priority function: how much an open bin is worth for the arriving item. The
//! item goes into the fitting bin with the highest priority, or into a new bin when none fits.
//!
//! Lines ending in `// evolve lo..hi` hold constants the meta agent may rewrite, within that range.
//! With the values below the function is best fit.

/// Weight of the room a bin would have left: larger prefers tighter fits.
pub const WASTE_WEIGHT: f64 = 1.0; // evolve 0.0..4.0
/// Penalty for leaving a gap smaller than `SMALL_GAP`, which few later items can fill.
pub const SMALL_GAP_PENALTY: f64 = 0.0; // evolve 0.0..100.0
/// What counts as a small gap, in units of item size.
pub const SMALL_GAP: f64 = 10.0; // evolve 1.0..40.0
/// Bonus for filling a bin exactly.
pub const EXACT_FIT_BONUS: f64 = 0.0; // evolve 0.0..100.0
/// Weight of how full the bin already is, as a fraction of capacity.
pub const FULLNESS_WEIGHT: f64 = 0.0; // evolve -50.0..50.0

pub fn priority(item: f64, remaining: f64, capacity: f64) -> f64 {
    let left = remaining - item;
    let mut score = -WASTE_WEIGHT * left;
    if left > 0.0 && left < SMALL_GAP {
        score -= SMALL_GAP_PENALTY;
    }
    if left == 0.0 {
        score += EXACT_FIT_BONUS;
    }
    score += FULLNESS_WEIGHT * (capacity - remaining) / capacity;
    score
}
