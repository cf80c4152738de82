//! The Go2 simulation and the optimiser, on the real MJCF from the data directory
//! (`HYPERAGENT_DATA_DIR`, else `../shared/data` beside the checkout). Budgets are small: each
//! test simulates a few seconds at most.

use hyperagent_robotics::api::{Observation, RewardFunction, Step};
use hyperagent_robotics::cem::{self, CemSettings};
use hyperagent_robotics::gait::{GAIT_PARAMETERS, Gait};
use hyperagent_robotics::go2::Go2;
use hyperagent_robotics::reward::{FailureKind, Native};
use hyperagent_robotics::rng::Rng;
use hyperagent_robotics::rollout::{self, Episode};
use hyperagent_robotics::sim::{SimSettings, Simulation};
use hyperagent_robotics::{load_go2, rewards};
use std::path::PathBuf;

fn data_dir() -> PathBuf {
    std::env::var_os("HYPERAGENT_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data")))
}

fn robot() -> Go2 {
    load_go2(&data_dir()).expect("the Go2 MJCF (set HYPERAGENT_DATA_DIR)")
}

/// Every bit of every observation of a rollout driven by random gait actions from `seed`.
fn trajectory(robot: &Go2, seed: u64, steps: u32) -> Vec<u64> {
    let mut rng = Rng::new(seed);
    let gait = Gait::new(std::array::from_fn(|_| 0.8 * (2.0 * rng.uniform() - 1.0)));
    let mut sim = Simulation::new(robot, SimSettings::default());
    let mut bits = Vec::new();
    for step in 0..steps {
        sim.step(&gait.action(step as f64 * sim.dt()));
        let o: Observation = sim.observe();
        let values = o.base_position.iter().chain(&o.base_linear_velocity).chain(&o.base_angular_velocity);
        let values = values.chain(&o.joint_positions).chain(&o.joint_velocities).chain(&o.foot_heights);
        bits.extend(values.map(|v| v.to_bits()));
        bits.extend(o.foot_contacts.map(u64::from));
    }
    bits
}

#[test]
fn the_same_seed_gives_the_same_trajectory_bit_for_bit() {
    let robot = robot();
    let first = trajectory(&robot, 11, 100);
    let again = trajectory(&robot, 11, 100);
    assert_eq!(first, again);
    let robot_in_thread = robot.clone();
    let in_thread = std::thread::spawn(move || trajectory(&robot_in_thread, 11, 100)).join().unwrap();
    assert_eq!(first, in_thread, "another thread, the same trajectory");
    assert_ne!(first, trajectory(&robot, 12, 100), "another seed moves the robot differently");
}

#[test]
fn with_zero_action_the_robot_lands_and_stands() {
    let robot = robot();
    let episode = Episode { steps: 100, forward_speed: 0.5 };
    let stand = rollout::run(&robot, SimSettings::default(), &Gait::stand(), None, &episode);
    assert!(!stand.fell);
    assert_eq!(stand.steps, 100);
    assert!((0.15..0.30).contains(&stand.max_height), "the soft PD stance sags to about 0.22 m: {}", stand.max_height);
    // Landing rocks the base back and forth; after that it stays put.
    assert!(stand.mean_forward_speed.abs() < 0.1, "standing does not travel: {}", stand.mean_forward_speed);
}

#[test]
fn a_rollout_ends_when_the_base_tilts_past_the_limit() {
    let robot = robot();
    // A violent gait with a 3° limit: it must end early, and be reported as a fall.
    let settings = SimSettings { max_tilt_degrees: 3.0, ..SimSettings::default() };
    let wild = Gait::new([1.0; GAIT_PARAMETERS]);
    let episode = Episode { steps: 150, forward_speed: 0.5 };
    let result = rollout::run(&robot, settings, &wild, None, &episode);
    assert!(result.fell && result.steps < 150, "{result:?}");
    let upright = rollout::run(&robot, SimSettings::default(), &Gait::stand(), None, &episode);
    assert!(!upright.fell);
}

struct NanAfterTen;

impl RewardFunction for NanAfterTen {
    const TERMS: &'static [&'static str] = &["fine", "broken"];
    fn new() -> Self {
        NanAfterTen
    }
    fn terms(&mut self, step: &Step, terms: &mut [f64]) {
        terms[0] = 1.0;
        terms[1] = if step.step >= 10 { f64::NAN } else { 0.0 };
    }
}

#[test]
fn a_reward_that_goes_nan_ends_its_rollout_with_no_fitness() {
    let robot = robot();
    let episode = Episode { steps: 50, forward_speed: 0.5 };
    let result =
        rollout::run(&robot, SimSettings::default(), &Gait::stand(), Some(&Native::<NanAfterTen>::new()), &episode);
    let failure = result.failure.expect("the NaN is caught");
    assert_eq!(failure.kind, FailureKind::NotFinite);
    assert!(failure.message.contains("`broken`"), "{failure}");
    assert_eq!(result.steps, 11);
    assert_eq!((result.walk_fitness, result.max_height), (0.0, 0.0));
    assert_eq!(result.terms, vec![10.0, 0.0], "the steps before the NaN are kept");
}

#[test]
fn training_is_seeded_and_the_thread_count_does_not_change_it() {
    let robot = robot();
    let episode = Episode { steps: 40, forward_speed: 0.5 };
    let reward = Native::<rewards::walk::Reward>::new();
    let settings = CemSettings { rollouts: 16, population: 8, elite: 2, threads: 1, ..CemSettings::default() };
    let one = cem::train(&robot, SimSettings::default(), &reward, &episode, &settings, 5);
    let two = cem::train(&robot, SimSettings::default(), &reward, &episode, &CemSettings { threads: 2, ..settings }, 5);
    assert_eq!(one, two);
    assert_eq!(one.rollouts, 16);
    assert_eq!(one.generation_best.len(), 2);
    let other = cem::train(&robot, SimSettings::default(), &reward, &episode, &settings, 6);
    assert_ne!(one.gait, other.gait, "another seed searches elsewhere");
}

#[test]
fn training_with_the_walking_reward_beats_standing_still() {
    let robot = robot();
    let episode = Episode { steps: 100, forward_speed: 0.5 };
    let settings = CemSettings { rollouts: 48, population: 12, elite: 3, ..CemSettings::default() };
    let reward = Native::<rewards::walk::Reward>::new();
    let trained = cem::train(&robot, SimSettings::default(), &reward, &episode, &settings, 1);
    let walk = rollout::run(&robot, SimSettings::default(), &trained.gait, None, &episode);
    let stand = rollout::run(&robot, SimSettings::default(), &Gait::stand(), None, &episode);
    assert!(walk.walk_fitness > stand.walk_fitness + 0.1, "walk {walk:?} against stand {stand:?}");
    assert!(walk.mean_forward_speed > 0.1, "it moves forward: {}", walk.mean_forward_speed);
}

#[test]
fn a_missing_model_says_where_it_was_looked_for() {
    let empty = tempfile::tempdir().unwrap();
    let message = load_go2(empty.path()).unwrap_err();
    assert!(message.contains("robotics/unitree_go2.xml") && message.contains("HYPERAGENT_DATA_DIR"), "{message}");
}
