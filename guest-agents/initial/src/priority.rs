//! The evolvable priority function: how much a bin is worth for the arriving item. The task agent
//! scores every bin the item fits in, and one empty bin, and puts the item in the best of them;
//! so the function decides when to open a new bin, too (an empty bin has `remaining == capacity`).
//!
//! The meta agent edits `priority` as a syntax tree (`program.rs`): everything below the marker
//! line is parsed and reprinted, so comments there do not survive; the helpers above it do.
//! Lines ending in `// evolve lo..hi` hold constants the meta agent may also rewrite in place.
//! As written here, the function is best fit: its other terms (a penalty for leaving a small gap,
//! a bonus for the empty bin, a weight on how full the bin is) start at zero.

/// Weight of the room a bin would have left.
pub const WASTE_WEIGHT: f64 = 1.0; // evolve 0.1..4.0

/// Protected division: a denominator near zero gives the numerator back.
#[allow(dead_code)]
pub fn div(a: f64, b: f64) -> f64 {
    if b.abs() < 1e-9 { a } else { a / b }
}

/// Square root of the magnitude, so it is defined everywhere.
#[allow(dead_code)]
pub fn sqrt(a: f64) -> f64 {
    a.abs().sqrt()
}

/// Logarithm of the magnitude, defined at zero.
#[allow(dead_code)]
pub fn log(a: f64) -> f64 {
    (a.abs() + 1e-9).ln()
}

/// Exponential, capped so it stays finite.
#[allow(dead_code)]
pub fn exp(a: f64) -> f64 {
    a.min(50.0).exp()
}

// ---- the program: the meta agent reprints everything below this line ----
/// `item`: the arriving item's size; `remaining`: the bin's free room; `capacity`: a bin's
/// capacity; `index`: the bin's number (the empty bin's is `bins`); `bins`: bins open so far.
#[allow(unused_variables, unused_parens, clippy::all)]
pub fn priority(item: f64, remaining: f64, capacity: f64, index: f64, bins: f64) -> f64 {
    -(remaining - item) * WASTE_WEIGHT - (if remaining - item > 0.0 && remaining - item < 10.0 { 0.0 } else { 0.0 })
        + (if remaining >= capacity { 0.0 } else { 0.0 })
        + 0.0 * (capacity - remaining) / capacity
}
