//! Audits: re-checking archived results from the archive alone.
//!
//! `replay_node` rebuilds a node's component from its archived source (and says why when the
//! bytes differ), re-runs every recorded evaluation call with the recorded seed and the run's fuel
//! budget, and compares outcome, score, the domain's details and fuel with the record. `check_parent_choices`
//! re-derives every parent choice of a run from its log and seed.

pub mod meta;
mod runs;

pub use meta::remake_child;
pub use runs::{RunCheck, node_event_agrees, verify_run};

use crate::archive::Archive;
use crate::compiler::{BuildOutcome, GuestCompiler};
use crate::evolution::config::RunConfig;
use crate::evolution::evaluate::{TaskLlm, TaskRecord, TaskSettings, run_task};
use crate::evolution::log::Event;
use crate::evolution::records::{NodeMetadata, Provenance};
use crate::evolution::{RunError, archive_before, call_name, choose_parents, enter_node, node_record};
use crate::hash::ContentHash;
use crate::llm::{ReplayIndex, Source};
use crate::sandbox::Sandbox;
use hyperagent_domains::{Domain, ReplayCheck, Task};
use std::collections::HashMap;
use std::sync::Arc;

/// What replaying one node found.
#[derive(Debug, Default)]
pub struct NodeAudit {
    pub node: Option<ContentHash>,
    /// `Some(true)` when the rebuilt component has the archived hash.
    pub rebuilt_identical: Option<bool>,
    pub tasks_checked: usize,
    pub mismatches: Vec<String>,
    /// Provenance fields that differ between the node's host and this one.
    pub provenance_differences: Vec<String>,
    /// Whether the node's meta call was made again (every node but the initial one).
    pub meta_remade: bool,
}

impl NodeAudit {
    pub fn is_clean(&self) -> bool {
        self.mismatches.is_empty() && self.rebuilt_identical != Some(false)
    }
}

pub struct Auditor<'a> {
    pub archive: &'a Archive,
    pub compiler: &'a GuestCompiler,
    pub sandbox: &'a Arc<Sandbox>,
    /// This host's provenance, to compare with the node's.
    pub provenance: Provenance,
    /// The run's evaluation tasks by (domain, task id), from [`tasks_by_id`].
    pub tasks: TasksById,
    /// The run's domains with their splits, to recompute what a node may claim.
    pub domains: Vec<crate::evolution::evaluate::RunDomain>,
}

/// A run's evaluation tasks, by (domain name, task id), with their domain.
pub type TasksById = HashMap<(String, String), (Arc<dyn Domain>, Task)>;

/// A run's training and validation tasks by (domain, task id).
pub fn tasks_by_id(domains: &[crate::evolution::evaluate::RunDomain]) -> TasksById {
    let mut tasks = HashMap::new();
    for run in domains {
        for task in run.train.tasks.iter().chain(&run.validation.tasks) {
            tasks.insert((run.domain.name().to_owned(), task.id.clone()), (run.domain.clone(), task.clone()));
        }
    }
    tasks
}

impl Auditor<'_> {
    pub async fn replay_node(
        &self,
        id: &ContentHash,
        config: &RunConfig,
        records: &Arc<ReplayIndex>,
    ) -> Result<NodeAudit, RunError> {
        let node = self.archive.get_node(id)?;
        let meta = NodeMetadata::of(&node).map_err(|e| RunError::Invalid(format!("node {id}: {e}")))?;
        let mut audit = NodeAudit { node: Some(*id), ..NodeAudit::default() };
        self.check_provenance(&meta, config, &mut audit)?;
        let Some(component) = node.component else {
            // Nothing was built or evaluated; the build outcome is the record.
            return Ok(audit);
        };
        self.check_rebuild(&node.tree, &component, &mut audit)?;
        if let Some(evaluation) = &meta.evaluation {
            self.rerun_tasks(&component, &evaluation.report, &meta, config, records, &mut audit).await?;
        }
        Ok(audit)
    }

    /// The node was made under the log's configuration; differences of host are noted.
    fn check_provenance(&self, meta: &NodeMetadata, config: &RunConfig, audit: &mut NodeAudit) -> Result<(), RunError> {
        let bytes = self.archive.get_blob(&meta.provenance)?;
        let recorded: Provenance = serde_json::from_slice(&bytes)
            .map_err(|e| RunError::Invalid(format!("provenance {}: {e}", meta.provenance)))?;
        if recorded.config_hash != Some(config.hash()) {
            audit.mismatches.push(format!(
                "configuration: the node was made under {}, the log's configuration hashes to {}",
                recorded.config_hash.map_or("-".into(), |h| h.short()),
                config.hash().short()
            ));
        }
        audit.provenance_differences = recorded.diff(&self.provenance);
        Ok(())
    }

    /// Rebuilds the archived source and compares the component with the archived one.
    fn check_rebuild(
        &self,
        tree: &ContentHash,
        component: &ContentHash,
        audit: &mut NodeAudit,
    ) -> Result<(), RunError> {
        let tree = self.archive.get_tree(tree)?;
        match self.compiler.rebuild(&tree, self.archive)? {
            BuildOutcome::Built { component: rebuilt, .. } => {
                audit.rebuilt_identical = Some(rebuilt == *component);
                if rebuilt != *component {
                    let why = if audit.provenance_differences.is_empty() {
                        "with the same recorded toolchain and build environment".to_owned()
                    } else {
                        format!("the host differs: {}", audit.provenance_differences.join("; "))
                    };
                    audit.mismatches.push(format!(
                        "rebuilt component {} differs from the archived {component} ({why})",
                        rebuilt.short()
                    ));
                }
            }
            other => audit.mismatches.push(format!("the archived source no longer builds: {other:?}")),
        }
        Ok(())
    }

    /// Re-runs every recorded task with the archived component (what was scored, not the
    /// rebuilt one) and compares what the domain demands of a re-run.
    async fn rerun_tasks(
        &self,
        component: &ContentHash,
        report: &ContentHash,
        meta: &NodeMetadata,
        config: &RunConfig,
        records: &Arc<ReplayIndex>,
        audit: &mut NodeAudit,
    ) -> Result<(), RunError> {
        let loaded = self.sandbox.load(&self.archive.get_blob(component)?)?;
        let recorded: Vec<TaskRecord> = serde_json::from_slice(&self.archive.get_blob(report)?)
            .map_err(|e| RunError::Invalid(format!("evaluation report {report}: {e}")))?;
        self.check_claims(meta, &recorded, audit);
        for record in &recorded {
            let Some((domain, task)) = self.tasks.get(&(record.domain.clone(), record.id.clone())) else {
                audit.mismatches.push(format!("task {} of {} is not in the run's splits", record.id, record.domain));
                continue;
            };
            // A task agent that used the LLM hears the recorded answers again.
            let llm = (!record.llm.is_empty()).then(|| TaskLlm {
                source: Source::Replay(records.clone()),
                archive: self.archive.clone(),
                call_prefix: call_name("task", meta.generation, meta.slot),
                calls: config.task_llm_calls,
            });
            let settings = TaskSettings { fuel: config.task_fuel, memory_mib: config.memory_mib, parallelism: 1, llm };
            let again = run_task(self.sandbox, &loaded, domain, task, &settings, record.answer.is_some()).await;
            audit.tasks_checked += 1;
            if !same_as_recorded(domain.replay_check(), record, &again) {
                audit.mismatches.push(format!(
                    "task {} of {}: recorded {} score {} {} fuel {}; replayed {} score {} {} fuel {}",
                    record.id,
                    record.domain,
                    record.outcome,
                    record.score,
                    record.details,
                    record.fuel,
                    again.outcome,
                    again.score,
                    again.details,
                    again.fuel
                ));
            }
        }
        Ok(())
    }
}

impl Auditor<'_> {
    /// Every score the node claims (per domain and split, the gate, the selection score, the
    /// fuel) must follow from its records; a claim that does not fails the audit.
    fn check_claims(&self, meta: &NodeMetadata, records: &[TaskRecord], audit: &mut NodeAudit) {
        let Some(claimed) = &meta.evaluation else { return };
        let implied = match crate::evolution::evaluate::implied_by(&self.domains, records) {
            Ok(implied) => implied,
            Err(why) => return audit.mismatches.push(format!("the records cannot support the node's claims: {why}")),
        };
        let passed = implied.iter().all(|d| d.validation.is_some());
        let score = implied.iter().map(|d| d.score).sum::<f64>() / implied.len().max(1) as f64;
        let fuel: u64 = records.iter().map(|r| r.fuel).sum();
        let mut wrong = Vec::new();
        if claimed.domains != implied {
            wrong.push(format!("per-domain scores {:?}, the records give {:?}", claimed.domains, implied));
        }
        if claimed.passed_gate != passed {
            wrong.push(format!("passed_gate {}, the records give {passed}", claimed.passed_gate));
        }
        if claimed.score.to_bits() != score.to_bits() || meta.score.map(f64::to_bits) != Some(score.to_bits()) {
            wrong.push(format!("score {} (metadata {:?}), the records give {score}", claimed.score, meta.score));
        }
        if claimed.fuel != fuel {
            wrong.push(format!("fuel {}, the records give {fuel}", claimed.fuel));
        }
        for claim in wrong {
            audit.mismatches.push(format!("claimed {claim}"));
        }
    }
}

/// Whether a re-run agrees with its record, as far as the domain demands.
fn same_as_recorded(check: ReplayCheck, record: &TaskRecord, again: &TaskRecord) -> bool {
    match check {
        ReplayCheck::BitExact => {
            again.outcome == record.outcome
                && again.score.to_bits() == record.score.to_bits()
                // As stored: in canonical JSON a float such as 1.0 is the number 1, which reads
                // back as an integer that a fresh f64 would not equal as a value.
                && crate::canonical::to_vec(&again.details) == crate::canonical::to_vec(&record.details)
                && again.answer == record.answer
                && again.fuel == record.fuel
        }
        ReplayCheck::RecordedOnly => again.answer == record.answer && again.llm == record.llm,
    }
}

/// Re-derives every parent choice of a run from its log and seed; returns each disagreement.
/// `choose_parents` sees only the generations before the one it chooses for, so the whole run's
/// nodes can be entered first. Under `selection = "agent"`, a generation whose log names the
/// parents its selector chose is held to those, each of which must have been able to be a parent
/// then (that the selector chose them, a replay shows by asking it again); a generation that fell
/// back is re-derived by the fallback rule.
pub fn check_parent_choices(archive: &Archive, config: &RunConfig, events: &[Event]) -> Result<Vec<String>, RunError> {
    let mut nodes = Vec::new();
    let mut logged = Vec::new();
    let mut selected = std::collections::HashMap::new();
    for event in events {
        match event {
            Event::Node { generation, slot, node, parent, .. } => {
                enter_node(&mut nodes, node_record(archive, node)?);
                logged.push((*generation, *slot, *parent, *node));
            }
            Event::Selection { generation, parents, fallback: None, .. } => {
                selected.insert(*generation, parents.clone());
            }
            _ => {}
        }
    }
    let mut problems = Vec::new();
    let mut expected: Option<(u32, Vec<ContentHash>)> = None;
    for (generation, slot, parent, node) in logged.into_iter().filter(|(generation, ..)| *generation > 0) {
        if expected.as_ref().is_none_or(|(g, _)| *g != generation) {
            let ids = match selected.get(&generation) {
                Some(chosen) => {
                    let before = archive_before(&nodes, generation);
                    for id in chosen {
                        if !before.iter().any(|n| n.id == *id && n.can_be_parent()) {
                            problems.push(format!(
                                "generation {generation}: the selector's parent {} could not be a parent then",
                                id.short()
                            ));
                        }
                    }
                    chosen.clone()
                }
                None => choose_parents(config, &nodes, generation).iter().map(|p| p.id).collect(),
            };
            expected = Some((generation, ids));
        }
        let want = expected.as_ref().and_then(|(_, ids)| ids.get(slot as usize).copied());
        if want != parent {
            problems.push(format!(
                "generation {generation} slot {slot} (node {}): the log names parent {}, the seed and the archive give {}",
                node.short(),
                parent.map_or("-".into(), |p| p.short()),
                want.map_or("-".into(), |p| p.short())
            ));
        }
    }
    Ok(problems)
}
