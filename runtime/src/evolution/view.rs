//! The loop's view of a run, as pure functions an auditor can call too: choosing parents from
//! the archive as it stood, reading node records, the run's domains and splits, provenance, seeds.

use super::config::RunConfig;
use super::evaluate::RunDomain;
use super::records::{self, NodeMetadata, Provenance};
use super::selection::{self, Candidate, Selection, Tally};
use super::{NodeRecord, RunError};
use crate::archive::Archive;
use crate::compiler::GuestCompiler;
use crate::hash::ContentHash;
use crate::sandbox::Sandbox;
use std::path::Path;

/// The parent of each slot of `generation`, from the archive `nodes` (oldest first) as it stood
/// when the generation began. A pure function of its arguments, so an auditor can re-derive it.
/// Empty when no node can be a parent.
pub fn choose_parents(config: &RunConfig, nodes: &[NodeRecord], generation: u32) -> Vec<NodeRecord> {
    let before = archive_before(nodes, generation);
    let candidates: Vec<&NodeRecord> = before.iter().filter(|n| n.can_be_parent()).collect();
    if candidates.is_empty() {
        return Vec::new();
    }
    let rule = host_rule(config);
    let described = describe_candidates(&before);
    (0..config.children_per_generation)
        .map(|slot| {
            let seed = derive_seed(config.seed, "select", generation, slot);
            candidates[selection::choose(rule, &described, seed)].clone()
        })
        .collect()
}

/// One node as the parent choice sees it: what it is judged by and its chance of being chosen
/// (0 for a node that cannot be a parent).
#[derive(Debug, Clone, PartialEq)]
pub struct SelectionStats {
    pub own: Tally,
    pub clade: Tally,
    pub chance: f64,
}

/// Every node of `nodes` (an archive view, oldest first) as `rule` sees it, in that order.
pub fn selection_view(nodes: &[NodeRecord], rule: Selection) -> Vec<SelectionStats> {
    let clades = clade_results(nodes);
    let mut chances = selection::probabilities(rule, &candidates_with(nodes, &clades)).into_iter();
    nodes
        .iter()
        .zip(clades)
        .map(|(n, clade)| SelectionStats {
            own: n.results,
            clade,
            chance: if n.can_be_parent() { chances.next().unwrap_or(0.0) } else { 0.0 },
        })
        .collect()
}

/// The rule a run chooses parents by (the no-archive ablation always takes the newest node).
pub fn effective_rule(config: &RunConfig) -> Selection {
    if config.no_archive { Selection::Latest } else { config.selection }
}

/// The rule the host chooses by itself: the run's, or under `agent` its fallback.
pub fn host_rule(config: &RunConfig) -> Selection {
    match effective_rule(config) {
        Selection::Agent => config.selection_fallback.unwrap_or(Selection::DgmH),
        rule => rule,
    }
}

/// What the selection rules know of each node of `nodes` (an archive view, oldest first) that can
/// be a parent, in that order: its score, children, own results and its clade's.
pub fn describe_candidates(nodes: &[NodeRecord]) -> Vec<Candidate> {
    candidates_with(nodes, &clade_results(nodes))
}

/// The candidates of `nodes`, given each node's clade results.
fn candidates_with(nodes: &[NodeRecord], clades: &[Tally]) -> Vec<Candidate> {
    nodes
        .iter()
        .zip(clades)
        .filter(|(n, _)| n.can_be_parent())
        .map(|(n, clade)| Candidate {
            score: n.score.unwrap_or(0.0),
            children: n.children,
            own: n.results,
            clade: *clade,
        })
        .collect()
}

/// For each node of `nodes`, the results of its clade: its own and every descendant's.
pub fn clade_results(nodes: &[NodeRecord]) -> Vec<Tally> {
    let index: std::collections::HashMap<ContentHash, usize> =
        nodes.iter().enumerate().map(|(i, n)| (n.id, i)).collect();
    let mut clades: Vec<Tally> = nodes.iter().map(|n| n.results).collect();
    for node in nodes {
        let mut ancestor = node.parent;
        // Each ancestor's clade holds the node; a cycle cannot occur (parents are older), but a
        // bound keeps a corrupt view from looping.
        for _ in 0..nodes.len() {
            let Some(i) = ancestor.and_then(|a| index.get(&a).copied()) else { break };
            clades[i] = clades[i].plus(node.results);
            ancestor = nodes[i].parent;
        }
    }
    clades
}

/// What the loop knows about a node, read from the archive.
pub fn node_record(archive: &Archive, id: &ContentHash) -> Result<NodeRecord, RunError> {
    let node = archive.get_node(id)?;
    let meta = NodeMetadata::of(&node).map_err(|e| RunError::Invalid(format!("node {id}: {e}")))?;
    Ok(NodeRecord {
        id: *id,
        parent: node.parent,
        generation: meta.generation,
        slot: meta.slot,
        tree: node.tree,
        component: node.component,
        score: meta.score,
        results: meta.evaluation.as_ref().map(|e| e.results()).unwrap_or_default(),
        status: meta.status.label().to_owned(),
        summary: meta.meta.summary,
        children: 0,
        exchanges: Vec::new(),
    })
}

/// Adds a node to an archive view, counting it as its parent's child when it has a component.
pub fn enter_node(nodes: &mut Vec<NodeRecord>, record: NodeRecord) {
    if record.component.is_some()
        && let Some(parent) = nodes.iter_mut().find(|n| Some(n.id) == record.parent)
    {
        parent.children += 1;
    }
    nodes.push(record);
}

/// The archive as it stood when `generation` began: the nodes of earlier generations, each counting
/// only its children from earlier generations. A generation resumed after a crash may already hold
/// some of its own children; its remaining slots must still see what the first attempt saw.
pub fn archive_before(nodes: &[NodeRecord], generation: u32) -> Vec<NodeRecord> {
    let mut before = Vec::new();
    for node in nodes.iter().filter(|n| n.generation < generation) {
        enter_node(&mut before, NodeRecord { children: 0, ..node.clone() });
    }
    before
}

/// The name under which a node's `kind` calls (`meta`, `task`) record their LLM exchanges, e.g.
/// `task g0003-s01`; a replay finds the records by it.
pub fn call_name(kind: &str, generation: u32, slot: u32) -> String {
    format!("{kind} g{generation:04}-s{slot:02}")
}

/// The run's domains with their training and validation splits. The first domain draws its
/// splits from the seeds a single-domain run has always used; the others from seeds named after
/// them, so adding a domain leaves the first one's tasks as they were. Data comes from `data_dir`;
/// the domains may use the host's `services` to score.
pub fn run_domains(
    config: &RunConfig,
    data_dir: &Path,
    services: &crate::domains::HostServices,
) -> Result<Vec<RunDomain>, RunError> {
    let domains = config.open_domains(data_dir, services).map_err(RunError::Invalid)?;
    let offered_llm = config.llm.is_some() && config.task_llm_calls > 0;
    if !offered_llm && let Some((domain, why)) = domains.iter().find_map(|d| Some((d.name(), d.needs_llm()?))) {
        return Err(RunError::Invalid(format!(
            "the {domain} domain cannot make progress without an LLM ({why}): add an [llm] section and set \
             task_llm_calls to 1 or more (see the README's LLM section), or choose other domains"
        )));
    }
    domains
        .into_iter()
        .enumerate()
        .map(|(index, domain)| {
            let purpose =
                |split: &str| if index == 0 { split.to_owned() } else { format!("{}/{split}", domain.name()) };
            let (train, validation) = domain.splits(
                derive_seed(config.seed, &purpose("train"), 0, 0),
                derive_seed(config.seed, &purpose("validation"), 0, 0),
            )?;
            Ok(RunDomain { domain, train, validation })
        })
        .collect()
}

/// What a host's results depend on: versions, engine, fuel cost table, toolchain, SDK, and the
/// blake3 of every data file the run's domains read that is present.
pub fn provenance(
    sandbox: &Sandbox,
    compiler: &GuestCompiler,
    data_dir: &Path,
    domains: &[RunDomain],
) -> Result<Provenance, RunError> {
    let mut data = Vec::new();
    for file in domains.iter().flat_map(|d| d.domain.data_files()) {
        let path = data_dir.join(file.path);
        match crate::fsutil::digest_path(&path) {
            Ok(blake3) => data.push(records::DataDigest { file: file.path.to_owned(), blake3 }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(RunError::Io { path, source }),
        }
    }
    Ok(Provenance {
        host_version: crate::HOST_VERSION.to_owned(),
        wasmtime: crate::WASMTIME_VERSION.to_owned(),
        engine: sandbox.engine_fingerprint(),
        fuel_costs: crate::sandbox::FUEL_COST_TABLE.to_owned(),
        rustc: compiler.toolchain().rustc_version.clone(),
        sdk_version: compiler.sdk_version().to_owned(),
        build_environment: compiler.environment_key(),
        data,
        config_hash: None,
    })
}

/// A seed for one purpose of one slot, from the run seed.
pub fn derive_seed(run_seed: u64, purpose: &str, generation: u32, slot: u32) -> u64 {
    let mut hasher = blake3::Hasher::new_derive_key("hyperagent run seed v1");
    hasher.update(&run_seed.to_le_bytes());
    hasher.update(purpose.as_bytes());
    hasher.update(&generation.to_le_bytes());
    hasher.update(&slot.to_le_bytes());
    u64::from_le_bytes(hasher.finalize().as_bytes()[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node `name` (its id is the hash of the name) under `parent`, with its own results.
    fn node(name: &str, parent: Option<&str>, results: Option<(f64, u32)>) -> NodeRecord {
        NodeRecord {
            id: ContentHash::of(name.as_bytes()),
            parent: parent.map(|p| ContentHash::of(p.as_bytes())),
            generation: 0,
            slot: 0,
            tree: ContentHash::of(b"tree"),
            component: results.map(|_| ContentHash::of(b"component")),
            score: results.map(|(passes, tasks)| passes / f64::from(tasks)),
            results: results.map(|(passes, tasks)| Tally { passes, tasks }).unwrap_or_default(),
            status: if results.is_some() { "evaluated" } else { "build-failed" }.into(),
            summary: String::new(),
            children: 0,
            exchanges: Vec::new(),
        }
    }

    #[test]
    fn a_clade_holds_the_node_and_every_descendant() {
        //        root 3/10
        //       /         \
        //   a 5/10      c (build failed)
        //     |
        //   b 8/10
        //     |
        //   d 1/4
        let nodes = vec![
            node("root", None, Some((3.0, 10))),
            node("a", Some("root"), Some((5.0, 10))),
            node("c", Some("root"), None),
            node("b", Some("a"), Some((8.0, 10))),
            node("d", Some("b"), Some((1.0, 4))),
        ];
        let clades = clade_results(&nodes);
        let expected = [(17.0, 34), (14.0, 24), (0.0, 0), (9.0, 14), (1.0, 4)];
        for (clade, (passes, tasks)) in clades.iter().zip(expected) {
            assert_eq!(*clade, Tally { passes, tasks });
        }
        // The build failure cannot be a parent; the others are described in archive order.
        let described = describe_candidates(&nodes);
        assert_eq!(described.len(), 4);
        assert_eq!(described[1].own, Tally { passes: 5.0, tasks: 10 });
        assert_eq!(described[1].clade, Tally { passes: 14.0, tasks: 24 });
        assert_eq!(described[2].clade, Tally { passes: 9.0, tasks: 14 });
    }
}
