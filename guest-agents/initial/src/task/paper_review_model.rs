//! The paper-review model's table (see `lexical.rs`). The meta agent rewrites this file when it
//! retrains the model on the training results in `/history`.

use super::lexical::Model;

pub const MODEL: Model<2> = Model { labels: ["accept", "reject"], ngrams: 2, bias: [0.0, 0.0], weights: WEIGHTS };

/// A hand-written start: a few words that reviewers of the time liked or did not.
const WEIGHTS: &[(&str, f32, [f32; 2])] =
    &[("outperforms", 1.0, [0.5, -0.5]), ("state of", 1.0, [0.5, -0.5]), ("we propose", 1.0, [-0.2, 0.2])];
