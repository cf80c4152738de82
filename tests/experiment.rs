//! `hyperagent experiment` end to end: a plan of two methods × two seeds runs as four ordinary
//! runs, the summary's per-seed values are the runs' own best-node test values, and an experiment
//! killed mid-way resumes, reusing the run it had finished, and a cell another process is running
//! is skipped.

mod common;

use common::hyperagent_cli;
use hyperagent::evolution::log::RunLog;
use hyperagent::experiment::run_results;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// Two methods (full, fixed meta) × `seeds` on tiny bin-packing runs.
fn plan(dir: &Path, name: &str, seeds: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "seeds = {seeds}\nreference = \"full\"\n[config]\ngenerations = 1\nchildren_per_generation = 1\n\
             [config.domain.bin_packing]\ntrain_instances = 2\ntrain_items = 100\nstaged_tasks = 1\n\
             validation_instances = 1\nvalidation_items = 100\ntest_sets = [\"OR1\"]\n\
             [[method]]\nname = \"full\"\n[[method]]\nname = \"fixed\"\nconfig = {{ fixed_meta = true }}\n"
        ),
    )
    .unwrap();
    path
}

/// A tiny bin-packing run configuration of `generations` one-child generations, in `dir`.
fn small_run(dir: &Path, generations: u32, seed: u64) -> std::path::PathBuf {
    let path = dir.join("small.toml");
    std::fs::write(
        &path,
        format!(
            "generations = {generations}\nchildren_per_generation = 1\nseed = {seed}\n[domain.bin_packing]\n\
             train_instances = 2\ntrain_items = 100\nstaged_tasks = 1\nvalidation_instances = 1\n\
             validation_items = 100\ntest_sets = [\"OR1\"]\n"
        ),
    )
    .unwrap();
    path
}

fn log_path(home: &Path, run: &str) -> std::path::PathBuf {
    home.join("runs").join(run).join("log.jsonl")
}

fn summary(home: &Path, name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(home.join("experiments").join(name).join("summary.json")).unwrap()).unwrap()
}

#[test]
fn every_cell_runs_and_the_summary_holds_the_runs_own_figures() {
    let home = tempfile::tempdir().unwrap();
    let plan = plan(home.path(), "pair", "[3, 4]");
    let output = hyperagent_cli(home.path(), &["experiment", plan.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let summary = summary(home.path(), "pair");
    assert_eq!(summary["missing"], serde_json::json!([]));
    let rows = summary["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "one test set, two methods: {rows:?}");
    for row in rows {
        let method = row["method"].as_str().unwrap();
        let mut values = Vec::new();
        for seed in [3u64, 4] {
            let events = RunLog::read(&log_path(home.path(), &format!("pair-{method}-s{seed}"))).unwrap();
            let results = run_results(&events).expect("the run tested its best node");
            let (_, _, value) = results[&(row["domain"].as_str().unwrap().into(), row["set"].as_str().unwrap().into())];
            values.push(serde_json::json!([seed, value]));
        }
        assert_eq!(row["values"], Value::Array(values.clone()), "{method}");
        let (a, b) = (values[0][1].as_f64().unwrap(), values[1][1].as_f64().unwrap());
        assert!((row["median"].as_f64().unwrap() - (a + b) / 2.0).abs() < 1e-12);
        assert_eq!(row["versus_reference"].is_null(), method == "full");
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("| fixed |") && stdout.contains("vs full"), "{stdout}");
    assert!(home.path().join("experiments/pair/summary.md").is_file());

    // Run again: nothing is run, every cell is reused, the summary is the same bytes.
    let before = std::fs::read(home.path().join("experiments/pair/summary.json")).unwrap();
    let again = hyperagent_cli(home.path(), &["experiment", plan.to_str().unwrap()]);
    assert!(again.status.success());
    assert_eq!(String::from_utf8_lossy(&again.stderr).matches("finished, reused").count(), 4);
    assert_eq!(std::fs::read(home.path().join("experiments/pair/summary.json")).unwrap(), before);
}

#[test]
fn a_killed_experiment_resumes_and_reuses_what_it_finished() {
    let home = tempfile::tempdir().unwrap();
    let plan = plan(home.path(), "killed", "[5]");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hyperagent"))
        .args(["experiment", plan.to_str().unwrap()])
        .env("HYPERAGENT_DATA_DIR", common::data_dir())
        .env("HYPERAGENT_HOME", home.path())
        .env("HYPERAGENT_GUEST_TARGET", common::guest_target_dir())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once the first cell has finished and the second has begun.
    let (first, second) = (log_path(home.path(), "killed-full-s5"), log_path(home.path(), "killed-fixed-s5"));
    let started = Instant::now();
    while !(second.is_file() && RunLog::read(&first).ok().and_then(|e| run_results(&e)).is_some()) {
        assert!(started.elapsed() < Duration::from_secs(600), "the first cell never finished");
        assert!(child.try_wait().unwrap().is_none(), "the experiment ended before it could be killed");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // As if killed before the second run logged its start: an empty log must resume too.
    std::fs::write(&second, b"").unwrap();
    let first_log = std::fs::read(&first).unwrap();
    let output = hyperagent_cli(home.path(), &["experiment", plan.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("killed-full-s5: finished, reused"), "{stderr}");
    assert!(stderr.contains("killed-fixed-s5: resuming"), "{stderr}");
    assert_eq!(std::fs::read(&first).unwrap(), first_log, "the finished run was not touched");
    assert_eq!(summary(home.path(), "killed")["missing"], serde_json::json!([]));
}

#[test]
fn a_cell_another_process_is_running_is_skipped_and_its_run_cannot_be_resumed_twice() {
    let home = tempfile::tempdir().unwrap();
    let plan = plan(home.path(), "shared", "[7]");
    // Another writer holds the second cell's log (as a second `experiment` process would).
    let busy = log_path(home.path(), "shared-fixed-s7");
    std::fs::create_dir_all(busy.parent().unwrap()).unwrap();
    let held = RunLog::open(&busy).unwrap();
    let output = hyperagent_cli(home.path(), &["experiment", plan.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("shared-fixed-s7: being run by another process, skipped"), "{stderr}");
    assert!(stderr.contains("shared-full-s7: starting"), "{stderr}");
    assert_eq!(summary(home.path(), "shared")["missing"], serde_json::json!(["shared-fixed-s7"]));
    let twice = hyperagent_cli(home.path(), &["run", "--resume", "shared-fixed-s7"]);
    assert!(!twice.status.success());
    assert!(String::from_utf8_lossy(&twice.stderr).contains("another process"), "{twice:?}");
    assert_eq!(std::fs::read(&busy).unwrap(), b"", "the refused writers wrote nothing");
    let status =
        |run: &str| String::from_utf8_lossy(&hyperagent_cli(home.path(), &["status", run]).stdout).into_owned();
    assert!(status("shared-fixed-s7").contains("in progress: another process is writing this run"));
    assert!(status("shared-full-s7").contains("finished; best node"));
    // Once the other writer is gone, the cell runs.
    drop(held);
    assert!(
        status("shared-fixed-s7").contains("not running and not finished: `hyperagent run --resume shared-fixed-s7`")
    );
    let output = hyperagent_cli(home.path(), &["experiment", plan.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("shared-full-s7: finished, reused") && stderr.contains("shared-fixed-s7: resuming"),
        "{stderr}"
    );
    assert_eq!(summary(home.path(), "shared")["missing"], serde_json::json!([]));
}

#[test]
fn a_changed_plan_does_not_silently_reuse_another_configuration() {
    let home = tempfile::tempdir().unwrap();
    let plan = plan(home.path(), "changed", "[6]");
    assert!(hyperagent_cli(home.path(), &["experiment", plan.to_str().unwrap()]).status.success());
    let text = std::fs::read_to_string(&plan).unwrap().replace("generations = 1", "generations = 2");
    std::fs::write(&plan, text).unwrap();
    let output = hyperagent_cli(home.path(), &["experiment", plan.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("changed-full-s6 exists with another configuration"), "{stderr}");
    // The summary alone still works from the runs there are.
    let only = hyperagent_cli(home.path(), &["experiment", plan.to_str().unwrap(), "--summary-only"]);
    assert!(only.status.success(), "{}", String::from_utf8_lossy(&only.stderr));
}

#[test]
fn transfer_runs_the_node_as_a_fixed_meta_agent_and_reports_imp_at_k() {
    let home = tempfile::tempdir().unwrap();
    let config = small_run(home.path(), 1, 2);
    let config = config.to_str().unwrap();
    let source = hyperagent_cli(home.path(), &["run", "--config", config, "--run-id", "source"]);
    assert!(source.status.success(), "{}", String::from_utf8_lossy(&source.stderr));
    let events = RunLog::read(&log_path(home.path(), "source")).unwrap();
    let (node, tree) = events
        .iter()
        .filter_map(|e| match e {
            hyperagent::evolution::log::Event::Node { node, generation: 1, .. } => Some(*node),
            _ => None,
        })
        .map(|node| {
            let archive = hyperagent::archive::Archive::open(home.path().join("archive")).unwrap();
            (node, archive.get_node(&node).unwrap().tree)
        })
        .next()
        .expect("the source run made a child");
    let hex = node.to_hex();
    let none = hyperagent_cli(home.path(), &["transfer", "--from", &hex[..12], "--to", "bin_packing", "--k", "0"]);
    assert!(!none.status.success() && String::from_utf8_lossy(&none.stderr).contains("--k must be at least 1"));
    let output = hyperagent_cli(
        home.path(),
        &["transfer", "--from", &hex[..12], "--to", "bin_packing", "--k", "2", "--config", config],
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("imp@2 on bin_packing"), "{stdout}");
    let archive = hyperagent::archive::Archive::open(home.path().join("archive")).unwrap();
    for (run, starts_from_node) in [
        (format!("transfer-{}-bin_packing-k2-s0", &hex[..12]), true),
        ("transfer-initial-bin_packing-k2-s0".into(), false),
    ] {
        let events = RunLog::read(&log_path(home.path(), &run)).unwrap();
        let hyperagent::evolution::log::Event::Started { config, .. } = &events[0] else { panic!("no start") };
        assert!(config.fixed_meta && config.generations == 2 && config.children_per_generation == 1, "{run}");
        let first = events
            .iter()
            .find_map(|e| match e {
                hyperagent::evolution::log::Event::Node { node, generation: 0, .. } => Some(*node),
                _ => None,
            })
            .unwrap();
        assert_eq!(archive.get_node(&first).unwrap().tree == tree, starts_from_node, "{run}");
        // The printed gain is the run's own: best minus start, in excess (lower is better).
        let best = hyperagent::experiment::test_results(&events, "best").unwrap();
        let start = hyperagent::experiment::test_results(&events, "initial").unwrap_or_else(|| best.clone());
        let key = ("bin_packing".to_owned(), "OR1".to_owned());
        let gain = (start[&key].2 - best[&key].2) * 100.0;
        let who = if starts_from_node { format!("node {}", &hex[..12]) } else { "initial".to_owned() };
        let line = stdout.lines().find(|l| l.trim_start().starts_with(&who)).unwrap_or_else(|| panic!("{stdout}"));
        assert!(line.contains(&format!("{gain:+.2}%")), "{line} vs {gain}");
    }
}

#[test]
fn an_ensemble_of_one_is_the_best_node_and_the_best_node_scores_as_the_run_logged() {
    let home = tempfile::tempdir().unwrap();
    let config = small_run(home.path(), 2, 4);
    let run = hyperagent_cli(home.path(), &["run", "--config", config.to_str().unwrap(), "--run-id", "base"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let events = RunLog::read(&log_path(home.path(), "base")).unwrap();
    let logged = run_results(&events).unwrap()[&("bin_packing".to_owned(), "OR1".to_owned())].2;
    let figure = format!("{:.2}%", logged * 100.0);
    for k in ["1", "3"] {
        let output = hyperagent_cli(home.path(), &["ensemble", "base", "--k", k]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let stdout = String::from_utf8_lossy(&output.stdout);
        let row = stdout.lines().find(|l| l.contains("OR1")).unwrap_or_else(|| panic!("{stdout}"));
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[2], figure, "the best node, re-run, scores as logged: {row}");
        if k == "1" {
            assert_eq!(cells[3], figure, "an ensemble of one is its member: {row}");
        }
    }
    for k in ["0", "65"] {
        let refused = hyperagent_cli(home.path(), &["ensemble", "base", "--k", k]);
        assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("1..=64"), "k = {k}");
    }
}

#[test]
fn the_shipped_plans_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments");
    let mut read = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let plan = hyperagent::experiment::Plan::read(&path).unwrap_or_else(|e| panic!("{e}"));
            let name = path.file_name().unwrap().to_string_lossy();
            // The paper's ablation: 3 methods; the selection rules beside it: 6; bin packing's
            // training families: 3; 5 seeds each. Robot reward design: the default run on 3 seeds.
            let (methods, seeds) = match &*name {
                n if n.starts_with("selection-") => (6, 5),
                "robotics.toml" => (1, 3),
                _ => (3, 5),
            };
            assert_eq!(plan.cells().len(), methods * seeds, "{}: {methods} methods x {seeds} seeds", path.display());
            read += 1;
        }
    }
    assert_eq!(read, 9);
}
