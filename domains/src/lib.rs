//! Task domains: their tasks and splits, the loaders for their data, and the host-side scorers
//! that turn a guest's output into a score. Everything here is trusted host code; everything it
//! scores came from a guest and is validated before it counts.

pub mod bin_packing;
pub mod domain;
pub mod imo_grading;
pub mod json;
pub mod judgement;
pub mod paper_review;
pub mod text;

pub use domain::{DataError, DataFile, Domain, Figure, ReplayCheck, SetReport, Split, Staging, TestSets};

/// One task as the sandbox hands it to a task agent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Task {
    /// Unique within the domain, e.g. `train/0007` or `test/OR1/u120_00`.
    pub id: String,
    /// The task as JSON text.
    pub payload: String,
}

/// The score of one task: in `[0, 1]`, higher is better; 0 with a reason when the answer is
/// invalid.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TaskScore {
    pub score: f64,
    /// Why the score is 0, when the answer was refused.
    pub invalid: Option<String>,
    /// Domain-specific figures (bins used, lower bound, excess...).
    pub details: serde_json::Value,
}

impl TaskScore {
    pub fn invalid(reason: impl Into<String>) -> TaskScore {
        TaskScore { score: 0.0, invalid: Some(reason.into()), details: serde_json::Value::Null }
    }
}
