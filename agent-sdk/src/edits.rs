//! Edits proposed by an LLM, in a format that survives chatty answers, and applied to `/repo`.
//!
//! Search/replace blocks (preferred):
//!
//! ```text
//! <<<<<<< SEARCH src/priority.rs
//! the exact text to find
//! =======
//! the text to put in its place
//! >>>>>>> REPLACE
//! ```
//!
//! Whole-file rewrite (fallback): a fenced block whose info string names the file,
//! ```` ```rust src/priority.rs ````. Text outside blocks is ignored. Every problem is reported in
//! words an agent can act on (which block, which file, what to change).

use crate::repo::Repo;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    Replace { path: String, search: String, replace: String },
    Rewrite { path: String, contents: String },
}

impl Edit {
    pub fn path(&self) -> &str {
        match self {
            Edit::Replace { path, .. } | Edit::Rewrite { path, .. } => path,
        }
    }
}

/// Parses every edit in `text`; an empty list means the text held none.
pub fn parse(text: &str) -> Result<Vec<Edit>, String> {
    let mut edits = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_end();
        if let Some(path) = line.strip_prefix("<<<<<<< SEARCH") {
            let path = path.trim().to_owned();
            let block = edits.len() + 1;
            if path.is_empty() {
                return Err(format!(
                    "block {block}: `<<<<<<< SEARCH` must be followed by the file's path on the same line"
                ));
            }
            let divider = (i + 1..lines.len()).find(|&j| lines[j].trim_end() == "=======");
            let end = divider.and_then(|d| (d + 1..lines.len()).find(|&j| lines[j].trim_end() == ">>>>>>> REPLACE"));
            let (Some(divider), Some(end)) = (divider, end) else {
                return Err(format!(
                    "block {block} ({path}): expected `=======` and then `>>>>>>> REPLACE` after the search text"
                ));
            };
            let search = lines[i + 1..divider].join("\n");
            if search.trim().is_empty() {
                return Err(format!("block {block} ({path}): the search text is empty; copy the lines to replace"));
            }
            edits.push(Edit::Replace { path, search, replace: lines[divider + 1..end].join("\n") });
            i = end + 1;
        } else if let Some(info) = line.strip_prefix("```") {
            let close = (i + 1..lines.len()).find(|&j| lines[j].trim_end() == "```");
            let path = info.split_whitespace().nth(1).map(str::to_owned);
            match (path, close) {
                (Some(path), Some(close)) if path.contains('/') || path.contains('.') => {
                    edits.push(Edit::Rewrite { path, contents: lines[i + 1..close].join("\n") + "\n" });
                    i = close + 1;
                }
                (_, Some(close)) => i = close + 1,
                (_, None) => i += 1,
            }
        } else {
            i += 1;
        }
    }
    Ok(edits)
}

/// Applies edits to the repository; nothing is written unless every edit applies.
pub fn apply(repo: &Repo, edits: &[Edit]) -> Result<Vec<String>, String> {
    let files = preview(repo, edits)?;
    write(repo, &files)?;
    Ok(files.into_iter().map(|(p, _)| p).collect())
}

/// What the edits would make of each file they touch, `(path, new contents)`, without writing:
/// a caller can check the result before [`write`] makes it so.
pub fn preview(repo: &Repo, edits: &[Edit]) -> Result<Vec<(String, String)>, String> {
    let mut files: Vec<(String, String)> = Vec::new();
    for (index, edit) in edits.iter().enumerate() {
        let path = edit.path().to_owned();
        // Checked before anything is written, so that a bad path cannot leave half an edit behind.
        crate::repo::check_path(&path).map_err(|e| format!("edit {}: {e}", index + 1))?;
        let current = match files.iter().position(|(p, _)| *p == path) {
            Some(at) => files.remove(at).1,
            None => match edit {
                Edit::Rewrite { .. } => String::new(),
                Edit::Replace { .. } => {
                    repo.read(&path).map_err(|e| format!("edit {}: cannot read {path}: {e}", index + 1))?
                }
            },
        };
        let updated = match edit {
            Edit::Rewrite { contents, .. } => contents.clone(),
            Edit::Replace { search, replace, .. } => {
                let count = current.matches(search.as_str()).count();
                if count != 1 {
                    return Err(format!(
                        "edit {}: the search text occurs {count} times in {path}; it must occur exactly once (copy it exactly, with more context if needed)",
                        index + 1
                    ));
                }
                current.replacen(search.as_str(), replace, 1)
            }
        };
        files.push((path, updated));
    }
    Ok(files)
}

/// Writes what [`preview`] returned.
pub fn write(repo: &Repo, files: &[(String, String)]) -> Result<(), String> {
    for (path, contents) in files {
        repo.write(path, contents).map_err(|e| format!("cannot write {path}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_blocks_amid_prose() {
        let text = "Sure! Here you go.\n<<<<<<< SEARCH src/a.rs\nlet x = 1;\n=======\nlet x = 2;\n>>>>>>> REPLACE\nand\n```rust src/b.rs\nfn b() {}\n```\n```\nnot a file\n```\n";
        let edits = parse(text).unwrap();
        assert_eq!(edits.len(), 2);
        assert_eq!(
            edits[0],
            Edit::Replace { path: "src/a.rs".into(), search: "let x = 1;".into(), replace: "let x = 2;".into() }
        );
        assert_eq!(edits[1], Edit::Rewrite { path: "src/b.rs".into(), contents: "fn b() {}\n".into() });
    }

    #[test]
    fn malformed_blocks_say_what_to_fix() {
        assert!(parse("<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE").unwrap_err().contains("path"));
        assert!(parse("<<<<<<< SEARCH src/a.rs\nx\n").unwrap_err().contains(">>>>>>> REPLACE"));
        assert!(parse("<<<<<<< SEARCH src/a.rs\n\n=======\ny\n>>>>>>> REPLACE").unwrap_err().contains("empty"));
    }

    #[test]
    fn an_edit_aimed_outside_the_repository_stops_them_all() {
        let root = std::env::temp_dir().join(format!("agent-sdk-edits-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        let repo = Repo::open(root.join("repo"));
        for escape in ["../escape.rs", "/etc/escape.rs", "src/../../escape.rs", "./src/x.rs"] {
            let edits = vec![
                Edit::Rewrite { path: "src/fine.rs".into(), contents: "fn fine() {}\n".into() },
                Edit::Rewrite { path: escape.into(), contents: "fn main() {}\n".into() },
            ];
            let error = apply(&repo, &edits).unwrap_err();
            assert!(error.starts_with("edit 2:") && error.contains("not a plain relative path"), "{error}");
        }
        assert!(!root.join("repo/src/fine.rs").exists(), "half of a refused edit set was written");
        assert!(!root.join("escape.rs").exists());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
