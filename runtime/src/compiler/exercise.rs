//! Building a coding exercise's tests: a solution's `src/` beside the exercise's own `tests/` is
//! built with `cargo test --no-run` for wasm32-wasip2 in the same jail, offline and locked, as
//! every guest build, and each integration-test binary is read back (a WASI command component).
//!
//! The host writes the manifest: the package is named after the files' hash (two builds never
//! share an artifact in the shared target directory), the library keeps the exercise's crate name
//! (the tests `use` it), and the release profile keeps overflow checks and debug assertions, as
//! the `cargo test` the exercises are written for does. Exercise crates have no dependencies.

use super::policy::{self, Violation};
use super::{BuildLayout, CompileError, GUEST_TARGET, GuestCompiler, io_error, remove_matching, run_with_timeout};
use crate::hash::ContentHash;
use crate::source_tree::SourceTree;
use std::fs;
use std::path::{Path, PathBuf};

/// An exercise crate to build: `files` holds `src/**` (the solution) and `tests/**`.
#[derive(Debug, Clone)]
pub struct ExerciseCrate {
    /// The library's name as the tests `use` it, e.g. `acronym` or `two_bucket`.
    pub crate_name: String,
    /// The Rust edition the exercise is written in.
    pub edition: String,
    pub files: SourceTree,
    /// Whether `tests/**` is the exercise's own (from the host's data, not held to the source
    /// policy) or written by a guest (`run-tests`), which is checked like the solution.
    pub tests_trusted: bool,
}

/// One integration-test binary.
#[derive(Debug, Clone)]
pub struct TestBinary {
    /// The test target's name (its file under `tests/`).
    pub name: String,
    pub wasm: Vec<u8>,
}

/// What building an exercise's tests gave.
#[derive(Debug, Clone)]
pub enum TestBuild {
    Built {
        binaries: Vec<TestBinary>,
    },
    /// The solution broke the source policy; cargo never ran.
    Rejected {
        violations: Vec<Violation>,
    },
    /// cargo failed or timed out; bounded and redacted diagnostics.
    Failed {
        diagnostics: String,
    },
}

const EDITIONS: &[&str] = &["2015", "2018", "2021", "2024"];

impl GuestCompiler {
    /// Checks the solution's files against the source policy and builds the exercise's tests.
    pub fn build_exercise_tests(&self, exercise: &ExerciseCrate) -> Result<TestBuild, CompileError> {
        let valid_name = !exercise.crate_name.is_empty()
            && exercise.crate_name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid_name || !EDITIONS.contains(&exercise.edition.as_str()) {
            return Err(CompileError::Template {
                path: PathBuf::from(&exercise.crate_name),
                reason: format!(
                    "not an exercise crate name and edition: `{}` {}",
                    exercise.crate_name, exercise.edition
                ),
            });
        }
        let violations = solution_violations(&exercise.files, exercise.tests_trusted);
        if !violations.is_empty() {
            return Ok(TestBuild::Rejected { violations });
        }
        let hash = tree_hash(&exercise.files);
        let package = format!("{}-x{}", exercise.crate_name.replace('_', "-"), &hash.to_hex()[..16]);
        let lock = self.lock_build_dir()?;
        self.vendor_dependencies()?;
        let host = self.host_layout(&package)?;
        let seen = if self.jail.has_fixed_view() { BuildLayout::fixed(&package) } else { host.clone() };
        write_exercise_slot(exercise, &package, &host.slot)?;
        let subcommand = ["test", "--no-run", "--test", "*", "--message-format", "json-render-diagnostics"];
        let command = self.cargo_command(&host, &seen, &subcommand)?;
        let run = run_with_timeout(command, self.settings.timeout)?;
        let mut diagnostics = super::diagnostics::redact(&run.stderr, &self.redactions(&host, &seen));
        if let Some(hint) = super::confinement::limit_hint(&diagnostics, &self.jail.limits) {
            diagnostics = format!("{hint}\n{diagnostics}");
        }
        let outcome = if run.timed_out {
            let limit = self.settings.timeout.as_secs();
            let diagnostics = format!("the build did not finish within {limit} s and was killed\n{diagnostics}");
            TestBuild::Failed { diagnostics }
        } else if !run.success {
            TestBuild::Failed { diagnostics }
        } else {
            let mut binaries = Vec::new();
            for (name, executable) in test_executables(&run.stdout) {
                // cargo names its own target directory; anything else is not read.
                let Ok(rest) = executable.strip_prefix(&seen.target) else { continue };
                let path = host.target.join(rest);
                binaries.push(TestBinary { name, wasm: fs::read(&path).map_err(io_error(&path))? });
            }
            binaries.sort_by(|a, b| a.name.cmp(&b.name));
            TestBuild::Built { binaries }
        };
        // Every build is a package of its own: its artifacts are never reused.
        let _ = fs::remove_dir_all(&host.slot);
        let release = host.target.join(GUEST_TARGET).join("release");
        remove_matching(&release.join(".fingerprint"), &[&format!("{package}-")]);
        let artifact = package.replace('-', "_");
        remove_matching(&release.join("deps"), &[&format!("lib{}-", exercise.crate_name), &format!("{artifact}-")]);
        if let TestBuild::Built { binaries, .. } = &outcome {
            let names: Vec<String> = binaries.iter().map(|b| format!("{}-", b.name.replace('-', "_"))).collect();
            remove_matching(&release.join("deps"), &names.iter().map(String::as_str).collect::<Vec<_>>());
        }
        drop(lock);
        Ok(outcome)
    }
}

/// What the policy says of a solution: only `src/**/*.rs` (and, when the tests are a guest's,
/// `tests/**/*.rs`) may be written, and each such file is held to the rules of guest source (no
/// `include_str!`, no `env!`, no build scripts...).
pub fn solution_violations(files: &SourceTree, tests_trusted: bool) -> Vec<Violation> {
    let mut violations = Vec::new();
    if !files.files.keys().any(|p| p.as_str() == "src/lib.rs") {
        violations.push(Violation::LibRsMissing);
    }
    for (path, file) in &files.files {
        let path = path.as_str();
        let is_test = path.starts_with("tests/");
        if is_test && tests_trusted {
            continue;
        }
        if !(path.starts_with("src/") || is_test) || !path.ends_with(".rs") {
            violations.push(Violation::ForbiddenFile { path: path.to_owned() });
            continue;
        }
        if file.bytes.len() > policy::MAX_RUST_FILE_BYTES {
            let (bytes, limit) = (file.bytes.len(), policy::MAX_RUST_FILE_BYTES);
            violations.push(Violation::FileTooLarge { path: path.to_owned(), bytes, limit });
            continue;
        }
        match std::str::from_utf8(&file.bytes) {
            Ok(text) => policy::check_rust(path, text, &mut violations),
            Err(_) => violations.push(Violation::NotUtf8 { path: path.to_owned() }),
        }
    }
    violations
}

/// Writes the files with the host's manifest and lock file.
fn write_exercise_slot(exercise: &ExerciseCrate, package: &str, slot: &Path) -> Result<(), CompileError> {
    if slot.exists() {
        fs::remove_dir_all(slot).map_err(io_error(slot))?;
    }
    exercise.files.write_to(slot).map_err(io_error(slot))?;
    let manifest = format!(
        "[package]\nname = \"{package}\"\nversion = \"0.0.0\"\nedition = \"{}\"\n\n[lib]\nname = \"{}\"\npath = \
         \"src/lib.rs\"\n\n[profile.release]\noverflow-checks = true\ndebug-assertions = true\n\n[workspace]\n",
        exercise.edition, exercise.crate_name
    );
    let lock = format!("version = 4\n\n[[package]]\nname = \"{package}\"\nversion = \"0.0.0\"\n");
    fs::write(slot.join("Cargo.toml"), manifest).map_err(io_error(slot))?;
    fs::write(slot.join("Cargo.lock"), lock).map_err(io_error(slot))?;
    Ok(())
}

/// The test targets cargo built, from its JSON messages: (target name, executable path).
fn test_executables(stdout: &str) -> Vec<(String, PathBuf)> {
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["profile"]["test"] == true)
        .filter_map(|m| Some((m["target"]["name"].as_str()?.to_owned(), PathBuf::from(m["executable"].as_str()?))))
        .collect()
}

/// A hash of the files, for the package name.
fn tree_hash(files: &SourceTree) -> ContentHash {
    let mut hasher = blake3::Hasher::new_derive_key("hyperagent exercise build v1");
    for (path, file) in &files.files {
        hasher.update(path.as_str().as_bytes());
        hasher.update(&[0]);
        hasher.update(ContentHash::of(&file.bytes).as_bytes());
    }
    ContentHash::from_blake3(hasher.finalize())
}
