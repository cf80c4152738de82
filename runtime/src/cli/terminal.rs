//! The only way text reaches the terminal. Much of what the CLI prints was written by a guest:
//! outputs, log lines, stdio, error messages, meta accounts, diagnostics that quote its source, its
//! LLM conversations, the files it changed. Printed raw, control characters in it move the cursor
//! and redraw earlier lines (a failed call can show itself as `ok`), set the window title or the
//! clipboard (OSC 52), and bidi overrides reorder what is shown. Every such character is printed
//! as a visible escape instead: `\x1b`, `\u{202e}`.
//!
//! [`outln!`] and [`errln!`] print one line: a newline inside it is escaped too, so a guest's text
//! cannot fake a line of output of its own. [`block`] is for values that are many lines long
//! (diagnostics, source diffs, LLM messages): newlines and tabs stay.

use std::borrow::Cow;

/// `println!` through [`line`].
macro_rules! outln {
    ($($arg:tt)*) => {
        println!("{}", $crate::cli::terminal::line(&format!($($arg)*)))
    };
}

/// `eprintln!` through [`line`].
macro_rules! errln {
    ($($arg:tt)*) => {
        eprintln!("{}", $crate::cli::terminal::line(&format!($($arg)*)))
    };
}

pub(crate) use {errln, outln};

/// `text` as one line: every control character escaped, newlines included.
pub fn line(text: &str) -> Cow<'_, str> {
    escape(text, false)
}

/// `text` as many lines, each prefixed with `indent`: newlines and tabs kept, every other control
/// character escaped. The indent sets the guest's lines apart from the CLI's own.
pub fn block(text: &str, indent: &str) -> String {
    let escaped = escape(text, true);
    escaped.lines().map(|l| format!("{indent}{l}")).collect::<Vec<_>>().join("\n")
}

/// JSON for stdout. serde_json already escapes C0 controls in strings but leaves DEL, C1 controls
/// and bidi overrides raw; they are written as `\u` escapes, which read back as the same string.
pub fn json(value: &impl serde::Serialize) -> serde_json::Result<String> {
    // C0 controls here are pretty-printing's newlines: serde_json escapes them inside strings.
    let left_raw = |c: char| is_unsafe(c) && c > '\x1f';
    let text = serde_json::to_string_pretty(value)?;
    if !text.chars().any(left_raw) {
        return Ok(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if left_raw(c) {
            // Outside strings serde_json writes ASCII only, so every such character is in a
            // string, where a `\u` escape means the character itself.
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Characters a terminal acts on rather than shows: C0 controls, DEL, C1 controls, the bidi
/// embeddings, overrides, isolates and marks, and the Unicode line and paragraph separators.
fn is_unsafe(c: char) -> bool {
    matches!(
        c,
        '\0'..='\x1f'
            | '\x7f'..='\u{9f}'
            | '\u{61c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
    )
}

fn escape(text: &str, keep_lines: bool) -> Cow<'_, str> {
    let must_escape = |c: char| is_unsafe(c) && !(keep_lines && (c == '\n' || c == '\t'));
    if !text.chars().any(must_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            _ if !must_escape(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0'..='\x7f' => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            _ => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every character a terminal acts on, as a guest would send it.
    const HOSTILE: &str = "\x1b[12A\x1b[2K\routcome:  ok\x1b[12B\x1b]52;c;b3duZWQ=\x07\x1b]0;title\x1b\\\
                           \u{9b}31m\u{85}\x7f\x08\u{202e}txt.exe\u{202c}\u{2066}\u{2069}\u{2028}\0";

    fn assert_inert(text: &str) {
        for c in text.chars() {
            assert!(!is_unsafe(c) || c == '\n' || c == '\t', "{c:?} left in {text:?}");
        }
    }

    #[test]
    fn a_line_shows_every_control_character_as_an_escape() {
        let shown = line(HOSTILE);
        assert_inert(&shown);
        assert!(!shown.contains('\n'));
        assert!(shown.starts_with("\\x1b[12A\\x1b[2K\\routcome:  ok"), "{shown}");
        for escape in ["\\x07", "\\u{9b}", "\\u{85}", "\\x7f", "\\x08", "\\u{202e}", "\\u{2066}", "\\u{2028}", "\\x00"]
        {
            assert!(shown.contains(escape), "{escape} missing from {shown}");
        }
        assert_eq!(line("one\ntwo\tthree"), "one\\ntwo\\tthree");
    }

    #[test]
    fn plain_text_is_left_alone() {
        let plain = "gen   3 slot 1: ok  score 0.98765 moved the threshold — «déjà vu» 🦀";
        assert!(matches!(line(plain), Cow::Borrowed(_)));
        assert_eq!(block(plain, ""), plain);
    }

    #[test]
    fn a_block_keeps_its_lines_and_indents_them() {
        let shown = block(&format!("error[E0308]: mismatched types\n\tlet x = 1;\r\n{HOSTILE}"), "  ");
        assert_inert(&shown);
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines.len(), 3, "{shown}");
        assert_eq!(lines[0], "  error[E0308]: mismatched types");
        assert_eq!(lines[1], "  \tlet x = 1;\\r");
        assert!(lines[2].starts_with("  \\x1b[12A"), "{shown}");
    }

    #[test]
    fn json_stays_json_and_means_the_same() {
        let value = serde_json::json!({"output": HOSTILE, "logs": [{"message": "\u{9b}2J"}]});
        let text = json(&value).unwrap();
        assert_inert(&text);
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap(), value);
    }
}
