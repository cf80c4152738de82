//! Staged evaluation of a component on a domain's tasks.
//!
//! A small sample of the training split first; the rest of the training split and the validation
//! split only when the sample's mean score reaches the threshold. Tasks not evaluated count as 0,
//! so the score of a node that stopped at the sample is the sample's mean scaled by its share of
//! the split (as in DGM-H). Parents are ranked by validation score.

use crate::archive::Archive;
use crate::hash::ContentHash;
use crate::llm::record::{CallGateway, Source};
use crate::sandbox::{CallInput, CallLimits, Fuel, Grants, LoadedComponent, Sandbox, TaskInput};
use hyperagent_domains::TaskScore;
use hyperagent_domains::bin_packing::{self, Instance, InstanceSet};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitScore {
    pub mean: f64,
    pub tasks: usize,
    pub invalid: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub staged: SplitScore,
    pub passed_gate: bool,
    pub train: Option<SplitScore>,
    pub validation: Option<SplitScore>,
    /// The score parents are ranked by.
    pub score: f64,
    pub fuel: u64,
    /// Blob with one record per task (id, outcome, score, reason, fuel, LLM exchanges).
    pub report: ContentHash,
    /// The task agents' LLM exchanges with their latencies (for the run log; not part of the node).
    #[serde(skip)]
    pub exchanges: Vec<(ContentHash, u64)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRecord {
    pub id: String,
    pub outcome: String,
    pub score: f64,
    pub invalid: Option<String>,
    pub fuel: u64,
    pub bins: Option<u64>,
    /// LLM exchanges the task agent made, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub llm: Vec<ContentHash>,
    /// Their latencies (ms): a fact of the host, kept out of the hashed report.
    #[serde(skip)]
    pub llm_wall_ms: Vec<u64>,
}

impl TaskRecord {
    /// A task the host could not run (not the guest's doing); it scores 0.
    fn host_error(id: String, why: String) -> TaskRecord {
        TaskRecord {
            id,
            outcome: "host-error".into(),
            score: 0.0,
            invalid: Some(why),
            fuel: 0,
            bins: None,
            llm: Vec::new(),
            llm_wall_ms: Vec::new(),
        }
    }
}

/// How tasks are run: budgets, parallelism, and the LLM task agents may use.
#[derive(Clone)]
pub struct TaskSettings {
    pub fuel: u64,
    pub memory_mib: u64,
    pub parallelism: usize,
    pub llm: Option<TaskLlm>,
}

/// The LLM offered to task calls: each call gets its own recording gateway named
/// `{call_prefix} {task id}`.
#[derive(Clone)]
pub struct TaskLlm {
    pub source: Source,
    pub archive: Archive,
    pub call_prefix: String,
    pub calls: u32,
}

/// The id of a task: its split and its instance (`train/train_03`), as records and seeds use it.
pub fn task_id(split: &str, instance: &Instance) -> String {
    format!("{split}/{}", instance.name)
}

/// The seed a task is run with: a function of the task alone, so a replay repeats it.
pub fn task_seed(task_id: &str) -> u64 {
    let hash = blake3::derive_key("hyperagent task seed v1", task_id.as_bytes());
    u64::from_le_bytes(hash[..8].try_into().expect("8 bytes"))
}

/// Runs one instance and scores the answer on the host.
pub async fn run_task(
    sandbox: &Sandbox,
    component: &LoadedComponent,
    split: &str,
    instance: &Instance,
    settings: &TaskSettings,
) -> TaskRecord {
    let id = task_id(split, instance);
    let input = CallInput::Task(TaskInput {
        domain: bin_packing::DOMAIN.into(),
        task_id: id.clone(),
        payload: instance.payload(),
    });
    let gateway = settings.llm.as_ref().map(|llm| {
        Arc::new(CallGateway::new(llm.source.clone(), llm.archive.clone(), format!("{} {id}", llm.call_prefix)))
    });
    let limits = CallLimits {
        fuel: Fuel(settings.fuel),
        memory_bytes: settings.memory_mib << 20,
        llm_calls: settings.llm.as_ref().map_or(0, |l| l.calls),
        ..CallLimits::default()
    };
    let grants = Grants {
        seed: task_seed(&id),
        llm: gateway.clone().map(|g| g as Arc<dyn crate::sandbox::LlmGateway>),
        ..Grants::default()
    };
    let result = sandbox.call(component, &input, &limits, &grants).await;
    let exchanges = gateway.map(|g| g.records()).unwrap_or_default();
    let (llm, llm_wall_ms) = exchanges.into_iter().unzip();
    match result {
        Ok(report) => {
            let scored = match &report.output {
                Some(output) if report.outcome.is_ok() => bin_packing::score(instance, output),
                _ => TaskScore::invalid(report.outcome.to_string()),
            };
            TaskRecord {
                id,
                outcome: report.outcome.label().to_owned(),
                score: scored.score,
                bins: scored.details.get("bins").and_then(|b| b.as_u64()),
                invalid: scored.invalid,
                fuel: report.fuel_consumed,
                llm,
                llm_wall_ms,
            }
        }
        Err(e) => TaskRecord { llm, llm_wall_ms, ..TaskRecord::host_error(id, e.to_string()) },
    }
}

fn split_score(records: &[TaskRecord]) -> SplitScore {
    let mean =
        if records.is_empty() { 0.0 } else { records.iter().map(|r| r.score).sum::<f64>() / records.len() as f64 };
    SplitScore { mean, tasks: records.len(), invalid: records.iter().filter(|r| r.invalid.is_some()).count() }
}

/// Runs instances on up to `settings.parallelism` tasks at once; results in instance order.
pub async fn run_set(
    sandbox: &Arc<Sandbox>,
    component: &Arc<LoadedComponent>,
    split: &str,
    instances: &[Instance],
    settings: &TaskSettings,
) -> Vec<TaskRecord> {
    let semaphore = Arc::new(tokio::sync::Semaphore::new(settings.parallelism.max(1)));
    let handles: Vec<_> = instances
        .iter()
        .cloned()
        .map(|instance| {
            let (sandbox, component, semaphore, split, settings) =
                (sandbox.clone(), component.clone(), semaphore.clone(), split.to_owned(), settings.clone());
            tokio::spawn(async move {
                let _permit = semaphore.acquire().await.expect("the semaphore is never closed");
                run_task(&sandbox, &component, &split, &instance, &settings).await
            })
        })
        .collect();
    let mut records = Vec::with_capacity(handles.len());
    for (handle, instance) in handles.into_iter().zip(instances) {
        records.push(handle.await.unwrap_or_else(|e| TaskRecord::host_error(task_id(split, instance), e.to_string())));
    }
    records
}

/// The staged gate: the full evaluation runs only when the sample's mean reaches the threshold.
pub fn passes_gate(staged: &SplitScore, threshold: f64) -> bool {
    staged.tasks > 0 && staged.mean >= threshold
}

pub struct EvalPlan<'a> {
    pub train: &'a InstanceSet,
    pub validation: &'a InstanceSet,
    pub staged_tasks: usize,
    pub staged_threshold: f64,
    pub tasks: TaskSettings,
}

pub async fn evaluate(
    sandbox: &Arc<Sandbox>,
    component: &Arc<LoadedComponent>,
    plan: &EvalPlan<'_>,
    archive: &Archive,
) -> Result<Evaluation, crate::archive::ArchiveError> {
    let sample = &plan.train.instances[..plan.staged_tasks.min(plan.train.instances.len())];
    let mut records = run_set(sandbox, component, "train", sample, &plan.tasks).await;
    let staged = split_score(&records);
    let passed_gate = passes_gate(&staged, plan.staged_threshold);
    let (mut train, mut validation) = (None, None);
    let score = if passed_gate {
        let rest = &plan.train.instances[sample.len()..];
        records.extend(run_set(sandbox, component, "train", rest, &plan.tasks).await);
        train = Some(split_score(&records));
        let validation_records =
            run_set(sandbox, component, "validation", &plan.validation.instances, &plan.tasks).await;
        let scored = split_score(&validation_records);
        records.extend(validation_records);
        let score = scored.mean;
        validation = Some(scored);
        score
    } else {
        // Unevaluated tasks count as 0.
        staged.mean * staged.tasks as f64 / plan.train.instances.len() as f64
    };
    let fuel = records.iter().map(|r| r.fuel).sum();
    let report = archive.put_blob(&serde_json::to_vec(&records).expect("records serialise"))?;
    let exchanges = records.iter().flat_map(|r| r.llm.iter().copied().zip(r.llm_wall_ms.iter().copied())).collect();
    Ok(Evaluation { staged, passed_gate, train, validation, score, fuel, report, exchanges })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_needs_the_threshold() {
        let staged = |mean| SplitScore { mean, tasks: 3, invalid: 0 };
        assert!(passes_gate(&staged(0.9), 0.5));
        assert!(passes_gate(&staged(0.5), 0.5));
        assert!(!passes_gate(&staged(0.49), 0.5));
        assert!(!passes_gate(&SplitScore { mean: 1.0, tasks: 0, invalid: 0 }, 0.5));
    }
}
