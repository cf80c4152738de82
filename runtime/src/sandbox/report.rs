//! What a call returns: how it ended and what it cost.

use super::capture::Captured;
use serde::{Deserialize, Serialize};

/// How a call ended. Only the outcomes marked deterministic are guaranteed to repeat on replay;
/// the others depend on the host (wall clock, native stack depth).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Outcome {
    /// The export returned a result. Deterministic.
    Ok,
    /// The export returned an agent error. Deterministic.
    GuestError { error: String, message: String },
    /// The export returned something the host refuses (too large, not JSON). Deterministic.
    InvalidOutput { reason: String },
    /// The fuel budget ran out. Deterministic.
    OutOfFuel,
    /// The guest asked for more memory than its cap and then trapped. Deterministic.
    OutOfMemory { requested_bytes: u64, limit_bytes: u64 },
    /// The wall-clock deadline passed. Not deterministic.
    Deadline,
    /// The wasm stack overflowed. Depends on native code generation.
    StackOverflow,
    /// A write or a new entry would have taken the writable preopens past the call's disk quota
    /// (or they held more than it when the call ended). Deterministic.
    DiskQuota { used_bytes: u64, limit_bytes: u64 },
    /// The guest moved more bytes through host calls than its budget. Deterministic.
    HostIo { moved_bytes: u64, limit_bytes: u64 },
    /// A rule about files was broken: too many open at once, directories nested too deep, or
    /// a tree the host could not measure. Deterministic.
    FileLimit { reason: String },
    /// Any other trap (panic, unreachable, too many host calls, ...). Deterministic.
    Trap { message: String },
}

impl Outcome {
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok)
    }

    /// A short name for tables: `ok`, `out-of-fuel`, ...
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::GuestError { .. } => "guest-error",
            Outcome::InvalidOutput { .. } => "invalid-output",
            Outcome::OutOfFuel => "out-of-fuel",
            Outcome::OutOfMemory { .. } => "out-of-memory",
            Outcome::Deadline => "deadline",
            Outcome::StackOverflow => "stack-overflow",
            Outcome::DiskQuota { .. } => "disk-quota",
            Outcome::HostIo { .. } => "host-io",
            Outcome::FileLimit { .. } => "file-limit",
            Outcome::Trap { .. } => "trap",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Ok => write!(f, "ok"),
            Outcome::GuestError { error, message } => write!(f, "guest error ({error}): {message}"),
            Outcome::InvalidOutput { reason } => write!(f, "invalid output: {reason}"),
            Outcome::OutOfFuel => write!(f, "out of fuel"),
            Outcome::OutOfMemory { requested_bytes, limit_bytes } => {
                write!(f, "out of memory: asked for {requested_bytes} bytes, limit {limit_bytes}")
            }
            Outcome::Deadline => write!(f, "wall-clock deadline passed"),
            Outcome::StackOverflow => write!(f, "stack overflow"),
            Outcome::DiskQuota { used_bytes, limit_bytes } => {
                write!(
                    f,
                    "disk quota exceeded: the writable directories needed {used_bytes} bytes, limit {limit_bytes}"
                )
            }
            Outcome::HostIo { moved_bytes, limit_bytes } => {
                write!(f, "host I/O budget spent: {moved_bytes} bytes moved through host calls, limit {limit_bytes}")
            }
            Outcome::FileLimit { reason } => write!(f, "file limit: {reason}"),
            Outcome::Trap { message } => write!(f, "trap: {message}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub level: String,
    pub message: String,
}

/// One use of a workbench tool by a meta call, as its report records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolUse {
    /// `check-build` or `try-task`.
    pub tool: String,
    /// What it was asked: for `try-task`, `<domain> <task id>` (cut to 200 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// What it answered: the build's status, the trial's outcome and score, or `error: <why>`.
    pub result: String,
    /// Fuel the tool spent outside the guest's own budget (a trial's task call).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fuel: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The full account of one call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallReport {
    pub outcome: Outcome,
    /// The result: the task's JSON output, or the meta report as JSON. Absent unless `ok`.
    pub output: Option<String>,
    pub fuel_budget: u64,
    pub fuel_consumed: u64,
    /// Largest linear memory size the guest reached, in bytes.
    pub peak_memory_bytes: u64,
    pub memory_limit_bytes: u64,
    pub stdout: Captured,
    pub stderr: Captured,
    pub logs: Vec<LogLine>,
    pub logs_dropped: u64,
    pub import_calls: u64,
    pub llm_calls: u32,
    /// The workbench tools the call used, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolUse>,
    /// Wall time of instantiate + call, in microseconds. Not deterministic; never hashed.
    pub wall_time_us: u64,
}

impl CallReport {
    /// The report of a call that never started: `outcome` says why.
    pub fn refused(outcome: Outcome, limits: &super::CallLimits) -> CallReport {
        CallReport {
            outcome,
            output: None,
            fuel_budget: limits.fuel.0,
            fuel_consumed: 0,
            peak_memory_bytes: 0,
            memory_limit_bytes: limits.memory_bytes,
            stdout: Captured::default(),
            stderr: Captured::default(),
            logs: Vec::new(),
            logs_dropped: 0,
            import_calls: 0,
            llm_calls: 0,
            tools: Vec::new(),
            wall_time_us: 0,
        }
    }

    /// The parts of the report that must repeat exactly when the call is replayed.
    pub fn deterministic_view(&self) -> serde_json::Value {
        serde_json::json!({
            "outcome": self.outcome,
            "output": self.output,
            "fuel_consumed": self.fuel_consumed,
            "peak_memory_bytes": self.peak_memory_bytes,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "logs": self.logs,
            "logs_dropped": self.logs_dropped,
            "tools": self.tools,
        })
    }
}
