//! The seam between the loop and a task domain: everything the loop, the test phase, the CLI's
//! tables and the audit need to know about a domain, behind one trait with few required methods.
//!
//! A domain hands out its splits as [`Split`]s of [`Task`]s (the payload is what the task agent
//! sees), scores one answer at a time (asynchronously, so that later domains may score by running
//! guest code or a simulation), and sums a split up in its own metric ([`SetReport`]). Adding a
//! domain is one module that implements [`Domain`] and one line in [`REGISTRY`].

use crate::{Task, TaskScore};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

/// A named list of tasks: `train`, `validation`, or a test set such as `OR1`.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub name: String,
    pub tasks: Vec<Task>,
    /// Made by the host from a seed rather than read from published data (said in tables).
    pub generated: bool,
}

/// A split summed up in the domain's own terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetReport {
    /// What `value` measures, e.g. `excess` or `accuracy`.
    pub metric: String,
    pub value: f64,
    pub lower_is_better: bool,
    /// The mean task score (what the loop maximises), for comparison across domains.
    pub score: f64,
    /// Tasks whose answer was refused.
    pub invalid: usize,
    /// Further figures of the same answers, e.g. a points error beside an accuracy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub figures: Vec<Figure>,
}

/// One more figure of a split, in its own metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    pub metric: String,
    pub value: f64,
    pub lower_is_better: bool,
}

/// The test sets of a domain, and what the user should hear about them once.
#[derive(Debug, Clone)]
pub struct TestSets {
    pub sets: Vec<Split>,
    /// Said once when a run starts, e.g. that published data was missing and what stands in.
    pub notice: Option<String>,
}

/// A data file a domain reads, relative to the data directory.
#[derive(Debug, Clone)]
pub struct DataFile {
    pub path: &'static str,
    /// Where it comes from and under what terms (the facts of the data's SOURCES.md).
    pub source: &'static str,
}

/// The staged evaluation of a domain: this many training tasks first, the rest only if their
/// mean score reaches `threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Staging {
    pub tasks: usize,
    pub threshold: f64,
}

/// What an audit may demand of a re-run task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayCheck {
    /// The re-run must give the recorded output, score and fuel exactly.
    BitExact,
    /// Only the recorded parts (answers, LLM exchanges) are compared; scoring is not re-run.
    RecordedOnly,
}

/// The future of one score.
pub type ScoreFuture<'a> = Pin<Box<dyn Future<Output = TaskScore> + Send + 'a>>;

/// What running a task agent's own tests gave (see [`Domain::run_own_tests`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnTestRun {
    pub built: bool,
    pub passed: u32,
    pub failed: u32,
    /// The failing tests and the first failure's output, or the build's diagnostics.
    pub output: String,
}

/// The future of one run of a task agent's own tests.
pub type OwnTestsFuture<'a> = Pin<Box<dyn Future<Output = Result<OwnTestRun, String>> + Send + 'a>>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}: {reason}")]
    Io { path: String, reason: String },
    #[error("{path}: {reason}")]
    Parse { path: String, reason: String },
}

/// A task domain. The host trusts its code; everything it scores came from a guest.
pub trait Domain: Send + Sync {
    /// The `domain` field of a task request, and the domain's name in configurations and tables.
    fn name(&self) -> &'static str;

    /// The training and validation splits, generated or drawn from the seeds.
    fn splits(&self, train_seed: u64, validation_seed: u64) -> Result<(Split, Split), DataError>;

    /// The test sets: published data from `data_dir` where present, generated stand-ins where not
    /// (with a notice saying so).
    fn test_sets(&self, data_dir: &Path) -> Result<TestSets, DataError>;

    /// Scores one answer to `task`.
    fn score<'a>(&'a self, task: &'a Task, answer: &'a str) -> ScoreFuture<'a>;

    /// Sums up a split's scores (one per task, in task order). Default: the mean task score.
    fn report(&self, tasks: &[Task], scores: &[TaskScore]) -> SetReport {
        let _ = tasks;
        SetReport {
            metric: "score".into(),
            value: mean_score(scores),
            lower_is_better: false,
            score: mean_score(scores),
            invalid: scores.iter().filter(|s| s.invalid.is_some()).count(),
            figures: Vec::new(),
        }
    }

    /// The data files the domain can read, with their sources. Default: none.
    fn data_files(&self) -> Vec<DataFile> {
        Vec::new()
    }

    /// Names of host-side baselines for the test table. Default: none.
    fn baselines(&self) -> Vec<&'static str> {
        Vec::new()
    }

    /// A baseline's score on one task, or `None` for an unknown baseline.
    fn baseline(&self, name: &str, task: &Task) -> Option<TaskScore> {
        let _ = (name, task);
        None
    }

    /// The staged evaluation. Default: 3 tasks, threshold 0.5.
    fn staging(&self) -> Staging {
        Staging { tasks: 3, threshold: 0.5 }
    }

    /// What an audit may demand of a re-run. Default: bit for bit.
    fn replay_check(&self) -> ReplayCheck {
        ReplayCheck::BitExact
    }

    /// What a meta agent is told about its answer to a training task besides the score (the
    /// expected label, a failing test's message...). Default: the score's details.
    fn feedback(&self, task: &Task, score: &TaskScore) -> serde_json::Value {
        let _ = task;
        score.details.clone()
    }

    /// Why the domain's task agents cannot make progress without an LLM (they must write what no
    /// offline model can), or `None` when they can. A run of such a domain is refused unless its
    /// task agents are offered an LLM. Default: `None`.
    fn needs_llm(&self) -> Option<&'static str> {
        None
    }

    /// Whether one task costs seconds or more (a build and a test suite, a training): a cluster
    /// then spreads a child's evaluation over workers by default. Default: no.
    fn costly_tasks(&self) -> bool {
        false
    }

    /// Whether the task agents of this domain may run tests of their own on a candidate answer
    /// (`run-tests`). Default: no.
    fn offers_own_tests(&self) -> bool {
        false
    }

    /// Runs the task agent's own `tests` against a candidate answer's `files` for `task`, as the
    /// domain runs its hidden tests but without them. Default: refused.
    fn run_own_tests<'a>(&'a self, task: &'a Task, files: Vec<(String, String)>, tests: String) -> OwnTestsFuture<'a> {
        let _ = (task, files, tests);
        Box::pin(async { Err("this domain offers no tests of one's own".to_owned()) })
    }
}

/// The mean of the scores (0 for none).
pub fn mean_score(scores: &[TaskScore]) -> f64 {
    if scores.is_empty() { 0.0 } else { scores.iter().map(|s| s.score).sum::<f64>() / scores.len() as f64 }
}

/// Builds a domain from its settings (the configuration's `[domain.<name>]` table, as JSON) and
/// the run's data directory. Nothing may be read yet: listing and checking domains works without
/// their data.
pub type Constructor = fn(&serde_json::Value, &Path) -> Result<Arc<dyn Domain>, String>;

/// Every domain this host knows, by name.
pub const REGISTRY: &[(&str, Constructor)] = &[
    // Bin packing reads its data only as test sets, which are given the data directory.
    (crate::bin_packing::DOMAIN, |settings, _| crate::bin_packing::BinPacking::open(settings)),
    (crate::paper_review::DOMAIN, crate::paper_review::PaperReview::open),
    (crate::imo_grading::DOMAIN, crate::imo_grading::ImoGrading::open),
];

/// The names in [`REGISTRY`].
pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|(name, _)| *name).collect()
}

/// The domain called `name`, built from `settings` (`null` for the defaults), reading its data
/// from `data_dir` unless its settings name another directory.
pub fn open(name: &str, settings: &serde_json::Value, data_dir: &Path) -> Result<Arc<dyn Domain>, String> {
    match REGISTRY.iter().find(|(n, _)| *n == name) {
        Some((_, constructor)) => constructor(settings, data_dir).map_err(|e| format!("domain `{name}`: {e}")),
        None => Err(format!("unknown domain `{name}` (available: {})", names().join(", "))),
    }
}
