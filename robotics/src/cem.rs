//! The optimiser a reward drives: the cross-entropy method over the gait's parameters, seeded,
//! with a budget in rollouts.
//!
//! Each generation draws a population of gaits around a mean, runs one rollout each (spread over
//! threads; results are placed by index, so the thread count never changes the outcome), keeps
//! the elite by the reward's sum, and moves the mean and spread to the elite's. The gait kept is
//! the one the reward rated best; the task's fitness never enters the choice.

use crate::gait::{GAIT_PARAMETERS, Gait};
use crate::go2::Go2;
use crate::reward::{RewardFailure, RewardSource};
use crate::rng::Rng;
use crate::rollout::{self, Episode, Rollout};
use crate::sim::SimSettings;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CemSettings {
    /// Rollouts in all (rounded down to whole generations, at least one).
    pub rollouts: usize,
    pub population: usize,
    pub elite: usize,
    /// Spread of the first generation, in normalised parameter units.
    pub initial_spread: f64,
    /// The spread never shrinks below this, so the search keeps exploring.
    pub min_spread: f64,
    /// Threads that run rollouts.
    pub threads: usize,
}

impl Default for CemSettings {
    fn default() -> Self {
        CemSettings { rollouts: 288, population: 24, elite: 6, initial_spread: 0.5, min_spread: 0.05, threads: 2 }
    }
}

/// Largest population, elite and thread count accepted.
pub const MAX_POPULATION: usize = 1024;
pub const MAX_THREADS: usize = 64;

/// The result of training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Training {
    /// The gait the reward rated best.
    pub gait: Gait,
    /// Its rollout (reward, terms, and the task figures of that training rollout).
    pub best: Rollout,
    pub rollouts: usize,
    /// Rollouts the reward stopped, and the first reason.
    pub failed_rollouts: usize,
    pub first_failure: Option<RewardFailure>,
    /// The best reward of each generation.
    pub generation_best: Vec<f64>,
}

/// Trains a gait with `reward` on `episode`.
pub fn train(
    robot: &Go2,
    sim: SimSettings,
    reward: &dyn RewardSource,
    episode: &Episode,
    settings: &CemSettings,
    seed: u64,
) -> Training {
    let population = settings.population.clamp(2, MAX_POPULATION);
    let elite = settings.elite.clamp(1, population);
    let generations = (settings.rollouts / population).max(1);
    let mut rng = Rng::new(seed);
    let mut mean = [0.0; GAIT_PARAMETERS];
    let mut spread = [settings.initial_spread; GAIT_PARAMETERS];
    let mut best: Option<(Gait, Rollout)> = None;
    let (mut failed_rollouts, mut first_failure) = (0, None);
    let mut generation_best = Vec::with_capacity(generations);
    for _ in 0..generations {
        let gaits: Vec<Gait> =
            (0..population).map(|_| Gait::new(std::array::from_fn(|i| mean[i] + spread[i] * rng.normal()))).collect();
        let results = run_all(robot, sim, reward, episode, &gaits, settings.threads);
        let score = |r: &Rollout| if r.failure.is_some() { f64::NEG_INFINITY } else { r.reward };
        for result in &results {
            if let Some(failure) = &result.failure {
                failed_rollouts += 1;
                first_failure.get_or_insert_with(|| failure.clone());
            }
        }
        // Best first; equal rewards keep their draw order.
        let mut order: Vec<usize> = (0..population).collect();
        order.sort_by(|&a, &b| score(&results[b]).total_cmp(&score(&results[a])));
        let top = order[0];
        generation_best.push(score(&results[top]));
        if best.as_ref().is_none_or(|(_, b)| score(&results[top]) > score(b)) {
            best = Some((gaits[top], results[top].clone()));
        }
        for i in 0..GAIT_PARAMETERS {
            let values: Vec<f64> = order[..elite].iter().map(|&k| gaits[k].params[i]).collect();
            let m = values.iter().sum::<f64>() / elite as f64;
            let var = values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / elite as f64;
            mean[i] = m;
            spread[i] = var.sqrt().max(settings.min_spread);
        }
    }
    let (gait, best) = best.expect("at least one generation ran");
    Training { gait, best, rollouts: generations * population, failed_rollouts, first_failure, generation_best }
}

/// Runs one rollout per gait on up to `threads` threads; results in gait order.
fn run_all(
    robot: &Go2,
    sim: SimSettings,
    reward: &dyn RewardSource,
    episode: &Episode,
    gaits: &[Gait],
    threads: usize,
) -> Vec<Rollout> {
    let threads = threads.clamp(1, MAX_THREADS).min(gaits.len());
    let mut results: Vec<Option<Rollout>> = vec![None; gaits.len()];
    std::thread::scope(|scope| {
        let chunks: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (t..gaits.len())
                        .step_by(threads)
                        .map(|i| (i, rollout::run(robot, sim, &gaits[i], Some(reward), episode)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for chunk in chunks {
            for (i, result) in chunk.join().expect("a rollout thread panicked") {
                results[i] = Some(result);
            }
        }
    });
    results.into_iter().map(|r| r.expect("every gait ran")).collect()
}
