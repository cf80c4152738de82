//! `/history`: what a meta agent sees of its run, written by the host for every child.
//!
//! As in the paper, a meta agent sees every earlier node of the run (all lineages, not only its
//! own): its change (the diff against its parent), the meta agent's account, its scores, and its
//! per-task results on the training split (the answer, the score, and the domain's feedback),
//! with the training tasks' inputs once per run. Validation and test tasks never appear, neither
//! their inputs nor their labels: a node's validation score is shown only as the mean the loop
//! ranks by. Sizes are bounded (a cap per node and in all, newest nodes kept) and the README says
//! what was cut.
//!
//! Layout (also in the WIT comments and ARCHIVE.md):
//! - `README.md`: this layout, and what was cut;
//! - `archive.json`: `{"nodes": [...]}`, every node in order (id, parent, generation, slot,
//!   score, status, summary, children; under the `hgm` rule also `hgm`: the node's own
//!   task-level results, its clade's, and its chance of being chosen next);
//! - `lineage.json`: the ancestors of the hyperagent being improved, root first, ending with it;
//! - `nodes/<node id>.json`: one node in full (change, account, per-domain scores, training);
//! - `tasks/<domain>.json`: the domain's training tasks, `[{"id", "payload"}]`.

use super::NodeRecord;
use super::evaluate::{RunDomain, TaskRecord};
use super::selection::Selection;
use super::view::selection_view;
use crate::archive::Archive;
use crate::hash::ContentHash;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;

/// Largest node file, in bytes: past it the diff is cut, then the training answers. Room for the
/// results of a judgement domain's whole training file (642 papers, about 112 KB with answers).
pub const MAX_NODE_BYTES: usize = 160 * 1024;
/// Largest `nodes/` directory, in bytes: past it the oldest nodes are left out.
pub const MAX_NODES_BYTES: usize = 4 << 20;
/// Longest diff kept per node, in bytes, before the node cap applies.
const MAX_DIFF_BYTES: usize = 32 * 1024;

/// The archive list: every node, in the order they were made. Under `rule` = `hgm`, each node
/// also carries what that rule chooses by.
pub fn archive_list(nodes: &[NodeRecord], rule: Selection) -> Vec<Value> {
    let mut list: Vec<Value> = nodes
        .iter()
        .map(|n| {
            json!({
                "node": n.id, "parent": n.parent, "generation": n.generation, "slot": n.slot,
                "score": n.score, "status": n.status, "summary": n.summary, "children": n.children,
            })
        })
        .collect();
    if rule == Selection::Hgm {
        for (entry, stats) in list.iter_mut().zip(selection_view(nodes, rule)) {
            entry["hgm"] = json!({"own": stats.own, "clade": stats.clade, "chance": stats.chance});
        }
    }
    list
}

/// The training tasks of every domain, by (domain, task id).
pub fn training_tasks(domains: &[RunDomain]) -> HashMap<(String, String), (usize, hyperagent_domains::Task)> {
    let mut tasks = HashMap::new();
    for (index, run) in domains.iter().enumerate() {
        for task in &run.train.tasks {
            tasks.insert((run.domain.name().to_owned(), task.id.clone()), (index, task.clone()));
        }
    }
    tasks
}

/// The unified diff of a node's tree against its parent's, cut to `MAX_DIFF_BYTES`.
fn change(
    archive: &Archive,
    node: &NodeRecord,
    parent_tree: Option<ContentHash>,
) -> Result<String, crate::archive::ArchiveError> {
    let Some(parent_tree) = parent_tree else { return Ok(String::new()) };
    let (old, new) = (archive.get_tree(&parent_tree)?, archive.get_tree(&node.tree)?);
    let mut diff = String::new();
    let paths: std::collections::BTreeSet<_> = old.files.keys().chain(new.files.keys()).collect();
    for path in paths {
        let text = |tree: &crate::source_tree::SourceTree| {
            tree.files.get(path).map(|f| String::from_utf8_lossy(&f.bytes).into_owned()).unwrap_or_default()
        };
        let (before, after) = (text(&old), text(&new));
        if before != after {
            let name = path.to_string();
            let unified = similar::TextDiff::from_lines(&before, &after)
                .unified_diff()
                .header(&format!("a/{name}"), &format!("b/{name}"))
                .to_string();
            diff.push_str(&unified);
        }
    }
    if crate::sandbox::host::truncate_utf8(&mut diff, MAX_DIFF_BYTES) {
        diff.push_str("\n[diff cut]\n");
    }
    Ok(diff)
}

/// One node as `nodes/<id>.json` shows it.
pub fn node_entry(
    archive: &Archive,
    node: &NodeRecord,
    parent_tree: Option<ContentHash>,
    domains: &[RunDomain],
    training: &HashMap<(String, String), (usize, hyperagent_domains::Task)>,
) -> Result<Value, crate::archive::ArchiveError> {
    let stored = archive.get_node(&node.id)?;
    let meta = stored.metadata.get("meta").cloned().unwrap_or(Value::Null);
    let evaluation = stored.metadata.get("evaluation");
    let scores: Vec<Value> = evaluation
        .and_then(|e| e["domains"].as_array())
        .map(|parts| {
            parts
                .iter()
                .map(|d| json!({"domain": d["domain"], "staged": d["staged"]["mean"], "score": d["score"]}))
                .collect()
        })
        .unwrap_or_default();
    let mut results = Vec::new();
    if let Some(report) = evaluation.and_then(|e| e["report"].as_str()).and_then(|r| r.parse::<ContentHash>().ok()) {
        let records: Vec<TaskRecord> = serde_json::from_slice(&archive.get_blob(&report)?).unwrap_or_default();
        for record in records {
            // Only training tasks, and only as the domain explains them.
            let Some((index, task)) = training.get(&(record.domain.clone(), record.id.clone())) else { continue };
            let feedback = domains[*index].domain.feedback(task, &record.task_score());
            results.push(json!({
                "domain": record.domain, "task": record.id, "outcome": record.outcome,
                "answer": record.answer, "score": record.score, "invalid": record.invalid, "feedback": feedback,
            }));
        }
    }
    let mut entry = json!({
        "node": node.id, "parent": node.parent, "generation": node.generation, "slot": node.slot,
        "status": node.status, "score": node.score, "domains": scores,
        "account": {"summary": meta.get("summary"), "rationale": meta.get("rationale")},
        "change": change(archive, node, parent_tree)?,
        "training": results,
    });
    fit(&mut entry);
    Ok(entry)
}

/// Cuts a node entry to [`MAX_NODE_BYTES`]: the diff first, then the training answers.
fn fit(entry: &mut Value) {
    let size = |e: &Value| serde_json::to_vec(e).map_or(0, |v| v.len());
    if size(entry) <= MAX_NODE_BYTES {
        return;
    }
    entry["change"] = json!("[diff cut: the node's file was over its size cap]");
    if let Some(results) = entry["training"].as_array_mut() {
        for result in results.iter_mut() {
            result["answer"] = json!("[cut]");
        }
    }
    while size(entry) > MAX_NODE_BYTES {
        let Some(results) = entry["training"].as_array_mut() else { break };
        if results.pop().is_none() {
            break;
        }
        entry["training_cut"] = json!(true);
    }
}

/// Writes `/history` for a child of `parent`: `entries` are the node entries, oldest first.
pub fn write(
    dir: &Path,
    nodes: &[Value],
    entries: &[(ContentHash, std::sync::Arc<Value>)],
    tasks: &[(String, Value)],
    parent: &ContentHash,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("nodes"))?;
    std::fs::create_dir_all(dir.join("tasks"))?;
    let mut lineage = Vec::new();
    let mut cursor = Some(parent.to_hex());
    while let Some(id) = cursor {
        let Some(node) = nodes.iter().find(|n| n["node"].as_str() == Some(id.as_str())) else { break };
        lineage.push(node.clone());
        cursor = node["parent"].as_str().map(str::to_owned);
    }
    lineage.reverse();
    std::fs::write(dir.join("archive.json"), serde_json::to_vec_pretty(&json!({"nodes": nodes}))?)?;
    std::fs::write(dir.join("lineage.json"), serde_json::to_vec_pretty(&lineage)?)?;
    for (domain, inputs) in tasks {
        std::fs::write(dir.join("tasks").join(format!("{domain}.json")), serde_json::to_vec(inputs)?)?;
    }
    // Newest first until the cap; the rest are named in the README.
    let (mut total, mut cut) = (0usize, Vec::new());
    for (id, entry) in entries.iter().rev() {
        let bytes = serde_json::to_vec_pretty(entry.as_ref())?;
        if total + bytes.len() > MAX_NODES_BYTES {
            cut.push(id.to_hex());
            continue;
        }
        total += bytes.len();
        std::fs::write(dir.join("nodes").join(format!("{}.json", id.to_hex())), bytes)?;
    }
    let mut readme = String::from(
        "What this run has made so far, for the meta agent improving one of its nodes.\n\n\
         archive.json: every node of the run (score, status, the summary of the change that made it).\n\
         lineage.json: the ancestors of the hyperagent being improved, root first, ending with itself.\n\
         nodes/<id>.json: one node in full: its change (diff against its parent), the meta agent's account,\n\
         \x20 its scores per domain, and its results on the training tasks (answer, score, feedback).\n\
         tasks/<domain>.json: the training tasks' inputs ({id, payload}).\n\
         Validation and test tasks are never shown.\n",
    );
    if !cut.is_empty() {
        readme.push_str(&format!(
            "\nLeft out to keep nodes/ under {MAX_NODES_BYTES} bytes (oldest first): {}\n",
            cut.iter().rev().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    std::fs::write(dir.join("README.md"), readme)
}

/// The training tasks' inputs per domain, as `tasks/<domain>.json` holds them.
pub fn task_inputs(domains: &[RunDomain]) -> Vec<(String, Value)> {
    domains
        .iter()
        .map(|run| {
            let inputs: Vec<Value> = run
                .train
                .tasks
                .iter()
                .map(|t| json!({"id": t.id, "payload": serde_json::from_str::<Value>(&t.payload).unwrap_or(json!(t.payload))}))
                .collect();
            (run.domain.name().to_owned(), Value::Array(inputs))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn big_entry(i: u64) -> Value {
        let training: Vec<Value> =
            (0..4000).map(|t| json!({"task": format!("train/{t}"), "answer": "a".repeat(100), "score": 1.0})).collect();
        json!({"node": i, "change": "+".repeat(200_000), "training": training})
    }

    #[test]
    fn a_node_over_its_cap_loses_its_diff_then_its_answers_then_results() {
        let mut entry = big_entry(1);
        fit(&mut entry);
        let size = serde_json::to_vec(&entry).unwrap().len();
        assert!(size <= MAX_NODE_BYTES, "{size}");
        assert!(entry["change"].as_str().unwrap().starts_with("[diff cut"));
        assert_eq!(entry["training"][0]["answer"], "[cut]");
        assert_eq!(entry["training_cut"], true, "4,000 results do not fit even without their answers");
        let mut small = json!({"change": "+x", "training": []});
        fit(&mut small);
        assert_eq!(small["change"], "+x");
    }

    #[test]
    fn the_nodes_over_the_total_cap_are_the_oldest_and_are_named() {
        let dir = tempfile::tempdir().unwrap();
        // Entries of about 60 KiB each: 4 MiB holds about 68 of 100.
        let entries: Vec<(ContentHash, Arc<Value>)> = (0..100u64)
            .map(|i| (ContentHash::of(&i.to_le_bytes()), Arc::new(json!({"node": i, "change": "+".repeat(60_000)}))))
            .collect();
        let parent = entries[99].0;
        write(dir.path(), &[], &entries, &[], &parent).unwrap();
        let written = std::fs::read_dir(dir.path().join("nodes")).unwrap().count();
        assert!(written > 50 && written < 100, "{written}");
        let total: u64 =
            std::fs::read_dir(dir.path().join("nodes")).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
        assert!(total <= MAX_NODES_BYTES as u64, "{total}");
        assert!(
            dir.path().join("nodes").join(format!("{}.json", entries[99].0.to_hex())).is_file(),
            "the newest is kept"
        );
        let readme = std::fs::read_to_string(dir.path().join("README.md")).unwrap();
        assert!(readme.contains(&entries[0].0.to_hex()), "the oldest is named as cut");
        assert!(!readme.contains(&entries[99].0.to_hex()));
    }
}
