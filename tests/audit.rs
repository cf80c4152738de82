//! Re-checking results from the archive alone: identical archives from identical runs, replay of
//! every node of a run, and tampering caught.

mod common;

use common::*;
use hyperagent::evolution::config::RunConfig;
use std::path::Path;
use std::process::{Command, Output};

fn small_config() -> RunConfig {
    RunConfig { generations: 2, seed: 5, ..common::small_config() }
}

fn hyperagent(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hyperagent"))
        .args(args)
        .env("HYPERAGENT_DATA_DIR", data_dir())
        .env("HYPERAGENT_HOME", home)
        .env("HYPERAGENT_GUEST_TARGET", guest_target_dir())
        .output()
        .unwrap()
}

fn run(home: &Path, id: &str) {
    let config = home.join("run.toml");
    std::fs::write(&config, toml::to_string(&small_config()).unwrap()).unwrap();
    let out = hyperagent(home, &["run", "--config", config.to_str().unwrap(), "--run-id", id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The run log with its wall-clock fields removed.
fn log_without_wall_times(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            let mut event: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(object) = event.as_object_mut() {
                object.retain(|key, _| !key.starts_with("wall_"));
            }
            event
        })
        .collect()
}

#[test]
fn two_runs_of_one_configuration_give_byte_identical_archives() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run(a.path(), "same");
    run(b.path(), "same");
    let (objects_a, objects_b) = (object_names(&a.path().join("archive")), object_names(&b.path().join("archive")));
    assert!(objects_a.len() > 20, "{}", objects_a.len());
    assert_eq!(objects_a, objects_b, "the same objects, named by the same hashes");
    assert_eq!(
        log_without_wall_times(&a.path().join("runs/same/log.jsonl")),
        log_without_wall_times(&b.path().join("runs/same/log.jsonl"))
    );
}

#[test]
fn replay_confirms_a_run_and_catches_tampering() {
    let home = tempfile::tempdir().unwrap();
    run(home.path(), "audited");
    let replay = hyperagent(home.path(), &["replay", "--run", "audited"]);
    let text = String::from_utf8_lossy(&replay.stdout);
    assert!(replay.status.success(), "{text}{}", String::from_utf8_lossy(&replay.stderr));
    assert!(text.contains("parent choices: every one re-derived"), "{text}");
    assert_eq!(text.matches("rebuilt bit for bit").count(), 5, "{text}");
    assert!(text.contains("everything checked agrees"), "{text}");

    // A log that names the wrong parent is caught.
    let log = home.path().join("runs/audited/log.jsonl");
    let original = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = original.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let nodes: Vec<&serde_json::Value> = lines.iter().filter(|e| e["event"] == "node").collect();
    let victim: serde_json::Value = (*nodes.last().unwrap()).clone();
    let wrong_parent = victim["node"].clone();
    let tampered: Vec<String> = lines
        .iter()
        .map(|e| {
            let mut e = e.clone();
            if e == victim {
                e["parent"] = wrong_parent.clone();
            }
            e.to_string()
        })
        .collect();
    std::fs::write(&log, tampered.join("\n") + "\n").unwrap();
    let replay = hyperagent(home.path(), &["replay", "--run", "audited"]);
    assert_eq!(replay.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&replay.stdout).contains("parent choice mismatch"),
        "{}",
        String::from_utf8_lossy(&replay.stdout)
    );

    // A configuration rewritten after the fact (less fuel per task) no longer reproduces the scores.
    let tampered: Vec<String> = original
        .lines()
        .map(|l| {
            let mut e: serde_json::Value = serde_json::from_str(l).unwrap();
            if e["event"] == "started" {
                e["config"]["task_fuel"] = serde_json::json!(1000);
            }
            e.to_string()
        })
        .collect();
    std::fs::write(&log, tampered.join("\n") + "\n").unwrap();
    let node = nodes[0]["node"].as_str().unwrap()[..12].to_owned();
    let replay = hyperagent(home.path(), &["replay", &node]);
    let text = String::from_utf8_lossy(&replay.stdout);
    assert_eq!(replay.status.code(), Some(1), "{text}");
    assert!(text.contains("recorded ok") && text.contains("replayed out-of-fuel"), "{text}");
    // Before any task is re-run, the rewrite is caught by hash: in the log and in the node.
    assert!(text.contains("configuration mismatch: the logged configuration does not have its logged hash"), "{text}");
    assert!(text.contains("configuration: the node was made under"), "{text}");
}

/// The hash of each kind of object in a finished run's archive.
fn one_of_each_kind(home: &Path) -> Vec<(&'static str, String)> {
    let archive = hyperagent::archive::Archive::open(home.join("archive")).unwrap();
    let log = hyperagent::evolution::log::RunLog::read(&home.join("runs/kinds/log.jsonl")).unwrap();
    let node_id = log
        .iter()
        .find_map(|e| {
            if let hyperagent::evolution::log::Event::Node { node, generation: 1, .. } = e { Some(*node) } else { None }
        })
        .unwrap();
    let node = archive.get_node(&node_id).unwrap();
    let blob = archive.get_manifest(&node.tree).unwrap()[0].blob;
    vec![
        ("node", node_id.to_hex()),
        ("tree manifest", node.tree.to_hex()),
        ("file blob", blob.to_hex()),
        ("component", node.component.unwrap().to_hex()),
        ("evaluation report", node.metadata["evaluation"]["report"].as_str().unwrap().to_owned()),
        ("provenance", node.metadata["provenance"].as_str().unwrap().to_owned()),
    ]
}

#[test]
fn verify_catches_a_flipped_byte_in_every_kind_of_object_and_orphans() {
    let home = tempfile::tempdir().unwrap();
    run(home.path(), "kinds");
    let verify = || hyperagent(home.path(), &["verify"]);
    let clean = verify();
    assert!(clean.status.success(), "{}", String::from_utf8_lossy(&clean.stdout));
    for (kind, hash) in one_of_each_kind(home.path()) {
        let path = home.path().join("archive/objects").join(&hash[..2]).join(&hash[2..]);
        let original = std::fs::read(&path).unwrap();
        let mut flipped = original.clone();
        flipped[original.len() / 3] ^= 0x20;
        std::fs::write(&path, &flipped).unwrap();
        let out = verify();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{kind}: {text}");
        assert!(text.contains(&format!("tampered: object {hash}")), "{kind} not caught: {text}");
        std::fs::write(&path, &original).unwrap();
    }
    assert!(verify().status.success());
    // An object nothing refers to is reported as orphaned.
    let archive = hyperagent::archive::Archive::open(home.path().join("archive")).unwrap();
    let stray = archive.put_blob(b"nobody refers to me").unwrap();
    let out = verify();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("orphaned: object {stray}")));
}

#[test]
fn an_exported_run_imports_elsewhere_and_replays_offline() {
    let home = tempfile::tempdir().unwrap();
    run(home.path(), "shipped");
    let bundle = home.path().join("shipped.bundle");
    let out = hyperagent(home.path(), &["export", "shipped", bundle.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let elsewhere = tempfile::tempdir().unwrap();
    let out = hyperagent(elsewhere.path(), &["import", bundle.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        hyperagent(elsewhere.path(), &["verify"]).status.success(),
        "the imported archive is whole, with no orphans"
    );
    let replay = hyperagent(elsewhere.path(), &["replay", "--run", "shipped"]);
    let text = String::from_utf8_lossy(&replay.stdout);
    assert!(replay.status.success() && text.contains("everything checked agrees"), "{text}");
    assert!(object_names(&elsewhere.path().join("archive")).len() <= object_names(&home.path().join("archive")).len());

    // A bundle with one altered byte inside an object is refused.
    let mut bytes = std::fs::read(&bundle).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&bundle, &bytes).unwrap();
    let third = tempfile::tempdir().unwrap();
    let out = hyperagent(third.path(), &["import", bundle.to_str().unwrap()]);
    assert!(!out.status.success());
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(message.contains("altered") || message.contains("damaged"), "{message}");
}
