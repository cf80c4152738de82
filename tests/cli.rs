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

/// What a guest can send a terminal: cursor moves that redraw the call's verdict as `ok`, an OSC 52
/// clipboard write, an OSC 0 window title, a C1 CSI that clears the screen, DEL, a bidi override,
/// and a newline that would start a fake line of output.
const TERMINAL_ATTACK: &str = "\x1b[12A\x1b[2K\routcome:  ok\x1b[12B\x1b]52;c;b3duZWQ=\x07\x1b]0;owned\x07\u{9b}2J\x7f\u{202e}gnp.exe\nfuel:     0 of 0";

/// Nothing in `bytes` that a terminal acts on rather than shows (newlines between lines aside).
fn assert_inert(what: &str, bytes: &[u8]) {
    let text = std::str::from_utf8(bytes).unwrap_or_else(|e| panic!("{what}: not UTF-8: {e}"));
    let acted_on = |c: char| matches!(c, '\0'..='\x08' | '\x0b'..='\x1f' | '\x7f'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    assert!(!text.chars().any(acted_on), "{what}: control characters reached the terminal: {text:?}");
}

fn lines_starting(text: &[u8], prefix: &str) -> usize {
    String::from_utf8_lossy(text).lines().filter(|l| l.starts_with(prefix)).count()
}

#[test]
fn guest_text_reaches_the_terminal_escaped() {
    let home = tempfile::tempdir().unwrap();
    let built = hyperagent(home.path(), &["build", "--json", &guest_dir("probe")]);
    assert_eq!(built.status.code(), Some(0), "{}", text(&built.stderr));
    let built: serde_json::Value = serde_json::from_slice(&built.stdout).unwrap();
    let component = built["component"].as_str().unwrap().to_owned();

    // The text as a log line, on stdout and stderr, and in the output.
    let say = serde_json::json!({"op": "say", "text": TERMINAL_ATTACK}).to_string();
    let call = hyperagent(home.path(), &["call", &component, "task", "--input", &say]);
    assert_eq!(call.status.code(), Some(0), "{}", text(&call.stderr));
    assert_inert("call", &call.stdout);
    assert_inert("call (stderr)", &call.stderr);
    assert_eq!(lines_starting(&call.stdout, "outcome:"), 1, "{}", text(&call.stdout));
    assert_eq!(lines_starting(&call.stdout, "fuel:"), 1, "{}", text(&call.stdout));
    for shown in ["log info: \\x1b[12A\\x1b[2K\\routcome:  ok", "\\x1b]52;c;b3duZWQ=\\x07", "\\u{9b}2J", "\\u{202e}"] {
        assert!(text(&call.stdout).contains(shown), "{shown} not shown: {}", text(&call.stdout));
    }

    // A failed call whose own error message would redraw its verdict.
    let failing = serde_json::json!({"op": TERMINAL_ATTACK}).to_string();
    let failed = hyperagent(home.path(), &["call", &component, "task", "--input", &failing]);
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed.stderr));
    assert_inert("failed call", &failed.stdout);
    assert_eq!(lines_starting(&failed.stdout, "outcome:"), 1, "{}", text(&failed.stdout));
    assert!(lines_starting(&failed.stdout, "outcome:  guest error") == 1, "{}", text(&failed.stdout));

    // As JSON: still the guest's text when read back, but no raw control character on the way.
    let json = hyperagent(home.path(), &["call", &component, "task", "--input", &say, "--json"]);
    assert_inert("call --json", &json.stdout);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["logs"][0]["message"], TERMINAL_ATTACK);
    assert_eq!(report["output"], serde_json::Value::String(serde_json::to_string(TERMINAL_ATTACK).unwrap()));

    // A meta agent's account, archived as the loop archives it, through `show` and `lineage`.
    let repo = tempfile::tempdir().unwrap();
    let op = serde_json::json!({"op": "raw", "text": serde_json::to_string(TERMINAL_ATTACK).unwrap()});
    std::fs::write(repo.path().join("META_OP.json"), op.to_string()).unwrap();
    let meta =
        hyperagent(home.path(), &["call", &component, "meta", "--repo", repo.path().to_str().unwrap(), "--json"]);
    assert_inert("call meta --json", &meta.stdout);
    let report: serde_json::Value = serde_json::from_slice(&meta.stdout).unwrap();
    let account: serde_json::Value = serde_json::from_str(report["output"].as_str().unwrap()).unwrap();
    let summary = serde_json::from_str::<String>(account["summary"].as_str().unwrap()).unwrap();
    assert_eq!(summary, TERMINAL_ATTACK, "the probe's meta agent reports the text as its summary");
    let archive = hyperagent::archive::Archive::open(home.path().join("archive")).unwrap();
    let tree: hyperagent::hash::ContentHash = built["tree"].as_str().unwrap().parse().unwrap();
    let parent = archive.put_node(&hyperagent::archive::Node::new(tree, None, None)).unwrap();
    let account = serde_json::json!({"summary": summary, "rationale": format!("why:\n{TERMINAL_ATTACK}"),
                                     "outcome": report["outcome"], "fuel": 1});
    let node = hyperagent::archive::Node::new(tree, None, Some(parent))
        .with("meta", account)
        .with("status", TERMINAL_ATTACK)
        .with("build", serde_json::json!({"diagnostics": TERMINAL_ATTACK, "violations": [TERMINAL_ATTACK]}));
    let node = archive.put_node(&node).unwrap().to_hex();
    for command in ["show", "lineage"] {
        let shown = hyperagent(home.path(), &[command, &node]);
        assert_eq!(shown.status.code(), Some(0), "{}", text(&shown.stderr));
        assert_inert(command, &shown.stdout);
        assert!(text(&shown.stdout).contains("\\x1b]0;owned\\x07"), "{}", text(&shown.stdout));
    }

    // An error message that quotes the guest's text.
    let quoted = hyperagent(home.path(), &["show", TERMINAL_ATTACK]);
    assert_eq!(quoted.status.code(), Some(3));
    assert_inert("an error", &quoted.stderr);
}

#[test]
fn size_flags_past_the_sandbox_maximum_are_refused_with_the_maximum() {
    let home = tempfile::tempdir().unwrap();
    // u64::MAX MiB used to wrap to a cap of 18446744073708503040 bytes, 2^44 MiB to 0 bytes.
    for memory in ["18446744073709551615", "17592186044416", "1025"] {
        let call = hyperagent(home.path(), &["call", "x.wasm", "task", "--memory", memory]);
        assert_eq!(call.status.code(), Some(2), "{}", text(&call.stderr));
        assert!(text(&call.stderr).contains("maximum is 1024 MiB"), "{}", text(&call.stderr));
        assert!(!text(&call.stderr).contains("18446744073708503040"), "{}", text(&call.stderr));
    }
    let timeout = hyperagent(home.path(), &["build", ".", "--timeout-secs", "18446744073709551615"]);
    assert_eq!(timeout.status.code(), Some(2), "{}", text(&timeout.stderr));
    assert!(text(&timeout.stderr).contains("maximum is 86400 s"), "{}", text(&timeout.stderr));
    let iterations = hyperagent(
        home.path(),
        &["call", "x.wasm", "meta", "--repo", ".", "--input", r#"{"iterations_left": 4294967296}"#],
    );
    assert_eq!(iterations.status.code(), Some(3), "{}", text(&iterations.stderr));
    assert!(text(&iterations.stderr).contains("iterations_left"), "{}", text(&iterations.stderr));
    let config = home.path().join("run.toml");
    std::fs::write(&config, "memory_mib = 17592186044416\n").unwrap();
    let run = hyperagent(home.path(), &["run", "--config", config.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(3), "{}", text(&run.stderr));
    assert!(text(&run.stderr).contains("maximum is 1024 MiB"), "{}", text(&run.stderr));
}
