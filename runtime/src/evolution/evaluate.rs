//! Staged evaluation of a component on a domain's tasks.
//!
//! A small sample of the training split first; the rest of the training split and the validation
//! split only when the sample's mean score reaches the threshold. Tasks not evaluated count as 0,
//! so the score of a node that stopped at the sample is the sample's mean scaled by its share of
//! the split (as in DGM-H). Parents are ranked by validation score.

use crate::archive::Archive;
use crate::hash::ContentHash;
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
    /// Blob with one record per task (id, outcome, score, reason, fuel).
    pub report: ContentHash,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRecord {
    pub id: String,
    pub outcome: String,
    pub score: f64,
    pub invalid: Option<String>,
    pub fuel: u64,
    pub bins: Option<u64>,
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
    fuel: u64,
    memory_mib: u64,
) -> TaskRecord {
    let id = format!("{split}/{}", instance.name);
    let input = CallInput::Task(TaskInput {
        domain: bin_packing::DOMAIN.into(),
        task_id: id.clone(),
        payload: instance.payload(),
    });
    let limits = CallLimits { fuel: Fuel(fuel), memory_bytes: memory_mib << 20, ..CallLimits::default() };
    let grants = Grants { seed: task_seed(&id), ..Grants::default() };
    match sandbox.call(component, &input, &limits, &grants).await {
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
            }
        }
        Err(e) => TaskRecord {
            id,
            outcome: "host-error".into(),
            score: 0.0,
            invalid: Some(e.to_string()),
            fuel: 0,
            bins: None,
        },
    }
}

fn split_score(records: &[TaskRecord]) -> SplitScore {
    let mean =
        if records.is_empty() { 0.0 } else { records.iter().map(|r| r.score).sum::<f64>() / records.len() as f64 };
    SplitScore { mean, tasks: records.len(), invalid: records.iter().filter(|r| r.invalid.is_some()).count() }
}

/// Runs instances on up to `parallelism` tasks at once; results in instance order.
pub async fn run_set(
    sandbox: &Arc<Sandbox>,
    component: &Arc<LoadedComponent>,
    split: &str,
    instances: &[Instance],
    fuel: u64,
    memory_mib: u64,
    parallelism: usize,
) -> Vec<TaskRecord> {
    let semaphore = Arc::new(tokio::sync::Semaphore::new(parallelism.max(1)));
    let handles: Vec<_> = instances
        .iter()
        .cloned()
        .map(|instance| {
            let (sandbox, component, semaphore, split) =
                (sandbox.clone(), component.clone(), semaphore.clone(), split.to_owned());
            tokio::spawn(async move {
                let _permit = semaphore.acquire().await.expect("the semaphore is never closed");
                run_task(&sandbox, &component, &split, &instance, fuel, memory_mib).await
            })
        })
        .collect();
    let mut records = Vec::with_capacity(handles.len());
    for (handle, instance) in handles.into_iter().zip(instances) {
        records.push(handle.await.unwrap_or_else(|e| TaskRecord {
            id: format!("{split}/{}", instance.name),
            outcome: "host-error".into(),
            score: 0.0,
            invalid: Some(e.to_string()),
            fuel: 0,
            bins: None,
        }));
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
    pub fuel: u64,
    pub memory_mib: u64,
    pub parallelism: usize,
}

pub async fn evaluate(
    sandbox: &Arc<Sandbox>,
    component: &Arc<LoadedComponent>,
    plan: &EvalPlan<'_>,
    archive: &Archive,
) -> Result<Evaluation, crate::archive::ArchiveError> {
    let sample = &plan.train.instances[..plan.staged_tasks.min(plan.train.instances.len())];
    let mut records = run_set(sandbox, component, "train", sample, plan.fuel, plan.memory_mib, plan.parallelism).await;
    let staged = split_score(&records);
    let passed_gate = passes_gate(&staged, plan.staged_threshold);
    let (mut train, mut validation) = (None, None);
    let score = if passed_gate {
        let rest = &plan.train.instances[sample.len()..];
        records.extend(run_set(sandbox, component, "train", rest, plan.fuel, plan.memory_mib, plan.parallelism).await);
        train = Some(split_score(&records));
        let validation_records = run_set(
            sandbox,
            component,
            "validation",
            &plan.validation.instances,
            plan.fuel,
            plan.memory_mib,
            plan.parallelism,
        )
        .await;
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
    Ok(Evaluation { staged, passed_gate, train, validation, score, fuel, report })
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
