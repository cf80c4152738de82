//! Making a child again: the archived meta agent, given the parent's source, the `/history` the
//! loop showed it and its recorded LLM answers, must end the same way, for the same fuel, and leave
//! the archived child's source. A node whose tree does not follow from its meta call fails.

use crate::archive::Archive;
use crate::evolution::child::{meta_call, meta_grants};
use crate::evolution::evaluate::RunDomain;
use crate::evolution::records::NodeMetadata;
use crate::evolution::{NodeRecord, RunError, archive_before, call_name, derive_seed, history};
use crate::llm::{CallGateway, ReplayIndex, Source};
use crate::sandbox::{LlmGateway, Sandbox};
use crate::source_tree::{SourceTree, TreeLimits};
use std::sync::Arc;

/// What the loop knew of the run when it made the child: its configuration, domains and nodes.
pub struct RunView<'a> {
    pub config: &'a crate::evolution::config::RunConfig,
    pub domains: &'a [RunDomain],
    /// Every node of the run, entered in log order.
    pub nodes: &'a [NodeRecord],
    pub tree_limits: &'a TreeLimits,
    /// The compiler the meta calls' `check-build` answers come from, as in the loop.
    pub compiler: &'a Arc<crate::compiler::GuestCompiler>,
    /// The training tasks the meta calls' `try-task` ran, as in the loop.
    pub trial_domains: Arc<Vec<crate::evolution::workbench::TrialDomain>>,
    /// Each node's `/history` entry, made once: it does not depend on the generation shown.
    pub entries: std::sync::Mutex<std::collections::HashMap<crate::hash::ContentHash, Arc<serde_json::Value>>>,
}

/// Makes `node` again from its parent and compares; returns what differs (nothing for the initial
/// node, which no meta agent made).
pub async fn remake_child(
    archive: &Archive,
    sandbox: &Arc<Sandbox>,
    run: &RunView<'_>,
    node: &NodeRecord,
    records: &Arc<ReplayIndex>,
) -> Result<Vec<String>, RunError> {
    let Some(parent) = node.parent.and_then(|p| run.nodes.iter().find(|n| n.id == p)) else {
        return Ok(Vec::new());
    };
    let meta = NodeMetadata::of(&archive.get_node(&node.id)?).map_err(RunError::Invalid)?;
    let Some(component) = meta.meta.component else {
        return Ok(vec!["the node does not name the meta agent that made it".into()]);
    };
    let scratch = scratch_dir(node)?;
    let result = remake_in(archive, sandbox, run, node, parent, component, &scratch, &meta, records).await;
    crate::tree_walk::remove_tree(&scratch).map_err(|source| RunError::Io { path: scratch.clone(), source })?;
    result
}

/// A fresh directory for one remake, under the system's temporary directory.
fn scratch_dir(node: &NodeRecord) -> Result<std::path::PathBuf, RunError> {
    let dir = std::env::temp_dir().join(format!("hyperagent-remake-{}-{}", std::process::id(), node.id.to_hex()));
    crate::tree_walk::remove_tree(&dir).map_err(|source| RunError::Io { path: dir.clone(), source })?;
    Ok(dir)
}

#[allow(clippy::too_many_arguments)]
async fn remake_in(
    archive: &Archive,
    sandbox: &Arc<Sandbox>,
    run: &RunView<'_>,
    node: &NodeRecord,
    parent: &NodeRecord,
    component: crate::hash::ContentHash,
    scratch: &std::path::Path,
    meta: &NodeMetadata,
    records: &Arc<ReplayIndex>,
) -> Result<Vec<String>, RunError> {
    let (repo, history_dir) = (scratch.join("repo"), scratch.join("history"));
    archive.materialise(&parent.tree, &repo)?;
    write_history(archive, run, node, &parent.id, &history_dir)?;

    let loaded = sandbox.load(&archive.get_blob(&component)?)?;
    let (input, limits) = meta_call(run.config, run.config.generations - node.generation);
    let gateway = Arc::new(CallGateway::new(
        Source::Replay(records.clone()),
        archive.clone(),
        call_name("meta", node.generation, node.slot),
    ));
    let seed = derive_seed(run.config.seed, "meta", node.generation, node.slot);
    // The meta agent is offered an LLM exactly when the run had one (it may behave otherwise).
    let llm = run.config.llm.is_some().then(|| gateway.clone() as Arc<dyn LlmGateway>);
    let trials = crate::evolution::workbench::Trials {
        sandbox: sandbox.clone(),
        domains: run.trial_domains.clone(),
        task_fuel: run.config.task_fuel,
        memory_mib: run.config.memory_mib,
    };
    let workbench = crate::evolution::workbench::RepoWorkbench::new(
        repo.clone(),
        run.compiler.clone(),
        scratch.join("workbench"),
        Some(trials),
    )
    .map_err(RunError::Invalid)?;
    let grants = meta_grants(seed, &repo, &history_dir, llm, Some(Arc::new(workbench)));
    let report = sandbox.call(&loaded, &input, &limits, &grants).await?;

    let mut differences = Vec::new();
    if Some(&report.outcome) != meta.meta.outcome.as_ref() || Some(report.fuel_consumed) != meta.meta.fuel {
        differences.push(format!(
            "the meta call ended {} after {} fuel; the node records {} after {:?}",
            report.outcome,
            report.fuel_consumed,
            meta.meta.outcome.as_ref().map_or("-".to_owned(), |o| o.to_string()),
            meta.meta.fuel
        ));
    }
    if report.tools != meta.meta.tools {
        differences.push(format!(
            "the meta call used its tools otherwise: {} use(s) now, {} recorded",
            report.tools.len(),
            meta.meta.tools.len()
        ));
    }
    // The child's source as the loop takes it: the tree left in /repo (a tree that cannot be read
    // whole was refused, as the empty tree; a failed meta call that left one, the parent's).
    let tree = match SourceTree::read_dir(&repo, run.tree_limits) {
        Ok(tree) => archive.put_tree(&tree)?,
        Err(_) if report.outcome.is_ok() => archive.put_tree(&SourceTree::default())?,
        Err(_) => parent.tree,
    };
    if tree != node.tree {
        differences.push(format!("the meta call left tree {}, the node's is {}", tree.short(), node.tree.short()));
    }
    Ok(differences)
}

/// `/history` as the loop wrote it for the child's generation.
fn write_history(
    archive: &Archive,
    run: &RunView<'_>,
    node: &NodeRecord,
    parent: &crate::hash::ContentHash,
    dir: &std::path::Path,
) -> Result<(), RunError> {
    let before = archive_before(run.nodes, node.generation);
    let training = history::training_tasks(run.domains);
    let mut entries = Vec::with_capacity(before.len());
    let mut cache = run.entries.lock().unwrap_or_else(|p| p.into_inner());
    for earlier in &before {
        let entry = match cache.entry(earlier.id) {
            std::collections::hash_map::Entry::Occupied(made) => made.get().clone(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                let parent_tree = earlier.parent.and_then(|p| before.iter().find(|n| n.id == p)).map(|p| p.tree);
                let entry = history::node_entry(archive, earlier, parent_tree, run.domains, &training)?;
                slot.insert(Arc::new(entry)).clone()
            }
        };
        entries.push((earlier.id, entry));
    }
    drop(cache);
    history::write(
        dir,
        &history::archive_list(&before, crate::evolution::effective_rule(run.config)),
        &entries,
        &history::task_inputs(run.domains),
        parent,
    )
    .map_err(|source| RunError::Io { path: dir.to_path_buf(), source })
}
