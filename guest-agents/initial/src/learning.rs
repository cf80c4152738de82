//! The meta agent's learning settings for the judgement domains' lexical models (`learn.rs`).
//! Lines ending in `// evolve lo..hi` are genes the meta agent mutates like its other settings.
//! A meta agent trains with the values it was compiled with; those it writes into a child take
//! effect when the child makes children of its own (a fixed meta agent keeps these).

/// Step size of the logistic-regression SGD.
pub const LEARNING_RATE: f64 = 0.5; // evolve 0.05..3.0
/// Passes over the labelled training examples per meta call.
pub const EPOCHS: f64 = 10.0; // evolve 1.0..40.0
/// L2 shrinkage per step.
pub const L2: f64 = 0.0001; // evolve 0.0..0.01
/// Features kept in the table, those with the largest weights first.
pub const MAX_FEATURES: f64 = 1500.0; // evolve 100.0..3000.0
/// A feature must appear in at least this many training texts.
pub const MIN_DOCUMENT_FREQUENCY: f64 = 2.0; // evolve 1.0..6.0
/// 1: words only; 2: words and bigrams (rounded).
pub const NGRAMS: f64 = 2.0; // evolve 1.0..2.0
/// Extra weight on the training examples the parent answered wrongly.
pub const MISTAKE_BOOST: f64 = 1.0; // evolve 0.0..5.0
/// Fraction of the labelled examples each call trains on (another sample each call).
pub const SAMPLE: f64 = 1.0; // evolve 0.3..1.0
/// How much of the parent's weights training starts from (0: from scratch).
pub const WARM_START: f64 = 1.0; // evolve 0.0..1.0
/// Whether the table keeps the weights averaged over every step (at least 0.5) or the last step's:
/// the average varies less with the order of the examples.
pub const AVERAGE: f64 = 1.0; // evolve 0.0..1.0
/// Probability of also mutating one of these settings.
pub const SELF_MUTATION_RATE: f64 = 0.5; // evolve 0.0..1.0
