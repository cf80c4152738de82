//! Parent selection by the hyperagent itself (`selection = "agent"` in a run's configuration): the
//! archive a `select` call receives, read into plain values.

use crate::SelectRequest;
use serde::Deserialize;

/// One node of the run, as the host describes it to a selector.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ArchiveNode {
    /// The node's id; a selector answers with these.
    pub node: String,
    #[serde(default)]
    pub parent: Option<String>,
    pub generation: u32,
    /// The score parents are ranked by; absent when the node was not evaluated.
    #[serde(default)]
    pub score: Option<f64>,
    #[serde(default)]
    pub status: String,
    /// Its children that have a component.
    #[serde(default)]
    pub children: u32,
    /// Whether it can be a parent (it has a component and a score).
    #[serde(default)]
    pub valid: bool,
}

#[derive(Deserialize)]
struct Archive {
    nodes: Vec<ArchiveNode>,
}

/// The nodes of the request's archive, oldest first.
pub fn nodes(request: &SelectRequest) -> Result<Vec<ArchiveNode>, String> {
    serde_json::from_str::<Archive>(&request.archive)
        .map(|a| a.nodes)
        .map_err(|e| format!("the archive is not the host's JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_hosts_archive_and_refuses_anything_else() {
        let archive = r#"{"nodes": [
            {"node": "aa", "parent": null, "generation": 0, "slot": 0, "score": 0.5, "status": "evaluated",
             "summary": "initial", "children": 1, "valid": true},
            {"node": "bb", "parent": "aa", "generation": 1, "slot": 0, "score": null, "status": "build-failed",
             "summary": "", "children": 0, "valid": false}]}"#;
        let request = SelectRequest { archive: archive.into(), count: 2, seed: 7 };
        let nodes = nodes(&request).unwrap();
        assert_eq!(nodes.len(), 2);
        assert_eq!((nodes[0].node.as_str(), nodes[0].score, nodes[0].valid), ("aa", Some(0.5), true));
        assert_eq!((nodes[1].parent.as_deref(), nodes[1].score, nodes[1].valid), (Some("aa"), None, false));
        let bad = SelectRequest { archive: "[]".into(), count: 1, seed: 0 };
        assert!(super::nodes(&bad).unwrap_err().contains("not the host's JSON"));
    }
}
