//! The open-ended outer loop (DGM-H): an archive of hyperagents, parent selection, a child per
//! slot made by the parent's meta agent, staged evaluation, and a run log from which a killed run
//! resumes.
//!
//! Determinism: every seed derives from the run seed and the node's (generation, slot); the
//! parents of a generation are chosen from the archive as it stood when the generation began; the
//! children of a generation are made in parallel but entered into the archive in slot order. So the
//! same configuration gives the same nodes whatever the scheduling, and a resumed run the same
//! nodes as an uninterrupted one.

pub mod child;
pub mod config;
pub mod evaluate;
pub mod farm;
mod generation;
pub mod history;
pub mod log;
pub mod records;
pub mod selection;
pub mod selector;
mod testing;
mod view;
pub mod workbench;

pub use view::{
    SelectionStats, archive_before, call_name, choose_parents, derive_seed, effective_rule, enter_node, node_record,
    provenance, run_domains, selection_view,
};

use crate::archive::{Archive, ArchiveError};
use crate::compiler::{BuildOutcome, CompileError, GuestCompiler};
use crate::hash::ContentHash;
use crate::llm::record::Source;
use crate::sandbox::{Sandbox, SandboxError};
use config::RunConfig;
use evaluate::{EvalPlan, RunDomain, TaskLlm, TaskSettings};
use hyperagent_domains::TestSets;
use log::{Event, RunLog};
use records::{MetaRecord, NodeMetadata, Provenance, Status};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Compile(#[from] CompileError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("run I/O on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Data(#[from] hyperagent_domains::DataError),
    #[error(
        "the replay diverged at generation {generation} slot {slot}: it made node {made}, the replayed run made {recorded}"
    )]
    Diverged { generation: u32, slot: u32, made: ContentHash, recorded: ContentHash },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::Io { path: path.to_path_buf(), source }
}

/// What the loop knows about one archived node.
#[derive(Debug, Clone)]
pub struct NodeRecord {
    pub id: ContentHash,
    pub parent: Option<ContentHash>,
    pub generation: u32,
    pub slot: u32,
    pub tree: ContentHash,
    pub component: Option<ContentHash>,
    /// The selection score; absent when the node could not be evaluated.
    pub score: Option<f64>,
    /// The task-level results behind the score (none when it was not evaluated).
    pub results: selection::Tally,
    pub status: String,
    pub summary: String,
    /// Children with a component.
    pub children: u32,
    /// LLM exchanges of the meta call that made it, with their latency (ms).
    pub exchanges: Vec<(ContentHash, u64)>,
}

impl NodeRecord {
    /// Only nodes with a component and a score can be selected (and be the best).
    pub fn can_be_parent(&self) -> bool {
        self.score.is_some() && self.component.is_some()
    }
}

/// Progress notices for the CLI.
#[derive(Debug, Clone)]
pub enum Progress {
    Generation {
        generation: u32,
        of: u32,
    },
    Child {
        generation: u32,
        slot: u32,
        status: String,
        score: Option<f64>,
        summary: String,
    },
    Testing {
        node: ContentHash,
    },
    /// Something the user should hear once (missing data and what stands in for it).
    Notice(String),
}

/// Where a child's time went, for the benchmark.
#[derive(Debug, Clone, Default)]
pub struct StepTimes {
    pub select: Duration,
    pub materialise: Duration,
    pub meta: Duration,
    pub compile: Duration,
    pub evaluate: Duration,
    pub archive: Duration,
}

/// What a run works with: where it stores, how it builds and runs, where its data and its first
/// hyperagent are.
pub struct RunSetup {
    pub archive: Archive,
    pub compiler: Arc<GuestCompiler>,
    pub sandbox: Arc<Sandbox>,
    pub data_dir: PathBuf,
    pub initial_agent: PathBuf,
}

pub struct Evolution {
    pub config: RunConfig,
    pub run_dir: PathBuf,
    archive: Archive,
    compiler: Arc<GuestCompiler>,
    sandbox: Arc<Sandbox>,
    initial_agent: PathBuf,
    domains: Vec<RunDomain>,
    /// Each domain's test sets, read when the run starts.
    test_sets: Vec<TestSets>,
    /// `/history`'s view of each node, made once per node.
    history_entries: std::collections::HashMap<ContentHash, Arc<serde_json::Value>>,
    /// The training tasks' inputs, as `/history/tasks/` shows them.
    task_inputs: Arc<Vec<(String, serde_json::Value)>>,
    /// The training tasks a meta call's `try-task` may run.
    trial_domains: Arc<Vec<workbench::TrialDomain>>,
    nodes: Vec<NodeRecord>,
    completed_generations: Option<u32>,
    log: RunLog,
    tests: Vec<Event>,
    finished: bool,
    llm: Option<Source>,
    stopped: Option<String>,
    /// This host's provenance (with the configuration's hash), as logged and as stored.
    provenance: Provenance,
    provenance_hash: ContentHash,
    /// The lab's key: when present, every run object is signed with it.
    signing_key: Option<ed25519_dalek::SigningKey>,
    /// In a replay, the nodes the replayed run made, by (generation, slot).
    expected: Vec<(u32, u32, ContentHash)>,
    /// Where children are made when not here (see [`farm`]).
    farm: Option<Arc<dyn farm::ChildFarm>>,
    /// Where the tasks of this host's evaluations run when not here (see [`evaluate::TaskFarm`]).
    task_farm: Option<Arc<dyn evaluate::TaskFarm>>,
    pub times: Vec<StepTimes>,
}

impl Evolution {
    /// Starts a new run in `run_dir` (which must not hold a run yet), or resumes the one there.
    pub fn open(config: RunConfig, run_dir: PathBuf, resume: bool, setup: RunSetup) -> Result<Evolution, RunError> {
        let RunSetup { archive, compiler, sandbox, data_dir, initial_agent } = setup;
        config.validate().map_err(RunError::Invalid)?;
        let log_path = run_dir.join("log.jsonl");
        let (log, events) = if resume {
            if !log_path.is_file() {
                return Err(RunError::Invalid(format!("there is no run to resume in {}", run_dir.display())));
            }
            RunLog::reopen(&log_path).map_err(io_error(&log_path))?
        } else {
            if log_path.exists() {
                return Err(RunError::Invalid(format!(
                    "{} already holds a run; resume it or choose another run id",
                    run_dir.display()
                )));
            }
            std::fs::create_dir_all(&run_dir).map_err(io_error(&run_dir))?;
            (RunLog::open(&log_path).map_err(io_error(&log_path))?, Vec::new())
        };
        let config = match events.first() {
            Some(Event::Started { config: logged, .. }) => (**logged).clone(),
            _ => config,
        };
        let services = crate::domains::HostServices::with_compiler(compiler.clone());
        let domains = run_domains(&config, &data_dir, &services)?;
        let test_sets = domains.iter().map(|d| d.domain.test_sets(&data_dir)).collect::<Result<Vec<_>, _>>()?;
        // Every node links the provenance of the host that made it, and the configuration's hash.
        let mut recorded = provenance(&sandbox, &compiler, &data_dir, &domains)?;
        recorded.config_hash = Some(config.hash());
        let provenance_hash = archive.put_blob(&crate::canonical::to_vec(&recorded))?;
        let mut evolution = Evolution {
            config,
            run_dir,
            archive,
            compiler,
            sandbox,
            initial_agent,
            task_inputs: Arc::new(history::task_inputs(&domains)),
            trial_domains: workbench::trial_domains(&domains),
            domains,
            test_sets,
            history_entries: Default::default(),
            nodes: Vec::new(),
            completed_generations: None,
            log,
            tests: Vec::new(),
            finished: false,
            llm: None,
            stopped: None,
            provenance: recorded,
            provenance_hash,
            signing_key: None,
            expected: Vec::new(),
            farm: None,
            task_farm: None,
            times: Vec::new(),
        };
        evolution.restore(&events)?;
        Ok(evolution)
    }

    /// Rebuilds the loop's state from the log (and the archive's nodes).
    fn restore(&mut self, events: &[Event]) -> Result<(), RunError> {
        for event in events {
            match event {
                Event::Started { .. } => {}
                Event::Node { node, .. } => {
                    let record = node_record(&self.archive, node)?;
                    self.enter(record);
                }
                Event::Generation { generation } => self.completed_generations = Some(*generation),
                Event::Test { .. } | Event::Baseline { .. } => self.tests.push(event.clone()),
                Event::Finished { .. } => self.finished = true,
                Event::Stopped { reason } => self.stopped = Some(reason.clone()),
                // A resumed generation asks its selector again (the same answer).
                Event::LlmExchange { .. } | Event::Selection { .. } => {}
            }
        }
        Ok(())
    }

    /// Adds a node to the in-memory archive view and counts it as its parent's child.
    fn enter(&mut self, record: NodeRecord) {
        enter_node(&mut self.nodes, record);
    }

    /// Makes this run a replay that must make `nodes` ((generation, slot, node), as the replayed
    /// run's log has them): the first node that differs stops it with [`RunError::Diverged`].
    pub fn expecting(mut self, nodes: Vec<(u32, u32, ContentHash)>) -> Evolution {
        self.expected = nodes;
        self
    }

    /// In a replay, the node made at a (generation, slot) must be the one the replayed run made
    /// there: the same node, or (on a host whose provenance differs) the same tree, status and
    /// score.
    fn check_replayed(&self, made: &NodeRecord) -> Result<(), RunError> {
        let Some(&(generation, slot, recorded)) =
            self.expected.iter().find(|(g, s, _)| (*g, *s) == (made.generation, made.slot))
        else {
            return Ok(());
        };
        if recorded == made.id {
            return Ok(());
        }
        let same = node_record(&self.archive, &recorded).is_ok_and(|r| {
            (r.tree, r.status.as_str(), r.score.map(f64::to_bits))
                == (made.tree, made.status.as_str(), made.score.map(f64::to_bits))
        });
        if same {
            return Ok(());
        }
        Err(RunError::Diverged { generation, slot, made: made.id, recorded })
    }

    /// Runs the tasks of the evaluations this loop makes on `farm` instead of here (none: here).
    pub fn set_task_farm(&mut self, farm: Option<Arc<dyn evaluate::TaskFarm>>) {
        self.task_farm = farm;
    }

    /// Runs `task_ids` of `domain` (ids of its training or validation split) on the component
    /// `component` (in this loop's archive), here, as an evaluation of this run runs them.
    pub async fn run_tasks(
        &self,
        component: &ContentHash,
        domain: &str,
        task_ids: &[String],
        keep_answers: bool,
    ) -> Result<Vec<evaluate::TaskRecord>, RunError> {
        let run = self
            .domains
            .iter()
            .find(|d| d.domain.name() == domain)
            .ok_or_else(|| RunError::Invalid(format!("this run has no domain {domain}")))?;
        let known: std::collections::HashMap<&str, &hyperagent_domains::Task> =
            run.train.tasks.iter().chain(&run.validation.tasks).map(|t| (t.id.as_str(), t)).collect();
        let tasks = task_ids
            .iter()
            .map(|id| known.get(id.as_str()).map(|t| (*t).clone()))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| RunError::Invalid(format!("a task id is not in {domain}'s training or validation split")))?;
        let loaded = self.sandbox.load(&self.archive.get_blob(component)?)?;
        let plan = self.plan(String::new());
        let set = evaluate::TaskSet {
            sandbox: &self.sandbox,
            loaded: &loaded,
            component: *component,
            domain: &run.domain,
            tasks: &tasks,
            settings: &plan.tasks,
            keep_answers,
        };
        Ok(set.run_here().await)
    }

    /// Hands the children of every generation to `farm` instead of making them here.
    pub fn with_farm(mut self, farm: Arc<dyn farm::ChildFarm>) -> Evolution {
        self.farm = Some(farm);
        self
    }

    pub fn archive(&self) -> &Archive {
        &self.archive
    }

    /// The provenance every node of this run links (this host's, with the configuration's hash).
    pub fn provenance_hash(&self) -> ContentHash {
        self.provenance_hash
    }

    /// Makes the child an order describes, here, with `/history` as the snapshot shows it; the
    /// node is archived. A farm's worker calls this, and so does the loop for every child it
    /// makes itself.
    pub async fn make_ordered_child(
        &self,
        order: farm::ChildOrder,
        snapshot: Arc<farm::HistorySnapshot>,
    ) -> Result<(NodeRecord, StepTimes), RunError> {
        self.make_ordered_child_with(order, snapshot, self.llm.clone()).await
    }

    /// Makes the child of an order as [`Evolution::make_ordered_child`] does, its LLM calls
    /// answered by `llm` (a spot check answers them from the records of the worker that made it).
    pub async fn make_ordered_child_with(
        &self,
        order: farm::ChildOrder,
        snapshot: Arc<farm::HistorySnapshot>,
        llm: Option<Source>,
    ) -> Result<(NodeRecord, StepTimes), RunError> {
        let scratch = self.run_dir.join("scratch").join(format!("g{:04}-s{:02}", order.generation, order.slot));
        self.make_child(ChildJob { order, scratch, snapshot, llm }).await
    }

    /// Signs every run object this run writes with `key`.
    pub fn with_signing_key(mut self, key: ed25519_dalek::SigningKey) -> Evolution {
        self.signing_key = Some(key);
        self
    }

    /// Writes the run object for the log as it stands and points the run's head at it (signed
    /// when a key was given): the log's state, anchored in the archive.
    fn seal(&mut self) -> Result<(), RunError> {
        let contents = self.log.contents();
        let run = self.run_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let object =
            crate::run_object::RunObject::from_log(&run, contents, contents.events.len()).ok_or_else(|| {
                RunError::Invalid(format!("{} does not start with the run's configuration", self.log.path().display()))
            })?;
        let id = self.archive.put_run_object(&object)?;
        crate::run_object::write_head(&self.run_dir, &id, self.signing_key.as_ref()).map_err(io_error(&self.run_dir))
    }

    /// Lets meta agents ask for completions (`meta_llm_calls` per call), live from a backend or
    /// replayed from records. Every exchange is recorded and linked to its node.
    pub fn with_llm(mut self, source: Source) -> Evolution {
        self.llm = Some(source);
        self
    }

    /// The LLM the loop's calls use from now on (a worker sets it per job).
    pub fn set_llm(&mut self, source: Option<Source>) {
        self.llm = source;
    }

    /// The live backend, when the run asks one.
    pub fn live_backend(&self) -> Option<&Arc<crate::llm::Backend>> {
        match &self.llm {
            Some(Source::Live(backend)) => Some(backend),
            _ => None,
        }
    }

    /// Why the run stopped early (an LLM budget spent), if it did.
    pub fn stopped(&self) -> Option<&str> {
        self.stopped.as_deref()
    }

    pub fn nodes(&self) -> &[NodeRecord] {
        &self.nodes
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The node with the highest score (oldest on ties).
    pub fn best(&self) -> Option<&NodeRecord> {
        self.nodes.iter().filter(|n| n.can_be_parent()).fold(None, |best: Option<&NodeRecord>, n| match best {
            Some(b) if b.score >= n.score => Some(b),
            _ => Some(n),
        })
    }

    fn initial(&self) -> Option<&NodeRecord> {
        self.nodes.iter().find(|n| n.generation == 0)
    }

    fn append(&mut self, event: &Event) -> Result<(), RunError> {
        let path = self.log.path().to_path_buf();
        self.log.append(event).map_err(io_error(&path))
    }

    /// The evaluation plan; `call_prefix` names the task calls' LLM records (`task g0003-s01`).
    fn plan(&self, call_prefix: String) -> EvalPlan<'_> {
        self.plan_with(call_prefix, self.llm.as_ref())
    }

    /// The evaluation plan with the task calls' LLM answered by `llm`.
    fn plan_with(&self, call_prefix: String, llm: Option<&Source>) -> EvalPlan<'_> {
        let llm = match (llm, self.config.task_llm_calls) {
            (Some(source), calls) if calls > 0 => {
                Some(TaskLlm { source: source.clone(), archive: self.archive.clone(), call_prefix, calls })
            }
            _ => None,
        };
        EvalPlan {
            domains: &self.domains,
            tasks: TaskSettings {
                fuel: self.config.task_fuel,
                memory_mib: self.config.memory_mib,
                parallelism: 1,
                llm,
            },
            farm: self.task_farm.clone(),
        }
    }

    /// Builds a source directory on a blocking thread (cargo runs for up to its timeout).
    async fn build_dir(&self, dir: PathBuf) -> Result<BuildOutcome, RunError> {
        let (compiler, archive) = (self.compiler.clone(), self.archive.clone());
        Ok(tokio::task::spawn_blocking(move || compiler.build_dir(&dir, &archive))
            .await
            .map_err(|e| RunError::Invalid(format!("the build task failed: {e}")))??)
    }

    pub fn test_events(&self) -> &[Event] {
        &self.tests
    }
}

/// The exchanges a run recorded, indexed for replay, from its log's events.
pub fn replay_index(archive: &Archive, events: &[Event]) -> Result<crate::llm::ReplayIndex, RunError> {
    let records: Vec<ContentHash> = events
        .iter()
        .filter_map(|e| if let Event::LlmExchange { record, .. } = e { Some(*record) } else { None })
        .collect();
    let mut index = crate::llm::ReplayIndex::from_records(archive, &records).map_err(RunError::Invalid)?;
    // A `stopped` event follows the `generation` event of the generation that spent the budget.
    let mut last_generation = 0;
    for event in events {
        match event {
            Event::Generation { generation } => last_generation = *generation,
            Event::Stopped { reason } => index = index.with_budget_stop(last_generation, reason.clone()),
            _ => {}
        }
    }
    Ok(index)
}

struct ChildJob {
    order: farm::ChildOrder,
    scratch: PathBuf,
    /// The archive as `/history` shows it, shared by the children of a generation.
    snapshot: Arc<farm::HistorySnapshot>,
    /// What answers the child's LLM calls (meta and task).
    llm: Option<Source>,
}
