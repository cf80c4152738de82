//! Tools over `/repo` that a model can call: list, view with line numbers, replace a string that
//! occurs exactly once, create, insert. Every outcome, failures included, is text for the model:
//! a wrong path or an ambiguous edit is something to correct, never a reason to stop.

use crate::llm::ToolDefinition;
use crate::repo::Repo;
use serde_json::{Value, json};

/// Most lines one `view` shows.
pub const VIEW_LINES: usize = 300;
/// Most bytes of one tool result.
pub const RESULT_BYTES: usize = 24 << 10;

/// What a tool did to the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Read only, or failed.
    None,
    /// The file at this path was written.
    Wrote(String),
}

/// The definitions of the file tools, to offer the model.
pub fn definitions() -> Vec<ToolDefinition> {
    let tool = |name: &str, description: &str, parameters: Value| ToolDefinition {
        name: name.to_owned(),
        description: description.to_owned(),
        parameters: parameters.to_string(),
    };
    let path = json!({"type": "string", "description": "A path relative to the repository root, e.g. src/lib.rs"});
    vec![
        tool(
            "list",
            "Lists the repository's files (or those under a directory).",
            json!({"type": "object", "properties": {"path": path}}),
        ),
        tool(
            "view",
            "Shows a file with line numbers, up to 300 lines from start_line (1-based).",
            json!({"type": "object", "properties": {"path": path, "start_line": {"type": "integer"}}, "required": ["path"]}),
        ),
        tool(
            "str_replace",
            "Replaces old_str with new_str in a file; old_str must occur exactly once (copy it exactly, with \
             enough lines to be unique).",
            json!({"type": "object", "properties": {"path": path, "old_str": {"type": "string"}, "new_str": {"type": "string"}},
                   "required": ["path", "old_str", "new_str"]}),
        ),
        tool(
            "create",
            "Writes a whole file, replacing it if it exists.",
            json!({"type": "object", "properties": {"path": path, "content": {"type": "string"}}, "required": ["path", "content"]}),
        ),
        tool(
            "insert",
            "Inserts text after the given line (0 inserts at the top).",
            json!({"type": "object", "properties": {"path": path, "line": {"type": "integer"}, "text": {"type": "string"}},
                   "required": ["path", "line", "text"]}),
        ),
    ]
}

/// Whether `name` is one of the file tools.
pub fn is_file_tool(name: &str) -> bool {
    matches!(name, "list" | "view" | "str_replace" | "create" | "insert")
}

/// Runs one file tool; the text is the tool's result for the model.
pub fn run(repo: &Repo, name: &str, arguments: &Value) -> (String, Effect) {
    let text = |key: &str| arguments[key].as_str();
    let outcome = match name {
        "list" => list(repo, text("path").unwrap_or("")).map(|t| (t, Effect::None)),
        "view" => match text("path") {
            Some(path) => {
                view(repo, path, arguments["start_line"].as_u64().unwrap_or(1) as usize).map(|t| (t, Effect::None))
            }
            None => Err("`view` needs `path`".to_owned()),
        },
        "str_replace" => match (text("path"), text("old_str"), text("new_str")) {
            (Some(path), Some(old), Some(new)) => str_replace(repo, path, old, new),
            _ => Err("`str_replace` needs `path`, `old_str` and `new_str`, all strings".to_owned()),
        },
        "create" => match (text("path"), text("content")) {
            (Some(path), Some(content)) => write(repo, path, content, "created"),
            _ => Err("`create` needs `path` and `content`, both strings".to_owned()),
        },
        "insert" => match (text("path"), arguments["line"].as_u64(), text("text")) {
            (Some(path), Some(line), Some(new)) => insert(repo, path, line as usize, new),
            _ => Err("`insert` needs `path` (a string), `line` (an integer) and `text` (a string)".to_owned()),
        },
        other => Err(format!("`{other}` is not a file tool")),
    };
    match outcome {
        Ok((mut result, effect)) => {
            if result.len() > RESULT_BYTES {
                let mut end = RESULT_BYTES;
                while !result.is_char_boundary(end) {
                    end -= 1;
                }
                result.truncate(end);
                result.push_str("\n[cut: the result is longer than 24 KiB]");
            }
            (result, effect)
        }
        Err(why) => (format!("error: {why}"), Effect::None),
    }
}

fn list(repo: &Repo, under: &str) -> Result<String, String> {
    let prefix = under.trim_matches('/');
    let files = repo.files().map_err(|e| format!("cannot list the repository: {e}"))?;
    let shown: Vec<String> = files
        .into_iter()
        .filter(|f| prefix.is_empty() || prefix == "." || f.starts_with(&format!("{prefix}/")))
        .collect();
    if shown.is_empty() {
        return Err(format!("no files under `{under}`"));
    }
    Ok(shown.join("\n"))
}

fn read(repo: &Repo, path: &str) -> Result<String, String> {
    repo.read(path).map_err(|e| format!("cannot read `{path}`: {e}"))
}

fn view(repo: &Repo, path: &str, start: usize) -> Result<String, String> {
    let text = read(repo, path)?;
    let lines: Vec<&str> = text.lines().collect();
    let start = start.max(1);
    if start > lines.len().max(1) {
        return Err(format!("`{path}` has {} lines; start_line {start} is past its end", lines.len()));
    }
    let end = (start - 1 + VIEW_LINES).min(lines.len());
    let mut shown: String =
        lines[start - 1..end].iter().enumerate().map(|(i, line)| format!("{:>5}\t{line}\n", start + i)).collect();
    if end < lines.len() {
        shown.push_str(&format!(
            "[lines {}..{} not shown: view again with start_line {}]\n",
            end + 1,
            lines.len(),
            end + 1
        ));
    }
    Ok(shown)
}

fn write(repo: &Repo, path: &str, content: &str, verb: &str) -> Result<(String, Effect), String> {
    repo.write(path, content).map_err(|e| format!("cannot write `{path}`: {e}"))?;
    Ok((format!("{verb} `{path}` ({} lines)", content.lines().count()), Effect::Wrote(path.to_owned())))
}

fn str_replace(repo: &Repo, path: &str, old: &str, new: &str) -> Result<(String, Effect), String> {
    if old.is_empty() {
        return Err("old_str is empty; copy the exact text to replace".to_owned());
    }
    let text = read(repo, path)?;
    match text.matches(old).count() {
        0 => Err(format!("old_str does not occur in `{path}`; view the file and copy the text exactly")),
        1 => write(repo, path, &text.replacen(old, new, 1), "edited"),
        n => Err(format!("old_str occurs {n} times in `{path}`; include more lines so that it occurs once")),
    }
}

fn insert(repo: &Repo, path: &str, after: usize, new: &str) -> Result<(String, Effect), String> {
    let text = read(repo, path)?;
    let mut lines: Vec<&str> = text.lines().collect();
    if after > lines.len() {
        return Err(format!("`{path}` has {} lines; cannot insert after line {after}", lines.len()));
    }
    lines.splice(after..after, new.lines());
    write(repo, path, &(lines.join("\n") + "\n"), "inserted into")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(name: &str) -> Repo {
        let dir = std::env::temp_dir().join(format!("file-tools-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(dir.join("src/lib.rs"), "fn a() {}\nfn b() {}\nfn a2() {}\n").unwrap();
        Repo::open(dir)
    }

    fn call(repo: &Repo, name: &str, arguments: Value) -> (String, Effect) {
        run(repo, name, &arguments)
    }

    #[test]
    fn str_replace_needs_exactly_one_occurrence() {
        let repo = repo("replace");
        let (once, effect) =
            call(&repo, "str_replace", json!({"path": "src/lib.rs", "old_str": "fn b", "new_str": "fn c"}));
        assert_eq!((once.as_str(), effect), ("edited `src/lib.rs` (3 lines)", Effect::Wrote("src/lib.rs".into())));
        let (twice, _) = call(&repo, "str_replace", json!({"path": "src/lib.rs", "old_str": "fn a", "new_str": "x"}));
        assert!(twice.contains("occurs 2 times"), "{twice}");
        let (none, effect) =
            call(&repo, "str_replace", json!({"path": "src/lib.rs", "old_str": "zzz", "new_str": "x"}));
        assert!(none.contains("does not occur") && effect == Effect::None, "{none}");
        assert_eq!(repo.read("src/lib.rs").unwrap(), "fn a() {}\nfn c() {}\nfn a2() {}\n");
    }

    #[test]
    fn view_numbers_lines_and_insert_places_text_after_one() {
        let repo = repo("view");
        let (shown, _) = call(&repo, "view", json!({"path": "src/lib.rs", "start_line": 2}));
        assert_eq!(shown, "    2\tfn b() {}\n    3\tfn a2() {}\n");
        call(&repo, "insert", json!({"path": "src/lib.rs", "line": 1, "text": "// after a"}));
        assert_eq!(repo.read("src/lib.rs").unwrap().lines().nth(1), Some("// after a"));
        let (past, _) = call(&repo, "insert", json!({"path": "src/lib.rs", "line": 99, "text": "x"}));
        assert!(past.starts_with("error:"), "{past}");
    }

    #[test]
    fn paths_outside_the_repository_and_bad_arguments_are_errors_for_the_model() {
        let repo = repo("paths");
        for path in ["../escape.rs", "/etc/passwd", "src/../../x"] {
            let (text, effect) = call(&repo, "create", json!({"path": path, "content": "x"}));
            assert!(text.starts_with("error:") && effect == Effect::None, "{path}: {text}");
        }
        let (text, _) = call(&repo, "view", json!({"file": "src/lib.rs"}));
        assert!(text.contains("needs `path`"), "{text}");
        let (listed, _) = call(&repo, "list", json!({}));
        assert_eq!(listed, "src/lib.rs");
    }
}
