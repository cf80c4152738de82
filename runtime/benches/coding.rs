//! What scoring a coding answer costs, per benchmark exercise whose reference solution builds
//! here: the jailed build of its tests for wasm32-wasip2 (the first build of the solution, and
//! again after a one-line change), running its tests in the test runner (Cranelift compile
//! included), and native `cargo test --release` on the same solution (after a one-line change,
//! dependencies warm); then the whole set scored end to end. Needs the data directory's `coding/`.
//! `cargo bench --bench coding`.

#[path = "../../tests/common/mod.rs"]
mod common;

use common::*;
use hyperagent::coding::exercise::{self, Exercise};
use hyperagent::coding::runner::{TestLimits, TestRunner};
use hyperagent::coding::workdir::WorkDir;
use hyperagent::compiler::exercise::{ExerciseCrate, TestBuild};
use hyperagent::source_tree::SourceTree;
use std::time::{Duration, Instant};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

fn crate_of(exercise: &Exercise, lib: &str) -> ExerciseCrate {
    let mut files = SourceTree::default();
    for (path, text) in exercise.stub.iter().chain(&exercise.tests) {
        files.insert(path, text.as_bytes()).unwrap();
    }
    files.insert("src/lib.rs", lib.as_bytes()).unwrap();
    ExerciseCrate {
        crate_name: exercise.crate_name.clone(),
        edition: exercise.edition.clone(),
        files,
        dependencies: exercise.example_dependencies.clone().unwrap_or_else(|| exercise.dependencies.clone()),
        tests_trusted: true,
    }
}

/// `cargo test --release` natively on the reference solution, timed after a one-line change.
fn native(exercise: &Exercise, tag: &str) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let krate = crate_of(exercise, &exercise.example);
    krate.files.write_to(dir.path()).unwrap();
    let mut manifest = format!(
        "[package]\nname = \"{}\"\nversion = \"0.0.0\"\nedition = \"{}\"\n[workspace]\n",
        exercise.crate_name, exercise.edition
    );
    for (table, dev) in [("dependencies", false), ("dev-dependencies", true)] {
        manifest.push_str(&format!("[{table}]\n"));
        for d in krate.dependencies.iter().filter(|d| d.dev == dev) {
            manifest.push_str(&format!("{} = {:?}\n", d.name, d.requirement));
        }
    }
    std::fs::write(dir.path().join("Cargo.toml"), manifest).unwrap();
    let target = guest_target_dir().join("native-bench");
    let run = || {
        let out = std::process::Command::new("cargo")
            .args(["test", "--release", "--quiet", "--", "--include-ignored"])
            .current_dir(dir.path())
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    run();
    let lib = dir.path().join("src/lib.rs");
    std::fs::write(&lib, format!("{}\n// {tag}\n", exercise.example)).unwrap();
    let started = Instant::now();
    run();
    started.elapsed()
}

fn main() {
    let compiler =
        hyperagent::compiler::GuestCompiler::new(world().paths.compiler_settings(Duration::from_secs(600))).unwrap();
    let runner = TestRunner::new().unwrap();
    let limits = TestLimits::default();
    let exercises = exercise::read_all(&data_dir().join(exercise::BENCHMARK_DIR)).expect("coding data");
    let tag = format!("{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    println!("| exercise | build s (first / after an edit) | tests | wasm tests s | native cargo test s | scored s |");
    println!("|---|---|---|---|---|---|");
    let (mut edits, mut runs, mut natives, mut scored_all) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let whole = Instant::now();
    for exercise in exercises.iter().filter(|e| e.exclusion().is_none() && e.example_exclusion().is_none()) {
        let build = |lib: &str| {
            let started = Instant::now();
            match compiler.build_exercise_tests(&crate_of(exercise, lib)).unwrap() {
                TestBuild::Built { binaries } => Ok((started.elapsed(), binaries)),
                TestBuild::Rejected { violations } => Err(format!("refused by the source policy: {violations:?}")),
                other => panic!("{}: {other:?}", exercise.name),
            }
        };
        let first = match build(&format!("{}\n// first {tag}\n", exercise.example)) {
            Ok((first, _)) => first,
            Err(why) => {
                println!("| {} | {why} | | | | |", exercise.name);
                continue;
            }
        };
        let (edited, binaries) = build(&format!("{}\n// edited {tag}\n", exercise.example)).unwrap();
        let started = Instant::now();
        let workdir = WorkDir::with_files("bench", &[("Cargo.toml", exercise.manifest.as_bytes())]).unwrap();
        let results: Vec<_> =
            binaries.iter().map(|b| runner.run_binary(&b.name, &b.wasm, &limits, Some(workdir.path()))).collect();
        let ran = started.elapsed();
        let tests: usize = results.iter().map(|r| r.tests.len()).sum();
        let native = native(exercise, &tag);
        let scored = edited + ran;
        println!(
            "| {} | {} / {} | {tests} | {} | {} | {} |",
            exercise.name,
            secs(first),
            secs(edited),
            secs(ran),
            secs(native),
            secs(scored)
        );
        edits.push(edited);
        runs.push(ran);
        natives.push(native);
        scored_all.push(scored);
    }
    println!(
        "medians over {} exercises: build after an edit {} s, wasm tests {} s, scored (build + tests) {} s, native \
         cargo test {} s; the whole loop (two builds, the runs and native each) took {} s",
        edits.len(),
        secs(median(edits)),
        secs(median(runs)),
        secs(median(scored_all)),
        secs(median(natives)),
        secs(whole.elapsed())
    );
}
