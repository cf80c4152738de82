//! Robot reward design as a domain of `hyperagent run`: registered and listed like the others;
//! answers (reward sources) built in the jail and trained on; hostile rewards scoring 0 with the
//! reason; scoring repeatable bit for bit; a short run with its baselines in the test table,
//! replayed by the audit, and run twice with the same archive; with an LLM, the reward it wrote. Budgets are tiny (a few rollouts of one simulated second): these tests
//! check the plumbing and the guarantees, not what training achieves.

mod common;

use common::*;
use hyperagent::domains::{self, HostServices};
use hyperagent::evolution::config::RunConfig;
use hyperagent_domains::{Domain, ReplayCheck, Task};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// A budget that trains in a fraction of a second: 4 rollouts of 50 control steps.
fn tiny() -> serde_json::Value {
    serde_json::json!({
        "train_tasks": 2,
        "staged_tasks": 1,
        "staged_threshold": 0.0,
        "validation_tasks": 1,
        "test_tasks": 1,
        "rollouts": 4,
        "population": 2,
        "elite": 1,
        "episode_seconds": 1.0,
    })
}

/// The domain with the runtime's reward compiler, as a run opens it.
fn domain() -> Arc<dyn Domain> {
    static DOMAIN: OnceLock<Arc<dyn Domain>> = OnceLock::new();
    DOMAIN
        .get_or_init(|| {
            let w = world();
            let compiler =
                hyperagent::compiler::GuestCompiler::new(w.paths.compiler_settings(Duration::from_secs(600)))
                    .expect("toolchain and template");
            let services = HostServices::with_compiler(Arc::new(compiler));
            domains::open("robotics", &tiny(), &data_dir(), &services).expect("the robotics domain opens")
        })
        .clone()
}

fn first_training_task() -> Task {
    domain().splits(1, 2).expect("splits").0.tasks[0].clone()
}

/// The score of an answer whose reward is `source`.
fn score(source: &str) -> hyperagent_domains::TaskScore {
    score_answer(&serde_json::json!({ "reward": source }).to_string())
}

fn score_answer(answer: &str) -> hyperagent_domains::TaskScore {
    block_on(domain().score(&first_training_task(), answer))
}

/// A reward with one term whose body is `body` (with `step: &Step` and `terms: &mut [f64]`).
fn one_term(body: &str) -> String {
    format!(
        "use crate::api::*;\npub struct Reward;\nimpl RewardFunction for Reward {{\n    const TERMS: &'static [&'static str] = &[\"probe\"];\n    fn new() -> Self {{ Reward }}\n    fn terms(&mut self, step: &Step, terms: &mut [f64]) {{\n        let _ = step;\n        {body}\n    }}\n}}\n"
    )
}

#[test]
fn the_domain_is_registered_listed_and_configured_like_the_others() {
    assert!(domains::names().contains(&"robotics"));
    let config = RunConfig::from_toml("domains = [\"robotics\"]\n[domain.robotics]\nrollouts = 24\n").unwrap();
    assert_eq!(config.domain["robotics"]["rollouts"], 24);
    let refused = RunConfig::from_toml("domains = [\"robotics\"]\n[domain.robotics]\nrollouts = 1\n").unwrap_err();
    assert!(refused.contains("rollouts"), "{refused}");

    let home = tempfile::tempdir().unwrap();
    let out = hyperagent_cli(home.path(), &["data"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("robotics: 1 of 1 data files present"), "{text}");
    assert!(text.contains("robotics/unitree_go2.xml  blake3"), "{text}");

    let d = domain();
    assert_eq!(d.replay_check(), ReplayCheck::BitExact);
    assert_eq!(d.baselines(), ["stand-tall", "jump"]);
    let sets = d.test_sets(&data_dir()).unwrap().sets;
    assert_eq!(sets.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["jump", "walk"]);
    assert!(sets[0].tasks[0].payload.contains("jump as high as it can"));
}

#[test]
fn an_answer_trains_and_scores_the_same_bit_for_bit() {
    let walk = hyperagent_robotics::rewards::SOURCES.iter().find(|(n, _)| *n == "walk").unwrap().1;
    let first = score(walk);
    assert_eq!(first.invalid, None, "{:?}", first.details);
    assert!(first.score > 0.0 && first.score <= 1.0, "{first:?}");
    assert_eq!(first.details["rollouts"], 4);
    assert!(first.details["term_sums"]["tracking_lin_vel"].as_f64().unwrap() > 0.0, "{}", first.details);
    // What an audit's re-run must match: the same score and figures, bit for bit.
    let again = score(walk);
    assert_eq!(first.score.to_bits(), again.score.to_bits());
    assert_eq!(first.details, again.details);
    // A baseline is trained the same way on the test tasks.
    let jump = &domain().test_sets(&data_dir()).unwrap().sets[0].tasks[0];
    let tall = domain().baseline("stand-tall", jump).unwrap();
    assert_eq!(tall.invalid, None);
    assert!(tall.details["fitness"]["peak_height_m"].as_f64().unwrap() > 0.1, "{}", tall.details);
    assert!(domain().baseline("nobody", jump).is_none());
}

#[test]
fn hostile_rewards_score_zero_with_the_reason() {
    let cases = [
        ("an endless loop", one_term("loop { std::hint::black_box(0u64); }"), "out of fuel"),
        ("a memory bomb", one_term("let v = vec![1u8; 1 << 30]; terms[0] = v[7] as f64;"), "out of memory"),
        ("NaN", one_term("terms[0] = f64::NAN;"), "not finite"),
        (
            "reading files",
            one_term("terms[0] = std::fs::read_to_string(\"/etc/passwd\").unwrap().len() as f64;"),
            "trapped",
        ),
        ("code that does not compile", "pub struct Reward;".to_owned(), "did not compile"),
        ("an include escape", format!("{}\nconst X: &str = include_str!(\"/etc/passwd\");\n", one_term("")), "policy"),
        ("no source at all", String::new(), "did not compile"),
    ];
    for answer in ["{}", "{\"reward\": 7}", "[]"] {
        let why = score_answer(answer).invalid.unwrap_or_default();
        assert!(why.contains("must be a JSON object"), "{answer}: {why}");
    }
    for (what, source, reason) in cases {
        let scored = score(&source);
        assert_eq!(scored.score, 0.0, "{what}: {scored:?}");
        let why = scored.invalid.unwrap_or_default();
        assert!(why.contains(reason), "{what}: expected `{reason}` in {why}");
    }
}

/// A one-generation robotics run with the tiny budget, in `home`.
fn run(home: &Path) {
    let config = RunConfig {
        domains: vec!["robotics".into()],
        domain: [("robotics".to_owned(), tiny())].into_iter().collect(),
        generations: 1,
        children_per_generation: 2,
        seed: 3,
        ..RunConfig::default()
    };
    run_config(home, &config, "go2");
}

#[test]
fn a_short_run_tests_its_best_reward_beside_the_baselines_and_repeats_exactly() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run(a.path());
    let events = log_events(&a.path().join("runs/go2/log.jsonl"));
    let nodes: Vec<&serde_json::Value> = events.iter().filter(|e| e["event"] == "node").collect();
    assert_eq!(nodes.len(), 3, "the initial node and two children");
    let baselines: Vec<&str> =
        events.iter().filter(|e| e["event"] == "baseline").map(|e| e["baseline"].as_str().unwrap()).collect();
    assert_eq!(baselines, ["stand-tall", "jump"]);
    let test = events.iter().find(|e| e["event"] == "test" && e["role"] == "best").expect("the best node is tested");
    let sets: Vec<&str> = test["sets"].as_array().unwrap().iter().map(|s| s["set"].as_str().unwrap()).collect();
    assert_eq!(sets, ["jump", "walk"]);
    assert_eq!(test["sets"][0]["metric"], "peak height (m)");
    assert!(test["sets"][0]["value"].as_f64().unwrap() > 0.1, "{test}");
    assert_eq!(test["sets"][0]["invalid"], 0, "the initial agent's jump reward builds and trains");

    // The audit builds the rewards again and retrains: the same scores, bit for bit.
    let replay = hyperagent_cli(a.path(), &["replay", "--run", "go2"]);
    let text = String::from_utf8_lossy(&replay.stdout);
    assert!(replay.status.success(), "{text}{}", String::from_utf8_lossy(&replay.stderr));
    assert!(text.contains("everything checked agrees"), "{text}");
    // Reward builds are kept apart: every object of the run's archive belongs to a node or a run.
    let verify = hyperagent_cli(a.path(), &["verify"]);
    let said = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success() && !said.contains("orphaned"), "{said}{}", String::from_utf8_lossy(&verify.stderr));

    run(b.path());
    let (objects_a, objects_b) = (object_names(&a.path().join("archive")), object_names(&b.path().join("archive")));
    assert_eq!(objects_a, objects_b, "the same objects, named by the same hashes");
    let nodes_of = |events: &[serde_json::Value]| -> Vec<serde_json::Value> {
        events.iter().filter(|e| e["event"] == "node").map(|e| e["node"].clone()).collect()
    };
    assert_eq!(nodes_of(&events), nodes_of(&log_events(&b.path().join("runs/go2/log.jsonl"))));
}

#[test]
fn with_an_llm_the_task_agent_answers_with_the_reward_the_llm_wrote() {
    let reward = one_term("terms[0] = -(step.command.forward_speed - step.observation.base_linear_velocity[0]).abs();")
        .replace("\"probe\"", "\"scripted_tracking\"");
    let reply = format!("A reward that tracks the command:\n```rust\n{reward}```\n");
    let server = common::http::Server::start(move |_, request| {
        // Only the task agent asks (the run has no generation after the initial node).
        assert!(request.json()["messages"][1]["content"].as_str().unwrap_or("").contains("crate::api"));
        common::http::Reply::json(200, common::http::openai_reply(&reply))
    });
    let home = tempfile::tempdir().unwrap();
    let config = RunConfig {
        domains: vec!["robotics".into()],
        domain: [("robotics".to_owned(), tiny())].into_iter().collect(),
        generations: 0,
        task_llm_calls: 2,
        ..RunConfig::default()
    };
    let text = format!(
        "{}\n[llm]\nprovider = \"open-ai\"\nbase_url = \"{}\"\nmodel = \"scripted\"\napi_key_env = \"\"\n",
        toml::to_string(&config).unwrap(),
        server.base_url
    );
    let path = home.path().join("llm.toml");
    std::fs::write(&path, text).unwrap();
    let out = hyperagent_cli(home.path(), &["run", "--config", path.to_str().unwrap(), "--run-id", "llm"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    server.stop();

    let archive = hyperagent::archive::Archive::open(home.path().join("archive")).unwrap();
    let events = log_events(&home.path().join("runs/llm/log.jsonl"));
    let node = events.iter().find(|e| e["event"] == "node").unwrap()["node"].as_str().unwrap().to_owned();
    let node = archive.get_node(&node.parse().unwrap()).unwrap();
    let report = node.metadata["evaluation"]["report"].as_str().unwrap().parse().unwrap();
    let records: Vec<serde_json::Value> = serde_json::from_slice(&archive.get_blob(&report).unwrap()).unwrap();
    let train = records.iter().find(|r| r["id"] == "train/0000").unwrap();
    assert!(train["answer"].as_str().unwrap().contains("scripted_tracking"), "{train}");
    assert!(train["details"]["term_sums"]["scripted_tracking"].as_f64().unwrap() < 0.0, "{train}");
    assert_eq!(train["invalid"], serde_json::Value::Null, "{train}");
}
