//! Scale-out over NATS JetStream, end to end: a real `nats-server` on loopback, the real binary
//! as coordinator and workers. A run made by workers must be the local run of the same
//! configuration byte for byte (log, head, every archived object), whatever happens to the
//! workers or the server on the way; forged answers are caught; stale jobs are dropped.

mod common;

use common::nats::NatsServer;
use common::{hyperagent_cli, object_names};
use hyperagent::cluster::connection::Layout;
use hyperagent::cluster::objects::Bucket;
use hyperagent::cluster::wire::{self, EvalAnswer, EvalJob, EvalReply, Job, JobResult, Outcome};
use hyperagent::cluster::{NatsSettings, worker::publish};
use hyperagent::evolution::evaluate::Evaluation;
use hyperagent::evolution::records::{BuildRecord, MetaRecord, NodeMetadata, Status};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The runs share two cores: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Two generations of two children on tiny bin-packing instances.
fn config(dir: &Path) -> PathBuf {
    let path = dir.join("cluster.toml");
    std::fs::write(
        &path,
        "generations = 2\nchildren_per_generation = 2\nseed = 5\n[domain.bin_packing]\ntrain_instances = 4\n\
         train_items = 100\nstaged_tasks = 1\nvalidation_instances = 2\nvalidation_items = 100\n\
         test_sets = [\"OR1\"]\n",
    )
    .unwrap();
    path
}

/// The same configuration run locally, once per test binary: what every distributed run must equal.
fn local_run() -> &'static Path {
    static LOCAL: OnceLock<tempfile::TempDir> = OnceLock::new();
    LOCAL
        .get_or_init(|| {
            let home = tempfile::tempdir().unwrap();
            let config = config(home.path());
            let output = hyperagent_cli(home.path(), &["run", "--config", config.to_str().unwrap(), "--run-id", "r"]);
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            home
        })
        .path()
}

/// A worker process with its own home; its stderr goes to `<home>/worker.log`.
struct WorkerProcess {
    child: Child,
    home: tempfile::TempDir,
}

impl WorkerProcess {
    fn start(url: &str, ack_wait_secs: u32) -> WorkerProcess {
        let home = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(home.path().join("worker.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_hyperagent"))
            .args(["worker", "--nats", url, "--ack-wait-secs", &ack_wait_secs.to_string()])
            .env("HYPERAGENT_DATA_DIR", common::data_dir())
            .env("HYPERAGENT_HOME", home.path())
            .env("HYPERAGENT_GUEST_TARGET", common::guest_target_dir())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        WorkerProcess { child, home }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.home.path().join("worker.log")).unwrap_or_default()
    }

    /// Waits until the log holds `text`.
    fn wait_for(&self, text: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.log().contains(text) {
            assert!(Instant::now() < deadline, "the worker never said {text:?}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the log of any of `workers` holds `text`: which of them fetches a job first
    /// is up to the server.
    fn wait_for_any(workers: &[WorkerProcess], text: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !workers.iter().any(|w| w.log().contains(text)) {
            let logs: Vec<String> = workers.iter().map(WorkerProcess::log).collect();
            assert!(Instant::now() < deadline, "no worker said {text:?}:\n{}", logs.join("\n---\n"));
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts the coordinator of run `r` in `home` against `url`.
fn coordinator(home: &Path, url: &str, spot_check: &str) -> Child {
    coordinator_with(home, url, &["--spot-check", spot_check])
}

/// Starts the coordinator of run `r` in `home` against `url`, with `flags`.
fn coordinator_with(home: &Path, url: &str, flags: &[&str]) -> Child {
    // A configuration already in `home` (a benchmark's) is kept.
    let written = home.join("cluster.toml");
    let config = if written.is_file() { written } else { config(home) };
    Command::new(env!("CARGO_BIN_EXE_hyperagent"))
        .args(["run", "--config", config.to_str().unwrap(), "--run-id", "r", "--nats", url])
        .args(flags)
        .env("HYPERAGENT_DATA_DIR", common::data_dir())
        .env("HYPERAGENT_HOME", home)
        .env("HYPERAGENT_GUEST_TARGET", common::guest_target_dir())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(home.join("coordinator.log")).unwrap())
        .spawn()
        .unwrap()
}

fn finish(mut coordinator: Child, home: &Path) {
    let status = coordinator.wait().unwrap();
    let log = std::fs::read_to_string(home.join("coordinator.log")).unwrap();
    assert!(status.success(), "the coordinator failed:\n{log}");
}

/// The run `r` in `home` is the local run, byte for byte: its log, its head, every object.
fn assert_same_as_local(home: &Path) {
    let local = local_run();
    let run = |home: &Path, file: &str| std::fs::read(home.join("runs/r").join(file)).unwrap();
    assert!(
        run(home, "log.jsonl") == run(local, "log.jsonl"),
        "the logs differ:\n{}\n---\n{}",
        String::from_utf8_lossy(&run(home, "log.jsonl")),
        String::from_utf8_lossy(&run(local, "log.jsonl"))
    );
    assert_eq!(run(home, "head"), run(local, "head"));
    assert_eq!(object_names(&home.join("archive")), object_names(&local.join("archive")));
    let nodes = |home: &Path| {
        let mut names: Vec<_> =
            std::fs::read_dir(home.join("archive/nodes")).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        names
    };
    assert_eq!(nodes(home), nodes(local));
}

fn failures(home: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(home.join("runs/r/cluster-failures.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_coordinator_and_two_workers_make_the_local_run_byte_for_byte() {
    let _serial = serial();
    local_run();
    let server = NatsServer::start();
    let workers = [WorkerProcess::start(&server.url(), 30), WorkerProcess::start(&server.url(), 30)];
    let home = tempfile::tempdir().unwrap();
    finish(coordinator(home.path(), &server.url(), "0"), home.path());
    assert_same_as_local(home.path());
    assert_eq!(failures(home.path()), Vec::<serde_json::Value>::new());
    let done: usize = workers.iter().map(|w| w.log().matches("done job").count()).sum();
    assert_eq!(done, 4, "every child was made by a worker:\n{}\n{}", workers[0].log(), workers[1].log());
}

#[test]
fn evaluations_spread_over_the_workers_make_the_local_run_byte_for_byte() {
    let _serial = serial();
    local_run();
    let server = NatsServer::start();
    let workers = [WorkerProcess::start(&server.url(), 30), WorkerProcess::start(&server.url(), 30)];
    let home = tempfile::tempdir().unwrap();
    // One task per evaluation job: the training rest (3 tasks) and validation (2) of every child
    // that passes its staged task are spread.
    finish(coordinator_with(home.path(), &server.url(), &["--spot-check", "0", "--eval-chunk", "1"]), home.path());
    assert_same_as_local(home.path());
    assert_eq!(failures(home.path()), Vec::<serde_json::Value>::new());
    let logs: Vec<String> = workers.iter().map(WorkerProcess::log).collect();
    let served: usize = logs.iter().map(|l| l.matches("served evaluation part").count()).sum();
    assert!(served >= 5, "at least one child's evaluation was spread:\n{}", logs.join("\n---\n"));
    assert!(logs.iter().all(|l| !l.contains("running it here")), "every part was answered:\n{}", logs.join("\n---\n"));
    // Without --eval-chunk bin packing (cheap tasks) is not spread.
    let plain = tempfile::tempdir().unwrap();
    finish(coordinator(plain.path(), &server.url(), "0"), plain.path());
    let after: usize = workers.iter().map(|w| w.log().matches("served evaluation part").count()).sum();
    assert_eq!(after, served);
}

/// Answers every evaluation part it takes with records that do not answer it (none at all, or
/// records of other tasks), or takes it and says nothing, until `stop`; returns how many it took.
async fn forging_evaluator(url: String, stop: Arc<AtomicBool>) -> usize {
    use futures::StreamExt;
    let settings = NatsSettings::new(url);
    let client = settings.connect("forger").await.unwrap();
    let layout = Layout::open(client.clone(), &settings).await.unwrap();
    let consumer = layout.evaluators_consumer(Duration::from_secs(3), 3).await.unwrap();
    let mut forged = 0;
    while !stop.load(Ordering::Relaxed) {
        let mut batch = consumer.fetch().max_messages(10).expires(Duration::from_millis(500)).messages().await.unwrap();
        while let Some(Ok(message)) = batch.next().await {
            let job: EvalJob = wire::parse(&message.payload, wire::EVAL_JOB_SCHEMA).unwrap();
            let record = |id: &str| {
                serde_json::from_value(serde_json::json!({"domain": job.domain, "id": id, "outcome": "ok",
                    "score": 7.0, "invalid": null, "fuel": 1, "details": null}))
                .unwrap()
            };
            let records = match forged % 4 {
                0 => Vec::new(),
                1 => vec![record("another task")],
                // The right tasks with a score no host writes.
                2 => job.tasks.iter().map(|id| record(id)).collect(),
                _ => {
                    // Taken and dropped: the asker hears nothing.
                    message.double_ack().await.unwrap();
                    forged += 1;
                    continue;
                }
            };
            let reply = EvalReply {
                schema: wire::EVAL_REPLY_SCHEMA.into(),
                session: job.session.clone(),
                part: job.part,
                worker: "forger".into(),
                answer: EvalAnswer::Done { records },
            };
            client.publish(job.reply.clone(), serde_json::to_vec(&reply).unwrap().into()).await.unwrap();
            message.double_ack().await.unwrap();
            forged += 1;
        }
    }
    forged
}

#[test]
fn evaluation_parts_answered_wrongly_are_run_by_the_asker_and_the_run_is_still_the_local_one() {
    let _serial = serial();
    local_run();
    let server = NatsServer::start();
    // A short ack wait: a part nobody answers is run by its asker after 3 s × (3 deliveries + 1).
    let worker = WorkerProcess::start(&server.url(), 3);
    let stop = Arc::new(AtomicBool::new(false));
    let forger = {
        let (url, stop) = (server.url(), stop.clone());
        std::thread::spawn(move || common::block_on(forging_evaluator(url, stop)))
    };
    let home = tempfile::tempdir().unwrap();
    finish(coordinator_with(home.path(), &server.url(), &["--spot-check", "0", "--eval-chunk", "1"]), home.path());
    stop.store(true, Ordering::Relaxed);
    let forged = forger.join().unwrap();
    assert_same_as_local(home.path());
    assert!(forged > 0, "the forger took no part:\n{}", worker.log());
    let ran_here = worker.log().matches("running it here").count();
    assert_eq!(ran_here, forged, "every forged part was run by the asker:\n{}", worker.log());
    if forged >= 4 {
        assert!(worker.log().contains("no word on evaluation part"), "{}", worker.log());
        assert!(worker.log().contains("no host writes"), "{}", worker.log());
    }
}

/// The (generation, slot, node) of every node a run's log holds, in order.
fn nodes_logged(home: &Path) -> Vec<(u64, u64, String)> {
    std::fs::read_to_string(home.join("runs/r/log.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|event| event["event"] == "node")
        .map(|e| (e["generation"].as_u64().unwrap(), e["slot"].as_u64().unwrap(), e["node"].as_str().unwrap().into()))
        .collect()
}

#[test]
fn with_a_live_llm_the_workers_ask_it_and_every_child_is_checked_from_their_records() {
    let _serial = serial();
    let llm = common::http::editing_server();
    // The run made here, asking the scripted LLM itself.
    let local = tempfile::tempdir().unwrap();
    with_llm(local.path(), &llm, 100);
    let config = local.path().join("cluster.toml");
    let made_here = hyperagent_cli(local.path(), &["run", "--config", config.to_str().unwrap(), "--run-id", "r"]);
    assert!(made_here.status.success(), "{}", String::from_utf8_lossy(&made_here.stderr));
    let asked_here = llm.count();
    assert!(asked_here >= 4, "every meta call asks the LLM: {asked_here}");
    // The same run made by workers, every child made again on the coordinator from the
    // workers' records.
    let server = NatsServer::start();
    let workers = [WorkerProcess::start(&server.url(), 30), WorkerProcess::start(&server.url(), 30)];
    let home = tempfile::tempdir().unwrap();
    with_llm(home.path(), &llm, 100);
    finish(coordinator_with(home.path(), &server.url(), &["--spot-check", "1"]), home.path());
    assert_eq!(failures(home.path()), Vec::<serde_json::Value>::new(), "every spot check agreed");
    assert_eq!(llm.count() - asked_here, asked_here, "the workers asked what the local run asked; the checks replayed");
    let done: usize = workers.iter().map(|w| w.log().matches("done job").count()).sum();
    assert_eq!(done, 4);
    assert_eq!(nodes_logged(home.path()), nodes_logged(local.path()));
    // Every object the nodes reach (sources, components, reports, LLM records) is the same; the
    // run objects differ, as they seal a log that holds the LLM's latencies.
    let reached = |home: &Path| {
        let archive = hyperagent::archive::Archive::open(home.join("archive")).unwrap();
        let nodes: Vec<hyperagent::hash::ContentHash> =
            nodes_logged(home).iter().map(|(_, _, node)| node.parse().unwrap()).collect();
        archive.closure(&nodes).unwrap()
    };
    assert_eq!(reached(home.path()), reached(local.path()));
    // The audit makes every meta call again from the records, with the LLM gone.
    llm.stop();
    let audit = hyperagent_cli(home.path(), &["replay", "--run", "r"]);
    let said = String::from_utf8_lossy(&audit.stdout);
    assert!(audit.status.success(), "{said}{}", String::from_utf8_lossy(&audit.stderr));
    assert_eq!(said.matches("meta call made again").count(), 4, "{said}");

    // A budget of two calls: the workers of generation 1 spend it, the coordinator counts their
    // calls and the run stops there, saying why.
    let llm = common::http::editing_server();
    let home = tempfile::tempdir().unwrap();
    with_llm(home.path(), &llm, 2);
    finish(coordinator_with(home.path(), &server.url(), &["--spot-check", "0"]), home.path());
    assert_eq!(llm.count(), 2);
    let log = std::fs::read_to_string(home.path().join("runs/r/log.jsonl")).unwrap();
    let stopped: Vec<&str> = log.lines().filter(|l| l.contains("\"event\":\"stopped\"")).collect();
    assert_eq!(stopped.len(), 1, "{log}");
    assert!(stopped[0].contains("all 2 calls"), "{}", stopped[0]);
    assert!(nodes_logged(home.path()).iter().all(|(generation, _, _)| *generation <= 1));
}

/// Writes the cluster configuration into `home` with an `[llm]` section: `llm`, at most `calls`.
fn with_llm(home: &Path, llm: &common::http::Server, calls: u64) {
    let plain = std::fs::read_to_string(config(home)).unwrap();
    let section = format!(
        "[llm]\nprovider = \"open-ai\"\nbase_url = \"{}\"\nmodel = \"scripted\"\napi_key_env = \"\"\n\
         [llm.budget]\nmax_calls = {calls}\n",
        llm.base_url
    );
    std::fs::write(home.join("cluster.toml"), format!("{plain}{section}")).unwrap();
}

#[test]
fn a_worker_killed_mid_job_loses_nothing_and_doubles_nothing() {
    let _serial = serial();
    local_run();
    let server = NatsServer::start();
    // A short ack wait, so that the dead worker's job comes back soon.
    let mut first = WorkerProcess::start(&server.url(), 3);
    let home = tempfile::tempdir().unwrap();
    let run = coordinator(home.path(), &server.url(), "0");
    first.wait_for("taking job g1 s0", Duration::from_secs(120));
    first.kill();
    let second = WorkerProcess::start(&server.url(), 3);
    finish(run, home.path());
    // The identical log holds each (generation, slot) once.
    assert_same_as_local(home.path());
    assert!(second.log().contains("done job g1 s0"), "the job was redelivered:\n{}", second.log());
    assert!(!first.log().contains("done job g1 s0"));
}

#[test]
fn the_nats_server_restarted_mid_run_with_its_store_the_run_goes_on() {
    let _serial = serial();
    local_run();
    let mut server = NatsServer::start();
    let workers = [WorkerProcess::start(&server.url(), 5), WorkerProcess::start(&server.url(), 5)];
    let home = tempfile::tempdir().unwrap();
    let run = coordinator(home.path(), &server.url(), "0");
    WorkerProcess::wait_for_any(&workers, "taking job g1", Duration::from_secs(120));
    server.restart();
    finish(run, home.path());
    assert_same_as_local(home.path());
    assert!(server.log().matches("Server is ready").count() >= 2, "{}", server.log());
}

/// Answers every job of the coordinator with a forgery: a node whose bytes are not its name
/// (slot 0), or a node that keeps every rule of the node format but claims a made-up score
/// (slot 1), which only making the child again can catch.
async fn forging_worker(url: String, jobs: usize) {
    let settings = NatsSettings::new(url);
    let layout = Layout::open(settings.connect("forger").await.unwrap(), &settings).await.unwrap();
    let bucket = Bucket::new(layout.objects.clone());
    let consumer = layout.workers_consumer(Duration::from_secs(30), 3).await.unwrap();
    let mut answered = 0;
    while answered < jobs {
        use futures::StreamExt;
        let mut batch = consumer.fetch().max_messages(1).expires(Duration::from_secs(1)).messages().await.unwrap();
        while let Some(Ok(message)) = batch.next().await {
            let job: Job = wire::parse(&message.payload, wire::JOB_SCHEMA).unwrap();
            let order = &job.order;
            let claimed = if order.slot == 0 {
                let honest = hyperagent::hash::ContentHash::of(b"what the node should be");
                let mut forged: &[u8] = b"something else";
                bucket.store.put(honest.to_hex().as_str(), &mut forged).await.unwrap();
                honest
            } else {
                let node = NodeMetadata {
                    generation: order.generation,
                    slot: order.slot,
                    status: Status::Evaluated,
                    score: Some(0.999),
                    evaluation: Some(Evaluation {
                        domains: Vec::new(),
                        passed_gate: true,
                        score: 0.999,
                        fuel: 0,
                        report: bucket.put(b"[]").await.unwrap(),
                        exchanges: Vec::new(),
                    }),
                    meta: MetaRecord {
                        summary: "forged".into(),
                        rationale: None,
                        outcome: None,
                        fuel: None,
                        logs: Vec::new(),
                        component: Some(order.meta_component),
                        tools: Vec::new(),
                    },
                    build: Some(BuildRecord::Built { load_error: None }),
                    llm: Vec::new(),
                    provenance: job.provenance,
                }
                .into_node(order.parent_tree, Some(order.meta_component), Some(order.parent));
                bucket.put(&node.canonical_json()).await.unwrap()
            };
            let result = JobResult {
                schema: wire::RESULT_SCHEMA.into(),
                run: job.run.clone(),
                session: job.session.clone(),
                generation: order.generation,
                slot: order.slot,
                worker: "forger".into(),
                outcome: Outcome::Made { node: claimed, objects: vec![], exchanges: vec![] },
            };
            publish(&layout.js, hyperagent::cluster::results_subject(&job.run), serde_json::to_vec(&result).unwrap())
                .await
                .unwrap();
            message.double_ack().await.unwrap();
            answered += 1;
        }
    }
}

#[test]
fn forged_objects_and_forged_scores_are_caught_and_the_run_is_still_the_local_one() {
    let _serial = serial();
    local_run();
    let server = NatsServer::start();
    let home = tempfile::tempdir().unwrap();
    let run = coordinator(home.path(), &server.url(), "1");
    common::block_on(forging_worker(server.url(), 4));
    finish(run, home.path());
    assert_same_as_local(home.path());
    let failures = failures(home.path());
    assert_eq!(failures.len(), 4, "{failures:?}");
    for failure in &failures {
        let reason = failure["reason"].as_str().unwrap();
        if failure["slot"] == 0 {
            assert!(reason.contains("hashes to"), "{reason}");
        } else {
            assert!(reason.contains("the spot check made node"), "{reason}");
        }
    }
}

#[test]
fn jobs_of_a_run_that_no_longer_exists_are_discarded() {
    let _serial = serial();
    let server = NatsServer::start();
    let settings = NatsSettings::new(server.url());
    let (queued, answered) = common::block_on(async {
        let layout = Layout::open(settings.connect("test").await.unwrap(), &settings).await.unwrap();
        let job = Job {
            schema: wire::JOB_SCHEMA.into(),
            run: "0123456789abcdef".into(),
            session: "ended".into(),
            config: common::small_config(),
            provenance: hyperagent::hash::ContentHash::of(b"p"),
            order: hyperagent::evolution::farm::ChildOrder {
                generation: 1,
                slot: 0,
                parent: hyperagent::hash::ContentHash::of(b"n"),
                parent_tree: hyperagent::hash::ContentHash::of(b"t"),
                meta_component: hyperagent::hash::ContentHash::of(b"c"),
                seed: 1,
                iterations_left: 1,
            },
            snapshot: hyperagent::hash::ContentHash::of(b"s"),
            eval_chunk: None,
            llm_budget: None,
        };
        publish(&layout.js, hyperagent::cluster::jobs_subject(&job.run), serde_json::to_vec(&job).unwrap())
            .await
            .unwrap();
        let mut worker = WorkerProcess::start(&server.url(), 30);
        worker.wait_for("discarding job g1 s0 of run 0123456789abcdef", Duration::from_secs(60));
        worker.wait_for("no longer exists", Duration::from_secs(1));
        worker.kill();
        let mut jobs = layout.jobs.clone();
        let mut results = layout.results.clone();
        (jobs.info().await.unwrap().state.messages, results.info().await.unwrap().state.messages)
    });
    assert_eq!((queued, answered), (0, 0), "the job left the queue and nothing answered it");
}

/// A certificate authority and a server certificate for 127.0.0.1, made with openssl in `dir`.
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs");
        assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    };
    let days = ["-days", "2"];
    openssl(
        &[
            &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem"][..],
            &days,
            &["-subj", "/CN=hyperagent test CA"],
        ]
        .concat(),
    );
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n").unwrap();
    openssl(
        &[
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-extfile",
                "server.ext",
            ][..],
            &days,
        ]
        .concat(),
    );
    (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key"))
}

#[test]
fn with_tls_and_a_password_only_the_right_credentials_connect() {
    let _serial = serial();
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(certs.path());
    let server = NatsServer::start_with(&format!(
        "tls {{ cert_file: {cert:?}, key_file: {key:?} }}\nauthorization {{ users: [ {{ user: coordinator, password: right }} ] }}"
    ));
    let settings = |password: &str, ca: Option<&Path>| NatsSettings {
        user: Some("coordinator".into()),
        password: Some(password.into()),
        ca_file: ca.map(Path::to_path_buf),
        connect_within: Duration::from_secs(3),
        ..NatsSettings::new(server.url())
    };
    common::block_on(async {
        let good = settings("right", Some(&ca));
        let layout = Layout::open(good.connect("test").await.unwrap(), &good).await.unwrap();
        assert_eq!(layout.jobs.cached_info().config.name, hyperagent::cluster::JOBS_STREAM);
        let wrong = settings("wrong", Some(&ca)).connect("test").await.unwrap_err().to_string();
        assert!(wrong.contains("refused these credentials"), "{wrong}");
        // Without the CA the server's certificate is not trusted.
        let untrusted = NatsSettings { require_tls: true, ..settings("right", None) };
        let untrusted = untrusted.connect("test").await.unwrap_err().to_string();
        assert!(untrusted.contains("retried for 3 s"), "{untrusted}");
    });
    // The worker's flags reach the same settings: it connects, and takes (and drops) a stale job.
    let mut worker = Command::new(env!("CARGO_BIN_EXE_hyperagent"))
        .args(["worker", "--nats", &server.url(), "--nats-user", "coordinator", "--nats-ca", ca.to_str().unwrap()])
        .env("HYPERAGENT_NATS_PASSWORD", "right")
        .env("HYPERAGENT_DATA_DIR", common::data_dir())
        .env("HYPERAGENT_HOME", certs.path().join("home"))
        .env("HYPERAGENT_GUEST_TARGET", common::guest_target_dir())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(worker.stderr.take().unwrap());
    let said: Vec<String> =
        std::io::BufRead::lines(stderr).map_while(Result::ok).take_while(|l| !l.contains("ready")).collect();
    let ready = worker.try_wait().unwrap().is_none();
    let _ = worker.kill();
    let _ = worker.wait();
    assert!(ready, "the worker stopped before it was ready: {said:?}");
}

#[test]
fn an_object_store_larger_than_the_server_allows_is_refused_with_what_to_change() {
    let _serial = serial();
    let server = NatsServer::start_with_store_limit("2G", "");
    let home = tempfile::tempdir().unwrap();
    let worker = |extra: &[&str]| {
        let mut worker = Command::new(env!("CARGO_BIN_EXE_hyperagent"))
            .args(["worker", "--nats", &server.url()])
            .args(extra)
            .env("HYPERAGENT_DATA_DIR", common::data_dir())
            .env("HYPERAGENT_HOME", home.path())
            .env("HYPERAGENT_GUEST_TARGET", common::guest_target_dir())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = std::io::BufReader::new(worker.stderr.take().unwrap());
        let mut said = Vec::new();
        for line in std::io::BufRead::lines(stderr).map_while(Result::ok) {
            said.push(line);
            if said.last().unwrap().contains("ready") {
                break;
            }
        }
        let ready = said.last().is_some_and(|l| l.contains("ready"));
        let _ = worker.kill();
        let status = worker.wait().unwrap();
        (ready, status, said.join("\n"))
    };
    // The default 8 GiB does not fit in 2G: the worker stops and says which numbers to change.
    let (ready, status, said) = worker(&[]);
    assert!(!ready && !status.success(), "{said}");
    assert!(said.contains("reserves 8 GiB") && said.contains("--nats-object-store-gib"), "{said}");
    // One GiB fits.
    let (ready, _, said) = worker(&["--nats-object-store-gib", "1"]);
    assert!(ready, "{said}");
    let settings = NatsSettings::new(server.url());
    common::block_on(async {
        let layout = Layout::open(settings.connect("test").await.unwrap(), &settings).await.unwrap();
        let info = layout.js.get_stream("OBJ_hyperagent-objects").await.unwrap().cached_info().config.max_bytes;
        assert_eq!(info, 1 << 30);
    });
}

/// Waits for run `r` in `home` to finish, noting when the log shows generation 0 done and when
/// it shows the last generation done; returns the time between (the generations proper).
fn generations_time(mut run: Child, home: &Path, generations: usize) -> Duration {
    let log = home.join("runs/r/log.jsonl");
    let done = || std::fs::read_to_string(&log).unwrap_or_default().matches("\"event\":\"generation\"").count();
    let (mut first, mut last) = (None, None);
    loop {
        let count = done();
        if count >= 1 && first.is_none() {
            first = Some(Instant::now());
        }
        if count > generations && last.is_none() {
            last = Some(Instant::now());
        }
        if let Some(status) = run.try_wait().unwrap() {
            assert!(status.success(), "the run failed");
            if done() > generations {
                last.get_or_insert_with(Instant::now);
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    last.expect("the last generation was logged") - first.expect("generation 0 was logged")
}

/// The wall time of one job's traffic for a trivial child, without making it: publish, take,
/// check the session, fetch the parent's tree, the meta agent and the snapshot into an empty
/// archive, store and name the results, publish the answer, take it and fetch the node.
async fn job_overhead(
    url: &str,
    archive: &hyperagent::archive::Archive,
    node: hyperagent::hash::ContentHash,
) -> Duration {
    let settings = NatsSettings::new(url);
    let layout = Layout::open(settings.connect("bench").await.unwrap(), &settings).await.unwrap();
    let stored = archive.get_node(&node).unwrap();
    let component = stored.component.unwrap();
    let coordinator = Bucket::new(layout.objects.clone());
    coordinator.put_tree(archive, &stored.tree).await.unwrap();
    coordinator.put_from(archive, &component).await.unwrap();
    coordinator.put_from(archive, &node).await.unwrap();
    let snapshot = hyperagent::evolution::farm::HistorySnapshot::default();
    let run = "0000000000000bench".to_owned();
    let mut session: &[u8] = b"live";
    layout.objects.put(hyperagent::cluster::session_object(&run).as_str(), &mut session).await.unwrap();
    let consumer = layout.workers_consumer(Duration::from_secs(30), 3).await.unwrap();
    let results = layout
        .results
        .get_or_create_consumer(
            "bench",
            async_nats::jetstream::consumer::pull::Config { durable_name: Some("bench".into()), ..Default::default() },
        )
        .await
        .unwrap();
    use futures::StreamExt;
    let started = Instant::now();
    let job = Job {
        schema: wire::JOB_SCHEMA.into(),
        run: run.clone(),
        session: "live".into(),
        config: common::small_config(),
        provenance: node,
        order: hyperagent::evolution::farm::ChildOrder {
            generation: 1,
            slot: 0,
            parent: node,
            parent_tree: stored.tree,
            meta_component: component,
            seed: 1,
            iterations_left: 1,
        },
        snapshot: coordinator.put_snapshot(&snapshot).await.unwrap(),
        eval_chunk: None,
        llm_budget: None,
    };
    publish(&layout.js, hyperagent::cluster::jobs_subject(&run), serde_json::to_vec(&job).unwrap()).await.unwrap();
    // The worker's side, with an empty archive of its own.
    let worker_home = tempfile::tempdir().unwrap();
    let worker_archive = hyperagent::archive::Archive::open(worker_home.path()).unwrap();
    let worker = Bucket::new(layout.objects.clone());
    let message = consumer.fetch().max_messages(1).messages().await.unwrap().next().await.unwrap().unwrap();
    let job: Job = wire::parse(&message.payload, wire::JOB_SCHEMA).unwrap();
    let mut live = layout.objects.get(hyperagent::cluster::session_object(&job.run)).await.unwrap();
    let mut text = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut live, &mut text).await.unwrap();
    worker.fetch_tree(&worker_archive, &job.order.parent_tree).await.unwrap();
    worker.fetch_into(&worker_archive, &job.order.meta_component).await.unwrap();
    worker.get_snapshot(&worker_archive, &job.snapshot).await.unwrap();
    worker_archive.put_blob(&archive.get_blob(&node).unwrap()).unwrap();
    worker.put_from(&worker_archive, &node).await.unwrap();
    let result = JobResult {
        schema: wire::RESULT_SCHEMA.into(),
        run: job.run.clone(),
        session: job.session.clone(),
        generation: 1,
        slot: 0,
        worker: "bench".into(),
        outcome: Outcome::Made { node, objects: vec![node], exchanges: vec![] },
    };
    publish(&layout.js, hyperagent::cluster::results_subject(&run), serde_json::to_vec(&result).unwrap())
        .await
        .unwrap();
    message.double_ack().await.unwrap();
    // The coordinator's side.
    let answer = results.fetch().max_messages(1).messages().await.unwrap().next().await.unwrap().unwrap();
    let result: JobResult = wire::parse(&answer.payload, wire::RESULT_SCHEMA).unwrap();
    answer.double_ack().await.unwrap();
    let Outcome::Made { node: made, .. } = result.outcome else { panic!("a made child") };
    coordinator.get(&made).await.unwrap();
    started.elapsed()
}

/// `cargo test --release --test cluster -- --ignored --nocapture cluster_throughput`: children
/// per minute of the generations proper (from the log's first `generation` event to its last)
/// for the local loop and for 1 and 2 workers on this machine, and the traffic of one job.
#[test]
#[ignore]
fn cluster_throughput() {
    let _serial = serial();
    let generations = 3;
    let children = 2 * generations;
    let write_config = |home: &Path| {
        let path = config(home);
        let text =
            std::fs::read_to_string(&path).unwrap().replace("generations = 2", &format!("generations = {generations}"));
        std::fs::write(&path, text).unwrap();
        path
    };
    let local = tempfile::tempdir().unwrap();
    let config_path = write_config(local.path());
    let run = Command::new(env!("CARGO_BIN_EXE_hyperagent"))
        .args(["run", "--config", config_path.to_str().unwrap(), "--run-id", "r"])
        .env("HYPERAGENT_DATA_DIR", common::data_dir())
        .env("HYPERAGENT_HOME", local.path())
        .env("HYPERAGENT_GUEST_TARGET", common::guest_target_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let local_time = generations_time(run, local.path(), generations);
    let per_minute = |time: Duration| children as f64 * 60.0 / time.as_secs_f64();
    println!(
        "local loop: {children} children in {:.1} s, {:.2} children/min",
        local_time.as_secs_f64(),
        per_minute(local_time)
    );
    // The last: every evaluation spread over the workers one task per part (bin packing's tasks
    // are cheap, so this shows what a part costs, not what it saves).
    for (workers, flags) in [(1, &[][..]), (2, &[][..]), (2, &["--eval-chunk", "1"][..])] {
        let server = NatsServer::start();
        let started: Vec<WorkerProcess> = (0..workers).map(|_| WorkerProcess::start(&server.url(), 30)).collect();
        let home = tempfile::tempdir().unwrap();
        write_config(home.path());
        let coordinator = coordinator_with(home.path(), &server.url(), &[&["--spot-check", "0"][..], flags].concat());
        let time = generations_time(coordinator, home.path(), generations);
        println!(
            "{workers} worker(s) {}: {children} children in {:.1} s, {:.2} children/min",
            flags.join(" "),
            time.as_secs_f64(),
            per_minute(time)
        );
        drop(started);
    }
    let server = NatsServer::start();
    let archive = hyperagent::archive::Archive::open(local.path().join("archive")).unwrap();
    let initial = common::log_events(&local.path().join("runs/r/log.jsonl"))
        .iter()
        .find(|e| e["event"] == "node")
        .map(|e| e["node"].as_str().unwrap().parse().unwrap())
        .unwrap();
    let mut times: Vec<Duration> =
        (0..21).map(|_| common::block_on(job_overhead(&server.url(), &archive, initial))).collect();
    times.sort();
    println!(
        "one job's traffic (publish, fetch objects into an empty archive, store results, answer): median {:.1} ms, min {:.1} ms, max {:.1} ms",
        times[10].as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[20].as_secs_f64() * 1e3
    );
}

#[test]
fn a_job_no_worker_finishes_is_given_up_after_its_deliveries_and_made_by_the_coordinator() {
    let _serial = serial();
    local_run();
    let server = NatsServer::start();
    let home = tempfile::tempdir().unwrap();
    let mut run = coordinator(home.path(), &server.url(), "0");
    // A worker that takes every job and dies on it (never answers, never acks): with an ack wait
    // of 1 s and 2 deliveries, the server gives each job up and says so. How often a job was
    // delivered is the server's count, read from its own advisories: a delivery in flight to a
    // fetch that just ended is counted there but never reaches this worker.
    let (seen, given_up) = common::block_on(async {
        use futures::StreamExt;
        let settings = NatsSettings::new(server.url());
        let client = settings.connect("dying").await.unwrap();
        let mut advisories = client
            .subscribe(format!(
                "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.{}",
                hyperagent::cluster::JOBS_STREAM,
                hyperagent::cluster::WORKERS_CONSUMER
            ))
            .await
            .unwrap();
        let layout = Layout::open(client, &settings).await.unwrap();
        let consumer = layout.workers_consumer(Duration::from_secs(1), 2).await.unwrap();
        let mut seen = std::collections::BTreeMap::<u64, ((u32, u32), i64)>::new();
        let mut given_up = std::collections::BTreeMap::<u64, i64>::new();
        // The job's place in the stream, and how often the server delivered it.
        let note_given_up = |given_up: &mut std::collections::BTreeMap<u64, i64>, payload: &[u8]| {
            let advisory: serde_json::Value = serde_json::from_slice(payload).unwrap();
            given_up.insert(advisory["stream_seq"].as_u64().unwrap(), advisory["deliveries"].as_i64().unwrap());
        };
        while run.try_wait().unwrap().is_none() {
            let mut batch =
                consumer.fetch().max_messages(8).expires(Duration::from_millis(500)).messages().await.unwrap();
            while let Some(message) = batch.next().await {
                let Ok(message) = message else { continue };
                let job: Job = wire::parse(&message.payload, wire::JOB_SCHEMA).unwrap();
                let info = message.info().unwrap();
                seen.insert(info.stream_sequence, ((job.order.generation, job.order.slot), info.delivered));
            }
            while let Ok(Some(advisory)) = tokio::time::timeout(Duration::from_millis(1), advisories.next()).await {
                note_given_up(&mut given_up, &advisory.payload);
            }
        }
        // The coordinator has seen every advisory; this subscriber may still have some on the way.
        while given_up.len() < 4
            && let Ok(Some(advisory)) = tokio::time::timeout(Duration::from_secs(5), advisories.next()).await
        {
            note_given_up(&mut given_up, &advisory.payload);
        }
        (seen, given_up)
    });
    finish(run, home.path());
    assert_same_as_local(home.path());
    // Each of the 4 jobs (2 generations of 2) was given up after exactly its 2 deliveries, and
    // what reached the dying worker is among them.
    assert_eq!(given_up.len(), 4, "{given_up:?}");
    assert!(given_up.values().all(|&deliveries| deliveries == 2), "given up after exactly 2 deliveries: {given_up:?}");
    assert!(!seen.is_empty() && seen.keys().all(|sequence| given_up.contains_key(sequence)), "{seen:?} {given_up:?}");
    assert!(seen.values().all(|(_, delivered)| (1..=2).contains(delivered)), "never past 2 deliveries: {seen:?}");
    let failures = failures(home.path());
    assert_eq!(failures.len(), 4, "{failures:?}");
    assert!(failures.iter().all(|f| f["reason"].as_str().unwrap().contains("within its deliveries")), "{failures:?}");
}
