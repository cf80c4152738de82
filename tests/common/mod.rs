//! Shared set-up for the integration tests: one archive, compiler and sandbox per test binary, and
//! the probe guest built once through the real compiler.

#![allow(dead_code)]

pub mod http;
pub mod nats;

use hyperagent::archive::Archive;
use hyperagent::compiler::{BuildOutcome, GuestCompiler};
use hyperagent::hash::ContentHash;
use hyperagent::sandbox::{
    CallInput, CallLimits, CallReport, EngineSettings, Grants, LoadedComponent, Sandbox, TaskInput,
};
use hyperagent::settings::Paths;
use hyperagent::source_tree::{SourceTree, TreeLimits};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub struct World {
    pub home: tempfile::TempDir,
    pub paths: Paths,
    pub archive: Archive,
    pub compiler: GuestCompiler,
    pub sandbox: Sandbox,
}

/// The workspace's own target directory: guest dependencies are compiled once for all tests.
pub fn guest_target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/guest-test")
}

pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let home = tempfile::tempdir().expect("temp dir");
        let paths = Paths::new(home.path().to_path_buf(), None, Some(guest_target_dir()));
        let archive = Archive::open(paths.archive()).expect("archive");
        let compiler =
            GuestCompiler::new(paths.compiler_settings(Duration::from_secs(600))).expect("toolchain and template");
        compiler.fetch_dependencies().expect("guest dependencies");
        let sandbox = Sandbox::new(EngineSettings::default(), Some(paths.artifacts())).expect("sandbox");
        World { home, paths, archive, compiler, sandbox }
    })
}

pub fn guest_source(name: &str) -> SourceTree {
    let dir = world().paths.guest_agents().join(name);
    SourceTree::read_dir(&dir, &TreeLimits::default()).expect("guest source")
}

/// The text of a tree's `src/lib.rs`.
pub fn lib_rs(tree: &SourceTree) -> String {
    String::from_utf8(tree.get("src/lib.rs").expect("src/lib.rs").bytes.clone()).expect("UTF-8")
}

/// The probe's source with `edit` applied, through the real compiler; the policy's violations.
pub fn violations(edit: impl FnOnce(&mut SourceTree)) -> Vec<hyperagent::compiler::policy::Violation> {
    let mut tree = guest_source("probe");
    edit(&mut tree);
    match world().compiler.build(&tree, &world().archive).expect("build infrastructure") {
        BuildOutcome::Rejected { violations, .. } => violations,
        other => panic!("expected the policy to refuse the tree, got {other:?}"),
    }
}

/// An edit that appends `code` to `src/lib.rs`.
pub fn append_to_lib(code: impl Into<String>) -> impl FnOnce(&mut SourceTree) {
    let code = code.into();
    move |tree| {
        let lib = lib_rs(tree) + "\n" + &code + "\n";
        tree.insert("src/lib.rs", lib).unwrap();
    }
}

/// An edit that replaces `from` with `to` in `Cargo.toml` (which must contain it).
pub fn edit_manifest(from: &'static str, to: &'static str) -> impl FnOnce(&mut SourceTree) {
    move |tree| {
        let manifest = String::from_utf8(tree.get("Cargo.toml").unwrap().bytes.clone()).unwrap();
        assert!(manifest.contains(from), "test set-up: {from:?} not in Cargo.toml");
        tree.insert("Cargo.toml", manifest.replace(from, to)).unwrap();
    }
}

/// Builds a tree and insists that it built.
pub fn build(tree: &SourceTree) -> ContentHash {
    match world().compiler.build(tree, &world().archive).expect("build infrastructure") {
        BuildOutcome::Built { component, .. } => component,
        other => panic!("build did not succeed: {other:?}"),
    }
}

pub fn probe() -> Arc<LoadedComponent> {
    static PROBE: OnceLock<ContentHash> = OnceLock::new();
    let hash = *PROBE.get_or_init(|| build(&guest_source("probe")));
    load(&hash)
}

pub fn load(hash: &ContentHash) -> Arc<LoadedComponent> {
    let wasm = world().archive.get_blob(hash).expect("component in archive");
    world().sandbox.load(&wasm).expect("component loads")
}

pub fn task(payload: serde_json::Value) -> CallInput {
    CallInput::Task(TaskInput { domain: "test".into(), task_id: "test/0".into(), payload: payload.to_string() })
}

/// Runs one probe task on a current-thread runtime.
pub fn run_probe(payload: serde_json::Value, limits: &CallLimits, grants: &Grants) -> CallReport {
    let probe = probe();
    block_on(world().sandbox.call(&probe, &task(payload), limits, grants)).expect("call set-up")
}

pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(future)
}

pub fn output_json(report: &CallReport) -> serde_json::Value {
    serde_json::from_str(report.output.as_deref().unwrap_or_else(|| panic!("no output: {:?}", report.outcome)))
        .expect("JSON output")
}

/// The benchmark data: `HYPERAGENT_DATA_DIR`, or `../shared/data` beside the checkout.
pub fn data_dir() -> PathBuf {
    std::env::var_os("HYPERAGENT_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data")))
}

/// A run small enough for a test: a few generations on small instances.
pub fn small_config() -> hyperagent::evolution::config::RunConfig {
    let bin_packing = serde_json::json!({
        "train_instances": 3,
        "train_items": 150,
        "staged_tasks": 1,
        "validation_instances": 2,
        "validation_items": 200,
        "test_sets": ["OR1"],
    });
    hyperagent::evolution::config::RunConfig {
        generations: 4,
        children_per_generation: 2,
        domain: [("bin_packing".to_owned(), bin_packing)].into_iter().collect(),
        seed: 11,
        ..Default::default()
    }
}

/// The names (hashes) of every object in an archive directory, sorted.
pub fn object_names(archive: &std::path::Path) -> Vec<String> {
    let mut names = Vec::new();
    for shard in std::fs::read_dir(archive.join("objects")).unwrap() {
        let shard = shard.unwrap();
        for object in std::fs::read_dir(shard.path()).unwrap() {
            names.push(format!(
                "{}{}",
                shard.file_name().to_string_lossy(),
                object.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    names.sort();
    names
}

/// A run log's events, as JSON values without their chain field.
pub fn log_events(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            let mut event: serde_json::Value = serde_json::from_str(line).unwrap();
            event.as_object_mut().unwrap().remove("prev");
            event
        })
        .collect()
}

/// Writes `events` as a run log with a valid hash chain: what anyone can do without a key.
pub fn write_chained_log(path: &std::path::Path, events: &[serde_json::Value]) {
    let mut text = Vec::new();
    let mut prev: Option<ContentHash> = None;
    for event in events {
        let mut event = event.clone();
        event["prev"] = serde_json::json!(prev);
        let line = hyperagent::canonical::to_vec(&event);
        prev = Some(ContentHash::of(&line));
        text.extend_from_slice(&line);
        text.push(b'\n');
    }
    std::fs::write(path, text).unwrap();
}

/// Runs `config` as run `id` in `home` through the CLI and insists that it succeeded.
pub fn run_config(home: &std::path::Path, config: &hyperagent::evolution::config::RunConfig, id: &str) {
    let path = home.join(format!("{id}.toml"));
    std::fs::write(&path, toml::to_string(config).unwrap()).unwrap();
    let path = path.to_string_lossy().into_owned();
    let out = hyperagent_cli(home, &["run", "--config", &path, "--run-id", id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Runs the `hyperagent` CLI with `home` and this checkout's data and guest build directories.
pub fn hyperagent_cli(home: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_hyperagent"))
        .args(args)
        .env("HYPERAGENT_DATA_DIR", data_dir())
        .env("HYPERAGENT_HOME", home)
        .env("HYPERAGENT_GUEST_TARGET", guest_target_dir())
        .output()
        .unwrap()
}

/// Where an archive keeps an object's bytes.
pub fn object_path(home: &std::path::Path, hash: &str) -> PathBuf {
    home.join("archive/objects").join(&hash[..2]).join(&hash[2..])
}

/// What anyone can do without the key, to run `run` in `home`: its last node rewritten with a
/// higher score under its new hash (the old object and marker deleted), the log re-chained to
/// name it, every run object replaced by one that matches the new log, and the head pointed at
/// the last of them. Returns the forged node.
pub fn consistent_forgery(home: &std::path::Path, run: &str) -> ContentHash {
    let log = home.join("runs").join(run).join("log.jsonl");
    let events = log_events(&log);
    let at = events.iter().rposition(|e| e["event"] == "node").unwrap();
    let archive = Archive::open(home.join("archive")).unwrap();
    let old_id: ContentHash = events[at]["node"].as_str().unwrap().parse().unwrap();
    let mut node = archive.get_node(&old_id).unwrap();
    node.metadata.insert("score".into(), serde_json::json!(0.99));
    // Consistently: the evaluation's score too, as the metadata's rules demand.
    if let Some(evaluation) = node.metadata.get_mut("evaluation") {
        evaluation["score"] = serde_json::json!(0.99);
    }
    let new_id = archive.put_node(&node).unwrap();
    std::fs::remove_file(object_path(home, &old_id.to_hex())).unwrap();
    std::fs::remove_file(home.join("archive/nodes").join(old_id.to_hex())).unwrap();
    let mut forged = events.clone();
    forged[at]["node"] = serde_json::json!(new_id);
    forged[at]["score"] = serde_json::json!(0.99);
    for event in forged.iter_mut().filter(|e| e["event"] == "finished" && e["best"] == serde_json::json!(old_id)) {
        event["best"] = serde_json::json!(new_id);
    }
    write_chained_log(&log, &forged);
    for marker in std::fs::read_dir(home.join("archive/runs")).unwrap() {
        let marker = marker.unwrap();
        std::fs::remove_file(object_path(home, &marker.file_name().to_string_lossy())).unwrap();
        std::fs::remove_file(marker.path()).unwrap();
    }
    let contents = hyperagent::evolution::log::RunLog::read_chain(&log).unwrap();
    let object = hyperagent::run_object::RunObject::from_log(run, &contents, contents.events.len()).unwrap();
    let head = archive.put_run_object(&object).unwrap();
    std::fs::write(home.join("runs").join(run).join("head"), head.to_hex()).unwrap();
    new_id
}

/// The (generation, slot, node) of every node a run log records, in order.
pub fn node_events(log: &std::path::Path) -> Vec<(u32, u32, ContentHash)> {
    use hyperagent::evolution::log::{Event, RunLog};
    RunLog::read(log)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e {
            Event::Node { generation, slot, node, .. } => Some((generation, slot, node)),
            _ => None,
        })
        .collect()
}
