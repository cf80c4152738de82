//! The `hyperagent` binary as scripts and people use it: output, JSON, exit codes.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn hyperagent(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hyperagent"))
        .args(args)
        .env("HYPERAGENT_HOME", home)
        .env("HYPERAGENT_GUEST_TARGET", common::guest_target_dir())
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn guest_dir(name: &str) -> String {
    format!("{}/../guest-agents/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn build_call_and_verify_from_the_command_line() {
    let home = tempfile::tempdir().unwrap();
    let built = hyperagent(home.path(), &["build", &guest_dir("probe")]);
    assert_eq!(built.status.code(), Some(0), "{}", text(&built.stderr));
    let hash = text(&built.stdout).trim().to_owned();
    assert_eq!(hash.len(), 64, "build prints the component hash: {hash:?}");

    let ok = hyperagent(home.path(), &["call", &hash, "task", "--input", r#"{"op":"echo","value":5}"#]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).contains("outcome:  ok"), "{}", text(&ok.stdout));
    assert!(text(&ok.stdout).contains("output:   5"), "{}", text(&ok.stdout));

    let spin =
        hyperagent(home.path(), &["call", &hash, "task", "--input", r#"{"op":"spin"}"#, "--fuel", "1000000", "--json"]);
    assert_eq!(spin.status.code(), Some(1), "a call that does not end ok exits 1");
    let report: serde_json::Value = serde_json::from_slice(&spin.stdout).expect("--json prints JSON");
    assert_eq!(report["outcome"]["kind"], "out-of-fuel");
    assert_eq!(report["fuel_consumed"], 1_000_000);

    let repo = tempfile::tempdir().unwrap();
    std::fs::write(repo.path().join("NOTES.md"), "start\n").unwrap();
    let meta = hyperagent(
        home.path(),
        &["call", &hash, "meta", "--repo", repo.path().to_str().unwrap(), "--seed", "9", "--json"],
    );
    assert_eq!(meta.status.code(), Some(0), "{}{}", text(&meta.stdout), text(&meta.stderr));
    assert_eq!(std::fs::read_to_string(repo.path().join("NOTES.md")).unwrap(), "start\nseed 9 saw 0 history entries\n");

    let verify = hyperagent(home.path(), &["archive", "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify.stdout));
    assert!(text(&verify.stdout).contains("no problems"));

    // Flip one byte of the component in the archive: verify must fail and say what.
    let object = home.path().join("archive/objects").join(&hash[..2]).join(&hash[2..]);
    let mut bytes = std::fs::read(&object).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&object, bytes).unwrap();
    let verify = hyperagent(home.path(), &["archive", "verify", "--json"]);
    assert_eq!(verify.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert!(report["problems"][0].as_str().unwrap().starts_with("tampered"), "{report}");
}

#[test]
fn errors_have_their_own_exit_codes_and_messages() {
    let home = tempfile::tempdir().unwrap();
    let bad_hash = hyperagent(home.path(), &["call", "not-a-hash", "task"]);
    assert_eq!(bad_hash.status.code(), Some(3));
    assert!(text(&bad_hash.stderr).contains("neither a file nor a component hash"), "{}", text(&bad_hash.stderr));

    let missing_repo = hyperagent(home.path(), &["call", "x", "meta"]);
    assert_eq!(missing_repo.status.code(), Some(2), "usage errors exit 2");
    assert!(text(&missing_repo.stderr).contains("--repo"));

    let agent = tempfile::tempdir().unwrap();
    let tree =
        hyperagent::source_tree::SourceTree::read_dir(Path::new(&guest_dir("probe")), &Default::default()).unwrap();
    tree.write_to(&agent.path().join("a")).unwrap();
    let lib = agent.path().join("a/src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap() + "\nconst X: &str = include_str!(\"/etc/passwd\");\n";
    std::fs::write(&lib, source).unwrap();
    let refused = hyperagent(home.path(), &["build", agent.path().join("a").to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains("[include-macro]"), "{}", text(&refused.stderr));

    let no_archive = hyperagent(home.path(), &["--home", "/nonexistent/x", "archive", "verify"]);
    assert_eq!(no_archive.status.code(), Some(3));
    assert!(text(&no_archive.stderr).contains("no archive"));

    let help = hyperagent(home.path(), &["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(text(&help.stdout).contains("Exit codes"));
}
