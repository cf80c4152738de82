//! The run log: one JSON event per line, appended and fsynced before the run goes on, so that a
//! killed run resumes from exactly what completed. Events never carry wall-clock times except in
//! fields named `wall_*`, which replay ignores.

use crate::hash::ContentHash;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The version of the log's format, written in its first event. Logs of another version are
/// refused with the version named, never misread.
pub const LOG_SCHEMA: &str = "hyperagent.run-log/2";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// The run began with this configuration.
    Started {
        schema: String,
        config: Box<super::config::RunConfig>,
        config_hash: ContentHash,
        provenance: serde_json::Value,
    },
    /// A node was archived.
    Node {
        generation: u32,
        slot: u32,
        node: ContentHash,
        parent: Option<ContentHash>,
        score: Option<f64>,
        status: String,
    },
    /// Every child of a generation is archived.
    Generation { generation: u32 },
    /// A node was evaluated on the test sets.
    Test { node: ContentHash, role: String, sets: Vec<TestResult> },
    /// A domain's host-side baseline (`best fit`, say) on the same test sets, for comparison.
    Baseline { domain: String, baseline: String, sets: Vec<TestResult> },
    /// An LLM exchange made by the meta call that produced `node` (logged before the node). The
    /// latency is a fact of this host and this moment, so it lives here, not in the archive.
    LlmExchange { node: ContentHash, record: ContentHash, wall_ms: u64 },
    /// The run stopped before its last generation (an LLM budget was spent).
    Stopped { reason: String },
    /// The run is complete.
    Finished { best: ContentHash },
}

/// One test set's result, in its domain's terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    pub domain: String,
    pub set: String,
    /// Made by the host from a seed (a stand-in for missing published data, or by definition).
    pub generated: bool,
    #[serde(flatten)]
    pub report: hyperagent_domains::SetReport,
}

pub struct RunLog {
    path: PathBuf,
    file: File,
}

impl RunLog {
    /// Opens (creating) the log for appending.
    pub fn open(path: &Path) -> io::Result<RunLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(RunLog { path: path.to_path_buf(), file })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends an event and makes it durable before returning.
    pub fn append(&mut self, event: &Event) -> io::Result<()> {
        let mut line = serde_json::to_vec(event).map_err(io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.sync_data()
    }

    /// Reads every complete event. A last line cut short by a crash is ignored (it was never
    /// acknowledged); any other unreadable line is an error.
    pub fn read(path: &Path) -> io::Result<Vec<Event>> {
        Ok(Self::read_with_length(path)?.0)
    }

    /// Opens the log of an interrupted run for appending: a last line cut short by a crash is cut
    /// off first, so that new events start on a line of their own.
    pub fn reopen(path: &Path) -> io::Result<(RunLog, Vec<Event>)> {
        let (events, complete_bytes) = Self::read_with_length(path)?;
        let file = OpenOptions::new().append(true).open(path)?;
        file.set_len(complete_bytes)?;
        file.sync_data()?;
        Ok((RunLog { path: path.to_path_buf(), file }, events))
    }

    fn read_with_length(path: &Path) -> io::Result<(Vec<Event>, u64)> {
        let bytes = std::fs::read(path)?;
        check_schema(path, &bytes)?;
        let mut events = Vec::new();
        let mut complete = 0usize;
        for (index, line) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
            let is_last = complete + line.len() == bytes.len();
            match serde_json::from_slice::<Event>(line.strip_suffix(b"\n").unwrap_or(line)) {
                Ok(event) if line.ends_with(b"\n") => {
                    events.push(event);
                    complete += line.len();
                }
                _ if is_last => break,
                Ok(_) => unreachable!("only the last line can lack a newline"),
                Err(e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{} line {}: {e}", path.display(), index + 1),
                    ));
                }
            }
        }
        Ok((events, complete as u64))
    }
}

/// Refuses a log written in another format, naming its version.
fn check_schema(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let Some(first) = bytes.split(|b| *b == b'\n').next().filter(|line| !line.is_empty()) else { return Ok(()) };
    // A first line cut short by a crash says nothing; the reader drops it.
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(first) else { return Ok(()) };
    let schema = value.get("schema").and_then(|s| s.as_str()).unwrap_or("hyperagent.run-log/1");
    if schema != LOG_SCHEMA {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: the run log is {schema}; this host reads {LOG_SCHEMA}", path.display()),
        ));
    }
    Ok(())
}
