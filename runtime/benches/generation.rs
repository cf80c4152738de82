//! Where the time of one generation goes: select, materialise, meta, compile, evaluate, archive.
//! Runs a short loop of the default configuration (fewer generations) and prints the median of
//! each step over all children, and the wall time per generation; then, of the program search,
//! how many children compiled and what a meta call costs in fuel, with the share its screening
//! took by the meta agent's own estimate.
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
    program_search(&evolution);
}

/// Children by status (a child that did not compile is `build-failed`), and the meta call's fuel:
/// all of it, and the screening the meta agent reports (`about NM fuel`), median over children.
fn program_search(evolution: &Evolution) {
    let children: Vec<_> = evolution.nodes().iter().filter(|n| n.parent.is_some()).collect();
    let mut statuses = std::collections::BTreeMap::<&str, usize>::new();
    for child in &children {
        *statuses.entry(child.status.as_str()).or_default() += 1;
    }
    let compiled = children.iter().filter(|c| c.component.is_some()).count();
    println!("children that compiled: {compiled} of {} (by status: {statuses:?})", children.len());
    let mut fuel = Vec::new();
    let mut screening = Vec::new();
    for child in &children {
        let Ok(node) = evolution.archive().get_node(&child.id) else { continue };
        let Some(meta) = node.metadata.get("meta") else { continue };
        let Some(total) = meta["fuel"].as_u64() else { continue };
        fuel.push(total as f64);
        let estimate: Option<f64> =
            meta["summary"].as_str().and_then(|s| s.split("(about ").nth(1)?.split("M fuel").next()?.parse().ok());
        if let Some(millions) = estimate {
            screening.push(millions * 1e6 / total as f64);
        }
    }
    let middle = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    println!(
        "meta call fuel, median of {}: {:.3e}; screening's estimated share, median of {}: {:.1}% (the rest: reading \
         /history, parsing, editing and printing the program)",
        fuel.len(),
        middle(fuel.clone()),
        screening.len(),
        100.0 * middle(screening.clone())
    );
}
