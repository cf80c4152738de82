//! Staged evaluation of a component on its run's domains.
//!
//! For every domain, a small sample of its training split first; the rest of the training split
//! and the validation split only when every domain's sample reaches its threshold (a staged
//! failure in any domain stops the full evaluation of all). Tasks not evaluated count as 0, so
//! the score of a domain that stopped at the sample is the sample's mean scaled by its share of
//! the split (as in DGM-H). A node's score is the mean of its per-domain scores.

use super::selection::Tally;
use crate::archive::Archive;
use crate::hash::ContentHash;
use crate::llm::record::{CallGateway, Source};
use crate::sandbox::{CallInput, CallLimits, Fuel, Grants, LoadedComponent, Sandbox, TaskInput};
use hyperagent_domains::{Domain, Split, Task, TaskScore};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Longest answer kept in a training task's record (for `/history`), in bytes.
pub const MAX_KEPT_ANSWER_BYTES: usize = 4096;
/// What follows an answer cut to [`MAX_KEPT_ANSWER_BYTES`].
pub const CUT_MARK: &str = " [cut]";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitScore {
    pub mean: f64,
    pub tasks: usize,
    pub invalid: usize,
}

/// One domain's part of an evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainEvaluation {
    pub domain: String,
    pub staged: SplitScore,
    pub train: Option<SplitScore>,
    pub validation: Option<SplitScore>,
    /// The domain's score: its validation mean, or its staged mean scaled by its share.
    pub score: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub domains: Vec<DomainEvaluation>,
    pub passed_gate: bool,
    /// The score parents are ranked by: the mean of the domains' scores.
    pub score: f64,
    pub fuel: u64,
    /// Blob with one record per task (domain, id, outcome, score, reason, details, fuel, LLM
    /// exchanges, and for training tasks the answer).
    pub report: ContentHash,
    /// The task agents' LLM exchanges with their latencies (for the run log; not part of the node).
    #[serde(skip)]
    pub exchanges: Vec<(ContentHash, u64)>,
}

impl Evaluation {
    /// The task-level results the score comes from: each domain's validation split when it ran,
    /// its staged sample otherwise.
    pub fn results(&self) -> Tally {
        self.domains.iter().fold(Tally::default(), |sum, d| {
            let split = d.validation.as_ref().unwrap_or(&d.staged);
            sum.plus(Tally { passes: split.mean * split.tasks as f64, tasks: split.tasks as u32 })
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRecord {
    pub domain: String,
    pub id: String,
    pub outcome: String,
    pub score: f64,
    pub invalid: Option<String>,
    pub fuel: u64,
    /// The domain's figures for the answer (a count, a bound, the expected label...).
    pub details: serde_json::Value,
    /// The answer, cut to [`MAX_KEPT_ANSWER_BYTES`]; kept for training tasks only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// LLM exchanges the task agent made, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub llm: Vec<ContentHash>,
    /// Their latencies (ms): a fact of the host, kept out of the hashed report.
    #[serde(skip)]
    pub llm_wall_ms: Vec<u64>,
}

impl TaskRecord {
    /// A task the host could not run (not the guest's doing); it scores 0.
    fn host_error(domain: &str, id: String, why: String) -> TaskRecord {
        TaskRecord {
            domain: domain.to_owned(),
            id,
            outcome: "host-error".into(),
            score: 0.0,
            invalid: Some(why),
            fuel: 0,
            details: serde_json::Value::Null,
            answer: None,
            llm: Vec::new(),
            llm_wall_ms: Vec::new(),
        }
    }

    /// The score as the domain gave it, for set reports.
    pub fn task_score(&self) -> TaskScore {
        TaskScore { score: self.score, invalid: self.invalid.clone(), details: self.details.clone() }
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

/// The seed a task is run with: a function of the task alone, so a replay repeats it.
pub fn task_seed(task_id: &str) -> u64 {
    let hash = blake3::derive_key("hyperagent task seed v1", task_id.as_bytes());
    u64::from_le_bytes(hash[..8].try_into().expect("8 bytes"))
}

/// Runs one task and scores the answer on the host; `keep_answer` keeps the (cut) answer in the
/// record, for the training split that `/history` shows.
pub async fn run_task(
    sandbox: &Sandbox,
    component: &LoadedComponent,
    domain: &Arc<dyn Domain>,
    task: &Task,
    settings: &TaskSettings,
    keep_answer: bool,
) -> TaskRecord {
    let id = task.id.clone();
    let input =
        CallInput::Task(TaskInput { domain: domain.name().into(), task_id: id.clone(), payload: task.payload.clone() });
    let gateway = settings.llm.as_ref().map(|llm| {
        Arc::new(CallGateway::new(llm.source.clone(), llm.archive.clone(), format!("{} {id}", llm.call_prefix)))
    });
    let limits = CallLimits {
        fuel: Fuel(settings.fuel),
        memory_bytes: settings.memory_mib << 20,
        llm_calls: settings.llm.as_ref().map_or(0, |l| l.calls),
        deadline: crate::sandbox::limits::deadline_past_fuel(settings.fuel),
        ..CallLimits::default()
    };
    let task_tools = domain.offers_own_tests().then(|| {
        Arc::new(OwnTests { domain: domain.clone(), task: task.clone(), runs: Default::default() })
            as Arc<dyn crate::sandbox::TaskTools>
    });
    let grants = Grants {
        seed: task_seed(&id),
        llm: gateway.clone().map(|g| g as Arc<dyn crate::sandbox::LlmGateway>),
        task_tools,
        ..Grants::default()
    };
    let result = sandbox.call(component, &input, &limits, &grants).await;
    let closed = gateway.as_ref().map_or(Ok(()), |g| g.close());
    let exchanges = gateway.map(|g| g.records()).unwrap_or_default();
    let (llm, llm_wall_ms) = exchanges.into_iter().unzip();
    match result {
        Ok(_) if closed.is_err() => TaskRecord {
            llm,
            llm_wall_ms,
            ..TaskRecord::host_error(domain.name(), id, closed.err().unwrap_or_default())
        },
        Ok(report) => {
            let scored = match &report.output {
                Some(output) if report.outcome.is_ok() => domain.score(task, output).await,
                _ => TaskScore::invalid(report.outcome.to_string()),
            };
            let answer = report.output.filter(|_| keep_answer).map(|mut answer| {
                if crate::sandbox::host::truncate_utf8(&mut answer, MAX_KEPT_ANSWER_BYTES) {
                    answer.push_str(CUT_MARK);
                }
                answer
            });
            TaskRecord {
                domain: domain.name().to_owned(),
                id,
                outcome: report.outcome.label().to_owned(),
                score: scored.score,
                invalid: scored.invalid,
                fuel: report.fuel_consumed,
                details: scored.details,
                answer,
                llm,
                llm_wall_ms,
            }
        }
        Err(e) => TaskRecord { llm, llm_wall_ms, ..TaskRecord::host_error(domain.name(), id, e.to_string()) },
    }
}

/// Runs of its own tests one task call may make.
pub const MAX_OWN_TEST_RUNS: u32 = 4;

/// A task call's `run-tests`, answered by its domain, at most [`MAX_OWN_TEST_RUNS`] times.
struct OwnTests {
    domain: Arc<dyn Domain>,
    task: Task,
    runs: std::sync::atomic::AtomicU32,
}

impl crate::sandbox::TaskTools for OwnTests {
    fn run_tests(
        &self,
        files: Vec<(String, String)>,
        tests: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<crate::sandbox::TestRun, String>> + Send + '_>> {
        Box::pin(async move {
            if self.runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= MAX_OWN_TEST_RUNS {
                return Err(format!("this task call's {MAX_OWN_TEST_RUNS} test runs are spent"));
            }
            let run = self.domain.run_own_tests(&self.task, files, tests).await?;
            Ok(crate::sandbox::TestRun { built: run.built, passed: run.passed, failed: run.failed, output: run.output })
        })
    }
}

pub fn split_score(records: &[TaskRecord]) -> SplitScore {
    let mean =
        if records.is_empty() { 0.0 } else { records.iter().map(|r| r.score).sum::<f64>() / records.len() as f64 };
    SplitScore { mean, tasks: records.len(), invalid: records.iter().filter(|r| r.invalid.is_some()).count() }
}

/// Runs tasks on up to `settings.parallelism` at once; results in task order.
pub async fn run_set(
    sandbox: &Arc<Sandbox>,
    component: &Arc<LoadedComponent>,
    domain: &Arc<dyn Domain>,
    tasks: &[Task],
    settings: &TaskSettings,
    keep_answers: bool,
) -> Vec<TaskRecord> {
    let semaphore = Arc::new(tokio::sync::Semaphore::new(settings.parallelism.max(1)));
    let handles: Vec<_> = tasks
        .iter()
        .cloned()
        .map(|task| {
            let (sandbox, component, domain, semaphore, settings) =
                (sandbox.clone(), component.clone(), domain.clone(), semaphore.clone(), settings.clone());
            tokio::spawn(async move {
                let _permit = semaphore.acquire().await.expect("the semaphore is never closed");
                run_task(&sandbox, &component, &domain, &task, &settings, keep_answers).await
            })
        })
        .collect();
    let mut records = Vec::with_capacity(handles.len());
    for (handle, task) in handles.into_iter().zip(tasks) {
        records.push(
            handle.await.unwrap_or_else(|e| TaskRecord::host_error(domain.name(), task.id.clone(), e.to_string())),
        );
    }
    records
}

/// The staged gate: the full evaluation runs only when the sample's mean reaches the threshold.
pub fn passes_gate(staged: &SplitScore, threshold: f64) -> bool {
    staged.tasks > 0 && staged.mean >= threshold
}

/// The tasks of one domain to run on one component (the blob `component`, loaded as `loaded`).
#[derive(Clone, Copy)]
pub struct TaskSet<'a> {
    pub sandbox: &'a Arc<Sandbox>,
    pub loaded: &'a Arc<LoadedComponent>,
    pub component: ContentHash,
    pub domain: &'a Arc<dyn Domain>,
    pub tasks: &'a [Task],
    pub settings: &'a TaskSettings,
    pub keep_answers: bool,
}

impl<'a> TaskSet<'a> {
    /// The same set with other tasks (a part of these).
    pub fn part(&self, tasks: &'a [Task]) -> TaskSet<'a> {
        TaskSet { tasks, ..*self }
    }

    /// Runs them on this host.
    pub async fn run_here(&self) -> Vec<TaskRecord> {
        run_set(self.sandbox, self.loaded, self.domain, self.tasks, self.settings, self.keep_answers).await
    }
}

/// Where the tasks of an evaluation run when not all on this host (a cluster's workers). The
/// records must be those [`TaskSet::run_here`] gives, in task order: a task's record depends on
/// the task and the component alone, so it is the same wherever it ran.
pub trait TaskFarm: Send + Sync {
    fn run_tasks<'a>(&'a self, set: TaskSet<'a>) -> futures::future::BoxFuture<'a, Vec<TaskRecord>>;
}

/// A domain of a run with its training and validation splits.
#[derive(Clone)]
pub struct RunDomain {
    pub domain: Arc<dyn Domain>,
    pub train: Split,
    pub validation: Split,
}

pub struct EvalPlan<'a> {
    pub domains: &'a [RunDomain],
    pub tasks: TaskSettings,
    /// Where the tasks run when not here.
    pub farm: Option<Arc<dyn TaskFarm>>,
}

/// The component to evaluate: its blob's hash and the component the sandbox loaded from it.
pub struct Evaluated<'a> {
    pub component: ContentHash,
    pub loaded: &'a Arc<LoadedComponent>,
}

pub async fn evaluate(
    sandbox: &Arc<Sandbox>,
    evaluated: Evaluated<'_>,
    plan: &EvalPlan<'_>,
    archive: &Archive,
) -> Result<Evaluation, crate::archive::ArchiveError> {
    let run_tasks = |domain, tasks, keep_answers| {
        let set = TaskSet {
            sandbox,
            loaded: evaluated.loaded,
            component: evaluated.component,
            domain,
            tasks,
            settings: &plan.tasks,
            keep_answers,
        };
        run_on(plan.farm.as_deref(), set)
    };
    // The staged samples of every domain first.
    let mut staged = Vec::new();
    for domain in plan.domains {
        let sample = &domain.train.tasks[..domain.domain.staging().tasks.min(domain.train.tasks.len())];
        let records = run_tasks(&domain.domain, sample, true).await;
        staged.push((split_score(&records), records));
    }
    let passed_gate =
        plan.domains.iter().zip(&staged).all(|(run, (score, _))| passes_gate(score, run.domain.staging().threshold));
    let mut records = Vec::new();
    let mut domains = Vec::new();
    for (domain, (staged, sample)) in plan.domains.iter().zip(staged) {
        let mut part = DomainEvaluation {
            domain: domain.domain.name().to_owned(),
            score: staged.mean * staged.tasks as f64 / domain.train.tasks.len().max(1) as f64,
            staged,
            train: None,
            validation: None,
        };
        let mut train = sample;
        if passed_gate {
            let rest = &domain.train.tasks[train.len()..];
            train.extend(run_tasks(&domain.domain, rest, true).await);
            part.train = Some(split_score(&train));
            let validation = run_tasks(&domain.domain, &domain.validation.tasks, false).await;
            let scored = split_score(&validation);
            part.score = scored.mean;
            part.validation = Some(scored);
            train.extend(validation);
        }
        records.extend(train);
        domains.push(part);
    }
    let score = domains.iter().map(|d| d.score).sum::<f64>() / domains.len().max(1) as f64;
    let fuel = records.iter().map(|r| r.fuel).sum();
    let report = archive.put_blob(&crate::canonical::to_vec(&records))?;
    let exchanges = records.iter().flat_map(|r| r.llm.iter().copied().zip(r.llm_wall_ms.iter().copied())).collect();
    Ok(Evaluation { domains, passed_gate, score, fuel, report, exchanges })
}

/// Runs a set on `farm`, or here without one.
async fn run_on(farm: Option<&dyn TaskFarm>, set: TaskSet<'_>) -> Vec<TaskRecord> {
    match farm {
        Some(farm) => farm.run_tasks(set).await,
        None => set.run_here().await,
    }
}

/// The evaluation a report's records imply, computed the way [`evaluate`] computes it: what a
/// node may claim given its records. The audit compares this with what the node does claim.
pub fn implied_by(domains: &[RunDomain], records: &[TaskRecord]) -> Result<Vec<DomainEvaluation>, String> {
    let mut parts = Vec::new();
    for run in domains {
        let name = run.domain.name();
        let of = |split: &Split| -> Vec<TaskRecord> {
            let ids: std::collections::HashSet<&str> = split.tasks.iter().map(|t| t.id.as_str()).collect();
            records.iter().filter(|r| r.domain == name && ids.contains(r.id.as_str())).cloned().collect()
        };
        let (train, validation) = (of(&run.train), of(&run.validation));
        let sample = run.domain.staging().tasks.min(run.train.tasks.len());
        if train.len() < sample {
            return Err(format!(
                "{name}: the report holds {} training records, fewer than the staged {sample}",
                train.len()
            ));
        }
        let staged = split_score(&train[..sample]);
        let full = !validation.is_empty() || train.len() > sample;
        let mut part = DomainEvaluation {
            domain: name.to_owned(),
            score: staged.mean * staged.tasks as f64 / run.train.tasks.len().max(1) as f64,
            staged,
            train: None,
            validation: None,
        };
        if full {
            let scored = split_score(&validation);
            part.train = Some(split_score(&train));
            part.score = scored.mean;
            part.validation = Some(scored);
        }
        parts.push(part);
    }
    Ok(parts)
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

    /// A domain whose own tests always pass, counting the runs it was asked for.
    struct Tested(std::sync::atomic::AtomicU32);

    impl Domain for Tested {
        fn name(&self) -> &'static str {
            "tested"
        }
        fn splits(
            &self,
            _: u64,
            _: u64,
        ) -> Result<(hyperagent_domains::Split, hyperagent_domains::Split), hyperagent_domains::DataError> {
            unreachable!()
        }
        fn test_sets(
            &self,
            _: &std::path::Path,
        ) -> Result<hyperagent_domains::TestSets, hyperagent_domains::DataError> {
            unreachable!()
        }
        fn score<'a>(&'a self, _: &'a Task, _: &'a str) -> hyperagent_domains::domain::ScoreFuture<'a> {
            unreachable!()
        }
        fn offers_own_tests(&self) -> bool {
            true
        }
        fn run_own_tests<'a>(
            &'a self,
            _: &'a Task,
            _: Vec<(String, String)>,
            _: String,
        ) -> hyperagent_domains::domain::OwnTestsFuture<'a> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Box::pin(async {
                Ok(hyperagent_domains::domain::OwnTestRun { built: true, passed: 1, failed: 0, output: String::new() })
            })
        }
    }

    #[test]
    fn a_task_call_runs_its_own_tests_at_most_the_allowed_times() {
        use crate::sandbox::TaskTools;
        let domain = Arc::new(Tested(Default::default()));
        let tools = OwnTests {
            domain: domain.clone(),
            task: Task { id: "t".into(), payload: "{}".into() },
            runs: Default::default(),
        };
        let run = || block_on(tools.run_tests(Vec::new(), String::new()));
        for _ in 0..MAX_OWN_TEST_RUNS {
            assert_eq!(run().unwrap().passed, 1);
        }
        assert!(run().unwrap_err().contains("4 test runs are spent"));
        assert_eq!(domain.0.load(std::sync::atomic::Ordering::Relaxed), MAX_OWN_TEST_RUNS);
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(future)
    }
}
