//! Scale-out over NATS JetStream: a coordinator (`hyperagent run --nats`) hands each child of a
//! generation to workers (`hyperagent worker --nats`) on other machines, and enters the nodes they
//! made into its archive exactly as if it had made them itself.
//!
//! The layout on the server (see ARCHITECTURE.md):
//!
//! ```text
//! stream  HYPERAGENT_JOBS     subjects hyperagent.jobs.<run>     work queue; one durable pull
//!                                                                consumer `workers` shared by all
//! stream  HYPERAGENT_RESULTS  subjects hyperagent.results.<run>  work queue; one durable consumer
//!                                                                per run, `results-<run>`
//! stream  HYPERAGENT_EVALS    subjects hyperagent.evals.<run>    work queue of evaluation parts;
//!                                                                one durable consumer `evaluators`
//!                                                                (replies on the asker's inbox)
//! bucket  hyperagent-objects  objects named by their blake3 hex; `run.<run>` names the live
//!                                                                session of a run
//! ```
//!
//! Nothing a worker says is trusted: every object is re-hashed on arrival, a result must name the
//! order it answers, and a configurable fraction of children is made again on the coordinator.
//! Architecture invariant: the loop knows only the [`crate::evolution::farm::ChildFarm`] seam;
//! nothing outside this module names NATS.

pub mod connection;
pub mod coordinator;
pub mod evals;
pub mod objects;
pub mod wire;
pub mod worker;

pub use connection::NatsSettings;

/// The work-queue stream of child orders.
pub const JOBS_STREAM: &str = "HYPERAGENT_JOBS";
/// The stream of workers' answers.
pub const RESULTS_STREAM: &str = "HYPERAGENT_RESULTS";
/// The work-queue stream of evaluation parts (some tasks of one domain on one component).
pub const EVALS_STREAM: &str = "HYPERAGENT_EVALS";
/// The durable pull consumer every worker takes evaluation parts from, beside its child jobs.
pub const EVALUATORS_CONSUMER: &str = "evaluators";
/// Tasks per evaluation part for domains whose tasks are costly, unless told otherwise.
pub const DEFAULT_COSTLY_EVAL_CHUNK: u32 = 4;
/// The durable pull consumer every worker takes jobs from.
pub const WORKERS_CONSUMER: &str = "workers";
/// The object store bucket: trees, components, snapshots, nodes, by hash.
pub const OBJECT_BUCKET: &str = "hyperagent-objects";

/// Largest object either side reads from the bucket (a component is a few MiB; a history
/// snapshot names its entries by hash). Larger objects are refused unread.
pub const MAX_OBJECT_BYTES: usize = 64 << 20;
/// Largest job or result message, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;
/// Jobs the jobs stream holds at most (all runs together); a publish past it is refused.
pub const MAX_QUEUED_JOBS: i64 = 100_000;
/// GiB the object store holds at most, by default.
pub const DEFAULT_OBJECT_STORE_GIB: u32 = 8;
/// The same in bytes.
pub const DEFAULT_OBJECT_STORE_BYTES: i64 = (DEFAULT_OBJECT_STORE_GIB as i64) << 30;
/// How often a job is handed out before it is given up (then the coordinator makes the child
/// itself and records why).
pub const DEFAULT_MAX_DELIVER: i64 = 3;
/// How long a worker may stay silent on a job before it is handed to another; workers send a
/// progress ack every third of it.
pub const DEFAULT_ACK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("NATS at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("JetStream: {0}")]
    JetStream(String),
    #[error("object {name}: {reason}")]
    Object { name: String, reason: String },
    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),
    #[error(transparent)]
    Run(#[from] crate::evolution::RunError),
}

/// Any JetStream error as text: the client's error types differ per call.
pub(crate) fn js_error(e: impl std::fmt::Display) -> ClusterError {
    ClusterError::JetStream(e.to_string())
}

/// The subject token that names a run on the server: derived from the run directory, so that a
/// resumed run keeps it.
pub fn run_token(run_dir: &std::path::Path) -> String {
    let hash = blake3::derive_key("hyperagent cluster run v1", run_dir.to_string_lossy().as_bytes());
    hash[..8].iter().map(|b| format!("{b:02x}")).collect()
}

pub fn jobs_subject(run: &str) -> String {
    format!("hyperagent.jobs.{run}")
}

pub fn evals_subject(run: &str) -> String {
    format!("hyperagent.evals.{run}")
}

pub fn results_subject(run: &str) -> String {
    format!("hyperagent.results.{run}")
}

/// The object that holds a run's live session; a job of any other session is discarded.
pub fn session_object(run: &str) -> String {
    format!("run.{run}")
}
