//! The optimiser against the hand-written rewards, per seed: the walking reward's walk fitness
//! against standing still, and the jump reward's peak height against the "stand tall" reward's,
//! with the same budget. Usage: `optimiser [ROLLOUTS] [SEEDS]` (default 288 rollouts, 3 seeds).

use hyperagent_robotics::api::RewardFunction;
use hyperagent_robotics::cem::{self, CemSettings};
use hyperagent_robotics::gait::Gait;
use hyperagent_robotics::reward::Native;
use hyperagent_robotics::rollout::{self, Episode, Rollout};
use hyperagent_robotics::sim::SimSettings;
use hyperagent_robotics::{go2::Go2, load_go2, rewards};
use std::path::PathBuf;
use std::time::Instant;

fn trained<R: RewardFunction + 'static>(
    robot: &Go2,
    episode: &Episode,
    settings: &CemSettings,
    seed: u64,
) -> (Rollout, f64) {
    let started = Instant::now();
    let training = cem::train(robot, SimSettings::default(), &Native::<R>::new(), episode, settings, seed);
    let rollout = rollout::run(robot, SimSettings::default(), &training.gait, None, episode);
    (rollout, started.elapsed().as_secs_f64())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rollouts: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(288);
    let seeds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let data_dir = std::env::var_os("HYPERAGENT_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data")));
    let robot = load_go2(&data_dir).unwrap_or_else(|e| panic!("{e}"));
    let episode = Episode { steps: 250, forward_speed: 0.5 };
    let settings = CemSettings { rollouts, ..CemSettings::default() };
    let stand = rollout::run(&robot, SimSettings::default(), &Gait::stand(), None, &episode);
    println!("standing still: walk fitness {:.3}, peak height {:.3} m", stand.walk_fitness, stand.max_height);
    println!("seed | walk reward: fitness (v_x, s) | jump reward: peak m (s) | stand tall: peak m (s)");
    for seed in 1..=seeds {
        let (walk, walk_s) = trained::<rewards::walk::Reward>(&robot, &episode, &settings, seed);
        let (jump, jump_s) = trained::<rewards::jump::Reward>(&robot, &episode, &settings, seed);
        let (tall, tall_s) = trained::<rewards::stand_tall::Reward>(&robot, &episode, &settings, seed);
        println!(
            "{seed} | {:.3} ({:.2} m/s, {walk_s:.0} s) | {:.3} ({jump_s:.0} s) | {:.3} ({tall_s:.0} s)",
            walk.walk_fitness, walk.mean_forward_speed, jump.max_height, tall.max_height
        );
    }
}
