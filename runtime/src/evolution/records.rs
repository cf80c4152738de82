//! What the loop writes into the archive, as types: a node's metadata (ARCHIVE.md's table, in
//! code) and the provenance every node links. Reading a node the loop made goes through
//! [`NodeMetadata::of`], which refuses what it does not know rather than misreading it.

use super::evaluate::Evaluation;
use crate::archive::Node;
use crate::hash::ContentHash;
use crate::sandbox::{LogLine, Outcome, ToolUse};
use serde::{Deserialize, Serialize};

/// How making a node ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Evaluated in full (the staged gate passed in every domain).
    Evaluated,
    /// The staged gate stopped the evaluation.
    StagedOnly,
    /// The meta call did not end `ok`; what it left was kept, not built.
    MetaFailed,
    /// The source policy refused the child's tree.
    Rejected,
    /// The compiler failed.
    BuildFailed,
    /// Built, but the sandbox refused the component.
    LoadFailed,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Evaluated => "evaluated",
            Status::StagedOnly => "staged-only",
            Status::MetaFailed => "meta-failed",
            Status::Rejected => "rejected",
            Status::BuildFailed => "build-failed",
            Status::LoadFailed => "load-failed",
        }
    }
}

/// The meta call that made a node (for the initial node, only its summary).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaRecord {
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rationale: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<LogLine>,
    /// The meta agent that ran (the parent's, or the initial one in the fixed-meta ablation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<ContentHash>,
    /// The workbench tools it used (`check-build`, `try-task`), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolUse>,
}

/// How the child's source fared with the policy, the compiler and the sandbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case", deny_unknown_fields)]
pub enum BuildRecord {
    Built {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        load_error: Option<String>,
    },
    Rejected {
        violations: Vec<String>,
    },
    Failed {
        diagnostics: String,
    },
}

/// The metadata of a node the loop made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeMetadata {
    pub generation: u32,
    pub slot: u32,
    pub status: Status,
    /// The selection score; absent when the node was not evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<Evaluation>,
    pub meta: MetaRecord,
    /// Absent for the initial node and for a child whose meta call failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildRecord>,
    /// The meta call's LLM exchanges, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub llm: Vec<ContentHash>,
    pub provenance: ContentHash,
}

impl NodeMetadata {
    /// The metadata of a node the loop made, or why it is not one.
    pub fn of(node: &Node) -> Result<NodeMetadata, String> {
        let object: serde_json::Map<String, serde_json::Value> =
            node.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let meta: NodeMetadata = serde_json::from_value(serde_json::Value::Object(object)).map_err(|e| {
            format!("the node's metadata is not the loop's ({}): {e}", crate::archive::node::NODE_SCHEMA)
        })?;
        meta.check(node).map_err(|e| format!("the node's metadata contradicts itself: {e}"))?;
        Ok(meta)
    }

    /// The rules ARCHIVE.md gives per status: what must be present with what.
    fn check(&self, node: &Node) -> Result<(), String> {
        if self.score.is_some() != self.evaluation.is_some() {
            return Err("a score is present exactly when an evaluation is".into());
        }
        if let (Some(score), Some(evaluation)) = (self.score, &self.evaluation)
            && score.to_bits() != evaluation.score.to_bits()
        {
            return Err(format!("score {score} is not the evaluation's score {}", evaluation.score));
        }
        let passed = self.evaluation.as_ref().map(|e| e.passed_gate);
        let initial = node.parent.is_none();
        let built = |load_error: bool| {
            matches!(&self.build, Some(BuildRecord::Built { load_error: e }) if e.is_some() == load_error)
                || (initial && self.build.is_none() && !load_error)
        };
        let consistent = match self.status {
            Status::Evaluated => passed == Some(true) && node.component.is_some() && built(false),
            Status::StagedOnly => passed == Some(false) && node.component.is_some() && built(false),
            Status::LoadFailed => passed.is_none() && node.component.is_some() && built(true),
            Status::Rejected => {
                passed.is_none() && node.component.is_none() && matches!(self.build, Some(BuildRecord::Rejected { .. }))
            }
            Status::BuildFailed => {
                passed.is_none() && node.component.is_none() && matches!(self.build, Some(BuildRecord::Failed { .. }))
            }
            Status::MetaFailed => passed.is_none() && node.component.is_none() && self.build.is_none(),
        };
        if !consistent {
            return Err(format!("status `{}` does not fit its component, build and evaluation", self.status.label()));
        }
        Ok(())
    }

    /// The node holding this metadata.
    pub fn into_node(self, tree: ContentHash, component: Option<ContentHash>, parent: Option<ContentHash>) -> Node {
        let mut node = Node::new(tree, component, parent);
        if let serde_json::Value::Object(fields) = serde_json::to_value(self).expect("metadata serialises") {
            node.metadata.extend(fields);
        }
        node
    }
}

/// One data file a run read, by its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataDigest {
    pub file: String,
    pub blake3: ContentHash,
}

/// What a host's results depend on: versions, engine, fuel cost table, toolchain, SDK, data, and
/// (in a node's provenance) the configuration it ran under.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    pub host_version: String,
    pub wasmtime: String,
    pub engine: ContentHash,
    pub fuel_costs: String,
    pub rustc: String,
    pub sdk_version: String,
    pub build_environment: ContentHash,
    pub data: Vec<DataDigest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<ContentHash>,
}

impl Provenance {
    /// The host facts (everything but the configuration) that differ from `other`'s, as
    /// `field: recorded X / here Y`.
    pub fn diff(&self, other: &Provenance) -> Vec<String> {
        let fields = |p: &Provenance| match serde_json::to_value(Provenance { config_hash: None, ..p.clone() }) {
            Ok(serde_json::Value::Object(fields)) => fields,
            _ => serde_json::Map::new(),
        };
        let (mine, theirs) = (fields(self), fields(other));
        mine.iter()
            .filter(|(key, value)| theirs.get(*key) != Some(value))
            .map(|(key, value)| {
                let here = theirs.get(key).map_or("-".to_owned(), |v| v.to_string());
                format!("{key}: recorded {value} / here {here}")
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provenance() -> Provenance {
        Provenance {
            host_version: "1".into(),
            wasmtime: "48".into(),
            engine: ContentHash::of(b"engine"),
            fuel_costs: "default".into(),
            rustc: "1.95".into(),
            sdk_version: "0.1".into(),
            build_environment: ContentHash::of(b"env"),
            data: vec![],
            config_hash: Some(ContentHash::of(b"config")),
        }
    }

    #[test]
    fn provenance_diff_names_every_differing_host_fact_and_ignores_the_configuration() {
        let here = provenance();
        assert!(here.diff(&Provenance { config_hash: None, ..here.clone() }).is_empty());
        let other = Provenance {
            rustc: "1.96".into(),
            data: vec![DataDigest { file: "f".into(), blake3: ContentHash::of(b"f") }],
            ..here.clone()
        };
        let diff = here.diff(&other);
        assert_eq!(diff.len(), 2, "{diff:?}");
        assert!(diff.iter().any(|d| d.starts_with("rustc: recorded \"1.95\"")), "{diff:?}");
        assert!(diff.iter().any(|d| d.starts_with("data:")), "{diff:?}");
    }

    #[test]
    fn metadata_round_trips_through_a_node_and_unknown_keys_are_refused() {
        let meta = NodeMetadata {
            generation: 3,
            slot: 1,
            status: Status::Rejected,
            score: None,
            evaluation: None,
            meta: MetaRecord {
                summary: "s".into(),
                rationale: None,
                outcome: Some(Outcome::Ok),
                fuel: Some(5),
                logs: vec![],
                component: None,
                tools: Vec::new(),
            },
            build: Some(BuildRecord::Rejected { violations: vec!["include".into()] }),
            llm: vec![],
            provenance: ContentHash::of(b"p"),
        };
        let node = meta.clone().into_node(ContentHash::of(b"t"), None, None);
        assert_eq!(node.metadata["build"], serde_json::json!({"status": "rejected", "violations": ["include"]}));
        assert_eq!(NodeMetadata::of(&node).unwrap(), meta);
        let odd = node.clone().with("surprise", 1);
        assert!(NodeMetadata::of(&odd).unwrap_err().contains("surprise"));
    }
}
