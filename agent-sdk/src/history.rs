//! The evaluation history, read-only under `/history`.
//!
//! The host writes it before each meta call: JSON documents describing the run so far (every
//! node's change, account, scores and training results; the lineage; the training tasks). The
//! layout is documented on `meta-request.history-dir` in the WIT contract; these helpers only read.

use serde::de::DeserializeOwned;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct History {
    root: PathBuf,
}

impl History {
    pub fn open(root: impl Into<PathBuf>) -> History {
        History { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether the host granted a history directory at all.
    pub fn exists(&self) -> bool {
        self.root.is_dir()
    }

    /// Names of the entries directly under the root, sorted.
    pub fn entries(&self) -> io::Result<Vec<String>> {
        let mut names: Vec<String> = fs::read_dir(&self.root)?
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        Ok(names)
    }

    pub fn read_text(&self, name: &str) -> io::Result<String> {
        fs::read_to_string(self.root.join(name))
    }

    /// Reads and parses one JSON document.
    pub fn read_json<T: DeserializeOwned>(&self, name: &str) -> io::Result<T> {
        let text = self.read_text(name)?;
        serde_json::from_str(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}
