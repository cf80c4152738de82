//! The evaluation history, read-only under `/history`.
//!
//! The host writes it before each meta call: JSON documents describing the run so far (every
//! node's change, account, scores and training results; the lineage; the training tasks). The
//! layout is documented on `meta-request.history-dir` in the WIT contract; these helpers only read.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
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

    /// The ids of the nodes whose files `nodes/` holds, sorted.
    pub fn node_ids(&self) -> io::Result<Vec<String>> {
        let mut ids: Vec<String> = fs::read_dir(self.root.join("nodes"))?
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| entry.file_name().to_str()?.strip_suffix(".json").map(str::to_owned))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// The ids of the lineage, root first, ending with the hyperagent being improved.
    pub fn lineage_ids(&self) -> io::Result<Vec<String>> {
        let lineage: Vec<Value> = self.read_json("lineage.json")?;
        Ok(lineage.iter().filter_map(|n| n["node"].as_str().map(str::to_owned)).collect())
    }

    /// A node's results on the training tasks of `domain` (empty when its file is absent).
    pub fn training_results(&self, node: &str, domain: &str) -> io::Result<Vec<TrainingResult>> {
        if node.contains(['/', '\\']) || node.starts_with('.') {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a node id"));
        }
        let entry: Value = match self.read_json(&format!("nodes/{node}.json")) {
            Ok(entry) => entry,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let results = entry["training"].as_array().cloned().unwrap_or_default();
        Ok(results
            .into_iter()
            .filter_map(|r| TrainingResult::deserialize(r).ok())
            .filter(|r| r.domain == domain)
            .collect())
    }

    /// The domains whose training tasks `tasks/` holds, sorted.
    pub fn domains(&self) -> io::Result<Vec<String>> {
        let mut names: Vec<String> = fs::read_dir(self.root.join("tasks"))?
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| entry.file_name().to_str()?.strip_suffix(".json").map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }

    /// The training tasks of `domain`: (id, payload as JSON text). The host writes a payload as the
    /// JSON value it is; a payload that is not JSON is a string.
    pub fn training_tasks(&self, domain: &str) -> io::Result<Vec<(String, String)>> {
        if domain.contains(['/', '\\']) || domain.starts_with('.') {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a domain name"));
        }
        let tasks: Vec<Value> = self.read_json(&format!("tasks/{domain}.json"))?;
        Ok(tasks
            .iter()
            .filter_map(|t| {
                let payload = match &t["payload"] {
                    Value::String(text) => text.clone(),
                    Value::Null => return None,
                    value => value.to_string(),
                };
                Some((t["id"].as_str()?.to_owned(), payload))
            })
            .collect())
    }
}

/// One training task's result as a node's file shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct TrainingResult {
    pub domain: String,
    pub task: String,
    #[serde(default)]
    pub answer: Option<String>,
    #[serde(default)]
    pub score: Option<f64>,
    #[serde(default)]
    pub invalid: Option<String>,
    /// What the domain says about the answer (for a judgement domain, the expected label).
    #[serde(default)]
    pub feedback: Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> History {
        let root = std::env::temp_dir().join(format!("agent-sdk-history-{}", std::process::id()));
        fs::create_dir_all(root.join("nodes")).unwrap();
        fs::create_dir_all(root.join("tasks")).unwrap();
        fs::write(root.join("lineage.json"), r#"[{"node": "aa"}, {"node": "bb"}]"#).unwrap();
        fs::write(
            root.join("nodes/bb.json"),
            r#"{"node": "bb", "training": [
                {"domain": "paper_review", "task": "train/1", "answer": "{}", "score": 0.0,
                 "invalid": "no field", "feedback": {"expected": "accept"}},
                {"domain": "bin_packing", "task": "train/x", "answer": "{}", "score": 0.9, "feedback": null}]}"#,
        )
        .unwrap();
        fs::write(
            root.join("tasks/paper_review.json"),
            r#"[{"id": "train/1", "payload": {"title": "T"}}, {"id": "train/2", "payload": "raw"}]"#,
        )
        .unwrap();
        History::open(root)
    }

    #[test]
    fn reads_lineage_training_results_and_tasks() {
        let history = sample();
        assert_eq!(history.lineage_ids().unwrap(), ["aa", "bb"]);
        assert_eq!(history.node_ids().unwrap(), ["bb"]);
        assert_eq!(history.domains().unwrap(), ["paper_review"]);
        let results = history.training_results("bb", "paper_review").unwrap();
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].feedback["expected"], "accept");
        assert_eq!(results[0].invalid.as_deref(), Some("no field"));
        assert!(history.training_results("aa", "paper_review").unwrap().is_empty(), "a node cut from nodes/");
        assert!(history.training_results("../bb", "paper_review").is_err());
        let tasks = history.training_tasks("paper_review").unwrap();
        assert_eq!(tasks[0], ("train/1".to_owned(), r#"{"title":"T"}"#.to_owned()));
        assert_eq!(tasks[1], ("train/2".to_owned(), "raw".to_owned()));
        fs::remove_dir_all(history.root()).unwrap();
    }
}
