//! Making one child: the parent's meta agent rewrites a copy of its source, the host checks and
//! builds what it left, loads and evaluates the component, and archives the node. Each step is a
//! function; whatever the child does ends as its own recorded failure, never as the run's.

use super::evaluate::{self, Evaluation};
use super::history;
use super::records::{BuildRecord, MetaRecord, NodeMetadata, Status};
use super::workbench::RepoWorkbench;
use super::{ChildJob, Evolution, NodeRecord, RunError, StepTimes, call_name, io_error};
use crate::compiler::BuildOutcome;
use crate::hash::ContentHash;
use crate::llm::record::CallGateway;
use crate::sandbox::{
    CallInput, CallLimits, CallReport, Fuel, Grants, LlmGateway, LoadedComponent, MetaInput, Preopen, Workbench,
};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// What the meta call left: its record, and the LLM exchanges it made (with latencies).
struct MetaCall {
    record: MetaRecord,
    ok: bool,
    exchanges: Vec<(ContentHash, u64)>,
}

/// What became of the source the meta agent left.
struct Built {
    status: Status,
    tree: ContentHash,
    component: Option<ContentHash>,
    build: Option<BuildRecord>,
}

impl Evolution {
    pub(super) async fn make_child(&self, job: ChildJob) -> Result<(NodeRecord, StepTimes), RunError> {
        let mut times = StepTimes::default();
        let started = Instant::now();
        let (repo, history) = self.prepare_scratch(&job)?;
        times.materialise = started.elapsed();

        let started = Instant::now();
        let meta = self.run_meta(&job, &repo, &history).await?;
        times.meta = started.elapsed();

        let started = Instant::now();
        let built = self.build_child(&job, &repo, &meta).await?;
        times.compile = started.elapsed();

        let started = Instant::now();
        let (built, evaluation) = self.load_and_evaluate(&job, built).await?;
        times.evaluate = started.elapsed();

        let started = Instant::now();
        let record = self.archive_child(&job, meta, built, evaluation)?;
        crate::tree_walk::remove_tree(&job.scratch).map_err(io_error(&job.scratch))?;
        times.archive = started.elapsed();
        Ok((record, times))
    }

    /// The parent's source as `/repo` and the run so far as `/history`, in a fresh scratch
    /// directory (what an interrupted run left there is removed whole, whatever its shape).
    fn prepare_scratch(&self, job: &ChildJob) -> Result<(std::path::PathBuf, std::path::PathBuf), RunError> {
        crate::tree_walk::remove_tree(&job.scratch).map_err(io_error(&job.scratch))?;
        let repo = job.scratch.join("repo");
        let history = job.scratch.join("history");
        self.archive.materialise(&job.order.parent_tree, &repo)?;
        history::write(&history, &job.snapshot.nodes, &job.snapshot.entries, &self.task_inputs, &job.order.parent)
            .map_err(io_error(&history))?;
        Ok((repo, history))
    }

    /// Runs the meta agent on `/repo` with `/history` and, when configured, the LLM.
    async fn run_meta(&self, job: &ChildJob, repo: &Path, history: &Path) -> Result<MetaCall, RunError> {
        let meta_loaded = self.sandbox.load(&self.archive.get_blob(&job.order.meta_component)?)?;
        let (input, limits) = meta_call(&self.config, job.order.iterations_left);
        let gateway = job.llm.as_ref().map(|source| {
            Arc::new(CallGateway::new(
                source.clone(),
                self.archive.clone(),
                call_name("meta", job.order.generation, job.order.slot),
            ))
        });
        let workbench = RepoWorkbench::new(
            repo.to_path_buf(),
            self.compiler.clone(),
            job.scratch.join("workbench"),
            Some(self.trials()),
        )
        .map_err(RunError::Invalid)?;
        let grants = meta_grants(
            job.order.seed,
            repo,
            history,
            gateway.clone().map(|g| g as Arc<dyn LlmGateway>),
            Some(Arc::new(workbench)),
        );
        let report = self.sandbox.call(&meta_loaded, &input, &limits, &grants).await?;
        if let Some(gateway) = &gateway {
            gateway.close().map_err(RunError::Invalid)?;
        }
        let exchanges = gateway.map(|g| g.records()).unwrap_or_default();
        Ok(MetaCall { record: meta_record(&report, job.order.meta_component), ok: report.outcome.is_ok(), exchanges })
    }

    /// What a meta call's `try-task` runs with: the run's sandbox, training tasks and task budget.
    pub(super) fn trials(&self) -> super::workbench::Trials {
        super::workbench::Trials {
            sandbox: self.sandbox.clone(),
            domains: self.trial_domains.clone(),
            task_fuel: self.config.task_fuel,
            memory_mib: self.config.memory_mib,
        }
    }

    /// Checks and builds what the meta agent left (or keeps it unbuilt when the call failed).
    async fn build_child(&self, job: &ChildJob, repo: &Path, meta: &MetaCall) -> Result<Built, RunError> {
        if !meta.ok {
            // What the meta agent left behind is kept for inspection, but not built.
            let tree = match crate::source_tree::SourceTree::read_dir(repo, self.compiler.tree_limits()) {
                Ok(tree) => self.archive.put_tree(&tree)?,
                Err(_) => job.order.parent_tree,
            };
            return Ok(Built { status: Status::MetaFailed, tree, component: None, build: None });
        }
        Ok(match self.build_dir(repo.to_path_buf()).await? {
            // Whether the build came from the cache is a fact about this host, not the node: it
            // stays out of the node so that reruns give identical nodes.
            BuildOutcome::Built { tree, component, .. } => Built {
                status: Status::Evaluated,
                tree,
                component: Some(component),
                build: Some(BuildRecord::Built { load_error: None }),
            },
            BuildOutcome::Rejected { tree, violations } => Built {
                status: Status::Rejected,
                tree,
                component: None,
                build: Some(BuildRecord::Rejected { violations: violations.iter().map(|v| v.to_string()).collect() }),
            },
            BuildOutcome::Failed { tree, diagnostics, .. } => Built {
                status: Status::BuildFailed,
                tree,
                component: None,
                build: Some(BuildRecord::Failed { diagnostics }),
            },
        })
    }

    /// Loads the component and evaluates it. A component the sandbox refuses (imports it does not
    /// grant, the wrong world) is the child's failure, recorded with the reason.
    async fn load_and_evaluate(
        &self,
        job: &ChildJob,
        mut built: Built,
    ) -> Result<(Built, Option<Evaluation>), RunError> {
        let Some(component) = built.component else { return Ok((built, None)) };
        let loaded: Arc<LoadedComponent> = match self.sandbox.load(&self.archive.get_blob(&component)?) {
            Ok(loaded) => loaded,
            Err(refusal) => {
                built.status = Status::LoadFailed;
                built.build = Some(BuildRecord::Built { load_error: Some(refusal.to_string()) });
                return Ok((built, None));
            }
        };
        let plan = self.plan_with(call_name("task", job.order.generation, job.order.slot), job.llm.as_ref());
        let evaluated = evaluate::Evaluated { component, loaded: &loaded };
        let evaluation = evaluate::evaluate(&self.sandbox, evaluated, &plan, &self.archive).await?;
        built.status = if evaluation.passed_gate { Status::Evaluated } else { Status::StagedOnly };
        Ok((built, Some(evaluation)))
    }

    /// Stores the node and says what the loop needs to know of it.
    fn archive_child(
        &self,
        job: &ChildJob,
        meta: MetaCall,
        built: Built,
        evaluation: Option<Evaluation>,
    ) -> Result<NodeRecord, RunError> {
        // The meta call's exchanges are linked from the node; the task calls' from the
        // evaluation report. All of them are logged with their latencies.
        let llm: Vec<ContentHash> = meta.exchanges.iter().map(|(record, _)| *record).collect();
        let mut exchanges = meta.exchanges;
        if let Some(evaluation) = &evaluation {
            exchanges.extend(evaluation.exchanges.iter().copied());
        }
        let summary = meta.record.summary.clone();
        let score = evaluation.as_ref().map(|e| e.score);
        let results = evaluation.as_ref().map(|e| e.results()).unwrap_or_default();
        let node = NodeMetadata {
            generation: job.order.generation,
            slot: job.order.slot,
            status: built.status,
            score,
            evaluation,
            meta: meta.record,
            build: built.build,
            llm,
            provenance: self.provenance_hash,
        }
        .into_node(built.tree, built.component, Some(job.order.parent));
        let id = self.archive.put_node(&node)?;
        Ok(NodeRecord {
            id,
            parent: Some(job.order.parent),
            generation: job.order.generation,
            slot: job.order.slot,
            tree: built.tree,
            component: built.component,
            score,
            results,
            status: built.status.label().to_owned(),
            summary,
            children: 0,
            exchanges,
        })
    }
}

/// The meta call's record from its report: the account it returned (or why there is none).
fn meta_record(report: &CallReport, component: ContentHash) -> MetaRecord {
    let account = report.output.as_deref().and_then(|o| serde_json::from_str::<serde_json::Value>(o).ok());
    let text = |key: &str| account.as_ref().and_then(|a| a.get(key)).and_then(|v| v.as_str()).map(str::to_owned);
    let summary = match &report.output {
        Some(_) => text("summary").unwrap_or_default(),
        None => format!("meta agent failed: {}", report.outcome),
    };
    MetaRecord {
        summary,
        rationale: text("rationale"),
        outcome: Some(report.outcome.clone()),
        fuel: Some(report.fuel_consumed),
        logs: report.logs.clone(),
        component: Some(component),
        tools: report.tools.clone(),
    }
}

/// A meta call's input and limits under `config`: the same for the loop and for an audit that
/// makes the call again.
pub fn meta_call(config: &super::config::RunConfig, iterations_left: u32) -> (CallInput, CallLimits) {
    let input =
        CallInput::Meta(MetaInput { iterations_left, repo_dir: "/repo".into(), history_dir: "/history".into() });
    let limits = CallLimits {
        fuel: Fuel(config.meta_fuel),
        memory_bytes: config.memory_mib << 20,
        llm_calls: config.meta_llm_calls,
        deadline: config.meta_deadline(),
        ..CallLimits::default()
    };
    (input, limits)
}

/// What a meta call is granted: its seed, `/repo` read-write, `/history` read-only, the LLM, and
/// the host's tools over `/repo`.
pub fn meta_grants(
    seed: u64,
    repo: &Path,
    history: &Path,
    llm: Option<Arc<dyn LlmGateway>>,
    workbench: Option<Arc<dyn Workbench>>,
) -> Grants {
    Grants {
        seed,
        preopens: vec![
            Preopen { host: repo.to_path_buf(), guest: "/repo".into(), writable: true },
            Preopen { host: history.to_path_buf(), guest: "/history".into(), writable: false },
        ],
        llm,
        workbench,
        task_tools: None,
    }
}
