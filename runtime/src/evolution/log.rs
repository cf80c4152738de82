//! The run log: one JSON event per line, appended and fsynced before the run goes on, so that a
//! killed run resumes from exactly what completed. Events never carry wall-clock times except in
//! fields named `wall_*`, which replay ignores.

use crate::hash::ContentHash;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions, TryLockError};
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
    /// Under `selection = "agent"`: the parents a generation's selector chose (the node whose
    /// `select` export was asked), or, with `fallback` saying why, those the fallback rule chose.
    Selection {
        generation: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        selector: Option<ContentHash>,
        parents: Vec<ContentHash>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fallback: Option<String>,
    },
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
    /// What the log holds, kept as it is written (the next line names `head` as its `prev`).
    contents: LogContents,
}

/// The log's exclusive lock, taken without waiting: one writer at a time, since a second would
/// interleave its lines with the first's (and the lock goes when the process does, even killed).
fn locked(file: File, path: &Path) -> io::Result<File> {
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::ResourceBusy,
            format!("{} is being written by another process (a run goes on in one process at a time)", path.display()),
        )),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

/// A log read back: its events, and where its chain ends.
#[derive(Default)]
pub struct LogContents {
    pub events: Vec<Event>,
    /// The hash of the last complete line (`None` for an empty log).
    pub head: Option<ContentHash>,
    /// The hash of each complete line, in order (`line_hashes[n - 1]` ends the first n events).
    pub line_hashes: Vec<ContentHash>,
    /// Bytes of complete lines.
    complete: u64,
}

impl RunLog {
    /// Opens (creating) the log for appending, holding its lock while the `RunLog` lives.
    pub fn open(path: &Path) -> io::Result<RunLog> {
        let file = locked(OpenOptions::new().create(true).append(true).open(path)?, path)?;
        Ok(RunLog { path: path.to_path_buf(), file, contents: LogContents::default() })
    }

    /// Whether another `RunLog` holds the log at `path` (in this process or another) right now.
    pub fn in_use(path: &Path) -> bool {
        File::open(path).is_ok_and(|file| matches!(file.try_lock_shared(), Err(TryLockError::WouldBlock)))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every event written or read back so far, with the chain of line hashes.
    pub fn contents(&self) -> &LogContents {
        &self.contents
    }

    /// Appends an event, chained to the line before it, and makes it durable before returning.
    pub fn append(&mut self, event: &Event) -> io::Result<()> {
        let mut value = serde_json::to_value(event).map_err(io::Error::other)?;
        value["prev"] = serde_json::json!(self.contents.head);
        let mut line = crate::canonical::to_vec(&value);
        let hash = ContentHash::of(&line);
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.sync_data()?;
        self.contents.events.push(event.clone());
        self.contents.line_hashes.push(hash);
        self.contents.head = Some(hash);
        self.contents.complete += line.len() as u64;
        Ok(())
    }

    /// Reads every complete event, checking the chain. A last line cut short by a crash is
    /// ignored (it was never acknowledged); any other unreadable line, or a line whose `prev` is
    /// not the hash of the line before it, is an error naming the line.
    pub fn read(path: &Path) -> io::Result<Vec<Event>> {
        Ok(Self::read_chain(path)?.events)
    }

    /// Opens the log of an interrupted run for appending: a last line cut short by a crash is cut
    /// off first, so that new events start on a line of their own.
    pub fn reopen(path: &Path) -> io::Result<(RunLog, Vec<Event>)> {
        // Locked before it is read: what is read is then what this writer appends to.
        let file = locked(OpenOptions::new().append(true).open(path)?, path)?;
        let contents = Self::read_chain(path)?;
        file.set_len(contents.complete)?;
        file.sync_data()?;
        let events = contents.events.clone();
        Ok((RunLog { path: path.to_path_buf(), file, contents }, events))
    }

    /// Reads the log with its chain of line hashes.
    pub fn read_chain(path: &Path) -> io::Result<LogContents> {
        let bytes = std::fs::read(path)?;
        check_schema(path, &bytes)?;
        let bad = |index: usize, why: String| {
            io::Error::new(io::ErrorKind::InvalidData, format!("{} line {}: {why}", path.display(), index + 1))
        };
        let mut contents = LogContents { events: Vec::new(), head: None, line_hashes: Vec::new(), complete: 0 };
        for (index, line) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
            let Some(body) = line.strip_suffix(b"\n") else { break }; // cut short by a crash
            // One reading only: a duplicated member, or any other form than the canonical one,
            // could let two readers see two events under one chain.
            let text = std::str::from_utf8(body).map_err(|e| bad(index, e.to_string()))?;
            let mut value = hyperagent_domains::json::parse_strict(text).map_err(|e| bad(index, e))?;
            if crate::canonical::to_vec(&value) != body {
                return Err(bad(index, "the line is not in canonical form".into()));
            }
            let prev = value.as_object_mut().and_then(|o| o.remove("prev")).unwrap_or(serde_json::Value::Null);
            if prev != serde_json::json!(contents.head) {
                return Err(bad(
                    index,
                    format!(
                        "the chain is broken: it names {prev} as the line before it, which hashes to {}",
                        contents.head.map_or("nothing (the first line)".into(), |h| h.to_hex())
                    ),
                ));
            }
            let event: Event = serde_json::from_value(value).map_err(|e| bad(index, e.to_string()))?;
            let hash = ContentHash::of(body);
            contents.events.push(event);
            contents.line_hashes.push(hash);
            contents.head = Some(hash);
            contents.complete += line.len() as u64;
        }
        Ok(contents)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_writer_at_a_time_and_the_lock_goes_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let first = RunLog::open(&path).unwrap();
        assert!(RunLog::in_use(&path));
        for second in [RunLog::open(&path).err(), RunLog::reopen(&path).err()] {
            let error = second.expect("a second writer is refused");
            assert_eq!(error.kind(), io::ErrorKind::ResourceBusy);
            assert!(error.to_string().contains("another process"), "{error}");
        }
        assert!(RunLog::read(&path).is_ok(), "reading needs no lock");
        drop(first);
        assert!(!RunLog::in_use(&path));
        let (_again, events) = RunLog::reopen(&path).unwrap();
        assert!(events.is_empty());
        assert!(!RunLog::in_use(&dir.path().join("absent.jsonl")));
    }
}
