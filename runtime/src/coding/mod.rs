//! Polyglot coding, Rust part: the task agent writes the solution of an Exercism exercise, and the
//! host scores it by building the exercise's own tests with it in the jail, for wasm32-wasip2,
//! and running each test in the sandbox under fuel, memory and time limits. The candidate's code
//! never runs natively.
//!
//! Splits: training and validation are drawn (seeded, disjoint) from the upstream track's
//! exercises that are not in the benchmark; the test set is the benchmark's 30. Exercises this
//! host cannot score are listed with the reason ([`exercise::Exercise::exclusion`]), never dropped
//! in silence. The task agent sees `{"exercise", "statement", "manifest", "files"}` (the stub's
//! `src/` files) and answers `{"files": {"src/lib.rs": "...", ...}}`; the score is 1 when every
//! test passes, else 0, and the details name the failing tests with the first failure's output.

pub mod exercise;
pub mod runner;
pub mod scoring;
pub mod workdir;

use crate::compiler::GuestCompiler;
use exercise::Exercise;
use hyperagent_domains::domain::{DataFile, OwnTestsFuture, ScoreFuture, Staging};
use hyperagent_domains::{DataError, Domain, Split, Task, TaskScore, TestSets};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

pub const DOMAIN: &str = "coding";

/// The `[domain.coding]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Exercises drawn for training and validation from the upstream track (not the benchmark's).
    pub train_tasks: usize,
    pub validation_tasks: usize,
    /// Benchmark exercises in the test set, in name order (all that can be scored by default).
    pub test_tasks: usize,
    /// Training tasks evaluated first; the rest only when their mean reaches `staged_threshold`.
    pub staged_tasks: usize,
    pub staged_threshold: f64,
    /// Fuel for all the tests of one test binary.
    pub test_fuel: u64,
    /// The data directory for this domain (default: the run's data directory).
    pub data_dir: Option<PathBuf>,
}

impl Default for Settings {
    /// 30 training and 30 validation exercises, a staged sample of 10 that must reach 0.4 (as the
    /// original system and DGM), 5·10¹⁰ fuel per test binary.
    fn default() -> Self {
        Settings {
            train_tasks: 30,
            validation_tasks: 30,
            test_tasks: 30,
            staged_tasks: 10,
            staged_threshold: 0.4,
            test_fuel: runner::TestLimits::default().fuel_per_binary,
            data_dir: None,
        }
    }
}

/// The exercises, read at first use.
struct Exercises {
    benchmark: Vec<Arc<Exercise>>,
    track: Vec<Arc<Exercise>>,
}

pub struct Coding {
    settings: Settings,
    data_dir: PathBuf,
    exercises: OnceLock<Result<Exercises, DataError>>,
    scorer: Option<Arc<scoring::Scorer>>,
}

impl Coding {
    /// The domain with `settings` (`null` for the defaults). Without a compiler (a host that only
    /// lists or checks domains) every answer scores 0 with the reason.
    pub fn open(
        settings: &serde_json::Value,
        data_dir: &Path,
        compiler: Option<Arc<GuestCompiler>>,
    ) -> Result<Arc<dyn Domain>, String> {
        let settings: Settings = if settings.is_null() {
            Settings::default()
        } else {
            Settings::deserialize(settings).map_err(|e| e.to_string())?
        };
        if settings.staged_tasks == 0 || settings.staged_tasks > settings.train_tasks {
            return Err("staged_tasks must be between 1 and train_tasks".into());
        }
        if !(0.0..=1.0).contains(&settings.staged_threshold) || settings.test_fuel == 0 {
            return Err("staged_threshold must be within 0..=1 and test_fuel above 0".into());
        }
        let data_dir = settings.data_dir.clone().unwrap_or_else(|| data_dir.to_path_buf());
        let limits = runner::TestLimits { fuel_per_binary: settings.test_fuel, ..runner::TestLimits::default() };
        if let Some(compiler) = &compiler {
            compiler.fetch_exercise_dependencies().map_err(|e| format!("the exercises' crates: {e}"))?;
        }
        let scorer = compiler.map(|compiler| Arc::new(scoring::Scorer::new(compiler, limits)));
        Ok(Arc::new(Coding { settings, data_dir, exercises: OnceLock::new(), scorer }))
    }

    fn exercises(&self) -> Result<&Exercises, DataError> {
        self.exercises
            .get_or_init(|| {
                let read = |dir: &str| -> Result<Vec<Arc<Exercise>>, DataError> {
                    let path = self.data_dir.join(dir);
                    let all = exercise::read_all(&path).map_err(|reason| DataError::Io {
                        path: path.display().to_string(),
                        reason: format!("{reason} (the coding domain needs the exercises in the data directory)"),
                    })?;
                    Ok(all.into_iter().map(Arc::new).collect())
                };
                Ok(Exercises { benchmark: read(exercise::BENCHMARK_DIR)?, track: read(exercise::TRACK_DIR)? })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The exercise a task names.
    fn exercise_of(&self, task: &Task) -> Option<Arc<Exercise>> {
        let exercises = self.exercises().ok()?;
        let name = task.id.rsplit('/').next()?;
        let pool = if task.id.starts_with("test/") { &exercises.benchmark } else { &exercises.track };
        pool.iter().find(|e| e.name == name).cloned()
    }
}

/// The task an exercise makes.
pub fn task(id: String, exercise: &Exercise) -> Task {
    let payload = json!({
        "exercise": exercise.name,
        "statement": exercise.statement,
        "manifest": exercise.manifest,
        "files": exercise.stub,
    });
    Task { id, payload: payload.to_string() }
}

/// Orders names by a seeded hash: a draw that depends on the seed and the names alone.
fn seeded_order(names: &mut [Arc<Exercise>], seed: u64) {
    let key = |e: &Arc<Exercise>| blake3::hash(format!("{seed}/{}", e.name).as_bytes());
    names.sort_by_cached_key(|e| *key(e).as_bytes());
}

impl Domain for Coding {
    fn name(&self) -> &'static str {
        DOMAIN
    }

    fn splits(&self, train_seed: u64, validation_seed: u64) -> Result<(Split, Split), DataError> {
        let exercises = self.exercises()?;
        let benchmark: Vec<&str> = exercises.benchmark.iter().map(|e| e.name.as_str()).collect();
        let mut pool: Vec<Arc<Exercise>> = exercises
            .track
            .iter()
            .filter(|e| !benchmark.contains(&e.name.as_str()) && e.exclusion().is_none())
            .cloned()
            .collect();
        let (train_n, validation_n) = (self.settings.train_tasks, self.settings.validation_tasks);
        if train_n + validation_n > pool.len() {
            return Err(DataError::Parse {
                path: self.data_dir.join(exercise::TRACK_DIR).display().to_string(),
                reason: format!("{} exercises can be scored; {train_n} + {validation_n} were asked for", pool.len()),
            });
        }
        seeded_order(&mut pool, train_seed);
        let mut rest = pool.split_off(train_n);
        seeded_order(&mut rest, validation_seed);
        rest.truncate(validation_n);
        let split = |name: &str, list: &[Arc<Exercise>]| Split {
            name: name.to_owned(),
            tasks: list.iter().map(|e| task(format!("{name}/{}", e.name), e)).collect(),
            generated: false,
        };
        Ok((split("train", &pool), split("validation", &rest)))
    }

    fn test_sets(&self, _: &Path) -> Result<TestSets, DataError> {
        let exercises = self.exercises()?;
        let (kept, left): (Vec<_>, Vec<_>) = exercises.benchmark.iter().partition(|e| e.exclusion().is_none());
        let tasks =
            kept.iter().take(self.settings.test_tasks).map(|e| task(format!("test/polyglot/{}", e.name), e)).collect();
        let notice = (!left.is_empty()).then(|| {
            let named: Vec<String> =
                left.iter().map(|e| format!("{} ({})", e.name, e.exclusion().unwrap_or_default())).collect();
            format!("coding: {} benchmark exercise(s) cannot be scored here: {}", left.len(), named.join("; "))
        });
        Ok(TestSets { sets: vec![Split { name: "polyglot".into(), tasks, generated: false }], notice })
    }

    fn score<'a>(&'a self, task: &'a Task, answer: &'a str) -> ScoreFuture<'a> {
        Box::pin(async move {
            let Some(exercise) = self.exercise_of(task) else {
                return TaskScore::invalid(format!("no exercise for task {}", task.id));
            };
            let files = match scoring::answer_files(answer) {
                Ok(files) => files,
                Err(why) => return TaskScore::invalid(why),
            };
            let Some(scorer) = self.scorer.clone() else {
                return TaskScore::invalid("this host has no compiler to build solutions with");
            };
            match tokio::task::spawn_blocking(move || scorer.score(&exercise, &files)).await {
                Ok(score) => score,
                Err(e) => TaskScore::invalid(format!("scoring failed: {e}")),
            }
        })
    }

    fn data_files(&self) -> Vec<DataFile> {
        let source = "Exercism Rust track (exercism/rust @ afe248a156c1; the benchmark's 30 from \
                      Aider-AI/polyglot-benchmark @ 7e0611e77b54); MIT";
        vec![DataFile { path: exercise::BENCHMARK_DIR, source }, DataFile { path: exercise::TRACK_DIR, source }]
    }

    fn staging(&self) -> Staging {
        Staging { tasks: self.settings.staged_tasks, threshold: self.settings.staged_threshold }
    }

    fn offers_own_tests(&self) -> bool {
        true
    }

    fn costly_tasks(&self) -> bool {
        true
    }

    fn run_own_tests<'a>(&'a self, task: &'a Task, files: Vec<(String, String)>, tests: String) -> OwnTestsFuture<'a> {
        Box::pin(async move {
            let exercise = self.exercise_of(task).ok_or_else(|| format!("no exercise for task {}", task.id))?;
            let scorer = self.scorer.clone().ok_or("this host has no compiler to build solutions with")?;
            let files: std::collections::BTreeMap<String, String> = files.into_iter().collect();
            tokio::task::spawn_blocking(move || scorer.run_own(&exercise, &files, tests))
                .await
                .map_err(|e| format!("the test run failed: {e}"))?
        })
    }

    fn needs_llm(&self) -> Option<&'static str> {
        Some("its task agent writes programs from a statement, which no offline model here can")
    }

    fn feedback(&self, _: &Task, score: &TaskScore) -> serde_json::Value {
        match &score.invalid {
            Some(why) => json!({"refused": why}),
            None => score.details.clone(),
        }
    }
}
