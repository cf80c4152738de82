//! `hyperagent verify` against `tests/verify_archive.py`, a verifier written from ARCHIVE.md alone:
//! on a real signed run and on tampered copies of it, both must reach the same verdict, and the
//! verdict the specification implies.

mod common;

use common::*;
use hyperagent::evolution::config::RunConfig;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn small_config() -> RunConfig {
    RunConfig { generations: 2, ..common::small_config() }
}

fn verifier_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/verify_archive.py")
}

/// The independent verifier needs python3 and the `blake3` package; without them this test fails
/// (it does not skip), saying what to install.
fn require_python() {
    let found = Command::new("python3").args(["-c", "import blake3, sys; assert sys.version_info >= (3, 11)"]).output();
    match found {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "python3 (>= 3.11) with the `blake3` package is required: `python3 -m pip install blake3`\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("python3 is required (with `python3 -m pip install blake3`): {e}"),
    }
    let out = Command::new("python3").arg(verifier_script()).arg("--self-test").output().unwrap();
    assert!(
        out.status.success(),
        "the independent verifier's self-test failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn read_json(home: &Path, hash: &str) -> Value {
    serde_json::from_slice(&std::fs::read(object_path(home, hash)).unwrap()).unwrap()
}

fn flip_byte(home: &Path, hash: &str) {
    let path = object_path(home, hash);
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(!bytes.is_empty(), "object {hash} is empty");
    let at = bytes.len() / 3;
    bytes[at] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
}

fn head(home: &Path) -> String {
    std::fs::read_to_string(home.join("runs/r/head")).unwrap().trim().to_owned()
}

/// One object of each kind, found by following the archive's references from the log.
fn one_of_each_kind(home: &Path) -> Vec<(&'static str, String)> {
    let events = log_events(&home.join("runs/r/log.jsonl"));
    let node_id = events.iter().find(|e| e["event"] == "node" && e["generation"] == 1).unwrap()["node"]
        .as_str()
        .unwrap()
        .to_owned();
    let node = read_json(home, &node_id);
    let tree = node["tree"].as_str().unwrap().to_owned();
    let manifest = std::fs::read_to_string(object_path(home, &tree)).unwrap();
    let blob = manifest.lines().next().unwrap().split(' ').nth(1).unwrap().to_owned();
    vec![
        ("file blob", blob),
        ("tree manifest", tree),
        ("component", node["component"].as_str().unwrap().to_owned()),
        ("node", node_id.clone()),
        ("evaluation report", node["metadata"]["evaluation"]["report"].as_str().unwrap().to_owned()),
        ("provenance", node["metadata"]["provenance"].as_str().unwrap().to_owned()),
        ("run object", head(home)),
    ]
}

/// The last `node` event of the log: the leaf the edits and the forgery aim at.
fn last_node_event(events: &[Value]) -> usize {
    events.iter().rposition(|e| e["event"] == "node").unwrap()
}

fn edit_score_raw(home: &Path) {
    let log = home.join("runs/r/log.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    let at = last_node_event(&log_events(&log));
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            if i != at {
                return line.to_owned();
            }
            // The edited line stays canonical JSON; only its hash (and what it says) changes.
            let mut event: Value = serde_json::from_str(line).unwrap();
            event["score"] = serde_json::json!(0.99);
            String::from_utf8(hyperagent::canonical::to_vec(&event)).unwrap()
        })
        .collect();
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
}

fn edit_score_rechained(home: &Path) {
    let log = home.join("runs/r/log.jsonl");
    let mut events = log_events(&log);
    let at = last_node_event(&events);
    events[at]["score"] = serde_json::json!(0.99);
    write_chained_log(&log, &events);
}

struct Verdicts {
    hyperagent: bool,
    python: bool,
    python_said: String,
    hyperagent_said: String,
}

fn verify_both(home: &Path, key: Option<&Path>) -> Verdicts {
    let mut args = vec!["verify".to_owned()];
    let mut py = Command::new("python3");
    py.arg(verifier_script()).arg(home);
    if let Some(key) = key {
        args.extend(["--key".to_owned(), key.to_str().unwrap().to_owned()]);
        py.arg("--key").arg(key);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ours = hyperagent_cli(home, &args);
    let theirs = py.output().unwrap();
    let code = |out: &Output, who: &str| match out.status.code() {
        Some(0) => true,
        Some(1) => false,
        other => panic!(
            "{who} exited with {other:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    };
    Verdicts {
        hyperagent: code(&ours, "hyperagent verify"),
        python: code(&theirs, "verify_archive.py"),
        hyperagent_said: String::from_utf8_lossy(&ours.stdout).into_owned() + &String::from_utf8_lossy(&ours.stderr),
        python_said: String::from_utf8_lossy(&theirs.stdout).into_owned() + &String::from_utf8_lossy(&theirs.stderr),
    }
}

type Tamper = Box<dyn Fn(&Path)>;

#[test]
fn the_independent_verifier_agrees_with_verify_on_every_tamper_case() {
    require_python();
    let base = tempfile::tempdir().unwrap();
    let made = base.path().join("made");
    std::fs::create_dir_all(&made).unwrap();
    let key = made.join("lab.key");
    let out = hyperagent_cli(&made, &["keygen", "--out", key.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let public = made.join("lab.key.pub");
    let config = made.join("run.toml");
    std::fs::write(&config, toml::to_string(&small_config()).unwrap()).unwrap();
    let out = hyperagent_cli(
        &made,
        &["run", "--config", config.to_str().unwrap(), "--run-id", "r", "--sign-key", key.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // (case, with the key, expected to pass, tampering)
    let mut cases: Vec<(String, bool, bool, Tamper)> = vec![
        ("clean".into(), false, true, Box::new(|_: &Path| {})),
        ("clean".into(), true, true, Box::new(|_: &Path| {})),
    ];
    for (kind, hash) in one_of_each_kind(&made) {
        cases.push((format!("flipped byte: {kind}"), false, false, Box::new(move |h: &Path| flip_byte(h, &hash))));
    }
    let events = log_events(&made.join("runs/r/log.jsonl"));
    let leaf = events[last_node_event(&events)]["node"].as_str().unwrap().to_owned();
    cases.extend([
        (
            "node object deleted".to_owned(),
            false,
            false,
            Box::new(move |h: &Path| std::fs::remove_file(object_path(h, &leaf)).unwrap()) as Tamper,
        ),
        (
            "extra unreferenced object".into(),
            false,
            false,
            Box::new(|h: &Path| {
                let archive = hyperagent::archive::Archive::open(h.join("archive")).unwrap();
                archive.put_blob(b"nobody refers to me").unwrap();
            }),
        ),
        (
            "interrupted write under objects/".into(),
            false,
            true,
            Box::new(|h: &Path| {
                let shard = std::fs::read_dir(h.join("archive/objects")).unwrap().next().unwrap().unwrap().path();
                std::fs::write(shard.join(".0123.tmp-1"), b"half an object").unwrap();
            }),
        ),
        (
            "interrupted append to the log".into(),
            true,
            true,
            Box::new(|h: &Path| {
                let log = h.join("runs/r/log.jsonl");
                let mut bytes = std::fs::read(&log).unwrap();
                bytes.extend_from_slice(b"{\"event\":\"gen");
                std::fs::write(&log, bytes).unwrap();
            }),
        ),
        ("node event score edited, chain left".into(), false, false, Box::new(edit_score_raw)),
        ("node event score edited, re-chained".into(), false, false, Box::new(edit_score_rechained)),
        (
            "consistent forgery".into(),
            false,
            true,
            Box::new(|home: &Path| {
                consistent_forgery(home, "r");
            }),
        ),
        (
            "consistent forgery".into(),
            true,
            false,
            Box::new(|home: &Path| {
                consistent_forgery(home, "r");
            }),
        ),
        (
            "head.sig deleted".into(),
            true,
            false,
            Box::new(|h: &Path| std::fs::remove_file(h.join("runs/r/head.sig")).unwrap()),
        ),
    ]);

    let mut rows = Vec::new();
    for (i, (name, with_key, expected, tamper)) in cases.iter().enumerate() {
        let home = base.path().join(format!("case-{i}"));
        copy_dir(&made.join("archive"), &home.join("archive"));
        copy_dir(&made.join("runs"), &home.join("runs"));
        tamper(&home);
        let verdicts = verify_both(&home, with_key.then_some(public.as_path()));
        rows.push((format!("{name}{}", if *with_key { " (--key)" } else { "" }), *expected, verdicts));
    }

    let verdict = |pass: bool| if pass { "pass" } else { "FAIL" };
    println!("{:<48} {:>8} {:>11} {:>9}", "case", "expected", "hyperagent", "python");
    for (name, expected, v) in &rows {
        println!("{name:<48} {:>8} {:>11} {:>9}", verdict(*expected), verdict(v.hyperagent), verdict(v.python));
    }
    for (name, expected, v) in &rows {
        assert_eq!(
            v.hyperagent, v.python,
            "{name}: the verifiers disagree\n--- hyperagent verify:\n{}\n--- verify_archive.py:\n{}",
            v.hyperagent_said, v.python_said
        );
        assert_eq!(
            v.python,
            *expected,
            "{name}: both verifiers say {}, the specification implies {}\n--- hyperagent verify:\n{}\n--- verify_archive.py:\n{}",
            verdict(v.python),
            verdict(*expected),
            v.hyperagent_said,
            v.python_said
        );
    }
}
