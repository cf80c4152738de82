//! Where the time of one generation goes: select, materialise, meta, compile, evaluate, archive.
//! Runs a short loop of the default configuration (fewer generations) and prints the median of
//! each step over all children, and the wall time per generation.
//!
//! Run with `cargo bench --bench generation` (or `just bench`).

#[path = "../../tests/common/mod.rs"]
mod common;

use common::*;
use hyperagent::evolution::config::RunConfig;
use hyperagent::evolution::{Evolution, RunSetup};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let data_dir = data_dir();
    let generations = 8;
    let no_tests = serde_json::json!({"test_sets": []});
    let config = RunConfig {
        generations,
        domain: [("bin_packing".to_owned(), no_tests)].into_iter().collect(),
        ..RunConfig::default()
    };
    let home = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    // Warm the guest dependencies so the first child's compile is a normal one.
    build(&guest_source("initial"));
    let mut evolution = Evolution::open(
        config,
        home.path().join("run"),
        false,
        RunSetup {
            archive: world().archive.clone(),
            compiler: Arc::new(
                hyperagent::compiler::GuestCompiler::new(world().paths.compiler_settings(Duration::from_secs(600)))
                    .unwrap(),
            ),
            sandbox: Arc::new(
                hyperagent::sandbox::Sandbox::new(Default::default(), Some(world().paths.artifacts())).unwrap(),
            ),
            data_dir,
            initial_agent: world().paths.guest_agents().join("initial"),
        },
    )
    .unwrap();
    let started = Instant::now();
    runtime.block_on(evolution.run(&|_| {})).unwrap();
    let total = started.elapsed();
    let times = &evolution.times;
    let column = |f: fn(&hyperagent::evolution::StepTimes) -> Duration| median(times.iter().map(f).collect());
    println!(
        "one child, median of {} (default configuration, {} children per generation in parallel):",
        times.len(),
        evolution.config.children_per_generation
    );
    for (name, value) in [
        ("select", column(|t| t.select)),
        ("materialise", column(|t| t.materialise)),
        ("meta", column(|t| t.meta)),
        ("compile", column(|t| t.compile)),
        ("evaluate", column(|t| t.evaluate)),
        ("archive", column(|t| t.archive)),
    ] {
        println!("  {name:<12} {:>10.2} ms", value.as_secs_f64() * 1e3);
    }
    println!(
        "wall time per generation ({generations} generations after the initial one, no test phase): {:.2} s",
        total.as_secs_f64() / f64::from(generations + 1)
    );
}
