//! Exercism Rust exercises as the data directory holds them (`coding/polyglot-rust/<name>/`,
//! `coding/exercism-rust/<name>/`): the statement, the stub, the tests, the reference solution,
//! and whether this host can score the exercise at all, with the reason when it cannot.

use crate::compiler::exercise::CrateDependency;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// The benchmark's exercises (the test set) and the upstream track's, under the data directory.
pub const BENCHMARK_DIR: &str = "coding/polyglot-rust";
pub const TRACK_DIR: &str = "coding/exercism-rust";

/// The crates `guest-agents/exercise-deps` vendors (at the versions the exercises ask for); an
/// exercise that needs another cannot be built here.
pub const VENDORED_CRATES: &[&str] = &[
    "anyhow",
    "counter",
    "itertools",
    "num-bigint",
    "num-traits",
    "permutohedron",
    "pretty_assertions",
    "rand",
    "regex",
    "regex-lite",
    "thiserror",
    "time",
];

/// Vendored crate versions that build for wasm32-wasip2 but cannot work there, with the reason:
/// (crate, requirement as the manifest writes it, why).
const WASI_BROKEN: &[(&str, &str, &str)] = &[(
    "rand",
    "0.3.12",
    "rand 0.3, which finds no entropy source on WASI (it falls back to a jitter timer that panics there)",
)];

/// Largest exercise file read, bytes.
const MAX_FILE_BYTES: u64 = 512 << 10;

#[derive(Debug, Clone, PartialEq)]
pub struct Exercise {
    /// The directory name, e.g. `two-bucket`.
    pub name: String,
    /// The library's name as the tests `use` it, e.g. `two_bucket`.
    pub crate_name: String,
    pub edition: String,
    /// The instructions (with their Rust-specific appendix), as markdown.
    pub statement: String,
    /// The stub's files (`src/**`), by path.
    pub stub: BTreeMap<String, String>,
    /// The exercise's `Cargo.toml`, as the solver is shown it.
    pub manifest: String,
    /// The tests (`tests/**`), by path: the scorer's alone.
    pub tests: BTreeMap<String, String>,
    /// The reference solution (`.meta/example.rs`).
    pub example: String,
    /// Crates the exercise's own manifest asks for: what a solution is built with.
    pub dependencies: Vec<CrateDependency>,
    /// Crates of the reference solution's manifest (`.meta/Cargo-example.toml`), which replaces
    /// the exercise's when the reference is checked.
    pub example_dependencies: Option<Vec<CrateDependency>>,
}

impl Exercise {
    /// Why this host cannot score the exercise, or `None` when it can.
    pub fn exclusion(&self) -> Option<String> {
        if let Some(literal) = self.tests.values().find_map(|t| wide_pointer_literal(t)) {
            return Some(format!("a test literal ({literal}) overflows the 32-bit usize of wasm32"));
        }
        if let Some(why) = unbuildable(&self.dependencies) {
            return Some(format!("its manifest asks for {why}"));
        }
        if self.tests.values().any(|t| t.contains("should_panic")) {
            return Some("it has #[should_panic] tests, which libtest skips where a panic aborts (wasm32)".into());
        }
        if self.tests.values().any(|t| t.contains("process::Command")) {
            return Some("its tests start cargo through std::process::Command, which WASI cannot".into());
        }
        None
    }

    /// Why the reference solution cannot be built here although the exercise can be scored.
    pub fn example_exclusion(&self) -> Option<String> {
        if let Some(why) = self.example_dependencies.as_deref().and_then(unbuildable) {
            return Some(format!("the reference solution's manifest asks for {why}"));
        }
        if self.example.contains("thread::spawn") || self.example.contains("thread::scope") {
            return Some("the reference solution spawns threads, which WASI does not have".into());
        }
        None
    }
}

/// The dependencies of `dependencies` this host cannot build, in words, or `None`.
fn unbuildable(dependencies: &[CrateDependency]) -> Option<String> {
    let mut said = Vec::new();
    for dependency in dependencies {
        if dependency.requirement.is_empty() {
            said.push(format!(
                "{} as a path, git or feature entry (only version requirements are built)",
                dependency.name
            ));
        } else if !VENDORED_CRATES.contains(&dependency.name.as_str()) {
            said.push(format!("{}, which is not vendored", dependency.name));
        }
    }
    for (name, requirement, why) in WASI_BROKEN {
        if dependencies.iter().any(|d| d.name == *name && d.requirement == *requirement) {
            said.push((*why).to_owned());
        }
    }
    (!said.is_empty()).then(|| said.join("; "))
}

/// The first `usize` or `isize` literal in `source` that does not fit in 32 bits.
fn wide_pointer_literal(source: &str) -> Option<String> {
    let bytes = source.as_bytes();
    for suffix in ["usize", "isize"] {
        for (at, _) in source.match_indices(suffix) {
            let start = bytes[..at].iter().rposition(|b| !(b.is_ascii_digit() || *b == b'_')).map_or(0, |p| p + 1);
            let digits: String = source[start..at].chars().filter(char::is_ascii_digit).collect();
            if digits.parse::<u128>().is_ok_and(|value| value > u128::from(u32::MAX)) {
                return Some(source[start..at + suffix.len()].to_owned());
            }
        }
    }
    None
}

/// Reads every exercise under `root`, sorted by name.
pub fn read_all(root: &Path) -> Result<Vec<Exercise>, String> {
    let entries = fs::read_dir(root).map_err(|e| format!("cannot read {}: {e}", root.display()))?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.iter().map(|name| read(&root.join(name))).collect()
}

/// Reads one exercise directory.
pub fn read(dir: &Path) -> Result<Exercise, String> {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let text = |path: &str| read_text(&dir.join(path));
    let manifest = text("Cargo.toml")?;
    let parsed: toml::Table = toml::from_str(&manifest).map_err(|e| format!("{}/Cargo.toml: {e}", dir.display()))?;
    let package = parsed.get("package").and_then(|p| p.as_table());
    let crate_name =
        package.and_then(|p| p.get("name")?.as_str()).ok_or(format!("{name}: no package name"))?.replace('-', "_");
    let edition = package.and_then(|p| p.get("edition")?.as_str()).unwrap_or("2015").to_owned();
    let mut statement = text(".docs/instructions.md")?;
    if let Ok(append) = read_text(&dir.join(".docs/instructions.append.md")) {
        statement.push_str("\n\n");
        statement.push_str(&append);
    }
    let example_manifest = read_text(&dir.join(".meta/Cargo-example.toml")).ok();
    let example_dependencies = match &example_manifest {
        Some(text) => {
            Some(dependencies(&toml::from_str(text).map_err(|e| format!("{name}/.meta/Cargo-example.toml: {e}"))?))
        }
        None => None,
    };
    Ok(Exercise {
        stub: read_tree(&dir.join("src"), "src")?,
        tests: read_tree(&dir.join("tests"), "tests")?,
        example: text(".meta/example.rs")?,
        dependencies: dependencies(&parsed),
        example_dependencies,
        name,
        crate_name,
        edition,
        statement,
        manifest,
    })
}

/// The crates a manifest's `[dependencies]` and `[dev-dependencies]` name. An entry that is not
/// a version requirement (a path, a git source, features) keeps an empty requirement, which
/// [`Exercise::exclusion`] names.
fn dependencies(manifest: &toml::Table) -> Vec<CrateDependency> {
    let mut found = Vec::new();
    for (table, dev) in [("dependencies", false), ("dev-dependencies", true)] {
        let Some(entries) = manifest.get(table).and_then(toml::Value::as_table) else { continue };
        for (name, entry) in entries {
            let requirement = match entry {
                toml::Value::String(version) => version.clone(),
                toml::Value::Table(fields) if fields.len() == 1 => {
                    fields.get("version").and_then(toml::Value::as_str).unwrap_or_default().to_owned()
                }
                _ => String::new(),
            };
            found.push(CrateDependency { name: name.clone(), requirement, dev });
        }
    }
    found
}

fn read_text(path: &Path) -> Result<String, String> {
    let size = fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?.len();
    if size > MAX_FILE_BYTES {
        return Err(format!("{} is over {MAX_FILE_BYTES} bytes", path.display()));
    }
    fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// The `.rs` files under `dir`, by path relative to the exercise (`prefix/...`).
fn read_tree(dir: &Path, prefix: &str) -> Result<BTreeMap<String, String>, String> {
    let mut files = BTreeMap::new();
    let Ok(entries) = fs::read_dir(dir) else { return Ok(files) };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            files.extend(read_tree(&path, &format!("{prefix}/{name}"))?);
        } else if name.ends_with(".rs") {
            files.insert(format!("{prefix}/{name}"), read_text(&path)?);
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::{VENDORED_CRATES, wide_pointer_literal};

    #[test]
    fn the_vendored_crates_are_those_the_exercise_deps_manifest_declares() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-agents/exercise-deps/Cargo.toml");
        let manifest: toml::Table = std::fs::read_to_string(path).unwrap().parse().unwrap();
        let mut declared: Vec<&str> = manifest["dependencies"]
            .as_table()
            .unwrap()
            .iter()
            .map(|(name, entry)| entry.get("package").and_then(toml::Value::as_str).unwrap_or(name))
            .collect();
        declared.sort();
        declared.dedup();
        assert_eq!(declared, VENDORED_CRATES);
    }

    #[test]
    fn literals_too_wide_for_wasm32_are_found() {
        assert_eq!(
            wide_pointer_literal("let v = 8273_1232_7352_0562usize;").as_deref(),
            Some("8273_1232_7352_0562usize")
        );
        assert_eq!(wide_pointer_literal("let v = 4_294_967_295usize; let w: usize = 5;"), None);
        assert_eq!(wide_pointer_literal("fn f(x: usize) -> isize { 0 }"), None);
    }
}
