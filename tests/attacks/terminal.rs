//! Attacks on the terminal of whoever reads a call's report: a guest's log lines, stdio, output
//! and error message carrying control sequences that the CLI would pass on raw.

use super::*;

/// Cursor moves that redraw the call's verdict as `ok`, an OSC 52 clipboard write, an OSC 0
/// window title, a C1 CSI, DEL, a bidi override, and a newline that starts a fake line.
const SEQUENCES: &str =
    "\x1b[3A\x1b[2K\routcome:  ok\x1b[3B\x1b]52;c;cm0gLXJmIH4=\x07\x1b]0;ok\x07\u{9b}1J\x7f\u{202e}\nmemory:   ok";

/// `hyperagent call <probe> task --input <payload>` against the suite's archive.
fn call_probe(payload: Value) -> std::process::Output {
    let component = build(&guest_source("probe")).to_hex();
    Command::new(env!("CARGO_BIN_EXE_hyperagent"))
        .args(["call", &component, "task", "--input", &payload.to_string()])
        .env("HYPERAGENT_HOME", &world().paths.home)
        .env("HYPERAGENT_GUEST_TARGET", guest_target_dir())
        .output()
        .expect("the binary runs")
}

/// No ESC, BEL, CR, other C0 control but newline, DEL, C1 control or bidi control in `bytes`.
fn assert_terminal_safe(what: &str, bytes: &[u8]) {
    let text = std::str::from_utf8(bytes).unwrap_or_else(|e| panic!("{what} is not UTF-8: {e}"));
    let unsafe_char = |c: char| matches!(c, '\0'..='\x09' | '\x0b'..='\x1f' | '\x7f'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    assert!(!text.chars().any(unsafe_char), "{what} reached the terminal raw: {text:?}");
}

#[test]
fn control_sequences_in_everything_a_guest_writes() {
    let scene = Scene::new();
    // Written to a log line, stdout, stderr and the output of a call that ends ok...
    let said = call_probe(json!({"op": "say", "text": SEQUENCES}));
    // ...and in the error message of a call that fails, which would redraw its own verdict.
    let failed = call_probe(json!({"op": SEQUENCES}));
    assert_eq!((said.status.code(), failed.status.code()), (Some(0), Some(1)));
    for (what, report) in [("a call that ends ok", &said), ("a failed call", &failed)] {
        assert_terminal_safe(what, &report.stdout);
        assert_terminal_safe(what, &report.stderr);
        let stdout = String::from_utf8_lossy(&report.stdout);
        assert_eq!(stdout.lines().filter(|l| l.starts_with("outcome:")).count(), 1, "{stdout}");
        assert_eq!(stdout.lines().filter(|l| l.starts_with("memory:")).count(), 1, "{stdout}");
        assert!(stdout.contains("\\x1b]52;c;cm0gLXJmIH4=\\x07"), "the text is shown, escaped: {stdout}");
    }
    assert!(String::from_utf8_lossy(&failed.stdout).starts_with("outcome:  guest error"));
    scene.assert_intact();
}
