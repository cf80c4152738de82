//! The coordinator's side: a [`ChildFarm`] that publishes a generation's orders as jobs, takes the
//! workers' results, checks each node it is given (its bytes, its place, its objects, and for a
//! configurable fraction the whole child, made again here) and enters it in the archive. A child
//! no worker could make (refused, given up after its deliveries, or caught forged) is made here,
//! and why is appended to the run's `cluster-failures.jsonl`.

use super::connection::{Layout, NatsSettings};
use super::objects::Bucket;
use super::wire::{self, Job, JobResult, Outcome};
use super::{ClusterError, js_error};
use crate::archive::Node;
use crate::evolution::farm::{ChildFarm, ChildOrder, HistorySnapshot};
use crate::evolution::records::NodeMetadata;
use crate::evolution::{Evolution, NodeRecord, RunError, StepTimes, derive_seed, node_record};
use crate::hash::ContentHash;
use crate::llm::{ReplayIndex, Source};
use async_nats::jetstream::consumer::{self, PullConsumer};
use futures::StreamExt;
use futures::future::BoxFuture;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The coordinator's settings beyond the connection.
#[derive(Debug, Clone)]
pub struct FarmOptions {
    /// The share of children (0..=1) made again here and compared byte for byte, chosen from
    /// the run seed so a rerun checks the same ones.
    pub spot_check: f64,
    /// Tasks per evaluation part when a worker spreads a child's evaluation over workers: 0
    /// never, none for the domains whose tasks are costly only (coding, robotics).
    pub eval_chunk: Option<u32>,
}

impl Default for FarmOptions {
    fn default() -> Self {
        FarmOptions { spot_check: 0.1, eval_chunk: None }
    }
}

pub struct Coordinator {
    layout: Layout,
    bucket: Bucket,
    run: String,
    session: String,
    options: FarmOptions,
    results: PullConsumer,
    advisories: tokio::sync::Mutex<async_nats::Subscriber>,
    failures: PathBuf,
    say: Arc<dyn Fn(String) + Send + Sync>,
}

impl Coordinator {
    /// Connects for the run in `run_dir` and opens a new session of it: jobs left from an earlier
    /// session of the same run are purged, and workers discard any they still hold.
    pub async fn start(
        settings: &NatsSettings,
        run_dir: &std::path::Path,
        options: FarmOptions,
        say: Arc<dyn Fn(String) + Send + Sync>,
    ) -> Result<Coordinator, ClusterError> {
        if !(0.0..=1.0).contains(&options.spot_check) {
            return Err(ClusterError::JetStream(format!(
                "a spot-check share of {} is not in 0..=1",
                options.spot_check
            )));
        }
        let client = settings.connect("hyperagent coordinator").await?;
        let advisories = client
            .subscribe(format!(
                "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.{}",
                super::JOBS_STREAM,
                super::WORKERS_CONSUMER
            ))
            .await
            .map_err(js_error)?;
        let layout = Layout::open(client, settings).await?;
        let run = super::run_token(run_dir);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let session = format!("{nanos:x}-{}", std::process::id());
        layout.jobs.purge().filter(super::jobs_subject(&run)).await.map_err(js_error)?;
        let results = layout
            .results
            .get_or_create_consumer(
                &format!("results-{run}"),
                consumer::pull::Config {
                    durable_name: Some(format!("results-{run}")),
                    filter_subject: super::results_subject(&run),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: Duration::from_secs(60),
                    ..Default::default()
                },
            )
            .await
            .map_err(js_error)?;
        let mut reader = session.as_bytes();
        layout.objects.put(super::session_object(&run).as_str(), &mut reader).await.map_err(js_error)?;
        let bucket = Bucket::new(layout.objects.clone());
        Ok(Coordinator {
            layout,
            bucket,
            run,
            session,
            options,
            results,
            advisories: tokio::sync::Mutex::new(advisories),
            failures: run_dir.join("cluster-failures.jsonl"),
            say,
        })
    }

    /// Ends the session: its run no longer exists for workers, its queues are emptied.
    pub async fn finish(&self) -> Result<(), ClusterError> {
        self.layout.objects.delete(super::session_object(&self.run)).await.map_err(js_error)?;
        self.layout.jobs.purge().filter(super::jobs_subject(&self.run)).await.map_err(js_error)?;
        self.layout.results.delete_consumer(&format!("results-{}", self.run)).await.map_err(js_error)?;
        Ok(())
    }

    /// The run's name on the server.
    pub fn run(&self) -> &str {
        &self.run
    }

    pub fn session(&self) -> &str {
        &self.session
    }

    async fn publish_jobs(
        &self,
        evolution: &Evolution,
        orders: &[ChildOrder],
        snapshot: &HistorySnapshot,
    ) -> Result<(), ClusterError> {
        let archive = evolution.archive();
        let snapshot = self.bucket.put_snapshot(snapshot).await?;
        for order in orders {
            self.bucket.put_tree(archive, &order.parent_tree).await?;
            self.bucket.put_from(archive, &order.meta_component).await?;
        }
        for order in orders {
            let job = Job {
                schema: wire::JOB_SCHEMA.into(),
                run: self.run.clone(),
                session: self.session.clone(),
                config: evolution.config.clone(),
                provenance: evolution.provenance_hash(),
                order: order.clone(),
                snapshot,
                eval_chunk: self.options.eval_chunk,
                llm_budget: evolution.live_backend().map(|backend| backend.remaining()),
            };
            let body = serde_json::to_vec(&job).expect("jobs serialise");
            super::worker::publish(&self.layout.js, super::jobs_subject(&self.run), body).await?;
        }
        Ok(())
    }

    /// Appends why a child was made here to the run's record of failures, durably.
    fn record_failure(&self, order: &ChildOrder, worker: &str, reason: &str) -> Result<(), RunError> {
        (self.say)(format!("g{} s{}: {reason} ({worker}); made here instead", order.generation, order.slot));
        let line = serde_json::json!({
            "generation": order.generation, "slot": order.slot, "worker": worker, "reason": reason,
        });
        let io = |source| RunError::Io { path: self.failures.clone(), source };
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&self.failures).map_err(io)?;
        file.write_all(format!("{line}\n").as_bytes()).map_err(io)?;
        file.sync_data().map_err(io)
    }

    /// Whether the child of (generation, slot) is made again here.
    fn spot_checked(&self, seed: u64, order: &ChildOrder) -> bool {
        let unit = (derive_seed(seed, "spot-check", order.generation, order.slot) >> 11) as f64 / (1u64 << 53) as f64;
        unit < self.options.spot_check
    }

    async fn collect(
        &self,
        evolution: &Evolution,
        orders: Vec<ChildOrder>,
        snapshot: Arc<HistorySnapshot>,
    ) -> Result<Vec<(NodeRecord, StepTimes)>, RunError> {
        self.publish_jobs(evolution, &orders, &snapshot).await.map_err(to_run)?;
        let mut pending: BTreeMap<u32, ChildOrder> = orders.into_iter().map(|o| (o.slot, o)).collect();
        let mut made: BTreeMap<u32, (NodeRecord, StepTimes)> = BTreeMap::new();
        let mut advisories = self.advisories.lock().await;
        while !pending.is_empty() {
            tokio::select! {
                batch = self.results.fetch().max_messages(8).expires(Duration::from_secs(1)).messages() => {
                    let Ok(mut batch) = batch else {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    };
                    while let Some(Ok(message)) = batch.next().await {
                        let result: Result<JobResult, String> = wire::parse(&message.payload, wire::RESULT_SCHEMA);
                        if let Ok(result) = result
                            && result.session == self.session
                            && let Some(order) = pending.remove(&result.slot)
                        {
                            let record = self.take_result(evolution, &order, &snapshot, result).await?;
                            made.insert(order.slot, record);
                        }
                        // Answers of other sessions, repeats and garbage are dropped.
                        let _ = message.double_ack().await;
                    }
                }
                Some(advisory) = advisories.next() => {
                    if let Some(order) = self.given_up(&advisory.payload, &mut pending).await {
                        let reason = "no worker finished it within its deliveries";
                        self.record_failure(&order, "-", reason)?;
                        made.insert(order.slot, evolution.make_ordered_child(order, snapshot.clone()).await?);
                    }
                }
            }
        }
        Ok(made.into_values().collect())
    }

    /// The pending order a max-deliveries advisory names; its job is deleted from the stream
    /// (a work queue keeps a given-up job otherwise).
    async fn given_up(&self, payload: &[u8], pending: &mut BTreeMap<u32, ChildOrder>) -> Option<ChildOrder> {
        let advisory: serde_json::Value = serde_json::from_slice(payload).ok()?;
        let sequence = advisory.get("stream_seq")?.as_u64()?;
        let stored = self.layout.jobs.get_raw_message(sequence).await.ok()?;
        let _ = self.layout.jobs.delete_message(sequence).await;
        let job: Job = wire::parse(&stored.payload, wire::JOB_SCHEMA).ok()?;
        if job.run != self.run || job.session != self.session {
            return None;
        }
        pending.remove(&job.order.slot)
    }

    /// A worker's answer to a pending order: the node it made, checked and entered, or the
    /// child made here when the answer is refused.
    async fn take_result(
        &self,
        evolution: &Evolution,
        order: &ChildOrder,
        snapshot: &Arc<HistorySnapshot>,
        result: JobResult,
    ) -> Result<(NodeRecord, StepTimes), RunError> {
        let refused = match result.outcome {
            Outcome::Refused { reason } => format!("refused: {reason}"),
            Outcome::Made { node, objects, exchanges } => {
                let check = self.spot_checked(evolution.config.seed, order);
                let claim = Claim { node, objects: &objects, exchanges: &exchanges };
                match self.import(evolution, order, snapshot, claim, check).await {
                    Ok(None) => {
                        let mut record = node_record(evolution.archive(), &node)?;
                        record.exchanges = exchanges;
                        charge(evolution, &record.exchanges);
                        return Ok((record, StepTimes::default()));
                    }
                    Ok(Some(mut remade)) if remade.0.id == node => {
                        // The worker's latencies, not the replay's.
                        remade.0.exchanges = exchanges;
                        charge(evolution, &remade.0.exchanges);
                        return Ok(remade);
                    }
                    Ok(Some(remade)) => {
                        let why = format!("the spot check made node {}, the worker claimed {node}", remade.0.id);
                        self.record_failure(order, &result.worker, &why)?;
                        charge(evolution, &remade.0.exchanges);
                        return Ok(remade);
                    }
                    Err(e) => format!("its result was refused: {e}"),
                }
            }
        };
        self.record_failure(order, &result.worker, &refused)?;
        evolution.make_ordered_child(order.clone(), snapshot.clone()).await
    }

    /// Fetches a claimed node and its objects (each re-hashed), checks that it answers `order`
    /// under this run's provenance, and enters it; or, when `check`, makes the child here
    /// instead and returns that, for the caller to compare (its LLM calls answered from the
    /// worker's records). Nothing but those records is written before the node passes its checks.
    async fn import(
        &self,
        evolution: &Evolution,
        order: &ChildOrder,
        snapshot: &Arc<HistorySnapshot>,
        claim: Claim<'_>,
        check: bool,
    ) -> Result<Option<(NodeRecord, StepTimes)>, ClusterError> {
        let Claim { node: node_id, objects, exchanges } = claim;
        let archive = evolution.archive();
        let bytes = self.bucket.get(&node_id).await?;
        let node = Node::parse(&bytes).map_err(|reason| object(&node_id, reason))?;
        let meta = NodeMetadata::of(&node).map_err(|reason| object(&node_id, reason))?;
        let place = (meta.generation, meta.slot, node.parent, meta.provenance);
        if place != (order.generation, order.slot, Some(order.parent), evolution.provenance_hash()) {
            return Err(object(&node_id, "it does not answer the order (generation, slot, parent or provenance)"));
        }
        if meta.meta.component != Some(order.meta_component) {
            return Err(object(&node_id, "another meta agent made it"));
        }
        if check {
            let llm = match evolution.live_backend() {
                Some(_) => Some(self.worker_answers(evolution, order, exchanges).await?),
                None => None,
            };
            return Ok(Some(evolution.make_ordered_child_with(order.clone(), snapshot.clone(), llm).await?));
        }
        let mut fetched = HashMap::new();
        for hash in objects.iter().filter(|h| **h != node_id && !archive.contains(h)) {
            fetched.insert(*hash, self.bucket.get(hash).await?);
        }
        let present = |hash: &ContentHash| fetched.contains_key(hash) || archive.get_blob(hash).is_ok();
        let mut needed = vec![node.tree];
        needed.extend(node.component);
        needed.extend(meta.evaluation.as_ref().map(|e| e.report));
        needed.extend(meta.llm.iter().copied());
        if let Some(missing) = needed.iter().find(|h| !present(h)) {
            return Err(object(&node_id, format!("it names {missing}, which its result does not carry")));
        }
        for bytes in fetched.values() {
            archive.put_blob(bytes)?;
        }
        archive.get_tree(&node.tree)?;
        archive.put_node(&node)?;
        Ok(None)
    }
}

impl Coordinator {
    /// The LLM answers a worker's child got, fetched (re-hashed) into the archive, as a replay
    /// source: a spot check makes the child again from them without asking the LLM. A request
    /// the worker has no record of was refused for its budget, and is refused alike.
    async fn worker_answers(
        &self,
        evolution: &Evolution,
        order: &ChildOrder,
        exchanges: &[(ContentHash, u64)],
    ) -> Result<Source, ClusterError> {
        let archive = evolution.archive();
        let hashes: Vec<ContentHash> = exchanges.iter().map(|(hash, _)| *hash).collect();
        for hash in hashes.iter().filter(|h| !archive.contains(h)) {
            archive.put_blob(&self.bucket.get(hash).await?)?;
        }
        let index = ReplayIndex::from_records(archive, &hashes)
            .map_err(|reason| ClusterError::JetStream(format!("the worker's LLM records: {reason}")))?
            .with_budget_stop(order.generation, "the LLM budget the worker was given is spent".into());
        Ok(Source::Replay(Arc::new(index)))
    }
}

/// What a worker claims to have made: the node, the objects it made or fetched, and the LLM
/// exchanges its calls made.
struct Claim<'a> {
    node: ContentHash,
    objects: &'a [ContentHash],
    exchanges: &'a [(ContentHash, u64)],
}

/// Counts the LLM exchanges of a node a worker made against the run's budget, so that the run
/// stops once the workers together have spent it.
fn charge(evolution: &Evolution, exchanges: &[(ContentHash, u64)]) {
    let Some(backend) = evolution.live_backend() else { return };
    for (hash, _) in exchanges {
        let bytes = evolution.archive().get_blob(hash).ok();
        if let Some(exchange) = bytes.and_then(|b| serde_json::from_slice::<crate::llm::Exchange>(&b).ok()) {
            backend.charge(&exchange);
        }
    }
}

impl ChildFarm for Coordinator {
    fn make_children<'a>(
        &'a self,
        evolution: &'a Evolution,
        orders: Vec<ChildOrder>,
        snapshot: Arc<HistorySnapshot>,
    ) -> BoxFuture<'a, Result<Vec<(NodeRecord, StepTimes)>, RunError>> {
        Box::pin(self.collect(evolution, orders, snapshot))
    }
}

fn object(hash: &ContentHash, reason: impl std::fmt::Display) -> ClusterError {
    ClusterError::Object { name: hash.to_hex(), reason: reason.to_string() }
}

fn to_run(e: ClusterError) -> RunError {
    match e {
        ClusterError::Run(e) => e,
        other => RunError::Invalid(other.to_string()),
    }
}
