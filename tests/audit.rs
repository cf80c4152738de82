//! Re-checking results from the archive alone: identical archives from identical runs, replay of
//! every node of a run, and tampering caught.

mod common;

use common::*;
use hyperagent::evolution::config::RunConfig;
use std::path::Path;

fn small_config() -> RunConfig {
    RunConfig { generations: 2, seed: 5, ..common::small_config() }
}

fn run(home: &Path, id: &str) {
    let config = home.join("run.toml");
    std::fs::write(&config, toml::to_string(&small_config()).unwrap()).unwrap();
    let out = hyperagent_cli(home, &["run", "--config", config.to_str().unwrap(), "--run-id", id]);
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
    let replay = hyperagent_cli(home.path(), &["replay", "--run", "audited"]);
    let text = String::from_utf8_lossy(&replay.stdout);
    assert!(replay.status.success(), "{text}{}", String::from_utf8_lossy(&replay.stderr));
    assert!(text.contains("parent choices: every one re-derived"), "{text}");
    assert_eq!(text.matches("rebuilt bit for bit").count(), 5, "{text}");
    assert!(text.contains("everything checked agrees"), "{text}");

    // A log that names the wrong parent (re-chained, as anyone can) is caught.
    let log = home.path().join("runs/audited/log.jsonl");
    let original = log_events(&log);
    let nodes: Vec<&serde_json::Value> = original.iter().filter(|e| e["event"] == "node").collect();
    let victim: serde_json::Value = (*nodes.last().unwrap()).clone();
    let wrong_parent = victim["node"].clone();
    let tampered: Vec<serde_json::Value> = original
        .iter()
        .map(|e| {
            let mut e = e.clone();
            if e == victim {
                e["parent"] = wrong_parent.clone();
            }
            e
        })
        .collect();
    write_chained_log(&log, &tampered);
    let replay = hyperagent_cli(home.path(), &["replay", "--run", "audited"]);
    assert_eq!(replay.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&replay.stdout).contains("parent choice mismatch"),
        "{}",
        String::from_utf8_lossy(&replay.stdout)
    );

    // A configuration rewritten after the fact (less fuel per task) no longer reproduces the scores.
    let tampered: Vec<serde_json::Value> = original
        .iter()
        .map(|e| {
            let mut e = e.clone();
            if e["event"] == "started" {
                e["config"]["task_fuel"] = serde_json::json!(1000);
            }
            e
        })
        .collect();
    write_chained_log(&log, &tampered);
    let node = nodes[0]["node"].as_str().unwrap()[..12].to_owned();
    let replay = hyperagent_cli(home.path(), &["replay", &node]);
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
    let verify = || hyperagent_cli(home.path(), &["verify"]);
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
    let out = hyperagent_cli(home.path(), &["export", "shipped", bundle.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let elsewhere = tempfile::tempdir().unwrap();
    let out = hyperagent_cli(elsewhere.path(), &["import", bundle.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        hyperagent_cli(elsewhere.path(), &["verify"]).status.success(),
        "the imported archive is whole, with no orphans"
    );
    let replay = hyperagent_cli(elsewhere.path(), &["replay", "--run", "shipped"]);
    let text = String::from_utf8_lossy(&replay.stdout);
    assert!(replay.status.success() && text.contains("everything checked agrees"), "{text}");
    assert!(object_names(&elsewhere.path().join("archive")).len() <= object_names(&home.path().join("archive")).len());

    // A bundle with one altered byte inside an object is refused.
    let mut bytes = std::fs::read(&bundle).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&bundle, &bytes).unwrap();
    let third = tempfile::tempdir().unwrap();
    let out = hyperagent_cli(third.path(), &["import", bundle.to_str().unwrap()]);
    assert!(!out.status.success());
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(message.contains("altered") || message.contains("damaged"), "{message}");
}

#[test]
fn the_tamper_table_log_edits_forged_nodes_and_signatures() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let key = h.join("lab.key");
    assert!(hyperagent_cli(h, &["keygen", "--out", key.to_str().unwrap()]).status.success());
    let public = h.join("lab.key.pub");
    let config = h.join("run.toml");
    std::fs::write(&config, toml::to_string(&small_config()).unwrap()).unwrap();
    let out = hyperagent_cli(
        h,
        &["run", "--config", config.to_str().unwrap(), "--run-id", "signed", "--sign-key", key.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let verify = |with_key: bool| {
        let mut args = vec!["verify"];
        if with_key {
            args.extend(["--key", public.to_str().unwrap()]);
        }
        let out = hyperagent_cli(h, &args);
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    assert_eq!(verify(true).0, Some(0), "{}", verify(true).1);
    let log = h.join("runs/signed/log.jsonl");
    let original = std::fs::read(&log).unwrap();
    let events = log_events(&log);
    let last_node = events.iter().rposition(|e| e["event"] == "node").unwrap();

    // 1. A score edited in the log, the chain left as it was: the chain breaks there, and
    //    `status` says so instead of showing the forged table.
    let text = String::from_utf8(original.clone()).unwrap();
    let line = text.lines().nth(last_node).unwrap();
    // The score's digits replaced in place: still canonical, but no longer what the next line chains to.
    let at = line.find("\"score\":").unwrap() + "\"score\":".len();
    let end = at + line[at..].find(',').unwrap();
    let forged_line = format!("{}0.99{}", &line[..at], &line[end..]);
    std::fs::write(&log, text.replacen(line, &forged_line, 1)).unwrap();
    let (code, said) = verify(false);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("the chain is broken"), "{said}");
    let status = hyperagent_cli(h, &["status", "signed"]);
    assert_eq!(status.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&status.stderr).contains("the chain is broken"));

    // 2. The same edit with the chain recomputed: the node event no longer says what its node
    //    says, and the log no longer matches its run object.
    let mut edited = events.clone();
    edited[last_node]["score"] = serde_json::json!(0.99);
    write_chained_log(&log, &edited);
    let (code, said) = verify(false);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("the log says generation") && said.contains("does not match the log"), "{said}");
    let status = hyperagent_cli(h, &["status", "signed"]);
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(shown.contains("WARNING: the log and the archive disagree about node"), "{shown}");

    // 3. A consistent forgery: the leaf node rewritten with a higher score under its new hash (the
    //    old one deleted), the log re-chained to name it, every run object replaced by one that
    //    matches. Without the key nothing in the archive contradicts it; the signature does, and
    //    so does a replay, which recomputes the claimed score from the node's records.
    let new_id = consistent_forgery(h, "signed");
    let (code, said) = verify(false);
    assert_eq!(code, Some(0), "without the key the forgery is consistent: {said}");
    let (code, said) = verify(true);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("the signature is of run object"), "{said}");
    let replay = hyperagent_cli(h, &["replay", &new_id.to_hex()[..12], "--run", "signed"]);
    let said = String::from_utf8_lossy(&replay.stdout);
    assert_eq!(replay.status.code(), Some(1), "{said}");
    assert!(said.contains("claimed score 0.99") || said.contains("(metadata Some(0.99))"), "{said}");

    // 4. A bundle altered in transit is the bundle's failure: exit 1, nothing imported.
    std::fs::write(&log, &original).unwrap();
    let bundle = h.join("run.bundle");
    hyperagent_cli(h, &["export", "signed", bundle.to_str().unwrap()]);
    let mut bytes = std::fs::read(&bundle).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&bundle, &bytes).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let import = hyperagent_cli(elsewhere.path(), &["import", bundle.to_str().unwrap()]);
    assert_eq!(import.status.code(), Some(1), "{}", String::from_utf8_lossy(&import.stderr));
}
