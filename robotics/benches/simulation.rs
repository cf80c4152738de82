//! Simulated control steps per second (one thread, a walking gait, 4 and 2 physics substeps per
//! 50 Hz control step), and rollouts per second of the optimiser on 2 threads. Prints medians.
//!
//! Run with `cargo bench -p hyperagent-robotics --bench simulation` (needs the Go2 MJCF in
//! `HYPERAGENT_DATA_DIR`, else `../shared/data` beside the checkout).

use hyperagent_robotics::cem::{self, CemSettings};
use hyperagent_robotics::gait::Gait;
use hyperagent_robotics::reward::Native;
use hyperagent_robotics::rollout::Episode;
use hyperagent_robotics::sim::{SimSettings, Simulation};
use hyperagent_robotics::{load_go2, rewards};
use std::path::PathBuf;
use std::time::Instant;

const ROUNDS: usize = 5;
const STEPS: u32 = 500;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let data_dir = std::env::var_os("HYPERAGENT_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data")));
    let robot = load_go2(&data_dir).unwrap_or_else(|e| panic!("{e}"));
    // A trotting gait: a moving robot with feet making and breaking contact.
    let gait = Gait::new([0.0, -0.3, -0.3, 0.0, 0.0, 0.5, 1.0, 1.0, 0.0, 0.0, 0.0]);
    for substeps in [4, 2] {
        let settings = SimSettings { substeps, ..SimSettings::default() };
        let rates: Vec<f64> = (0..ROUNDS)
            .map(|_| {
                let mut sim = Simulation::new(&robot, settings);
                let started = Instant::now();
                for step in 0..STEPS {
                    sim.step(&gait.action(step as f64 * sim.dt()));
                    std::hint::black_box(sim.observe());
                }
                STEPS as f64 / started.elapsed().as_secs_f64()
            })
            .collect();
        println!("control steps per second, 1 thread, {substeps} substeps: {:.0} (median of {ROUNDS})", median(rates));
    }
    let episode = Episode { steps: 250, forward_speed: 0.5 };
    let reward = Native::<rewards::walk::Reward>::new();
    let settings = CemSettings { rollouts: 48, population: 24, elite: 6, threads: 2, ..CemSettings::default() };
    let rates: Vec<f64> = (0..3)
        .map(|seed| {
            let started = Instant::now();
            let training = cem::train(&robot, SimSettings::default(), &reward, &episode, &settings, seed);
            training.rollouts as f64 / started.elapsed().as_secs_f64()
        })
        .collect();
    println!("optimiser rollouts (5 s each) per second, 2 threads: {:.1} (median of 3)", median(rates));
}
