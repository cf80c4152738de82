//! The messages on the wire: a job (one child order of one run session) and a worker's answer.
//! Both are JSON, bounded by [`super::MAX_MESSAGE_BYTES`], and name every object by hash.

use crate::evolution::config::RunConfig;
use crate::evolution::farm::ChildOrder;
use crate::hash::ContentHash;
use serde::{Deserialize, Serialize};

pub const JOB_SCHEMA: &str = "hyperagent.cluster-job/1";
pub const RESULT_SCHEMA: &str = "hyperagent.cluster-result/1";
pub const EVAL_JOB_SCHEMA: &str = "hyperagent.cluster-eval-job/1";
pub const EVAL_REPLY_SCHEMA: &str = "hyperagent.cluster-eval-reply/1";

/// Make the child of `order` for the run `run` (its session `session`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    pub schema: String,
    pub run: String,
    pub session: String,
    pub config: RunConfig,
    /// The provenance the coordinator's nodes link: a worker whose own differs would make other
    /// nodes, so it refuses the job.
    pub provenance: ContentHash,
    pub order: ChildOrder,
    /// The history snapshot object (see [`super::objects::put_snapshot`]).
    pub snapshot: ContentHash,
    /// Tasks per evaluation job when the worker spreads the child's evaluation over workers:
    /// 0 never, none for the domains whose tasks are costly only.
    #[serde(default)]
    pub eval_chunk: Option<u32>,
    /// With a live LLM: what the run's budget has left, which the worker may spend at most; the
    /// worker asks the backend the configuration names itself (its key from its own environment).
    #[serde(default)]
    pub llm_budget: Option<crate::llm::backend::LlmBudget>,
}

/// Run these tasks of one domain on one component, for an evaluation of run `run` (session
/// `session`); reply on `reply` (a plain NATS subject of the asking host).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalJob {
    pub schema: String,
    pub run: String,
    pub session: String,
    pub config: RunConfig,
    pub provenance: ContentHash,
    pub component: ContentHash,
    pub domain: String,
    pub tasks: Vec<String>,
    pub keep_answers: bool,
    pub reply: String,
    /// Which part of the asker's set this is.
    pub part: u32,
}

/// A worker's word on an evaluation job: still working, the records, or why not.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalReply {
    pub schema: String,
    pub session: String,
    pub part: u32,
    pub worker: String,
    pub answer: EvalAnswer,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum EvalAnswer {
    Working,
    Done { records: Vec<crate::evolution::evaluate::TaskRecord> },
    Refused { reason: String },
}

/// What a worker answers to a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobResult {
    pub schema: String,
    pub run: String,
    pub session: String,
    pub generation: u32,
    pub slot: u32,
    /// Who answered (host and process), for the record of failures.
    pub worker: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Outcome {
    /// The node, and every object it reaches that the worker made or fetched, all in the bucket.
    Made {
        node: ContentHash,
        objects: Vec<ContentHash>,
        /// LLM exchanges with their latencies, as the loop logs them.
        exchanges: Vec<(ContentHash, u64)>,
    },
    /// The worker could not make the child (not the child's doing): the coordinator makes it.
    Refused { reason: String },
}

/// Parses a message body, refusing oversized ones and other schemas.
pub fn parse<T: for<'de> Deserialize<'de>>(bytes: &[u8], schema: &str) -> Result<T, String> {
    if bytes.len() > super::MAX_MESSAGE_BYTES {
        return Err(format!("a message of {} bytes exceeds the limit of {}", bytes.len(), super::MAX_MESSAGE_BYTES));
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let found = value.get("schema").and_then(|s| s.as_str()).unwrap_or("none");
    if found != schema {
        return Err(format!("the message is {found}; this host reads {schema}"));
    }
    serde_json::from_value(value).map_err(|e| e.to_string())
}

/// Who this process is, for results: host name and process id.
pub fn worker_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}:{}", host.trim(), std::process::id())
}
