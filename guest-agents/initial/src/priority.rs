//! The evolvable priority function: how much an open bin is worth for the arriving item. The
//! item goes into the fitting bin with the highest priority, or a new bin when none fits.
//! Lines marked `evolve` hold constants the meta agent may rewrite.

pub const WASTE_WEIGHT: f64 = 1.0; // evolve
pub const FILL_BONUS: f64 = 0.0; // evolve
pub const EXACT_FIT_BONUS: f64 = 0.0; // evolve

/// Best fit when the bonuses are zero: the less room left after placing, the better.
pub fn priority(item: f64, remaining: f64, capacity: f64) -> f64 {
    let left = remaining - item;
    let mut score = -WASTE_WEIGHT * left;
    score += FILL_BONUS * (capacity - left) / capacity;
    if left == 0.0 {
        score += EXACT_FIT_BONUS;
    }
    score
}
