//! The outer loop end to end: staged gate, a killed run resumed with nothing lost or repeated, the
//! same nodes as an uninterrupted run, and the LLM path of the initial meta agent.

mod common;

use common::*;
use hyperagent::evolution::config::RunConfig;
use hyperagent::evolution::evaluate::{self, EvalPlan, RunDomain, TaskSettings};
use hyperagent::evolution::history;
use hyperagent::evolution::log::{Event, RunLog};
use hyperagent::hash::ContentHash;
use hyperagent_domains::domain::{ScoreFuture, Staging};
use hyperagent_domains::{Domain, Split, Task, TaskScore, TestSets};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A domain made here, for tests: each task asks the agent to echo a word back, and the answer
/// scores 1 when it is that word. The probe guest answers it; agents that do not know it fail it.
struct EchoDomain;

impl Domain for EchoDomain {
    fn name(&self) -> &'static str {
        "echo"
    }

    fn splits(&self, _: u64, _: u64) -> Result<(Split, Split), hyperagent_domains::DataError> {
        let split = |name: &str, count: usize| Split {
            name: name.to_owned(),
            tasks: (0..count)
                .map(|i| Task {
                    id: format!("{name}/word{i}"),
                    payload: serde_json::json!({"op": "echo", "value": format!("word{i}")}).to_string(),
                })
                .collect(),
            generated: true,
        };
        Ok((split("train", 3), split("validation", 2)))
    }

    fn test_sets(&self, _: &Path) -> Result<TestSets, hyperagent_domains::DataError> {
        Ok(TestSets { sets: Vec::new(), notice: None })
    }

    fn score<'a>(&'a self, task: &'a Task, answer: &'a str) -> ScoreFuture<'a> {
        Box::pin(async move {
            let wanted: serde_json::Value = serde_json::from_str(&task.payload).unwrap();
            let said: serde_json::Value = serde_json::from_str(answer).unwrap_or_default();
            let right = said == wanted["value"];
            TaskScore {
                score: if right { 1.0 } else { 0.0 },
                invalid: None,
                details: serde_json::json!({"right": right}),
            }
        })
    }

    fn staging(&self) -> Staging {
        Staging { tasks: 2, threshold: 0.5 }
    }
}

fn run_domain(domain: Arc<dyn Domain>) -> RunDomain {
    let (train, validation) = domain.splits(1, 2).unwrap();
    RunDomain { domain, train, validation }
}

fn small_bin_packing() -> RunDomain {
    let settings = serde_json::json!({"train_instances": 4, "train_items": 100, "validation_instances": 2,
                                      "validation_items": 100, "staged_tasks": 2});
    run_domain(hyperagent_domains::domain::open("bin_packing", &settings, &common::data_dir()).unwrap())
}

fn evaluate_on(component: ContentHash, domains: &[RunDomain]) -> evaluate::Evaluation {
    let plan = EvalPlan {
        domains,
        tasks: TaskSettings { fuel: 1_000_000_000, memory_mib: 64, parallelism: 2, llm: None },
        farm: None,
    };
    let sandbox = Arc::new(hyperagent::sandbox::Sandbox::new(Default::default(), None).unwrap());
    let loaded = sandbox.load(&world().archive.get_blob(&component).unwrap()).unwrap();
    block_on(evaluate::evaluate(&sandbox, evaluate::Evaluated { component, loaded: &loaded }, &plan, &world().archive))
        .unwrap()
}

#[test]
fn the_staged_gate_keeps_broken_agents_from_the_full_evaluation() {
    // The probe does not speak bin packing: every staged task fails, so nothing else runs and the
    // unevaluated tasks count as 0.
    let broken = evaluate_on(probe().hash, &[small_bin_packing()]);
    assert!(!broken.passed_gate);
    let part = &broken.domains[0];
    assert_eq!((part.staged.tasks, part.staged.invalid), (2, 2));
    assert_eq!((part.train.clone(), part.validation.clone(), broken.score), (None, None, 0.0));
    let records: Vec<serde_json::Value> =
        serde_json::from_slice(&world().archive.get_blob(&broken.report).unwrap()).unwrap();
    assert_eq!(records.len(), 2, "only the staged sample ran");
    assert!(records[0]["invalid"].as_str().unwrap().contains("guest error"), "{}", records[0]);

    let good = evaluate_on(build(&guest_source("initial")), &[small_bin_packing()]);
    assert!(good.passed_gate);
    let part = &good.domains[0];
    assert_eq!(part.train.as_ref().unwrap().tasks, 4);
    assert_eq!(part.validation.as_ref().unwrap().tasks, 2);
    assert_eq!(good.score, part.validation.as_ref().unwrap().mean);
    assert!(good.score > 0.8 && good.score <= 1.0, "{}", good.score);
}

#[test]
fn two_domains_score_apart_and_a_staged_failure_in_either_stops_both() {
    let both = [small_bin_packing(), run_domain(Arc::new(EchoDomain))];
    // The initial agent packs bins but does not know `echo`: its echo sample fails, so neither
    // domain goes past its sample, and the node's score is the mean of the two scaled samples.
    let initial = evaluate_on(build(&guest_source("initial")), &both);
    assert!(!initial.passed_gate);
    let names: Vec<&str> = initial.domains.iter().map(|d| d.domain.as_str()).collect();
    assert_eq!(names, ["bin_packing", "echo"]);
    let (packing, echo) = (&initial.domains[0], &initial.domains[1]);
    assert!(packing.staged.mean > 0.8, "bin packing's sample passed on its own: {}", packing.staged.mean);
    assert_eq!((echo.staged.mean, echo.staged.invalid), (0.0, 2));
    assert!(packing.validation.is_none() && echo.validation.is_none(), "the joint gate stopped both");
    assert_eq!(packing.score, packing.staged.mean * 2.0 / 4.0);
    assert_eq!(initial.score, (packing.score + echo.score) / 2.0);
    let records: Vec<serde_json::Value> =
        serde_json::from_slice(&world().archive.get_blob(&initial.report).unwrap()).unwrap();
    assert_eq!(records.len(), 4, "two staged tasks per domain, nothing else");
    let unknown = records.iter().find(|r| r["domain"] == "echo").unwrap();
    assert!(unknown["invalid"].as_str().unwrap().contains("echo"), "the agent names the domain it lacks: {unknown}");
    // The probe echoes but does not pack: the other way round, the same joint stop.
    let echoing = evaluate_on(probe().hash, &both);
    assert!(!echoing.passed_gate);
    assert_eq!((echoing.domains[0].staged.mean, echoing.domains[1].staged.mean), (0.0, 1.0));
    // With the echo domain alone the probe passes and is evaluated in full.
    let echo_only = evaluate_on(probe().hash, &[run_domain(Arc::new(EchoDomain))]);
    assert!(echo_only.passed_gate);
    assert_eq!((echo_only.score, echo_only.domains[0].train.as_ref().unwrap().tasks), (1.0, 3));
}

fn hyperagent_run(home: &Path, config: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hyperagent"));
    command
        .args(["run", "--config"])
        .arg(config)
        .arg("--data-dir")
        .arg(data_dir())
        .args(extra)
        .env("HYPERAGENT_HOME", home)
        .env("HYPERAGENT_GUEST_TARGET", guest_target_dir());
    command
}

#[test]
fn a_killed_run_resumes_with_nothing_lost_or_repeated() {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("run.toml");
    std::fs::write(&config, toml::to_string(&small_config()).unwrap()).unwrap();

    // Kill the run as soon as the first child of generation 2 is in the log.
    let mut child = hyperagent_run(home.path(), &config, &["--run-id", "killed"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let log = home.path().join("runs/killed/log.jsonl");
    let started = Instant::now();
    loop {
        let events = if log.is_file() { node_events(&log) } else { Vec::new() };
        if events.iter().any(|(g, _, _)| *g >= 2) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(600), "the run made no progress");
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = node_events(&log);
    assert!(before.len() < 1 + 4 * 2, "the kill came before the run completed");

    let resumed = hyperagent_run(home.path(), &config, &["--resume", "killed"]).output().unwrap();
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    let after = node_events(&log);
    // Everything logged before the kill is still there, first and unchanged...
    assert_eq!(&after[..before.len()], &before[..]);
    // ...and every (generation, slot) appears exactly once.
    let mut slots: Vec<(u32, u32)> = after.iter().map(|(g, s, _)| (*g, *s)).collect();
    slots.sort();
    let expected: Vec<(u32, u32)> =
        std::iter::once((0, 0)).chain((1..=4).flat_map(|g| (0..2).map(move |s| (g, s)))).collect();
    assert_eq!(slots, expected);
    let events = RunLog::read(&log).unwrap();
    assert!(matches!(events.last(), Some(Event::Finished { .. })));
    assert_eq!(events.iter().filter(|e| matches!(e, Event::Started { .. })).count(), 1);

    // An uninterrupted run of the same configuration makes exactly the same nodes.
    let straight = hyperagent_run(home.path(), &config, &["--run-id", "straight"]).output().unwrap();
    assert!(straight.status.success(), "{}", String::from_utf8_lossy(&straight.stderr));
    let mut a = after.clone();
    let mut b = node_events(&home.path().join("runs/straight/log.jsonl"));
    a.sort();
    b.sort();
    assert_eq!(a, b, "a resumed run and an uninterrupted one must agree node for node");

    // The worst moment for a crash, made certain: the log ends right after the first child of
    // generation 2, so the resumed generation already holds one of its own children. The slots
    // still to make must see the archive as the first attempt saw it.
    let straight_log = std::fs::read_to_string(home.path().join("runs/straight/log.jsonl")).unwrap();
    let mut cut = String::new();
    for line in straight_log.lines() {
        cut.push_str(line);
        cut.push('\n');
        let event: Event = serde_json::from_str(line).unwrap();
        if matches!(event, Event::Node { generation: 2, .. }) {
            break;
        }
    }
    std::fs::create_dir_all(home.path().join("runs/cut")).unwrap();
    std::fs::write(home.path().join("runs/cut/log.jsonl"), cut).unwrap();
    let resumed = hyperagent_run(home.path(), &config, &["--resume", "cut"]).output().unwrap();
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    let mut c = node_events(&home.path().join("runs/cut/log.jsonl"));
    c.sort();
    assert_eq!(c, b, "a generation resumed half-way must make the nodes an uninterrupted one made");

    let status = Command::new(env!("CARGO_BIN_EXE_hyperagent"))
        .args(["status", "killed"])
        .env("HYPERAGENT_HOME", home.path())
        .output()
        .unwrap();
    assert!(status.status.success());
    assert_eq!(
        String::from_utf8_lossy(&status.stdout)
            .lines()
            .filter(|l| l.contains("evaluated")
                || l.contains("staged-only")
                || l.contains("failed")
                || l.contains("rejected"))
            .count(),
        9
    );
}

/// A live LLM run in `home` against a fresh scripted server: writes its configuration
/// (`children_per_generation` 1, the given budget and generations), runs it as `run_id`, insists
/// that it succeeded; returns the server, the configuration's path and the run's output.
fn llm_run(home: &Path, max_calls: u64, generations: u32, run_id: &str) -> (common::http::Server, PathBuf, Output) {
    llm_run_with(common::http::editing_server(), home, max_calls, generations, run_id)
}

fn llm_run_with(
    server: common::http::Server,
    home: &Path,
    max_calls: u64,
    generations: u32,
    run_id: &str,
) -> (common::http::Server, PathBuf, Output) {
    let config = RunConfig { generations, children_per_generation: 1, ..small_config() };
    let toml = format!(
        "{}\n[llm]\nprovider = \"open-ai\"\nbase_url = \"{}\"\nmodel = \"scripted\"\napi_key_env = \"\"\ninitial_backoff_ms = 10\n\n[llm.budget]\nmax_calls = {max_calls}\n",
        toml::to_string(&config).unwrap(),
        server.base_url
    );
    let path = home.join("llm.toml");
    std::fs::write(&path, toml).unwrap();
    let output = hyperagent_run(home, &path, &["--run-id", run_id]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    (server, path, output)
}

/// Stops the server, replays run `from` as `to` from its records, and insists that the replay
/// succeeded without the network and made the recorded run's nodes.
fn replay_alike(home: &Path, config: &Path, server: &common::http::Server, from: &str, to: &str) {
    server.stop();
    let requests = server.count();
    let replay =
        hyperagent_run(home, config, &["--run-id", to, "--llm", "replay", "--replay-from", from]).output().unwrap();
    assert!(replay.status.success(), "{}", String::from_utf8_lossy(&replay.stderr));
    assert_eq!(server.count(), requests, "the replay reached the network");
    let log = |run: &str| home.join("runs").join(run).join("log.jsonl");
    assert_eq!(node_events(&log(to)), node_events(&log(from)));
}

/// A scripted server whose every answer makes the child reach for the network: the edit builds
/// (the source policy allows `std::net`), and the sandbox refuses the component it makes.
fn networking_server() -> common::http::Server {
    common::http::Server::start(|_, _| {
        let line = "pub fn priority(item: f64, remaining: f64, capacity: f64, index: f64, bins: f64) -> f64 {";
        let edit = format!(
            "<<<<<<< SEARCH src/priority.rs\n{line}\n=======\n{line}\n    if item < 0.0 && std::net::TcpStream::connect(\"127.0.0.1:9\").is_ok() {{\n        return 0.0;\n    }}\n>>>>>>> REPLACE\nSummary: phone home\n"
        );
        common::http::Reply::json(200, common::http::openai_reply(&edit))
    })
}

#[test]
fn a_child_the_sandbox_refuses_is_its_own_failure_not_the_runs() {
    let home = tempfile::tempdir().unwrap();
    let (_server, _config, _run) = llm_run_with(networking_server(), home.path(), 100, 2, "hostile");
    let log = home.path().join("runs/hostile/log.jsonl");
    let archive = hyperagent::archive::Archive::open(home.path().join("archive")).unwrap();
    let children: Vec<_> = node_events(&log).into_iter().skip(1).collect();
    assert_eq!(children.len(), 2, "both generations made their child");
    for (_, _, child) in children {
        let node = archive.get_node(&child).unwrap();
        assert_eq!(node.metadata["status"], "load-failed", "{:?}", node.metadata);
        let why = node.metadata["build"]["load_error"].as_str().unwrap();
        assert!(why.contains("wasi:sockets"), "{why}");
        assert!(node.component.is_some(), "the refused component is kept for inspection");
    }
    assert!(RunLog::read(&log).unwrap().iter().any(|e| matches!(e, Event::Finished { .. })));
    // Nothing of the refused children is left unaccounted for in the archive.
    let verify = archive.verify().unwrap();
    assert!(verify.problems.is_empty(), "{:?}", verify.problems);
}

#[test]
fn an_llm_run_records_every_exchange_and_replays_without_the_network() {
    let home = tempfile::tempdir().unwrap();
    let (server, config, live) = llm_run(home.path(), 100, 2, "live");
    assert_eq!(server.count(), 2, "one completion per meta call");
    let live_log = RunLog::read(&home.path().join("runs/live/log.jsonl")).unwrap();
    let exchanges: Vec<_> = live_log.iter().filter(|e| matches!(e, Event::LlmExchange { .. })).collect();
    assert_eq!(exchanges.len(), 2);
    let archive = hyperagent::archive::Archive::open(home.path().join("archive")).unwrap();
    let child = node_events(&home.path().join("runs/live/log.jsonl"))[1].2;
    let node = archive.get_node(&child).unwrap();
    assert!(
        node.metadata["meta"]["summary"].as_str().unwrap().starts_with("LLM edit of src/priority.rs"),
        "{:?}",
        node.metadata["meta"]
    );
    let tree = archive.get_tree(&node.tree).unwrap();
    assert!(String::from_utf8_lossy(&tree.get("src/priority.rs").unwrap().bytes).contains("WASTE_WEIGHT: f64 = 1.5;"));
    assert!(String::from_utf8_lossy(&tree.get("NOTES.md").unwrap().bytes).contains("weigh the waste more"));

    // Replay with the server gone: the same nodes, the same records, no network.
    replay_alike(home.path(), &config, &server, "live", "replayed");
    // The audit makes every meta call again from its recorded answers: the same children.
    let audit = Command::new(env!("CARGO_BIN_EXE_hyperagent"))
        .args(["replay", "--run", "live", "--data-dir"])
        .arg(data_dir())
        .env("HYPERAGENT_HOME", home.path())
        .env("HYPERAGENT_GUEST_TARGET", guest_target_dir())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&audit.stdout);
    assert!(audit.status.success(), "{said}{}", String::from_utf8_lossy(&audit.stderr));
    assert_eq!(said.matches("meta call made again").count(), 2, "{said}");
    let records = |log: &str| -> Vec<ContentHash> {
        RunLog::read(&home.path().join(log))
            .unwrap()
            .into_iter()
            .filter_map(|e| if let Event::LlmExchange { record, .. } = e { Some(record) } else { None })
            .collect()
    };
    assert_eq!(records("runs/live/log.jsonl"), records("runs/replayed/log.jsonl"));

    // `show` displays the conversation.
    let show = Command::new(env!("CARGO_BIN_EXE_hyperagent"))
        .args(["show", &child.to_hex()[..12]])
        .env("HYPERAGENT_HOME", home.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(
        text.contains("LLM conversation (1 exchange(s))") && text.contains("<<<<<<< SEARCH src/priority.rs"),
        "{text}"
    );
    // `status` and the run's own output say what the LLM was used for.
    let status = hyperagent_cli(home.path(), &["status", "live"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("LLM: 2 exchange(s), 2 answered, 0 without an answer"), "{text}");
    assert!(String::from_utf8_lossy(&live.stdout).contains("LLM: 2 exchange(s)"));

    // A replay of a run that recorded nothing fails each request by name (the meta agent then falls
    // back to mutation, and the node says so).
    let other = hyperagent_run(
        home.path(),
        &config,
        &["--run-id", "other", "--llm", "replay", "--replay-from", "killed-nowhere"],
    )
    .output()
    .unwrap();
    assert!(!other.status.success());
    assert!(
        String::from_utf8_lossy(&other.stderr).contains("killed-nowhere"),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );
}

#[test]
fn a_spent_llm_budget_ends_the_run_cleanly_and_says_why() {
    let home = tempfile::tempdir().unwrap();
    let (server, config, run) = llm_run(home.path(), 1, 4, "budget");
    assert!(String::from_utf8_lossy(&run.stderr).contains("stopped early"), "{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(server.count(), 1);
    let events = RunLog::read(&home.path().join("runs/budget/log.jsonl")).unwrap();
    let reason = events
        .iter()
        .find_map(|e| if let Event::Stopped { reason } = e { Some(reason.clone()) } else { None })
        .expect("a stop event");
    assert!(reason.contains("1 calls"), "{reason}");
    assert!(matches!(events.last(), Some(Event::Finished { .. })));
    // Generation 2's meta agent was told the budget was spent and fell back to mutation.
    let second = node_events(&home.path().join("runs/budget/log.jsonl"))[2].2;
    let archive = hyperagent::archive::Archive::open(home.path().join("archive")).unwrap();
    let node = archive.get_node(&second).unwrap();
    let logs = node.metadata["meta"]["logs"].to_string();
    assert!(logs.contains("budget exhausted"), "{logs}");
    assert!(
        node_events(&home.path().join("runs/budget/log.jsonl")).len() < 5,
        "the run stopped before its last generation"
    );

    // Replayed with the server stopped, the refused request is refused alike and the replay stops
    // where the recorded run stopped: the same nodes, and the same reason.
    replay_alike(home.path(), &config, &server, "budget", "budget-again");
    let again = RunLog::read(&home.path().join("runs/budget-again/log.jsonl")).unwrap();
    assert!(again.iter().any(|e| matches!(e, Event::Stopped { reason: r } if *r == reason)));
}

#[test]
fn an_llm_run_replayed_on_another_machine_gives_a_byte_identical_archive() {
    let (recorded, auditor) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (server, config, _live) = llm_run(recorded.path(), 100, 2, "live");
    server.stop();

    // The auditor gets the run as a bundle, then replays it with no network at all.
    let bundle = recorded.path().join("live.bundle");
    let hyperagent = |home: &Path, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_hyperagent")).args(args).env("HYPERAGENT_HOME", home).output().unwrap()
    };
    assert!(hyperagent(recorded.path(), &["export", "live", bundle.to_str().unwrap()]).status.success());
    assert!(hyperagent(auditor.path(), &["import", bundle.to_str().unwrap()]).status.success());
    let before_replay = object_names(&auditor.path().join("archive"));
    assert_eq!(
        before_replay,
        object_names(&recorded.path().join("archive")),
        "the bundle carries the whole archive of the run"
    );
    let replay =
        hyperagent_run(auditor.path(), &config, &["--run-id", "again", "--llm", "replay", "--replay-from", "live"])
            .output()
            .unwrap();
    assert!(replay.status.success(), "{}", String::from_utf8_lossy(&replay.stderr));
    // The replay is a run of its own, with its own log and so its own run objects; besides those
    // it adds nothing: every node, tree, component, report and record is the recorded one.
    let archive = hyperagent::archive::Archive::open(auditor.path().join("archive")).unwrap();
    let own: Vec<String> = archive
        .run_object_ids()
        .unwrap()
        .into_iter()
        .filter(|id| archive.get_run_object(id).unwrap().run == "again")
        .map(|id| id.to_hex())
        .collect();
    assert!(!own.is_empty());
    let added: Vec<String> =
        object_names(&auditor.path().join("archive")).into_iter().filter(|o| !before_replay.contains(o)).collect();
    assert_eq!(added.iter().filter(|o| !own.contains(o)).count(), 0, "the replay added objects: {added:?}");
    assert_eq!(
        node_events(&recorded.path().join("runs/live/log.jsonl")),
        node_events(&auditor.path().join("runs/again/log.jsonl"))
    );
    assert_eq!(server.count(), 2);
}

#[test]
fn history_shows_training_results_and_never_a_validation_or_test_task() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("run.toml");
    let config = RunConfig { generations: 2, ..small_config() };
    std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    let run = hyperagent_run(home.path(), &path, &["--run-id", "seen"]).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));

    // /history as the loop writes it for a child of the last node, from the run's archive.
    let archive = hyperagent::archive::Archive::open(home.path().join("archive")).unwrap();
    let domains =
        hyperagent::evolution::run_domains(&config, &common::data_dir(), &hyperagent::domains::HostServices::none())
            .unwrap();
    let training = history::training_tasks(&domains);
    let mut nodes = Vec::new();
    for (_, _, id) in node_events(&home.path().join("runs/seen/log.jsonl")) {
        hyperagent::evolution::enter_node(&mut nodes, hyperagent::evolution::node_record(&archive, &id).unwrap());
    }
    let entries: Vec<_> = nodes
        .iter()
        .map(|node| {
            let parent_tree = node.parent.and_then(|p| nodes.iter().find(|n| n.id == p)).map(|p| p.tree);
            (node.id, Arc::new(history::node_entry(&archive, node, parent_tree, &domains, &training).unwrap()))
        })
        .collect();
    let dir = home.path().join("history");
    let last = nodes.last().unwrap().id;
    history::write(
        &dir,
        &history::archive_list(&nodes, hyperagent::evolution::selection::Selection::DgmH),
        &entries,
        &history::task_inputs(&domains),
        &last,
    )
    .unwrap();

    let mut seen = String::new();
    for entry in walk(&dir) {
        seen.push_str(&std::fs::read_to_string(entry).unwrap());
    }
    // Every training task is shown with its input, and the evaluated nodes' answers with feedback.
    let bin_packing = &domains[0];
    for task in &bin_packing.train.tasks {
        assert!(seen.contains(&format!("\"{}\"", task.id)), "training task {} is shown", task.id);
    }
    let initial: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("nodes/{}.json", nodes[0].id))).unwrap())
            .unwrap();
    let results = initial["training"].as_array().unwrap();
    assert_eq!(results.len(), bin_packing.train.tasks.len());
    assert!(results[0]["answer"].as_str().unwrap().starts_with("{\"bins\":"), "{}", results[0]);
    assert!(results[0]["feedback"]["l1_bound"].is_u64(), "{}", results[0]);
    let child = nodes.iter().find(|n| n.parent.is_some()).unwrap();
    let child_file = std::fs::read_to_string(dir.join(format!("nodes/{}.json", child.id))).unwrap();
    assert!(child_file.contains("--- a/src/"), "the child's change is its diff: {child_file}");
    // `show` prints what the child's meta agent logged while it worked (its summary, at the end).
    let show = hyperagent_cli(home.path(), &["show", &child.id.to_hex()]);
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(shown.contains("meta agent's log (") && shown.contains("[info] "), "{shown}");
    // No validation or test task: neither an id nor an input (a validation payload's items).
    assert!(!seen.contains("validation/"), "a validation task id reached /history");
    assert!(!seen.contains("test/"), "a test task id reached /history");
    for task in &bin_packing.validation.tasks {
        let items: serde_json::Value = serde_json::from_str(&task.payload).unwrap();
        let items = items["items"].to_string();
        assert!(!seen.replace([' ', '\n'], "").contains(&items[..60]), "a validation input reached /history");
    }
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}

#[test]
fn a_replay_that_makes_other_nodes_stops_and_names_the_first_divergence() {
    let home = tempfile::tempdir().unwrap();
    let (server, config, _live) = llm_run(home.path(), 100, 1, "recorded");
    server.stop();
    // The same records, another seed: other training tasks, so the initial node already differs.
    let replay = hyperagent_run(
        home.path(),
        &config,
        &["--run-id", "other", "--llm", "replay", "--replay-from", "recorded", "--seed", "99"],
    )
    .output()
    .unwrap();
    let said = String::from_utf8_lossy(&replay.stderr);
    assert_eq!(replay.status.code(), Some(1), "{said}");
    assert!(said.contains("the replay diverged at generation 0 slot 0"), "{said}");
    // Nothing after the divergence was logged.
    let events = node_events(&home.path().join("runs/other/log.jsonl"));
    assert!(events.is_empty(), "{events:?}");
}

#[test]
fn a_meta_call_that_dies_at_its_deadline_with_a_request_in_flight_replays_identically() {
    let home = tempfile::tempdir().unwrap();
    // A backend slower than the meta call's deadline: the answer comes after the call has ended.
    let server = common::http::Server::start(|_, _| {
        let mut reply = common::http::Reply::json(200, common::http::openai_reply("too late"));
        reply.delay = Duration::from_secs(6);
        reply
    });
    let config =
        RunConfig { generations: 1, children_per_generation: 1, meta_deadline_secs: Some(2), ..small_config() };
    let toml = format!(
        "{}\n[llm]\nprovider = \"open-ai\"\nbase_url = \"{}\"\nmodel = \"scripted\"\napi_key_env = \"\"\ntimeout_ms = 60000\nmax_retries = 0\n",
        toml::to_string(&config).unwrap(),
        server.base_url
    );
    let path = home.path().join("slow.toml");
    std::fs::write(&path, toml).unwrap();
    let live = hyperagent_run(home.path(), &path, &["--run-id", "slow"]).output().unwrap();
    let said = String::from_utf8_lossy(&live.stderr);
    assert!(live.status.success(), "{said}");
    assert!(said.contains("warning: meta_deadline_secs = 2 is shorter"), "{said}");
    let archive = hyperagent::archive::Archive::open(home.path().join("archive")).unwrap();
    let child = node_events(&home.path().join("runs/slow/log.jsonl"))[1].2;
    let node = archive.get_node(&child).unwrap();
    assert_eq!(node.metadata["status"], "meta-failed", "{:?}", node.metadata);
    assert_eq!(node.metadata["meta"]["outcome"]["kind"], "deadline");
    // The request in flight is recorded as ended by the deadline.
    let record: hyperagent::hash::ContentHash = node.metadata["llm"][0].as_str().unwrap().parse().unwrap();
    let exchange: hyperagent::llm::Exchange = serde_json::from_slice(&archive.get_blob(&record).unwrap()).unwrap();
    assert_eq!((exchange.response, exchange.failure), (None, Some(hyperagent::llm::record::Failure::CallEnded)));
    // Replayed with the server stopped, the call ends at the same request the same way: the same
    // node, not a child made from a fallback (which is what racing the clock again gave).
    replay_alike(home.path(), &path, &server, "slow", "slow-again");
}

#[test]
fn an_hgm_run_chooses_parents_by_their_clades_and_every_choice_re_derives() {
    use hyperagent::evolution::selection::Selection;
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("run.toml");
    let config = RunConfig { generations: 2, selection: Selection::Hgm, ..small_config() };
    std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    let run = hyperagent_run(home.path(), &path, &["--run-id", "hgm"]).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));

    // An auditor re-derives every parent from the seed and the archive, by the same rule.
    let archive = hyperagent::archive::Archive::open(home.path().join("archive")).unwrap();
    let events = RunLog::read(&home.path().join("runs/hgm/log.jsonl")).unwrap();
    let problems = hyperagent::audit::check_parent_choices(&archive, &config, &events).unwrap();
    assert!(problems.is_empty(), "{problems:?}");

    // `/history` carries what the rule judges by: own and clade results, and the chances.
    let mut nodes = Vec::new();
    for (_, _, id) in node_events(&home.path().join("runs/hgm/log.jsonl")) {
        hyperagent::evolution::enter_node(&mut nodes, hyperagent::evolution::node_record(&archive, &id).unwrap());
    }
    let list = history::archive_list(&nodes, Selection::Hgm);
    let total_tasks: u64 = list.iter().map(|n| n["hgm"]["own"]["tasks"].as_u64().unwrap()).sum();
    assert!(total_tasks > 0);
    assert_eq!(list[0]["hgm"]["clade"]["tasks"].as_u64().unwrap(), total_tasks, "the root's clade is the run");
    let chances: f64 = list.iter().map(|n| n["hgm"]["chance"].as_f64().unwrap()).sum();
    assert!((chances - 1.0).abs() < 1e-9, "{chances}");
    for (entry, node) in list.iter().zip(&nodes) {
        if !node.can_be_parent() {
            assert_eq!(entry["hgm"]["chance"].as_f64().unwrap(), 0.0, "{entry}");
        }
    }
    // Under another rule the list is as it always was.
    assert!(history::archive_list(&nodes, Selection::DgmH).iter().all(|n| n.get("hgm").is_none()));

    // `status` shows the next choice by the run's rule.
    let status = hyperagent_cli(home.path(), &["status", "hgm"]);
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success() && shown.contains("next parent choice (hgm;"), "{shown}");
    assert!(shown.contains("clade mean"), "{shown}");
}
