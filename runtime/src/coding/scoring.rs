//! Scoring one solution: its files beside the exercise's tests, built in the jail, each test run
//! alone in the test runner. 1 when every test of every binary passed, else 0; the details say
//! how many passed and failed, name the failing tests and keep the first failure's output.

use super::exercise::Exercise;
use super::runner::{BinaryRun, TestLimits, TestRunner};
use super::workdir::WorkDir;
use crate::compiler::GuestCompiler;
use crate::compiler::exercise::{CrateDependency, ExerciseCrate, TestBuild};
use crate::source_tree::SourceTree;
use hyperagent_domains::TaskScore;
use hyperagent_domains::domain::OwnTestRun;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

/// Files an answer may hold, and their total size in bytes.
pub const MAX_ANSWER_FILES: usize = 16;
pub const MAX_ANSWER_BYTES: usize = 512 << 10;
/// Failing tests named in the details; longest build diagnostics kept, bytes.
const MAX_NAMED_FAILURES: usize = 10;
const MAX_DIAGNOSTICS_BYTES: usize = 4096;

pub struct Scorer {
    compiler: Arc<GuestCompiler>,
    limits: TestLimits,
    runner: OnceLock<Result<TestRunner, String>>,
}

/// The files of an answer `{"files": {"src/lib.rs": "...", ...}}`, or why it is refused.
pub fn answer_files(answer: &str) -> Result<BTreeMap<String, String>, String> {
    let value = hyperagent_domains::json::parse_strict(answer)?;
    let Some(files) = value.get("files").and_then(Value::as_object) else {
        return Err("the answer is not {\"files\": {path: text}}".into());
    };
    let mut kept = BTreeMap::new();
    for (path, text) in files {
        let Some(text) = text.as_str() else { return Err(format!("{path}: the file's text is not a string")) };
        kept.insert(path.clone(), text.to_owned());
    }
    check_files(&kept)?;
    Ok(kept)
}

/// A solution's files: 1 to [`MAX_ANSWER_FILES`], under `src/`, ending in `.rs`, within
/// [`MAX_ANSWER_BYTES`] in all.
pub fn check_files(files: &BTreeMap<String, String>) -> Result<(), String> {
    if files.is_empty() || files.len() > MAX_ANSWER_FILES {
        return Err(format!("the answer holds {} files; 1 to {MAX_ANSWER_FILES} are allowed", files.len()));
    }
    for path in files.keys() {
        if !path.starts_with("src/") || !path.ends_with(".rs") || crate::source_tree::RelPath::new(path).is_err() {
            return Err(format!("{path}: only files under src/ ending in .rs may be written"));
        }
    }
    let total: usize = files.values().map(String::len).sum();
    if total > MAX_ANSWER_BYTES {
        return Err(format!("the files hold {total} bytes; at most {MAX_ANSWER_BYTES}"));
    }
    Ok(())
}

impl Scorer {
    pub fn new(compiler: Arc<GuestCompiler>, limits: TestLimits) -> Scorer {
        Scorer { compiler, limits, runner: OnceLock::new() }
    }

    /// Builds `files` over the exercise's stub (a file of the answer replaces the stub's; the
    /// stub's other files stay, as some exercises give modules ready made) with the exercise's
    /// tests, and runs them.
    pub fn score(&self, exercise: &Exercise, files: &BTreeMap<String, String>) -> TaskScore {
        self.score_with(exercise, files, &exercise.tests, &exercise.dependencies, true)
    }

    /// Scores the exercise's reference solution, built with the crates of its own manifest
    /// (`.meta/Cargo-example.toml`) where it has one.
    pub fn score_reference(&self, exercise: &Exercise) -> TaskScore {
        let files = BTreeMap::from([("src/lib.rs".to_owned(), exercise.example.clone())]);
        let dependencies = exercise.example_dependencies.as_ref().unwrap_or(&exercise.dependencies);
        self.score_with(exercise, &files, &exercise.tests, dependencies, true)
    }

    /// Runs a task agent's own `tests` (one integration test file) against `files`: what
    /// `run-tests` answers. The exercise's hidden tests are not built.
    pub fn run_own(
        &self,
        exercise: &Exercise,
        files: &BTreeMap<String, String>,
        tests: String,
    ) -> Result<OwnTestRun, String> {
        check_files(files)?;
        let own = BTreeMap::from([("tests/agent.rs".to_owned(), tests)]);
        let scored = self.score_with(exercise, files, &own, &exercise.dependencies, false);
        if let Some(why) = scored.invalid {
            return Err(why);
        }
        let details = &scored.details;
        let count = |key: &str| details[key].as_u64().unwrap_or(0) as u32;
        if details["build"] == "failed" {
            let output = details["diagnostics"].as_str().unwrap_or("").to_owned();
            return Ok(OwnTestRun { built: false, passed: 0, failed: 0, output });
        }
        let failing: Vec<&str> =
            details["failing"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        let mut output = if failing.is_empty() { String::new() } else { format!("failing: {}\n", failing.join(", ")) };
        output.push_str(details["first_failure"].as_str().unwrap_or(""));
        Ok(OwnTestRun { built: true, passed: count("passed"), failed: count("failed"), output })
    }

    /// Builds `files` over the stub with `tests` (the exercise's own when `tests_trusted`, else a
    /// guest's, held to the source policy) and runs them.
    fn score_with(
        &self,
        exercise: &Exercise,
        files: &BTreeMap<String, String>,
        tests: &BTreeMap<String, String>,
        dependencies: &[CrateDependency],
        tests_trusted: bool,
    ) -> TaskScore {
        let mut tree = SourceTree::default();
        let stub_rest = exercise.stub.iter().filter(|(path, _)| !files.contains_key(*path));
        for (path, text) in files.iter().chain(stub_rest).chain(tests) {
            if let Err(e) = tree.insert(path, text.as_bytes()) {
                return TaskScore::invalid(format!("{path}: {e}"));
            }
        }
        let krate = ExerciseCrate {
            crate_name: exercise.crate_name.clone(),
            edition: exercise.edition.clone(),
            files: tree,
            dependencies: dependencies.to_vec(),
            tests_trusted,
        };
        let built = match self.compiler.build_exercise_tests(&krate) {
            Ok(built) => built,
            Err(e) => return TaskScore::invalid(format!("the host could not build the exercise: {e}")),
        };
        let binaries = match built {
            TestBuild::Rejected { violations } => {
                let said: Vec<String> = violations.iter().map(|v| v.to_string()).collect();
                return TaskScore::invalid(format!("refused by the source policy: {}", said.join("; ")));
            }
            TestBuild::Failed { mut diagnostics } => {
                crate::sandbox::host::truncate_utf8(&mut diagnostics, MAX_DIAGNOSTICS_BYTES);
                return TaskScore {
                    score: 0.0,
                    invalid: None,
                    details: json!({"build": "failed", "diagnostics": diagnostics}),
                };
            }
            TestBuild::Built { binaries } => binaries,
        };
        let runner = match self.runner.get_or_init(TestRunner::new) {
            Ok(runner) => runner,
            Err(e) => return TaskScore::invalid(format!("the test runner could not start: {e}")),
        };
        let workdir = match working_directory(exercise) {
            Ok(dir) => dir,
            Err(e) => return TaskScore::invalid(format!("the host could not make the tests' directory: {e}")),
        };
        let runs: Vec<BinaryRun> =
            binaries.iter().map(|b| runner.run_binary(&b.name, &b.wasm, &self.limits, Some(workdir.path()))).collect();
        summarise(&runs)
    }
}

/// The template of the tests' working directory: the exercise's `Cargo.toml` alone (some tests
/// read it); each test run works in a fresh copy (see [`super::workdir`]).
fn working_directory(exercise: &Exercise) -> std::io::Result<WorkDir> {
    WorkDir::with_files("exercise", &[("Cargo.toml", exercise.manifest.as_bytes())])
}

/// The score and details of a solution's test runs.
fn summarise(runs: &[BinaryRun]) -> TaskScore {
    let passed = runs.iter().flat_map(|r| &r.tests).filter(|t| t.passed).count();
    let failing: Vec<String> = runs
        .iter()
        // Names come from the test binary (from a guest's own tests, for `run-tests`): cut.
        .flat_map(|r| {
            r.tests
                .iter()
                .filter(|t| !t.passed)
                .map(move |t| format!("{}::{}", r.binary, t.name).chars().take(200).collect())
        })
        .collect();
    let errors: Vec<String> =
        runs.iter().filter_map(|r| r.error.as_ref().map(|e| format!("{}: {e}", r.binary))).collect();
    let first_failure = runs
        .iter()
        .flat_map(|r| r.tests.iter().filter(|t| !t.passed).map(|t| t.failure.clone()))
        .next()
        .or_else(|| errors.first().cloned());
    let all_passed = passed > 0 && failing.is_empty() && errors.is_empty();
    TaskScore {
        score: if all_passed { 1.0 } else { 0.0 },
        invalid: None,
        details: json!({
            "build": "ok",
            "passed": passed,
            "failed": failing.len(),
            "failing": failing.iter().take(MAX_NAMED_FAILURES).collect::<Vec<_>>(),
            "binary_errors": errors,
            "first_failure": first_failure,
            "fuel": runs.iter().map(|r| r.fuel).sum::<u64>(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_held_to_their_schema() {
        let ok = answer_files(r#"{"files": {"src/lib.rs": "pub fn f() {}"}}"#).unwrap();
        assert_eq!(ok.len(), 1);
        for (bad, why) in [
            ("{}", "not {\"files\""),
            (r#"{"files": {}}"#, "0 files"),
            (r#"{"files": {"tests/x.rs": ""}}"#, "only files under src/"),
            (r#"{"files": {"src/../x.rs": ""}}"#, "only files under src/"),
            (r#"{"files": {"src/lib.rs": 1}}"#, "not a string"),
            (r#"{"files": {"src/a.rs": "", "src/a.rs": ""}}"#, "duplicate"),
            ("not json", "not JSON"),
        ] {
            let said = answer_files(bad).unwrap_err();
            assert!(said.contains(why), "{bad}: {said}");
        }
        let big = format!(r#"{{"files": {{"src/lib.rs": "{}"}}}}"#, "x".repeat(MAX_ANSWER_BYTES + 1));
        assert!(answer_files(&big).unwrap_err().contains("bytes"));
    }
}
