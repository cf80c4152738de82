//! The outer loop end to end: staged gate, a killed run resumed with nothing lost or repeated, the
//! same nodes as an uninterrupted run, and the LLM path of the initial meta agent.

mod common;

use common::*;
use hyperagent::evolution::config::RunConfig;
use hyperagent::evolution::evaluate::{self, EvalPlan};
use hyperagent::evolution::log::{Event, RunLog};
use hyperagent::evolution::{Evolution, RunSetup};
use hyperagent::hash::ContentHash;
use hyperagent::sandbox::{ChatFailure, ChatRequest, ChatResponse, LlmGateway};
use hyperagent_domains::bin_packing;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn data_dir() -> PathBuf {
    std::env::var_os("HYPERAGENT_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data")))
}

/// A run small enough for a test: a few generations on small instances.
fn small_config() -> RunConfig {
    RunConfig {
        generations: 4,
        children_per_generation: 2,
        train_instances: 3,
        train_items: 150,
        staged_tasks: 1,
        validation_instances: 2,
        validation_items: 200,
        test_sets: vec!["OR1".into()],
        seed: 11,
        ..RunConfig::default()
    }
}

#[test]
fn the_staged_gate_keeps_broken_agents_from_the_full_evaluation() {
    let train = bin_packing::weibull_set("train", 1, 4, 100);
    let validation = bin_packing::weibull_set("validation", 2, 2, 100);
    let plan = EvalPlan {
        train: &train,
        validation: &validation,
        staged_tasks: 2,
        staged_threshold: 0.5,
        fuel: 1_000_000_000,
        memory_mib: 64,
        parallelism: 2,
    };
    let sandbox = Arc::new(hyperagent::sandbox::Sandbox::new(Default::default(), None).unwrap());
    let run = |hash: ContentHash| {
        let loaded = sandbox.load(&world().archive.get_blob(&hash).unwrap()).unwrap();
        block_on(evaluate::evaluate(&sandbox, &loaded, &plan, &world().archive)).unwrap()
    };
    // The probe does not speak bin packing: every staged task fails, so nothing else runs and the
    // unevaluated tasks count as 0.
    let broken = run(probe().hash);
    assert!(!broken.passed_gate);
    assert_eq!((broken.staged.tasks, broken.staged.invalid), (2, 2));
    assert_eq!((broken.train.clone(), broken.validation.clone(), broken.score), (None, None, 0.0));
    let records: Vec<serde_json::Value> =
        serde_json::from_slice(&world().archive.get_blob(&broken.report).unwrap()).unwrap();
    assert_eq!(records.len(), 2, "only the staged sample ran");
    assert!(records[0]["invalid"].as_str().unwrap().contains("guest error"), "{}", records[0]);

    let good = run(build(&guest_source("initial")));
    assert!(good.passed_gate);
    assert_eq!(good.train.as_ref().unwrap().tasks, 4);
    assert_eq!(good.validation.as_ref().unwrap().tasks, 2);
    assert_eq!(good.score, good.validation.as_ref().unwrap().mean);
    assert!(good.score > 0.8 && good.score <= 1.0, "{}", good.score);
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

fn node_events(log: &Path) -> Vec<(u32, u32, ContentHash)> {
    RunLog::read(log)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e {
            Event::Node { generation, slot, node, .. } => Some((generation, slot, node)),
            _ => None,
        })
        .collect()
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

/// An LLM double: answers every request with a priority function that differs from best fit.
struct ScriptedLlm;

const LLM_PRIORITY: &str = "pub fn priority(item: f64, remaining: f64, capacity: f64) -> f64 {\n    let left = remaining - item;\n    if left > 0.0 && left < 12.0 { -left - 80.0 } else { -left + 0.0 * capacity }\n}\n";

impl LlmGateway for ScriptedLlm {
    fn complete<'a>(
        &'a self,
        request: ChatRequest,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<ChatResponse, ChatFailure>> + Send + 'a>> {
        Box::pin(async move {
            let prompt = &request.messages.last().unwrap().content;
            assert!(prompt.contains("pub fn priority"), "the meta agent sends its source");
            Ok(ChatResponse {
                content: format!("Here it is:\n```rust\n{LLM_PRIORITY}```\n"),
                model: "scripted".into(),
                input_tokens: 10,
                output_tokens: 20,
            })
        })
    }
}

#[test]
fn with_an_llm_the_meta_agent_asks_it_for_an_edit() {
    let home = tempfile::tempdir().unwrap();
    let config = RunConfig { generations: 1, children_per_generation: 1, ..small_config() };
    let evolution = Evolution::open(
        config,
        home.path().join("runs/llm"),
        false,
        RunSetup {
            archive: world().archive.clone(),
            compiler: Arc::new(
                hyperagent::compiler::GuestCompiler::new(world().paths.compiler_settings(Duration::from_secs(600)))
                    .unwrap(),
            ),
            sandbox: Arc::new(hyperagent::sandbox::Sandbox::new(Default::default(), None).unwrap()),
            data_dir: data_dir(),
            initial_agent: world().paths.guest_agents().join("initial"),
        },
    )
    .unwrap();
    let mut evolution = evolution.with_llm(Arc::new(ScriptedLlm));
    block_on(evolution.run(&|_| {})).unwrap();
    let child = evolution.nodes().iter().find(|n| n.generation == 1).unwrap().clone();
    assert_eq!(child.status, "evaluated");
    assert!(child.summary.contains("rewritten by the LLM"), "{}", child.summary);
    let tree = world().archive.get_tree(&child.tree).unwrap();
    assert_eq!(String::from_utf8(tree.get("src/priority.rs").unwrap().bytes.clone()).unwrap(), LLM_PRIORITY);
}
