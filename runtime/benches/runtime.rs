//! Benchmarks of the runtime core, printed as medians and ratios measured side by side in one run.
//!
//! - fresh store + instantiate + trivial call, pooling allocator (target: < 100 µs median);
//! - rebuild after a one-line guest edit (target: < 1 s);
//! - build cache hit for an unchanged tree (target: < 10 ms, no cargo run);
//! - a meta call's `check-build`: the first check of a tree, the same tree again (answered from
//!   the call's memory), and a check after a one-line edit;
//! - a CPU-bound kernel in the guest with fuel, without fuel, and natively (target: fuel-on at
//!   most 1.5x native).
//!
//! Run with `cargo bench --bench runtime` (or `just bench`).

#[path = "../../tests/common/mod.rs"]
mod common;

use common::*;
use hyperagent::compiler::BuildOutcome;
use hyperagent::sandbox::{CallLimits, EngineSettings, Fuel, Grants, Outcome, Sandbox};
use serde_json::json;
use std::time::{Duration, Instant};

/// A kernel from `agent_sdk::kernels`: (items, rounds, seed) -> bins.
type Kernel = fn(usize, usize, u64) -> u64;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn fmt(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.1} µs")
    } else if us < 1e6 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{:.3} s", us / 1e6)
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects sections by name.
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let wants = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let probe_hash = {
        let _ = probe();
        build(&guest_source("probe"))
    };
    let wasm = world().archive.get_blob(&probe_hash).unwrap();
    let limits = CallLimits { fuel: Fuel(u64::MAX / 4), deadline: Duration::from_secs(120), ..CallLimits::default() };

    if wants("call") {
        let sandbox = &world().sandbox;
        let loaded = sandbox.load(&wasm).unwrap();
        let input = task(json!({"op": "echo", "value": 1}));
        for _ in 0..200 {
            runtime.block_on(sandbox.call(&loaded, &input, &limits, &Grants::default())).unwrap();
        }
        let samples: Vec<Duration> = (0..2000)
            .map(|_| {
                let started = Instant::now();
                let report = runtime.block_on(sandbox.call(&loaded, &input, &limits, &Grants::default())).unwrap();
                let elapsed = started.elapsed();
                assert_eq!(report.outcome, Outcome::Ok);
                elapsed
            })
            .collect();
        println!("fresh store + instantiate + trivial call (pooling, n=2000): median {}", fmt(median(samples)));
    }

    if wants("rebuild") {
        let mut tree = guest_source("initial");
        build(&tree);
        let priority = String::from_utf8(tree.get("src/priority.rs").unwrap().bytes.clone()).unwrap();
        let mut rebuilds = Vec::new();
        let mut hits = Vec::new();
        // Unique constants per bench run, so every edit is new to the build cache.
        let run_tag =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() % 1_000_000;
        for i in 0..7 {
            let edited = priority.replace("WASTE_WEIGHT: f64 = 1.0;", &format!("WASTE_WEIGHT: f64 = 1.{run_tag}{i};"));
            assert_ne!(edited, priority, "the edit must change the source");
            tree.insert("src/priority.rs", edited).unwrap();
            match world().compiler.build(&tree, &world().archive).unwrap() {
                BuildOutcome::Built { cached: false, duration, .. } => rebuilds.push(duration),
                other => panic!("expected a fresh build: {other:?}"),
            }
            let started = Instant::now();
            match world().compiler.build(&tree, &world().archive).unwrap() {
                BuildOutcome::Built { cached: true, .. } => hits.push(started.elapsed()),
                other => panic!("expected a cache hit: {other:?}"),
            }
        }
        println!(
            "rebuild after a one-line edit (n=7): median {} (min {}, max {})",
            fmt(median(rebuilds.clone())),
            fmt(*rebuilds.iter().min().unwrap()),
            fmt(*rebuilds.iter().max().unwrap())
        );
        println!("build cache hit, unchanged tree (n=7): median {}", fmt(median(hits)));
    }

    if wants("check-build") {
        check_build_costs(&runtime);
    }

    if wants("kernel") {
        let plain = Sandbox::new(
            EngineSettings { fuel_metering: false, epoch_interruption: false, ..EngineSettings::default() },
            None,
        )
        .unwrap();
        let fuel_only =
            Sandbox::new(EngineSettings { epoch_interruption: false, ..EngineSettings::default() }, None).unwrap();
        let metered = &world().sandbox;
        let (plain_loaded, metered_loaded, fuel_only_loaded) =
            (plain.load(&wasm).unwrap(), metered.load(&wasm).unwrap(), fuel_only.load(&wasm).unwrap());
        let kernels: [(&str, Kernel); 2] = [
            ("first-fit", agent_sdk::kernels::first_fit_bins),
            ("priority-fit", agent_sdk::kernels::priority_fit_bins),
        ];
        for (name, native_kernel) in kernels {
            let (items, rounds) = (5000usize, 20usize);
            let input = task(json!({"op": "kernel", "kernel": name, "items": items, "rounds": rounds}));
            let expected = native_kernel(items, rounds, 42);
            let (mut native, mut fuel_on, mut fuel_off, mut fuel) = (Vec::new(), Vec::new(), Vec::new(), 0);
            let mut fuel_no_epoch = Vec::new();
            // Interleaved, so that machine noise hits all three alike.
            for _ in 0..9 {
                let started = Instant::now();
                let bins = std::hint::black_box(native_kernel(std::hint::black_box(items), rounds, 42));
                native.push(started.elapsed());
                assert_eq!(bins, expected);
                for (sandbox, loaded, samples) in [
                    (metered, &metered_loaded, &mut fuel_on),
                    (&fuel_only, &fuel_only_loaded, &mut fuel_no_epoch),
                    (&plain, &plain_loaded, &mut fuel_off),
                ] {
                    let report = runtime.block_on(sandbox.call(loaded, &input, &limits, &Grants::default())).unwrap();
                    assert_eq!(report.output.as_deref(), Some(expected.to_string().as_str()), "guest and native agree");
                    // Instantiation (~30 µs) is included; the kernel takes tens of milliseconds.
                    samples.push(Duration::from_micros(report.wall_time_us));
                    fuel = fuel.max(report.fuel_consumed);
                }
            }
            let (n, on, off, no_epoch) = (median(native), median(fuel_on), median(fuel_off), median(fuel_no_epoch));
            let ratio = |d: Duration| d.as_secs_f64() / n.as_secs_f64();
            println!("kernel {name}, {items} items x {rounds} rounds (n=9, interleaved, {fuel} fuel):");
            println!(
                "  native {} | wasm uninstrumented {} ({:.2}x) | fuel only {} ({:.2}x) | fuel + epochs (default) {} ({:.2}x)",
                fmt(n),
                fmt(off),
                ratio(off),
                fmt(no_epoch),
                ratio(no_epoch),
                fmt(on),
                ratio(on)
            );
        }
    }
}

/// What a meta call's `check-build` costs: the workbench builds into a scratch archive of its
/// own, so even the parent's unchanged tree is built once per call; a repeat is answered from the
/// call's memory.
fn check_build_costs(runtime: &tokio::runtime::Runtime) {
    use hyperagent::evolution::workbench::RepoWorkbench;
    use hyperagent::sandbox::Workbench;
    use std::sync::Arc;
    let compiler = Arc::new(
        hyperagent::compiler::GuestCompiler::new(world().paths.compiler_settings(Duration::from_secs(600))).unwrap(),
    );
    let tree = guest_source("initial");
    let run_tag = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() % 1_000_000;
    let (mut first, mut repeat, mut edited) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        tree.write_to(&repo).unwrap();
        let bench = RepoWorkbench::new(repo.clone(), compiler.clone(), dir.path().join("scratch"), None).unwrap();
        let timed = |samples: &mut Vec<Duration>| {
            let started = Instant::now();
            let check = runtime.block_on(bench.check_build()).unwrap();
            samples.push(started.elapsed());
            assert_eq!(check.status, "built", "{}", check.diagnostics);
        };
        timed(&mut first);
        timed(&mut repeat);
        let path = repo.join("src/priority.rs");
        let source = std::fs::read_to_string(&path).unwrap();
        let changed = source.replace("WASTE_WEIGHT: f64 = 1.0;", &format!("WASTE_WEIGHT: f64 = 1.{run_tag}{i};"));
        assert_ne!(changed, source, "the edit must change the source");
        std::fs::write(&path, changed).unwrap();
        timed(&mut edited);
    }
    println!(
        "check-build of the initial hyperagent (n=5): first check {} | same tree again {} | after a one-line edit {}",
        fmt(median(first)),
        fmt(median(repeat)),
        fmt(median(edited))
    );
}
