//! Agent-written rewards as WebAssembly: real reward sources built through the source policy and
//! the jail into components of the `reward` world, run from one instance per rollout under a fuel
//! budget per rollout. Hostile rewards (an endless loop, a memory bomb, NaN, a panic, reading
//! files) end their own rollouts with a reason and a fitness of 0; training carries on.

mod common;

use common::world;
use hyperagent::reward::{RewardEngine, RewardLimits, WasmRewards};
use hyperagent_robotics::cem::{self, CemSettings};
use hyperagent_robotics::gait::Gait;
use hyperagent_robotics::go2::Go2;
use hyperagent_robotics::reward::{FailureKind, Native, RewardCompiler, RewardSource};
use hyperagent_robotics::rollout::{self, Episode, Rollout};
use hyperagent_robotics::sim::SimSettings;
use hyperagent_robotics::{load_go2, rewards};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

fn robot() -> &'static Go2 {
    static ROBOT: OnceLock<Go2> = OnceLock::new();
    ROBOT.get_or_init(|| {
        let dir = std::env::var_os("HYPERAGENT_DATA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data")));
        load_go2(&dir).expect("the Go2 MJCF (set HYPERAGENT_DATA_DIR)")
    })
}

/// Small limits, so that the limit tests hit them quickly.
fn limits() -> RewardLimits {
    RewardLimits { fuel_per_rollout: 20_000_000, memory_bytes: 16 << 20, deadline: Duration::from_secs(20) }
}

fn rewards_with(limits: RewardLimits) -> WasmRewards {
    let w = world();
    let compiler = hyperagent::compiler::GuestCompiler::new(w.paths.compiler_settings(Duration::from_secs(600)))
        .expect("toolchain and template");
    WasmRewards::new(Arc::new(compiler), w.archive.clone(), RewardEngine::new().expect("engine"), limits)
}

fn compile(source: &str) -> Arc<dyn RewardSource> {
    rewards_with(limits()).compile(source).unwrap_or_else(|e| panic!("{e}"))
}

/// A reward with one term whose body is `body` (with `step: &Step` and `terms: &mut [f64]`).
fn one_term(body: &str) -> String {
    format!(
        "use crate::api::*;\npub struct Reward;\nimpl RewardFunction for Reward {{\n    const TERMS: &'static [&'static str] = &[\"probe\"];\n    fn new() -> Self {{ Reward }}\n    fn terms(&mut self, step: &Step, terms: &mut [f64]) {{\n        let _ = step;\n        {body}\n    }}\n}}\n"
    )
}

fn run(reward: &dyn RewardSource, steps: u32) -> Rollout {
    rollout::run(
        robot(),
        SimSettings::default(),
        &Gait::new([0.0; 11]),
        Some(reward),
        &Episode { steps, forward_speed: 0.5 },
    )
}

#[test]
fn a_reward_gives_the_same_terms_as_wasm_and_natively() {
    let source = rewards::SOURCES.iter().find(|(name, _)| *name == "walk").unwrap().1;
    let wasm = compile(source);
    assert_eq!(wasm.term_names(), Native::<rewards::walk::Reward>::new().term_names());
    let in_wasm = run(wasm.as_ref(), 60);
    let native = run(&Native::<rewards::walk::Reward>::new(), 60);
    assert_eq!(in_wasm.failure, None);
    assert_eq!(in_wasm, native, "the same rollout, bit for bit");
}

#[test]
fn state_lives_for_one_rollout_and_fuel_is_per_rollout() {
    // Counts steps in its own state, and burns about 100k fuel per step.
    let source = "use crate::api::*;\npub struct Reward { steps: f64 }\nimpl RewardFunction for Reward {\n    const TERMS: &'static [&'static str] = &[\"count\"];\n    fn new() -> Self { Reward { steps: 0.0 } }\n    fn terms(&mut self, _step: &Step, terms: &mut [f64]) {\n        self.steps += 1.0;\n        let mut x = 0u64;\n        for i in 0..std::hint::black_box(30_000u64) { x = x.wrapping_mul(6364136223846793005).wrapping_add(i); }\n        std::hint::black_box(x);\n        terms[0] = self.steps;\n    }\n}\n";
    let reward = compile(source);
    let first = run(reward.as_ref(), 20);
    let second = run(reward.as_ref(), 20);
    assert_eq!(first.terms, vec![210.0], "1 + 2 + ... + 20: the count starts afresh");
    assert_eq!(first, second);
    // With the budget of 20 M, the loop runs dry partway through a long rollout, at the same
    // step every time.
    let long = run(reward.as_ref(), 400);
    let failure = long.failure.clone().expect("the fuel runs out");
    assert_eq!(failure.kind, FailureKind::OutOfFuel);
    assert!(long.steps > 20 && long.steps < 400, "{}", long.steps);
    assert_eq!(run(reward.as_ref(), 400).steps, long.steps, "each rollout starts with the whole budget");
}

#[test]
fn an_endless_loop_runs_out_of_fuel_and_training_carries_on() {
    let reward = compile(&one_term("loop { std::hint::black_box(&mut *terms); }"));
    let result = run(reward.as_ref(), 50);
    assert_eq!(result.failure.as_ref().map(|f| f.kind), Some(FailureKind::OutOfFuel));
    assert_eq!((result.steps, result.walk_fitness, result.max_height), (1, 0.0, 0.0));
    let settings = CemSettings { rollouts: 4, population: 4, elite: 1, ..CemSettings::default() };
    let episode = Episode { steps: 20, forward_speed: 0.5 };
    let training = cem::train(robot(), SimSettings::default(), reward.as_ref(), &episode, &settings, 1);
    assert_eq!(training.failed_rollouts, 4);
    assert_eq!(training.first_failure.map(|f| f.kind), Some(FailureKind::OutOfFuel));
}

#[test]
fn a_memory_bomb_hits_the_cap() {
    let reward = compile(&one_term("let v = vec![1u8; 1 << 30]; terms[0] = v[v.len() - 1] as f64;"));
    let failure = run(reward.as_ref(), 10).failure.expect("refused");
    assert_eq!(failure.kind, FailureKind::OutOfMemory, "{failure}");
    assert!(failure.message.contains(&(16u64 << 20).to_string()), "{failure}");
}

#[test]
fn nan_and_panics_end_the_rollout_with_a_reason() {
    let nan = compile(&one_term("terms[0] = if step.step == 3 { f64::NAN } else { 1.0 };"));
    let result = run(nan.as_ref(), 10);
    assert_eq!(result.failure.as_ref().map(|f| f.kind), Some(FailureKind::NotFinite));
    assert_eq!((result.steps, result.terms.clone()), (4, vec![3.0]));
    let panics = compile(&one_term("if step.step == 2 { panic!(\"no more\") } terms[0] = 1.0;"));
    let failure = run(panics.as_ref(), 10).failure.expect("trapped");
    assert_eq!(failure.kind, FailureKind::Trap, "{failure}");
}

#[test]
fn a_reward_sees_no_files_and_no_environment() {
    // Each term is 1 when the attempt failed, as it must.
    let source = "use crate::api::*;\npub struct Reward;\nimpl RewardFunction for Reward {\n    const TERMS: &'static [&'static str] = &[\"etc_passwd\", \"root_listing\", \"environment\"];\n    fn new() -> Self { Reward }\n    fn terms(&mut self, _step: &Step, terms: &mut [f64]) {\n        terms[0] = std::fs::read(\"/etc/passwd\").is_err() as u8 as f64;\n        terms[1] = std::fs::read_dir(\"/\").is_err() as u8 as f64;\n        terms[2] = (std::env::vars().count() == 0) as u8 as f64;\n    }\n}\n";
    let result = run(compile(source).as_ref(), 5);
    assert_eq!(result.failure, None);
    assert_eq!(result.terms, vec![5.0, 5.0, 5.0]);
}

#[test]
fn a_reward_that_reaches_outside_its_tree_is_refused_before_it_builds() {
    let error = rewards_with(limits())
        .compile(&one_term("terms[0] = include_str!(\"/etc/passwd\").len() as f64;"))
        .err()
        .expect("refused");
    assert!(error.contains("source policy"), "{error}");
    let error = rewards_with(limits()).compile("pub struct NotAReward;").err().expect("does not compile");
    assert!(error.contains("did not compile"), "{error}");
}
