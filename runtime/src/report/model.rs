//! What a report shows of a run, read from its log and the archive only (so an imported bundle
//! reports as well as the machine that ran it). Every string here may come from a guest: the
//! page escapes it where it is written, never here.

use crate::archive::Archive;
use crate::archive::manifest::ManifestEntry;
use crate::evolution::log::{Event, RunLog};
use crate::evolution::records::{BuildRecord, NodeMetadata};
use crate::hash::ContentHash;
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// Longest diff kept for one node's panel: a page of 1,000 nodes must stay a few megabytes.
pub const MAX_DIFF_BYTES: usize = 24 * 1024;
/// Longest LLM message (or answer) kept for a panel.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024;
/// Longest account, build diagnostics or rationale kept for a panel.
pub const MAX_TEXT_BYTES: usize = 8 * 1024;

/// One run as the page shows it.
pub struct RunReport {
    pub id: String,
    /// The logged configuration, as TOML (what `run --config` takes).
    pub config_toml: String,
    pub domains: Vec<String>,
    pub generations_planned: u32,
    pub llm: bool,
    /// The `started` event's provenance, flattened to (key, value) text.
    pub provenance: Vec<(String, String)>,
    /// Node events in log order, with what the archive says of each.
    pub nodes: Vec<NodeView>,
    pub best: Option<ContentHash>,
    pub finished: bool,
    pub stopped: Option<String>,
    /// The `test` and `baseline` events, as logged.
    pub tests: Vec<Event>,
}

/// One node: where it sits (from the log) and what it holds (from the archive).
pub struct NodeView {
    pub id: ContentHash,
    pub parent: Option<ContentHash>,
    pub generation: u32,
    pub slot: u32,
    pub status: String,
    pub score: Option<f64>,
    pub detail: Arc<NodeDetail>,
}

/// A node's panel: everything the archive holds about it, cut to the page's bounds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NodeDetail {
    pub summary: String,
    pub rationale: String,
    /// How the meta call ended (`ok`, `out-of-fuel`, ...), when there was one.
    pub outcome: Option<String>,
    pub meta_fuel: Option<u64>,
    pub eval_fuel: Option<u64>,
    pub scores: Vec<DomainScores>,
    /// Why the build or load failed, when it did.
    pub build: Option<String>,
    pub diff: String,
    pub diff_cut: bool,
    pub llm: Vec<ExchangeView>,
    /// Wall-clock latency of the meta call's LLM requests (the only wall time a run logs).
    pub llm_wall_ms: u64,
    /// Set when the node's metadata is not the loop's (the panel says so instead of guessing).
    pub unreadable: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DomainScores {
    pub domain: String,
    pub staged: Option<f64>,
    pub train: Option<f64>,
    pub validation: Option<f64>,
    pub score: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExchangeView {
    pub call: String,
    pub model: String,
    pub messages: Vec<(String, String)>,
    pub answer: Option<String>,
    pub tokens: Option<(u32, u32)>,
    pub failure: Option<String>,
}

/// Node panels by node: nodes never change, so a live view reads each one once.
#[derive(Default)]
pub struct DetailCache {
    details: HashMap<ContentHash, Arc<NodeDetail>>,
}

impl RunReport {
    /// Reads run `id` from its log and the archive.
    pub fn load(archive: &Archive, id: &str, log: &Path, cache: &mut DetailCache) -> std::io::Result<RunReport> {
        let events = RunLog::read(log)?;
        Ok(Self::from_events(archive, id, &events, cache))
    }

    pub fn from_events(archive: &Archive, id: &str, events: &[Event], cache: &mut DetailCache) -> RunReport {
        let mut report = RunReport {
            id: id.to_owned(),
            config_toml: String::new(),
            domains: Vec::new(),
            generations_planned: 0,
            llm: false,
            provenance: Vec::new(),
            nodes: Vec::new(),
            best: None,
            finished: false,
            stopped: None,
            tests: Vec::new(),
        };
        let mut wall_ms: HashMap<ContentHash, u64> = HashMap::new();
        for event in events {
            if let Event::LlmExchange { node, wall_ms: ms, .. } = event {
                *wall_ms.entry(*node).or_default() += ms;
            }
        }
        let mut trees = TreeCache::default();
        for event in events {
            match event {
                Event::Started { config, provenance, .. } => {
                    report.config_toml = toml::to_string(config).unwrap_or_default();
                    report.domains = config.domains.clone();
                    report.generations_planned = config.generations;
                    report.llm = config.llm.is_some();
                    report.provenance = flatten(provenance);
                }
                Event::Node { generation, slot, node, parent, score, status } => {
                    let detail = cache.details.entry(*node).or_insert_with(|| {
                        let ms = wall_ms.get(node).copied().unwrap_or(0);
                        Arc::new(read_detail(archive, node, *parent, ms, &mut trees))
                    });
                    report.nodes.push(NodeView {
                        id: *node,
                        parent: *parent,
                        generation: *generation,
                        slot: *slot,
                        status: status.clone(),
                        score: *score,
                        detail: detail.clone(),
                    });
                }
                Event::Test { .. } | Event::Baseline { .. } => report.tests.push(event.clone()),
                Event::Stopped { reason } => report.stopped = Some(reason.clone()),
                Event::Finished { best } => {
                    report.finished = true;
                    report.best = Some(*best);
                }
                Event::Generation { .. } | Event::LlmExchange { .. } | Event::Selection { .. } => {}
            }
        }
        if report.best.is_none() {
            report.best = best_so_far(&report.nodes);
        }
        report
    }
}

/// The best-scored node (the first of equals, as the loop ranks them), for a run not finished.
fn best_so_far(nodes: &[NodeView]) -> Option<ContentHash> {
    let mut best: Option<(&NodeView, f64)> = None;
    for node in nodes {
        if let Some(score) = node.score
            && best.is_none_or(|(_, b)| score > b)
        {
            best = Some((node, score));
        }
    }
    best.map(|(n, _)| n.id)
}

fn flatten(value: &serde_json::Value) -> Vec<(String, String)> {
    let Some(object) = value.as_object() else { return Vec::new() };
    object
        .iter()
        .map(|(key, value)| {
            let text = match value {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|i| match (i["file"].as_str(), i["blake3"].as_str()) {
                        (Some(file), Some(hash)) => format!("{file} ({})", &hash[..hash.len().min(12)]),
                        _ => i.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            (key.clone(), text)
        })
        .collect()
}

/// Manifests by tree hash: a parent's manifest serves all its children.
#[derive(Default)]
struct TreeCache {
    manifests: HashMap<ContentHash, Arc<Vec<ManifestEntry>>>,
}

impl TreeCache {
    fn manifest(&mut self, archive: &Archive, tree: &ContentHash) -> Option<Arc<Vec<ManifestEntry>>> {
        if let Some(m) = self.manifests.get(tree) {
            return Some(m.clone());
        }
        let manifest = Arc::new(archive.get_manifest(tree).ok()?);
        self.manifests.insert(*tree, manifest.clone());
        Some(manifest)
    }
}

fn read_detail(
    archive: &Archive,
    id: &ContentHash,
    parent: Option<ContentHash>,
    llm_wall_ms: u64,
    trees: &mut TreeCache,
) -> NodeDetail {
    let mut detail = NodeDetail { llm_wall_ms, ..NodeDetail::default() };
    let node = match archive.get_node(id) {
        Ok(node) => node,
        Err(e) => {
            detail.unreadable = Some(format!("the archive cannot give this node: {e}"));
            return detail;
        }
    };
    match NodeMetadata::of(&node) {
        Ok(metadata) => fill_from_metadata(archive, &mut detail, metadata),
        Err(why) => detail.unreadable = Some(why),
    }
    if let Some(parent) = parent.and_then(|p| archive.get_node(&p).ok()) {
        let (diff, cut) = diff_trees(archive, trees, &parent.tree, &node.tree);
        detail.diff = diff;
        detail.diff_cut = cut;
    }
    detail
}

fn fill_from_metadata(archive: &Archive, detail: &mut NodeDetail, metadata: NodeMetadata) {
    detail.summary = cut(&metadata.meta.summary, MAX_TEXT_BYTES);
    detail.rationale = cut(metadata.meta.rationale.as_deref().unwrap_or(""), MAX_TEXT_BYTES);
    detail.outcome = metadata.meta.outcome.as_ref().map(|o| o.to_string());
    detail.meta_fuel = metadata.meta.fuel;
    if let Some(evaluation) = &metadata.evaluation {
        detail.eval_fuel = Some(evaluation.fuel);
        detail.scores = evaluation
            .domains
            .iter()
            .map(|d| DomainScores {
                domain: d.domain.clone(),
                staged: Some(d.staged.mean),
                train: d.train.as_ref().map(|s| s.mean),
                validation: d.validation.as_ref().map(|s| s.mean),
                score: d.score,
            })
            .collect();
    }
    detail.build = match &metadata.build {
        Some(BuildRecord::Built { load_error: Some(e) }) => Some(format!("the sandbox refused the component: {e}")),
        Some(BuildRecord::Rejected { violations }) => {
            Some(format!("refused by the source policy:\n{}", violations.join("\n")))
        }
        Some(BuildRecord::Failed { diagnostics }) => Some(format!("the build failed:\n{diagnostics}")),
        _ => None,
    }
    .map(|t| cut(&t, MAX_TEXT_BYTES));
    detail.llm = metadata.llm.iter().map(|record| exchange_view(archive, record)).collect();
}

fn exchange_view(archive: &Archive, record: &ContentHash) -> ExchangeView {
    let exchange =
        archive.get_blob(record).ok().and_then(|bytes| serde_json::from_slice::<crate::llm::Exchange>(&bytes).ok());
    let Some(exchange) = exchange else {
        return ExchangeView {
            call: String::new(),
            model: String::new(),
            messages: Vec::new(),
            answer: None,
            tokens: None,
            failure: Some(format!("the exchange {} cannot be read from the archive", record.short())),
        };
    };
    ExchangeView {
        call: exchange.call.clone(),
        model: exchange.response.as_ref().map_or_else(|| exchange.backend.clone(), |r| r.model.clone()),
        messages: exchange
            .request
            .messages
            .iter()
            .map(|m| (m.role.clone(), cut(&m.content, MAX_MESSAGE_BYTES)))
            .collect(),
        answer: exchange.response.as_ref().map(|r| cut(&r.content, MAX_MESSAGE_BYTES)),
        tokens: exchange.response.as_ref().map(|r| (r.input_tokens, r.output_tokens)),
        failure: exchange.failure.as_ref().map(|f| match f {
            crate::llm::record::Failure::Backend { message } => format!("the backend failed: {message}"),
            crate::llm::record::Failure::CallEnded => {
                "the call reached its deadline with this request in flight".into()
            }
        }),
    }
}

/// The unified diff of two trees (only files whose blobs differ are read), cut to the bound.
fn diff_trees(archive: &Archive, trees: &mut TreeCache, old: &ContentHash, new: &ContentHash) -> (String, bool) {
    if old == new {
        return (String::new(), false);
    }
    let (Some(old), Some(new)) = (trees.manifest(archive, old), trees.manifest(archive, new)) else {
        return ("(a tree of this node or its parent cannot be read from the archive)".into(), false);
    };
    let by_path = |m: &[ManifestEntry]| -> HashMap<String, ContentHash> {
        m.iter().map(|e| (e.path.as_str().to_owned(), e.blob)).collect()
    };
    let (old_files, new_files) = (by_path(&old), by_path(&new));
    let mut paths: Vec<&String> = old_files.keys().chain(new_files.keys()).collect();
    paths.sort();
    paths.dedup();
    let text = |blob: Option<&ContentHash>| {
        blob.and_then(|b| archive.get_blob(b).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let mut diff = String::new();
    for path in paths {
        let (a, b) = (old_files.get(path), new_files.get(path));
        if a == b {
            continue;
        }
        let (before, after) = (text(a), text(b));
        let unified = similar::TextDiff::from_lines(&before, &after)
            .unified_diff()
            .context_radius(2)
            .header(&format!("a/{path}"), &format!("b/{path}"))
            .to_string();
        diff.push_str(&unified);
        if diff.len() > MAX_DIFF_BYTES {
            return (cut(&diff, MAX_DIFF_BYTES), true);
        }
    }
    (diff, false)
}

/// `text` cut to at most `max` bytes on a character boundary.
pub fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
