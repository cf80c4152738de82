//! The loop, the audit and the CLI know domains only through the `Domain` seam: none of them names
//! a concrete domain, its types or its terms. Adding a domain is one module and one registry line.

use std::path::{Path, PathBuf};

/// What a concrete domain is called in code: registered names, its types and its vocabulary.
fn forbidden() -> Vec<String> {
    let mut words: Vec<String> = hyperagent::domains::names().iter().map(|n| n.to_string()).collect();
    words.extend(["BinPacking", "InstanceSet", "Instance", "bins", "excess", "packer"].map(String::from));
    words
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// `word` appears in `text` as a whole identifier (not inside a longer one).
fn names(text: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

#[test]
fn the_loop_the_audit_and_the_cli_name_no_concrete_domain() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = rust_files(&src.join("evolution"));
    files.extend(rust_files(&src.join("cli")));
    files.extend(rust_files(&src.join("audit")));
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        // Unit tests may set up a concrete domain; the code they test may not.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for word in forbidden() {
            if names(code, &word) {
                found.push(format!("{} names `{word}`", file.display()));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_check_sees_a_name_where_there_is_one() {
    assert!(names("use hyperagent_domains::bin_packing::Instance;", "bin_packing"));
    assert!(names("let x: Instance = y;", "Instance"));
    assert!(!names("let instances = InstanceSet2;", "Instance"));
    assert!(!names("train_bins_total", "bins"));
}

#[test]
fn only_the_cluster_module_and_the_cli_name_nats() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found: Vec<String> = rust_files(&src)
        .into_iter()
        .filter(|f| !f.starts_with(src.join("cluster")) && !f.starts_with(src.join("cli")))
        .filter(|f| names(&std::fs::read_to_string(f).unwrap(), "async_nats"))
        .map(|f| f.display().to_string())
        .collect();
    assert!(found.is_empty(), "{}", found.join("\n"));
}
