//! Nodes: one hyperagent variant in the archive.
//!
//! A node names its source tree, its compiled component (absent when the build failed), its
//! parent, and free-form metadata (scores, build log hash, meta agent's account, ...). It is
//! stored in the canonical form of RFC 8785 (see [`crate::canonical`]), so that the same node
//! always hashes the same and anyone can recompute the hash.

use crate::hash::ContentHash;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The schema tag written in every node; bumped on any incompatible change.
pub const NODE_SCHEMA: &str = "hyperagent.node/2";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    pub schema: String,
    pub tree: ContentHash,
    pub component: Option<ContentHash>,
    pub parent: Option<ContentHash>,
    pub metadata: BTreeMap<String, serde_json::Value>,
}

impl Node {
    pub fn new(tree: ContentHash, component: Option<ContentHash>, parent: Option<ContentHash>) -> Node {
        Node { schema: NODE_SCHEMA.to_owned(), tree, component, parent, metadata: BTreeMap::new() }
    }

    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Node {
        self.metadata.insert(key.to_owned(), value.into());
        self
    }

    /// The canonical bytes whose blake3 is the node's id.
    pub fn canonical_json(&self) -> Vec<u8> {
        crate::canonical::to_vec(self)
    }

    pub fn parse(bytes: &[u8]) -> Result<Node, String> {
        let node: Node = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if node.schema != NODE_SCHEMA {
            return Err(format!("unknown node schema `{}` (this host reads `{NODE_SCHEMA}`)", node.schema));
        }
        if node.canonical_json() != bytes {
            return Err("node is not in canonical form".into());
        }
        Ok(node)
    }
}
