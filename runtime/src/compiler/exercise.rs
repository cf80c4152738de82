//! Building a coding exercise's tests: a solution's `src/` beside the exercise's own `tests/` is
//! built with `cargo test --no-run` for wasm32-wasip2 in the same jail, offline and locked, as
//! every guest build, and each integration-test binary is read back (a WASI command component).
//!
//! The host writes the manifest: the package is named after the files' hash (two builds never
//! share an artifact in the shared target directory), the library keeps the exercise's crate name
//! (the tests `use` it), and the release profile keeps overflow checks and debug assertions, as
//! the `cargo test` the exercises are written for does. The crates an exercise's manifest asks
//! for come from the vendored copy of `guest-agents/exercise-deps`; the lock file of each set of
//! requirements is resolved once against that copy, offline, and kept.

use super::policy::{self, Violation};
use super::{BuildLayout, CompileError, GUEST_TARGET, GuestCompiler, io_error, remove_matching, run_with_timeout};
use crate::hash::ContentHash;
use crate::source_tree::SourceTree;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The package name in the lock files resolved for exercise manifests; replaced in every build.
const LOCK_PACKAGE: &str = "hyperagent-exercise-0000000000000000";

/// A crate an exercise's manifest asks for, as `name = "requirement"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrateDependency {
    pub name: String,
    /// A version requirement, e.g. `0.3` or `*`.
    pub requirement: String,
    /// Under `[dev-dependencies]` (the tests') rather than `[dependencies]`.
    pub dev: bool,
}

impl CrateDependency {
    /// Whether this is a crate name and a version requirement, and nothing else.
    fn is_well_formed(&self) -> bool {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        let requirement_ok = !self.requirement.is_empty()
            && self.requirement.len() <= 64
            && self.requirement.chars().all(|c| c.is_ascii_alphanumeric() || " .*^~<>=,-+".contains(c));
        name_ok && requirement_ok
    }
}

/// An exercise crate to build: `files` holds `src/**` (the solution) and `tests/**`.
#[derive(Debug, Clone)]
pub struct ExerciseCrate {
    /// The library's name as the tests `use` it, e.g. `acronym` or `two_bucket`.
    pub crate_name: String,
    /// The Rust edition the exercise is written in.
    pub edition: String,
    pub files: SourceTree,
    /// The crates the manifest declares (the exercise's, never the solver's).
    pub dependencies: Vec<CrateDependency>,
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
        let valid_dependencies = exercise.dependencies.iter().all(CrateDependency::is_well_formed);
        if !valid_name || !valid_dependencies || !EDITIONS.contains(&exercise.edition.as_str()) {
            return Err(CompileError::Template {
                path: PathBuf::from(&exercise.crate_name),
                reason: format!(
                    "not an exercise crate name, edition and dependencies: `{}` {} {:?}",
                    exercise.crate_name, exercise.edition, exercise.dependencies
                ),
            });
        }
        let violations = solution_violations(exercise);
        if !violations.is_empty() {
            return Ok(TestBuild::Rejected { violations });
        }
        let hash = tree_hash(&exercise.files);
        let package = format!("{}-x{}", exercise.crate_name.replace('_', "-"), &hash.to_hex()[..16]);
        let lock = self.lock_build_dir()?;
        self.vendor_dependencies()?;
        let mut host = self.host_layout(&package)?;
        let lock_file = if exercise.dependencies.is_empty() {
            format!("version = 4\n\n[[package]]\nname = \"{package}\"\nversion = \"0.0.0\"\n")
        } else {
            host.vendor = self.vendor_exercise_dependencies()?;
            let resolved = self.exercise_lock(&exercise_manifest(LOCK_PACKAGE, exercise), &host.vendor)?;
            resolved.replace(&format!("name = \"{LOCK_PACKAGE}\""), &format!("name = \"{package}\""))
        };
        let seen = if self.jail.has_fixed_view() { BuildLayout::fixed(&package) } else { host.clone() };
        write_exercise_slot(exercise, &package, &lock_file, &host.slot)?;
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
/// `include_str!`, no `env!`, no build scripts...). `extern crate` may also name the crates the
/// exercise's manifest declares.
pub fn solution_violations(exercise: &ExerciseCrate) -> Vec<Violation> {
    let (files, tests_trusted) = (&exercise.files, exercise.tests_trusted);
    let declared: Vec<String> = exercise.dependencies.iter().map(|d| d.name.replace('-', "_")).collect();
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
    violations.retain(|v| !matches!(v, Violation::ExternCrate { name, .. } if declared.contains(name)));
    violations
}

impl GuestCompiler {
    /// Fetches and vendors the crates exercises may depend on (from crates.io, once; the one
    /// network use of the coding domain), so that a run without them fails at its start.
    pub fn fetch_exercise_dependencies(&self) -> Result<(), CompileError> {
        let _lock = self.lock_build_dir()?;
        self.vendor_exercise_dependencies().map(drop)
    }

    /// Vendors the crates exercises may depend on (once per lock file) and says where.
    fn vendor_exercise_dependencies(&self) -> Result<PathBuf, CompileError> {
        let dir = &self.settings.exercise_deps_dir;
        let path = dir.join("Cargo.lock");
        let lock = fs::read_to_string(&path).map_err(|e| CompileError::Template { path, reason: e.to_string() })?;
        let vendor = super::vendor_dir_for(&self.settings.target_dir, &lock);
        self.vendor_manifest(dir, &vendor)?;
        Ok(vendor)
    }

    /// The lock file of `manifest` resolved against `vendor`, offline: kept under the build
    /// directory by the hash of both, so each set of requirements is resolved once. The manifest
    /// is the host's (written from the exercise's data); no guest file is near this cargo run.
    fn exercise_lock(&self, manifest: &str, vendor: &Path) -> Result<String, CompileError> {
        let mut hasher = blake3::Hasher::new_derive_key("hyperagent exercise lock v1");
        hasher.update(vendor.to_string_lossy().as_bytes());
        hasher.update(&[0]);
        hasher.update(manifest.as_bytes());
        let key = ContentHash::from_blake3(hasher.finalize()).to_hex();
        let locks = self.settings.target_dir.join("exercise-locks");
        let kept = locks.join(format!("{}.lock", &key[..32]));
        if let Ok(text) = fs::read_to_string(&kept) {
            return Ok(text);
        }
        let scratch = locks.join(format!("{}.scratch", &key[..32]));
        let _ = fs::remove_dir_all(&scratch);
        fs::create_dir_all(scratch.join("src")).map_err(io_error(&scratch))?;
        fs::write(scratch.join("Cargo.toml"), manifest).map_err(io_error(&scratch))?;
        fs::write(scratch.join("src/lib.rs"), "").map_err(io_error(&scratch))?;
        let resolved = Command::new(&self.toolchain.cargo)
            .args(["generate-lockfile", "--offline", "--color", "never"])
            .args(["--config", "source.crates-io.replace-with=\"vendored\""])
            .arg("--config")
            .arg(format!("source.vendored.directory={:?}", vendor.display().to_string()))
            .arg("--manifest-path")
            .arg(scratch.join("Cargo.toml"))
            .env("RUSTC", &self.toolchain.rustc)
            .env("CARGO_HOME", &self.toolchain.cargo_home)
            .stdin(Stdio::null())
            .output()
            .map_err(CompileError::Spawn)?;
        if !resolved.status.success() {
            let _ = fs::remove_dir_all(&scratch);
            let said =
                String::from_utf8_lossy(&resolved.stderr).trim().replace(&vendor.display().to_string(), "<registry>");
            return Err(CompileError::Vendor(format!(
                "the exercise's dependencies cannot be resolved offline: {said}"
            )));
        }
        let lock_path = scratch.join("Cargo.lock");
        let lock = fs::read_to_string(&lock_path).map_err(io_error(&lock_path))?;
        crate::fsutil::write_atomic(&kept, lock.as_bytes()).map_err(io_error(&kept))?;
        let _ = fs::remove_dir_all(&scratch);
        Ok(lock)
    }
}

/// The host's manifest of an exercise build: the package `package`, the library under the
/// exercise's crate name, the exercise's dependencies, and the release profile of `cargo test`.
fn exercise_manifest(package: &str, exercise: &ExerciseCrate) -> String {
    let mut manifest = format!(
        "[package]\nname = \"{package}\"\nversion = \"0.0.0\"\nedition = \"{}\"\n\n[lib]\nname = \"{}\"\npath = \
         \"src/lib.rs\"\n\n[profile.release]\noverflow-checks = true\ndebug-assertions = true\n\n[workspace]\n",
        exercise.edition, exercise.crate_name
    );
    for (table, dev) in [("dependencies", false), ("dev-dependencies", true)] {
        let mut entries = toml::Table::new();
        for dependency in exercise.dependencies.iter().filter(|d| d.dev == dev) {
            entries.insert(dependency.name.clone(), toml::Value::String(dependency.requirement.clone()));
        }
        if !entries.is_empty() {
            let section = toml::Table::from_iter([(table.to_owned(), toml::Value::Table(entries))]);
            manifest.push('\n');
            manifest.push_str(&section.to_string());
        }
    }
    manifest
}

/// Writes the files with the host's manifest and lock file.
fn write_exercise_slot(exercise: &ExerciseCrate, package: &str, lock: &str, slot: &Path) -> Result<(), CompileError> {
    if slot.exists() {
        fs::remove_dir_all(slot).map_err(io_error(slot))?;
    }
    exercise.files.write_to(slot).map_err(io_error(slot))?;
    fs::write(slot.join("Cargo.toml"), exercise_manifest(package, exercise)).map_err(io_error(slot))?;
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
