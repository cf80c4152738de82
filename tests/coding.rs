//! The coding domain's scorer against the real exercises: reference solutions pass, stubs fail, a
//! solution that fails one test scores 0 with that test named, and hostile solutions are held in
//! the jail and the sandbox and scored 0 with the reason. Needs the data directory's `coding/`.

mod common;

use common::*;
use hyperagent::coding::exercise::{self, Exercise};
use hyperagent::coding::runner::TestLimits;
use hyperagent::coding::scoring::Scorer;
use hyperagent_domains::TaskScore;
use std::collections::BTreeMap;
use std::sync::Arc;

fn scorer() -> &'static Scorer {
    static SCORER: std::sync::OnceLock<Scorer> = std::sync::OnceLock::new();
    SCORER.get_or_init(|| {
        let compiler = hyperagent::compiler::GuestCompiler::new(
            world().paths.compiler_settings(std::time::Duration::from_secs(600)),
        )
        .unwrap();
        // The domain's own limits: what a run scores with.
        Scorer::new(Arc::new(compiler), TestLimits::default())
    })
}

fn benchmark() -> Vec<Exercise> {
    exercise::read_all(&data_dir().join(exercise::BENCHMARK_DIR)).expect("the data directory holds coding/")
}

fn lib(text: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("src/lib.rs".to_owned(), text.to_owned())])
}

fn one(name: &str) -> Exercise {
    benchmark().into_iter().find(|e| e.name == name).unwrap()
}

fn score(exercise: &Exercise, text: &str) -> TaskScore {
    scorer().score(exercise, &lib(text))
}

#[test]
fn every_benchmark_exercise_is_scored_or_excluded_with_its_reason() {
    let all = benchmark();
    assert_eq!(all.len(), 30);
    let excluded: Vec<(String, String)> =
        all.iter().filter_map(|e| e.exclusion().map(|why| (e.name.clone(), why))).collect();
    let names: Vec<&str> = excluded.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["luhn-from", "macros"], "{excluded:?}");
}

#[test]
fn exercises_build_with_the_vendored_crates_they_ask_for_and_no_others() {
    // gigasecond's solution and tests use `time` 0.3, from the vendored copy, offline.
    let gigasecond = one("gigasecond");
    assert_eq!(gigasecond.dependencies[0].name, "time");
    let scored = scorer().score_reference(&gigasecond);
    assert_eq!(scored.score, 1.0, "{scored:?}");
    // A requirement no vendored version satisfies is that build's failure, with the reason.
    let mut unsatisfied = gigasecond.clone();
    unsatisfied.dependencies[0].requirement = "0.1.40".into();
    let refused = scorer().score_reference(&unsatisfied);
    assert!(refused.invalid.as_deref().unwrap().contains("cannot be resolved offline"), "{refused:?}");
    // A crate that is not vendored is named in the exercise's exclusion.
    unsatisfied.dependencies[0].name = "chrono".into();
    assert!(unsatisfied.exclusion().unwrap().contains("chrono, which is not vendored"));
    // The solver's crate set is the exercise manifest's: a solution using a crate only the
    // reference's manifest names does not build.
    let alphametics = one("alphametics");
    assert!(alphametics.dependencies.is_empty() && alphametics.example_dependencies.is_some());
    let unlisted = score(&alphametics, &alphametics.example);
    assert!(unlisted.invalid.as_deref().unwrap().contains("`extern crate itertools` is not allowed"), "{unlisted:?}");
}

#[test]
fn reference_solutions_pass_and_stubs_fail() {
    let mut unchecked = Vec::new();
    for exercise in benchmark().iter().filter(|e| e.exclusion().is_none()) {
        if let Some(why) = exercise.example_exclusion() {
            unchecked.push(format!("{}: {why}", exercise.name));
        } else {
            let passed = scorer().score_reference(exercise);
            // The source policy is this project's; a reference it refuses is named, not hidden.
            if let Some(why) = passed.invalid.as_deref().filter(|why| why.starts_with("refused by the source policy")) {
                unchecked.push(format!("{}: {why}", exercise.name));
            } else {
                assert_eq!(passed.score, 1.0, "{}: {:?}", exercise.name, passed);
                assert!(passed.details["passed"].as_u64().unwrap() > 0);
            }
        }
        let stub = scorer().score(exercise, &exercise.stub);
        assert_eq!(stub.score, 0.0, "{}: the stub passed: {stub:?}", exercise.name);
    }
    eprintln!("reference solutions not checked here: {unchecked:#?}");
    assert!(unchecked.len() <= 3, "{unchecked:?}");
}

#[test]
fn the_upstream_tracks_reference_solutions_pass_with_the_exceptions_named() {
    let track = exercise::read_all(&data_dir().join(exercise::TRACK_DIR)).unwrap();
    assert_eq!(track.len(), 106);
    let (mut checked, mut skipped, mut refused) = (0, Vec::new(), Vec::new());
    for exercise in &track {
        if let Some(why) = exercise.exclusion().or_else(|| exercise.example_exclusion()) {
            skipped.push(format!("{}: {why}", exercise.name));
            continue;
        }
        let passed = scorer().score_reference(exercise);
        // The source policy is this project's; a reference it refuses is named, not hidden.
        if let Some(why) = passed.invalid.as_deref().filter(|why| why.starts_with("refused by the source policy")) {
            refused.push(format!("{}: {why}", exercise.name));
            continue;
        }
        assert_eq!(passed.score, 1.0, "{}: {:?}", exercise.name, passed);
        checked += 1;
    }
    eprintln!("{checked} reference solutions pass; not checked: {skipped:#?}; refused by the policy: {refused:#?}");
    assert!(refused.len() <= 2, "{refused:?}");
    assert!(checked >= 100, "{checked} checked; skipped {skipped:?}");
}

#[test]
fn a_solution_that_fails_one_test_scores_0_with_that_test_named() {
    let acronym = one("acronym");
    // The reference solution, made to keep hyphenated words whole.
    let broken = acronym.example.replacen("c != '\\''", "c != '\\'' && c != '-'", 1);
    assert_ne!(broken, acronym.example, "the edit applies");
    let scored = score(&acronym, &broken);
    assert_eq!(scored.score, 0.0);
    let failing: Vec<&str> = scored.details["failing"].as_array().unwrap().iter().filter_map(|f| f.as_str()).collect();
    assert!(!failing.is_empty() && failing.len() < 4, "{failing:?}");
    assert!(failing.iter().all(|f| f.starts_with("acronym::")), "{failing:?}");
    assert!(scored.details["passed"].as_u64().unwrap() >= 6, "{:?}", scored.details);
    assert!(scored.details["first_failure"].as_str().unwrap().contains("panicked"), "{:?}", scored.details);
}

#[test]
fn hostile_solutions_are_contained_and_score_0_with_the_reason() {
    let acronym = one("acronym");
    let signature = "pub fn abbreviate(phrase: &str) -> String";
    let body = |code: &str| format!("{signature} {{ {code} }}");
    let cases = [
        ("loop", body("let mut x = 0u64; loop { x = x.wrapping_add(phrase.len() as u64); }"), "out of fuel"),
        ("memory bomb", body("let mut v = Vec::new(); loop { v.push(vec![1u8; 1 << 20]); }"), "memory"),
        ("exit", body("std::process::exit(0)"), "did not run"),
        ("print a gigabyte", body("loop { print!(\"{}\", \"x\".repeat(1 << 20)); }"), "failed printing to stdout"),
        ("read /", body("std::fs::read_dir(\"/\").map(|d| d.count().to_string()).unwrap()"), "panicked"),
        (
            "fill the working directory",
            body("let mut i = 0u64; loop { std::fs::write(format!(\"f{i}\"), vec![1u8; 1 << 20]).unwrap(); i += 1; }"),
            "the working directory grew past its limits",
        ),
        (
            "empty files without end",
            body("let mut i = 0u64; loop { std::fs::write(format!(\"e{i}\"), b\"\").unwrap(); i += 1; }"),
            "the working directory grew past its limits",
        ),
    ];
    for (what, source, why) in cases {
        let scored = score(&acronym, &source);
        assert_eq!(scored.score, 0.0, "{what}: {scored:?}");
        let said = scored.details["first_failure"].as_str().unwrap_or_default();
        assert!(said.contains(why), "{what}: {:?}", scored.details);
    }
    // Reading the tests at compile time, and build scripts, never reach cargo.
    let include =
        score(&acronym, &format!("{} const T: &str = include_str!(\"../tests/acronym.rs\");", acronym.example));
    assert!(include.invalid.as_deref().unwrap().contains("include_str"), "{include:?}");
    let mut files = lib(&acronym.example);
    files.insert("build.rs".into(), "fn main() {}".into());
    let build_rs = scorer().score(&acronym, &files);
    assert!(build_rs.invalid.as_deref().unwrap().contains("build.rs"), "{build_rs:?}");
    // A solution that does not compile scores 0 with the compiler's diagnostics, cut to 4 KiB.
    let errors: String = (0..300).map(|i| format!("fn e{i}() -> u32 {{ \"no\" }}\n")).collect();
    let broken = score(&acronym, &format!("pub fn abbreviate(phrase: &str) -> String {{ phrase }}\n{errors}"));
    assert_eq!(broken.details["build"], "failed");
    let diagnostics = broken.details["diagnostics"].as_str().unwrap();
    assert!(diagnostics.contains("mismatched types") && diagnostics.len() <= 4096, "{}", diagnostics.len());
    // The agent's own tests (run-tests) are a guest's: held to the policy, they cannot read the
    // hidden tests at compile time either.
    let own = "const T: &str = include_str!(\"../src/lib.rs\");\n#[test]\nfn t() {}\n".to_owned();
    let refused = scorer().run_own(&acronym, &lib(&acronym.example), own).unwrap_err();
    assert!(refused.contains("include_str"), "{refused}");
    let fine = "use acronym::abbreviate;\n#[test]\nfn png() { assert_eq!(abbreviate(\"Portable Network Graphics\"), \"PNG\"); }\n";
    let ran = scorer().run_own(&acronym, &lib(&acronym.example), fine.to_owned()).unwrap();
    assert_eq!((ran.built, ran.passed, ran.failed), (true, 1, 0), "{ran:?}");
}

#[test]
fn the_runners_deadline_and_test_count_end_a_binary_with_the_reason() {
    let compiler =
        hyperagent::compiler::GuestCompiler::new(world().paths.compiler_settings(std::time::Duration::from_secs(600)))
            .unwrap();
    let acronym = one("acronym");
    // Fuel that never runs out: the wall-clock backstop ends the endless loop.
    let limits = TestLimits {
        fuel_per_binary: u64::MAX / 2,
        deadline: std::time::Duration::from_secs(1),
        ..TestLimits::default()
    };
    let endless = "pub fn abbreviate(phrase: &str) -> String { let mut x = 0u64; loop { x = x.wrapping_add(phrase.len() as u64); } }";
    let scored = Scorer::new(Arc::new(compiler), limits).score(&acronym, &lib(endless));
    assert_eq!(scored.score, 0.0);
    assert!(scored.details["first_failure"].as_str().unwrap().contains("the deadline passed"), "{:?}", scored.details);
    // A binary with more tests than allowed is not run at all.
    let compiler =
        hyperagent::compiler::GuestCompiler::new(world().paths.compiler_settings(std::time::Duration::from_secs(600)))
            .unwrap();
    let few = Scorer::new(Arc::new(compiler), TestLimits { max_tests: 3, ..TestLimits::default() });
    let scored = few.score(&acronym, &lib(&acronym.example));
    assert_eq!(scored.score, 0.0);
    let errors = scored.details["binary_errors"].to_string();
    assert!(errors.contains("tests; at most 3 are run"), "{errors}");
}

fn coding_config(server: Option<&common::http::Server>) -> String {
    let coding = serde_json::json!({
        "train_tasks": 3, "validation_tasks": 2, "test_tasks": 2, "staged_tasks": 1, "staged_threshold": 0.0,
    });
    let config = hyperagent::evolution::config::RunConfig {
        domains: vec!["coding".into()],
        domain: [("coding".to_owned(), coding)].into_iter().collect(),
        generations: 1,
        children_per_generation: 1,
        meta_llm_calls: 1,
        task_llm_calls: if server.is_some() { 2 } else { 0 },
        seed: 3,
        ..Default::default()
    };
    let mut toml = toml::to_string(&config).unwrap();
    if let Some(server) = server {
        toml.push_str(&format!(
            "\n[llm]\nprovider = \"open-ai\"\nbase_url = \"{}\"\nmodel = \"scripted\"\napi_key_env = \"\"\n",
            server.base_url
        ));
    }
    toml
}

#[test]
fn a_coding_run_without_an_llm_is_refused_with_the_reason() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("coding.toml");
    std::fs::write(&path, coding_config(None)).unwrap();
    let out = hyperagent_cli(home.path(), &["run", "--config", path.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("the coding domain cannot make progress without an LLM"), "{said}");
}

/// How the scripted model answers an exercise, by its name.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Script {
    /// A solution that does not compile, and nothing more.
    Broken,
    /// A solution that does not compile with tests of its own; asked again with the tests'
    /// output, the reference solution.
    FixedByOwnTests,
    /// The reference solution.
    Right,
}

fn script(name: &str) -> Script {
    if name < "d" {
        Script::Broken
    } else if name < "p" {
        Script::FixedByOwnTests
    } else {
        Script::Right
    }
}

const BROKEN: &str = "```rust\npub fn nothing() -> u32 { \"no\" }\n```\n";

/// An OpenAI-compatible server that answers a task agent's request for the exercise whose
/// statement it was shown as [`script`] says; meta agents get a plain answer with no edit.
fn solving_server() -> common::http::Server {
    let exercises: Vec<Exercise> =
        exercise::read_all(&data_dir().join(exercise::TRACK_DIR)).unwrap().into_iter().chain(benchmark()).collect();
    common::http::Server::start(move |_, request| {
        let body = request.json();
        let asked =
            body["messages"].as_array().unwrap().iter().filter_map(|m| m["content"].as_str()).collect::<String>();
        let retry = asked.contains("Running them gave");
        let own_tests = "```rust\n#[test]\nfn runs() {\n    assert_eq!(1 + 1, 2);\n}\n```\n";
        let content = match exercises.iter().find(|e| asked.contains(&e.statement)) {
            Some(e) => match (script(&e.name), retry) {
                (Script::Broken, _) => BROKEN.to_owned(),
                (Script::FixedByOwnTests, false) => format!("{BROKEN}Tests:\n{own_tests}"),
                (Script::FixedByOwnTests, true) | (Script::Right, _) => format!("```rust\n{}```\n", e.example),
            },
            None => "No change today.".to_owned(),
        };
        common::http::Reply::json(
            200,
            serde_json::json!({"model": "scripted", "choices": [{"index": 0, "message": {"role": "assistant",
                "content": content}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 100, "completion_tokens": 50}}),
        )
    })
}

#[test]
fn a_short_coding_run_with_a_scripted_llm_scores_real_solutions_and_replays_offline() {
    let home = tempfile::tempdir().unwrap();
    let server = solving_server();
    let path = home.path().join("coding.toml");
    std::fs::write(&path, coding_config(Some(&server))).unwrap();
    let path = path.to_string_lossy().into_owned();
    let live = hyperagent_cli(home.path(), &["run", "--config", &path, "--run-id", "live"]);
    let said = String::from_utf8_lossy(&live.stdout);
    assert!(live.status.success(), "{said}{}", String::from_utf8_lossy(&live.stderr));
    let status = hyperagent_cli(home.path(), &["status", "live"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("coding"), "{text}");

    // Every training answer of the initial node was built and tested: the right ones pass, the
    // broken ones score 0 with the compiler's word, and a broken one whose own tests did not
    // compile was fixed after the model saw that.
    let archive = hyperagent::archive::Archive::open(home.path().join("archive")).unwrap();
    let initial = node_events(&home.path().join("runs/live/log.jsonl"))[0].2;
    let node = archive.get_node(&initial).unwrap();
    let report: Vec<serde_json::Value> = serde_json::from_slice(
        &archive.get_blob(&node.metadata["evaluation"]["report"].as_str().unwrap().parse().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(report.len(), 5, "3 training and 2 validation tasks");
    let mut seen = Vec::new();
    for record in &report {
        let name = record["id"].as_str().unwrap().rsplit('/').next().unwrap();
        let how = script(name);
        seen.push(how);
        if how == Script::Broken {
            let build = &record["details"]["build"];
            assert_eq!((record["score"].as_f64(), build.as_str()), (Some(0.0), Some("failed")), "{record}");
        } else {
            assert_eq!(record["score"].as_f64(), Some(1.0), "{record}");
        }
        let asked = record["llm"].as_array().unwrap().len();
        assert_eq!(asked, if how == Script::FixedByOwnTests { 2 } else { 1 }, "{name}: {record}");
    }
    for how in [Script::Broken, Script::FixedByOwnTests, Script::Right] {
        assert!(seen.contains(&how), "the draw holds each kind of answer: {seen:?}");
    }
    let retried = server.requests.lock().unwrap().iter().any(|r| {
        let text = r.json().to_string();
        text.contains("Running them gave") && text.contains("did not compile")
    });
    assert!(retried, "the model was shown its own tests' failure");

    // Replayed with the server stopped: the same nodes, no request sent.
    let requests = server.count();
    server.stop();
    let again = hyperagent_cli(
        home.path(),
        &["run", "--config", &path, "--run-id", "again", "--llm", "replay", "--replay-from", "live"],
    );
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(server.count(), requests);
    assert_eq!(
        node_events(&home.path().join("runs/again/log.jsonl")),
        node_events(&home.path().join("runs/live/log.jsonl"))
    );
}
