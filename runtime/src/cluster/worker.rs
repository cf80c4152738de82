//! `hyperagent worker`: takes one job at a time from the shared consumer, fetches what the child
//! is made from (re-hashed), makes it in its own sandbox with its own compiler exactly as the
//! loop would, stores what it made in the bucket and answers with a result that names it.
//!
//! A job whose run session is gone is discarded; a job this worker cannot do (another
//! provenance, a missing or forged object) is answered with a refusal, never retried here.
//! While it works it sends progress acks, so the server hands the job to another worker only
//! when this one has died.

use super::connection::{Layout, NatsSettings};
use super::evals::{Evaluator, RemoteTasks};
use super::objects::Bucket;
use super::wire::{self, Job, JobResult, Outcome};
use super::{ClusterError, js_error};
use crate::archive::Archive;
use crate::compiler::GuestCompiler;
use crate::evolution::config::RunConfig;
use crate::evolution::{Evolution, RunSetup};
use crate::hash::ContentHash;
use crate::llm::{Backend, LlmConfig, Source};
use crate::sandbox::Sandbox;
use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Runs whose loop a worker keeps open at once; past it, the oldest are closed.
pub const MAX_OPEN_RUNS: usize = 8;

/// What a worker builds and runs with: its own archive (a cache of fetched and made objects),
/// compiler and sandbox, the benchmark data, and a directory for its scratch work.
#[derive(Clone)]
pub struct WorkerSetup {
    pub archive: Archive,
    pub compiler: Arc<GuestCompiler>,
    pub sandbox: Arc<Sandbox>,
    pub data_dir: PathBuf,
    pub initial_agent: PathBuf,
    pub work_dir: PathBuf,
}

pub struct WorkerOptions {
    /// Used when this worker creates the shared consumer.
    pub ack_wait: Duration,
    pub max_deliver: i64,
    /// Stop after this many jobs (a benchmark's or a test's bound); none: serve until killed.
    pub max_jobs: Option<u64>,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions { ack_wait: super::DEFAULT_ACK_WAIT, max_deliver: super::DEFAULT_MAX_DELIVER, max_jobs: None }
    }
}

pub struct Worker {
    setup: WorkerSetup,
    client: async_nats::Client,
    layout: Layout,
    bucket: Bucket,
    name: String,
    runs: RunCache,
    /// How long an evaluation part of this worker's may go without word before it runs it
    /// itself: the consumer's ack wait times (deliveries + 1), so a part whose worker died is
    /// first handed to another.
    eval_silence: Duration,
    say: Arc<dyn Fn(String) + Send + Sync>,
}

impl Worker {
    pub async fn connect(
        settings: &NatsSettings,
        setup: WorkerSetup,
        say: Arc<dyn Fn(String) + Send + Sync>,
    ) -> Result<Worker, ClusterError> {
        let client = settings.connect("hyperagent worker").await?;
        let layout = Layout::open(client.clone(), settings).await?;
        let bucket = Bucket::new(layout.objects.clone());
        let runs = RunCache::new(setup.clone(), "");
        let eval_silence = super::DEFAULT_ACK_WAIT * (super::DEFAULT_MAX_DELIVER as u32 + 1);
        Ok(Worker { setup, client, layout, bucket, name: wire::worker_name(), runs, eval_silence, say })
    }

    /// The evaluation side of this worker, served beside its child jobs.
    fn evaluator(&self) -> Evaluator {
        Evaluator {
            client: self.client.clone(),
            layout: self.layout.clone(),
            bucket: self.bucket.clone(),
            archive: self.setup.archive.clone(),
            runs: RunCache::new(self.setup.clone(), "evals-"),
            name: self.name.clone(),
            say: self.say.clone(),
        }
    }

    /// Serves jobs until `max_jobs` are done (or forever). A lost server is waited for.
    pub async fn serve(&mut self, options: &WorkerOptions) -> Result<(), ClusterError> {
        let evaluator = self.evaluator().serve(options.ack_wait, options.max_deliver);
        // The child jobs and the evaluation parts are served side by side in this task; the
        // parts go on while this worker waits on the parts of its own child.
        tokio::select! {
            served = self.serve_jobs(options) => served,
            stopped = evaluator => stopped,
        }
    }

    async fn serve_jobs(&mut self, options: &WorkerOptions) -> Result<(), ClusterError> {
        let consumer = self.layout.workers_consumer(options.ack_wait, options.max_deliver).await?;
        let ack_wait = consumer.cached_info().config.ack_wait;
        let deliveries = consumer.cached_info().config.max_deliver.clamp(1, 100) as u32;
        self.eval_silence = ack_wait * (deliveries + 1);
        (self.say)(format!("worker {} ready (ack wait {} s)", self.name, ack_wait.as_secs_f64()));
        let mut done = 0u64;
        while options.max_jobs.is_none_or(|max| done < max) {
            let batch = consumer.fetch().max_messages(1).expires(Duration::from_secs(2)).messages().await;
            let mut batch = match batch {
                Ok(batch) => batch,
                Err(e) => {
                    (self.say)(format!("cannot fetch a job ({e}); retrying"));
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            while let Some(message) = batch.next().await {
                match message {
                    Ok(message) => {
                        self.handle(message, ack_wait).await;
                        done += 1;
                    }
                    Err(e) => (self.say)(format!("a fetch failed ({e})")),
                }
            }
        }
        Ok(())
    }

    async fn handle(&mut self, message: jetstream::Message, ack_wait: Duration) {
        let job: Job = match wire::parse(&message.payload, wire::JOB_SCHEMA) {
            Ok(job) => job,
            Err(reason) => {
                (self.say)(format!("dropping a message that is not a job: {reason}"));
                let _ = message.ack_with(AckKind::Term).await;
                return;
            }
        };
        let (generation, slot) = (job.order.generation, job.order.slot);
        if !session_is_live(&self.bucket, &job.run, &job.session).await {
            (self.say)(format!("discarding job g{generation} s{slot} of run {}: the run no longer exists", job.run));
            let _ = message.double_ack().await;
            return;
        }
        (self.say)(format!("taking job g{generation} s{slot} of run {}", job.run));
        let message = Arc::new(message);
        let heartbeat = tokio::spawn(heartbeat(message.clone(), ack_wait));
        let outcome = match self.make(&job).await {
            Ok(outcome) => outcome,
            Err(e) => Outcome::Refused { reason: e.to_string() },
        };
        heartbeat.abort();
        if let Outcome::Refused { reason } = &outcome {
            (self.say)(format!("refusing job g{generation} s{slot}: {reason}"));
        }
        let result = JobResult {
            schema: wire::RESULT_SCHEMA.into(),
            run: job.run.clone(),
            session: job.session.clone(),
            generation,
            slot,
            worker: self.name.clone(),
            outcome,
        };
        let body = serde_json::to_vec(&result).expect("results serialise");
        if let Err(e) = publish(&self.layout.js, super::results_subject(&job.run), body).await {
            // Unanswered and unacknowledged: the job comes back after its ack wait.
            (self.say)(format!("cannot publish the result of g{generation} s{slot}: {e}"));
            return;
        }
        if let Err(e) = message.double_ack().await {
            (self.say)(format!("cannot acknowledge g{generation} s{slot} ({e}); the coordinator ignores a repeat"));
        }
        (self.say)(format!("done job g{generation} s{slot}"));
    }

    /// Makes the child of a job and stores what it made; the outcome names it.
    async fn make(&mut self, job: &Job) -> Result<Outcome, ClusterError> {
        let archive = self.setup.archive.clone();
        let order = &job.order;
        self.bucket.fetch_tree(&archive, &order.parent_tree).await?;
        self.bucket.fetch_into(&archive, &order.meta_component).await?;
        let snapshot = Arc::new(self.bucket.get_snapshot(&archive, &job.snapshot).await?);
        let farm = self.remote_tasks(job);
        let llm = match live_llm(job) {
            Ok(llm) => llm,
            Err(reason) => return Ok(Outcome::Refused { reason }),
        };
        let evolution = self.runs.open(&job.run, &job.config)?;
        evolution.set_task_farm(Some(farm));
        evolution.set_llm(llm);
        if evolution.provenance_hash() != job.provenance {
            return Ok(Outcome::Refused {
                reason: format!(
                    "this worker's provenance is {}, the run's {}: it would make other nodes",
                    evolution.provenance_hash(),
                    job.provenance
                ),
            });
        }
        let (record, _) = evolution.make_ordered_child(order.clone(), snapshot).await?;
        let mut objects: Vec<ContentHash> = archive.closure(&[record.id])?.into_iter().collect();
        let known = archive.closure(&[order.parent])?;
        objects.retain(|h| !known.contains(h));
        for hash in &objects {
            self.bucket.put_from(&archive, hash).await?;
        }
        Ok(Outcome::Made { node: record.id, objects, exchanges: record.exchanges })
    }

    /// The task farm a job's evaluations use: parts on the evaluation stream.
    fn remote_tasks(&self, job: &Job) -> Arc<RemoteTasks> {
        Arc::new(RemoteTasks {
            client: self.client.clone(),
            js: self.layout.js.clone(),
            bucket: self.bucket.clone(),
            archive: self.setup.archive.clone(),
            run: job.run.clone(),
            session: job.session.clone(),
            config: job.config.clone(),
            provenance: job.provenance,
            chunk: job.eval_chunk,
            silence: self.eval_silence,
            say: self.say.clone(),
        })
    }
}

/// The loops of the runs a worker serves, by (run, configuration hash), oldest first; at most
/// [`MAX_OPEN_RUNS`].
pub struct RunCache {
    setup: WorkerSetup,
    /// Prefixes the loops' scratch directories, so that two caches of one worker stay apart.
    prefix: &'static str,
    runs: Vec<((String, ContentHash), Evolution)>,
}

impl RunCache {
    pub fn new(setup: WorkerSetup, prefix: &'static str) -> RunCache {
        RunCache { setup, prefix, runs: Vec::new() }
    }

    /// The loop of a run, opened on this worker's archive, compiler and sandbox.
    pub fn open(&mut self, run: &str, config: &RunConfig) -> Result<&mut Evolution, ClusterError> {
        let key = (run.to_owned(), config.hash());
        if let Some(index) = self.runs.iter().position(|(k, _)| *k == key) {
            return Ok(&mut self.runs[index].1);
        }
        if self.runs.len() >= MAX_OPEN_RUNS {
            self.runs.remove(0);
        }
        let dir = self.setup.work_dir.join(format!("{}{run}-{}", self.prefix, &key.1.to_hex()[..12]));
        // A loop's directory may hold what a killed worker left: it is started afresh.
        crate::tree_walk::remove_tree(&dir).map_err(|e| ClusterError::JetStream(format!("{}: {e}", dir.display())))?;
        let setup = RunSetup {
            archive: self.setup.archive.clone(),
            compiler: self.setup.compiler.clone(),
            sandbox: self.setup.sandbox.clone(),
            data_dir: self.setup.data_dir.clone(),
            initial_agent: self.setup.initial_agent.clone(),
        };
        let evolution = Evolution::open(config.clone(), dir, false, setup)?;
        self.runs.push((key, evolution));
        Ok(&mut self.runs.last_mut().expect("just pushed").1)
    }
}

/// The LLM a job's calls ask: the backend its configuration names, with the budget the job
/// leaves; none when the run has no LLM.
fn live_llm(job: &Job) -> Result<Option<Source>, String> {
    let Some(budget) = &job.llm_budget else { return Ok(None) };
    let config = job.config.llm.clone().ok_or("the job gives an LLM budget but its configuration names no LLM")?;
    let backend = Backend::new(LlmConfig { budget: budget.clone(), ..config })
        .map_err(|e| format!("this worker cannot ask the run's LLM: {e}"))?;
    Ok(Some(Source::Live(Arc::new(backend))))
}

/// Whether `session` is the live session of `run` (a job of any other is discarded).
pub async fn session_is_live(bucket: &Bucket, run: &str, session: &str) -> bool {
    let Ok(mut object) = bucket.store.get(super::session_object(run)).await else { return false };
    let mut live = Vec::new();
    use tokio::io::AsyncReadExt;
    (&mut object).take(256).read_to_end(&mut live).await.is_ok() && live == session.as_bytes()
}

/// Progress acks every third of the ack wait, until aborted.
pub(super) async fn heartbeat(message: Arc<jetstream::Message>, ack_wait: Duration) {
    let period = (ack_wait / 3).max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(period).await;
        let _ = message.ack_with(AckKind::Progress).await;
    }
}

/// Publishes to a stream and waits for the server's ack, retrying while the server is away
/// (up to a minute).
pub async fn publish(js: &jetstream::Context, subject: String, body: Vec<u8>) -> Result<(), ClusterError> {
    let mut last = String::new();
    for _ in 0..60 {
        match js.publish(subject.clone(), body.clone().into()).await {
            Ok(ack) => match ack.await {
                Ok(_) => return Ok(()),
                Err(e) => last = e.to_string(),
            },
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(js_error(format!("publishing on {subject}: {last}")))
}
