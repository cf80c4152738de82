//! Evaluations spread over workers, for domains whose tasks cost seconds each (a build and a test
//! suite, a training): the worker making a child splits each set of tasks into parts, publishes a
//! job per part on the evaluation stream, and puts the records the workers send back together in
//! task order. Every worker serves evaluation parts beside its child jobs, so a worker waiting on
//! its parts runs them itself when no other is free.
//!
//! A part nobody answers (no word within the silence limit), a refused part and records that do
//! not answer the part are run on the asking worker instead: nothing is lost, and a task's record
//! depends on the task and the component alone, so the child is the same node either way. The
//! records are taken on the same trust as the worker making the child: the coordinator's spot
//! checks make whole children again, evaluation included.

use super::connection::Layout;
use super::objects::Bucket;
use super::wire::{self, EvalAnswer, EvalJob, EvalReply};
use super::worker::{RunCache, heartbeat, publish, session_is_live};
use super::{ClusterError, js_error};
use crate::archive::Archive;
use crate::evolution::config::RunConfig;
use crate::evolution::evaluate::{TaskFarm, TaskRecord, TaskSet};
use crate::hash::ContentHash;
use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use futures::future::BoxFuture;
use hyperagent_domains::{Domain, Task};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The asking worker's side: a [`TaskFarm`] for the evaluations of one child job.
pub struct RemoteTasks {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub bucket: Bucket,
    pub archive: Archive,
    pub run: String,
    pub session: String,
    pub config: RunConfig,
    pub provenance: ContentHash,
    /// Tasks per part: 0 never spread; none for costly domains only.
    pub chunk: Option<u32>,
    /// How long a part may go without word (a reply or a progress note) before it is run here.
    pub silence: Duration,
    pub say: Arc<dyn Fn(String) + Send + Sync>,
}

impl RemoteTasks {
    fn chunk_for(&self, domain: &dyn Domain) -> usize {
        match self.chunk {
            Some(chunk) => chunk as usize,
            None if domain.costly_tasks() => super::DEFAULT_COSTLY_EVAL_CHUNK as usize,
            None => 0,
        }
    }

    async fn run(&self, set: TaskSet<'_>) -> Vec<TaskRecord> {
        let chunk = self.chunk_for(set.domain.as_ref());
        // Task calls that ask an LLM stay with the worker that holds the run's LLM budget.
        if chunk == 0 || set.tasks.len() <= chunk || set.settings.llm.is_some() {
            return set.run_here().await;
        }
        match self.spread(&set, chunk).await {
            Ok(records) => records,
            Err(e) => {
                (self.say)(format!("cannot spread an evaluation ({e}); running it here"));
                set.run_here().await
            }
        }
    }

    /// Publishes a job per part and gathers the replies; parts without a usable one run here.
    async fn spread(&self, set: &TaskSet<'_>, chunk: usize) -> Result<Vec<TaskRecord>, ClusterError> {
        self.bucket.put_from(&self.archive, &set.component).await?;
        let inbox = self.client.new_inbox();
        let mut replies = self.client.subscribe(inbox.clone()).await.map_err(js_error)?;
        let parts: Vec<&[Task]> = set.tasks.chunks(chunk).collect();
        for (part, tasks) in parts.iter().enumerate() {
            let job = EvalJob {
                schema: wire::EVAL_JOB_SCHEMA.into(),
                run: self.run.clone(),
                session: self.session.clone(),
                config: self.config.clone(),
                provenance: self.provenance,
                component: set.component,
                domain: set.domain.name().to_owned(),
                tasks: tasks.iter().map(|t| t.id.clone()).collect(),
                keep_answers: set.keep_answers,
                reply: inbox.clone(),
                part: part as u32,
            };
            let body = serde_json::to_vec(&job).expect("jobs serialise");
            publish(&self.js, super::evals_subject(&self.run), body).await?;
        }
        let mut records: Vec<Option<Vec<TaskRecord>>> = vec![None; parts.len()];
        let mut heard = vec![Instant::now(); parts.len()];
        while records.iter().any(Option::is_none) {
            if let Ok(message) = tokio::time::timeout(Duration::from_secs(1), replies.next()).await {
                let message = message.ok_or_else(|| js_error("the reply subscription ended"))?;
                let Ok(reply) = wire::parse::<EvalReply>(&message.payload, wire::EVAL_REPLY_SCHEMA) else { continue };
                let part = reply.part as usize;
                if reply.session != self.session || part >= parts.len() || records[part].is_some() {
                    continue;
                }
                heard[part] = Instant::now();
                let unusable = match reply.answer {
                    EvalAnswer::Working => continue,
                    EvalAnswer::Done { records: answered } => {
                        match answers(set.domain.name(), parts[part], &answered) {
                            Ok(()) => {
                                records[part] = Some(answered);
                                continue;
                            }
                            Err(why) => why,
                        }
                    }
                    EvalAnswer::Refused { reason } => format!("refused: {reason}"),
                };
                (self.say)(format!("evaluation part {part} from {}: {unusable}; running it here", reply.worker));
                records[part] = Some(set.part(parts[part]).run_here().await);
            }
            for part in 0..parts.len() {
                if records[part].is_none() && heard[part].elapsed() > self.silence {
                    (self.say)(format!("no word on evaluation part {part} for {:?}; running it here", self.silence));
                    records[part] = Some(set.part(parts[part]).run_here().await);
                }
            }
        }
        let _ = replies.unsubscribe().await;
        Ok(records.into_iter().flatten().flatten().collect())
    }
}

impl TaskFarm for RemoteTasks {
    fn run_tasks<'a>(&'a self, set: TaskSet<'a>) -> BoxFuture<'a, Vec<TaskRecord>> {
        Box::pin(self.run(set))
    }
}

/// Whether `records` answer `tasks` of `domain`: one record per task, in order.
fn answers(domain: &str, tasks: &[Task], records: &[TaskRecord]) -> Result<(), String> {
    if records.len() != tasks.len() {
        return Err(format!("{} records for {} tasks", records.len(), tasks.len()));
    }
    if let Some((task, record)) =
        tasks.iter().zip(records).find(|(task, record)| record.id != task.id || record.domain != domain)
    {
        return Err(format!("a record of {} {} where {domain} {} was asked", record.domain, record.id, task.id));
    }
    // What this host never writes: a score outside [0, 1], an answer kept past its cut. (A part
    // refused here only runs on the asker: the node is the same either way.)
    use crate::evolution::evaluate::{CUT_MARK, MAX_KEPT_ANSWER_BYTES};
    let longest = MAX_KEPT_ANSWER_BYTES + CUT_MARK.len();
    let odd = |r: &&TaskRecord| !(0.0..=1.0).contains(&r.score) || r.answer.as_ref().is_some_and(|a| a.len() > longest);
    match records.iter().find(odd) {
        Some(record) => Err(format!("the record of {} holds a score or an answer no host writes", record.id)),
        None => Ok(()),
    }
}

/// The serving side, on every worker: takes evaluation parts one at a time and answers them.
pub struct Evaluator {
    pub client: async_nats::Client,
    pub layout: Layout,
    pub bucket: Bucket,
    pub archive: Archive,
    pub runs: RunCache,
    pub name: String,
    pub say: Arc<dyn Fn(String) + Send + Sync>,
}

impl Evaluator {
    /// Serves parts until the task is dropped. A lost server is waited for.
    pub async fn serve(mut self, ack_wait: Duration, max_deliver: i64) -> Result<(), ClusterError> {
        let consumer = self.layout.evaluators_consumer(ack_wait, max_deliver).await?;
        let ack_wait = consumer.cached_info().config.ack_wait;
        loop {
            let batch = consumer.fetch().max_messages(1).expires(Duration::from_secs(2)).messages().await;
            let Ok(mut batch) = batch else {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            };
            while let Some(message) = batch.next().await {
                if let Ok(message) = message {
                    self.handle(message, ack_wait).await;
                }
            }
        }
    }

    async fn handle(&mut self, message: jetstream::Message, ack_wait: Duration) {
        let job: EvalJob = match wire::parse(&message.payload, wire::EVAL_JOB_SCHEMA) {
            Ok(job) => job,
            Err(reason) => {
                (self.say)(format!("dropping a message that is not an evaluation part: {reason}"));
                let _ = message.ack_with(AckKind::Term).await;
                return;
            }
        };
        if !session_is_live(&self.bucket, &job.run, &job.session).await {
            let _ = message.double_ack().await;
            return;
        }
        let message = Arc::new(message);
        let heartbeat = tokio::spawn(heartbeat(message.clone(), ack_wait));
        let working = tokio::spawn(working(self.client.clone(), job.clone(), self.name.clone(), ack_wait));
        let answer = match self.evaluate(&job).await {
            Ok(records) => EvalAnswer::Done { records },
            Err(e) => EvalAnswer::Refused { reason: e.to_string() },
        };
        heartbeat.abort();
        working.abort();
        match &answer {
            EvalAnswer::Done { records } => (self.say)(format!(
                "served evaluation part {} ({} tasks of {}) of run {}",
                job.part,
                records.len(),
                job.domain,
                job.run
            )),
            EvalAnswer::Refused { reason } => (self.say)(format!("refusing evaluation part {}: {reason}", job.part)),
            EvalAnswer::Working => {}
        }
        let mut reply = EvalReply {
            schema: wire::EVAL_REPLY_SCHEMA.into(),
            session: job.session.clone(),
            part: job.part,
            worker: self.name.clone(),
            answer,
        };
        let mut body = serde_json::to_vec(&reply).expect("replies serialise");
        if body.len() > super::MAX_MESSAGE_BYTES {
            reply.answer = EvalAnswer::Refused { reason: format!("its records take {} bytes", body.len()) };
            body = serde_json::to_vec(&reply).expect("replies serialise");
        }
        // A reply the asker never reads (it is gone, or ran the part itself) costs nothing.
        let _ = self.client.publish(job.reply.clone(), body.into()).await;
        let _ = self.client.flush().await;
        let _ = message.double_ack().await;
    }

    async fn evaluate(&mut self, job: &EvalJob) -> Result<Vec<TaskRecord>, ClusterError> {
        self.bucket.fetch_into(&self.archive, &job.component).await?;
        let evolution = self.runs.open(&job.run, &job.config)?;
        if evolution.provenance_hash() != job.provenance {
            return Err(ClusterError::JetStream(format!(
                "this worker's provenance is {}, the run's {}",
                evolution.provenance_hash(),
                job.provenance
            )));
        }
        Ok(evolution.run_tasks(&job.component, &job.domain, &job.tasks, job.keep_answers).await?)
    }
}

/// Tells the asker every third of the ack wait that its part is being worked on.
async fn working(client: async_nats::Client, job: EvalJob, worker: String, ack_wait: Duration) {
    let period = (ack_wait / 3).max(Duration::from_millis(100));
    let note = EvalReply {
        schema: wire::EVAL_REPLY_SCHEMA.into(),
        session: job.session,
        part: job.part,
        worker,
        answer: EvalAnswer::Working,
    };
    let body = serde_json::to_vec(&note).expect("replies serialise");
    loop {
        tokio::time::sleep(period).await;
        let _ = client.publish(job.reply.clone(), body.clone().into()).await;
    }
}
