//! What running a reward as WebAssembly costs: one reward call per control step, the walking
//! reward built through the real compiler and run in the reward engine (a fresh instance per
//! rollout, fuel metered), against the same source compiled natively; and the same comparison
//! for whole 5 s rollouts, where the physics dominates. Prints medians.
//!
//! Run with `cargo bench --bench reward` (needs the Go2 MJCF in `HYPERAGENT_DATA_DIR`).

#[path = "../../tests/common/mod.rs"]
mod common;

use common::world;
use hyperagent::reward::{RewardEngine, RewardLimits, WasmRewards};
use hyperagent_robotics::api::Step;
use hyperagent_robotics::gait::Gait;
use hyperagent_robotics::reward::{Native, RewardCompiler, RewardSource};
use hyperagent_robotics::rollout::{self, Episode};
use hyperagent_robotics::sim::{SimSettings, Simulation};
use hyperagent_robotics::{load_go2, rewards};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CALLS: u32 = 2_000;
const ROUNDS: usize = 7;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Nanoseconds per reward call, over `CALLS` calls in one rollout's instance.
fn per_call(reward: &dyn RewardSource, steps: &[Step]) -> f64 {
    let mut rollout = reward.start().expect("starts");
    let mut terms = vec![0.0; reward.term_names().len()];
    let started = Instant::now();
    for step in steps {
        rollout.step(step, &mut terms).expect("a well-behaved reward");
        std::hint::black_box(&terms);
    }
    started.elapsed().as_nanos() as f64 / steps.len() as f64
}

fn main() {
    let data_dir = std::env::var_os("HYPERAGENT_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data")));
    let robot = load_go2(&data_dir).unwrap_or_else(|e| panic!("{e}"));
    let w = world();
    let compiler = hyperagent::compiler::GuestCompiler::new(w.paths.compiler_settings(Duration::from_secs(600)))
        .expect("toolchain and template");
    let limits = RewardLimits { fuel_per_rollout: u64::MAX / 4, ..RewardLimits::default() };
    let wasm_rewards =
        WasmRewards::new(Arc::new(compiler), w.archive.clone(), RewardEngine::new().expect("engine"), limits);
    let source = rewards::SOURCES.iter().find(|(name, _)| *name == "walk").expect("the walking reward").1;
    let wasm = wasm_rewards.compile(source).unwrap_or_else(|e| panic!("{e}"));
    let native = Native::<rewards::walk::Reward>::new();

    // Real observations of a trotting robot, so that the reward computes on real values.
    let gait = Gait::new([0.0, -0.3, -0.3, 0.0, 0.0, 0.5, 1.0, 1.0, 0.0, 0.0, 0.0]);
    let mut sim = Simulation::new(&robot, SimSettings::default());
    let rollout_steps: Vec<Step> = (0..250)
        .map(|i| {
            let action = gait.action(i as f64 * sim.dt());
            sim.step(&action);
            let observation = sim.observe();
            Step { observation, action, step: i, dt: sim.dt(), ..Step::default() }
        })
        .collect();
    let steps: Vec<Step> = rollout_steps.iter().copied().cycle().take(CALLS as usize).collect();
    let wasm_ns = median((0..ROUNDS).map(|_| per_call(wasm.as_ref(), &steps)).collect());
    let native_ns = median((0..ROUNDS).map(|_| per_call(&native, &steps)).collect());
    println!(
        "reward call, walking reward: wasm {wasm_ns:.0} ns, native {native_ns:.0} ns, ratio {:.1}x (median of {ROUNDS} x {CALLS} calls)",
        wasm_ns / native_ns
    );

    let start_ns = median(
        (0..ROUNDS)
            .map(|_| {
                let started = Instant::now();
                std::hint::black_box(wasm.start().expect("starts"));
                started.elapsed().as_nanos() as f64
            })
            .collect(),
    );
    println!("a rollout's fresh reward instance: {:.0} µs (median of {ROUNDS})", start_ns / 1000.0);

    let episode = Episode { steps: 250, forward_speed: 0.5 };
    let timed = |reward: &dyn RewardSource| {
        median(
            (0..ROUNDS)
                .map(|_| {
                    let started = Instant::now();
                    let result = rollout::run(&robot, SimSettings::default(), &gait, Some(reward), &episode);
                    assert_eq!(result.failure, None);
                    started.elapsed().as_secs_f64() * 1000.0
                })
                .collect(),
        )
    };
    let (wasm_ms, native_ms) = (timed(wasm.as_ref()), timed(&native));
    println!(
        "5 s rollout with the reward: wasm {wasm_ms:.1} ms, native {native_ms:.1} ms ({:+.1}%) (median of {ROUNDS})",
        100.0 * (wasm_ms / native_ms - 1.0)
    );
}
