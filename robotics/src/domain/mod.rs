//! Robot reward design as a task domain (the `Domain` seam of `hyperagent-domains`): the task
//! agent answers each task with the Rust source of a reward function; the host builds it through
//! the [`RewardCompiler`] it was given (the runtime's jail and reward engine), trains a gait with it
//! by the cross-entropy method under a fixed budget and a seed of the task, and scores the trained
//! gait on the task's own fitness. Training: walking at speeds in [0.2, 0.8] m/s; tests: jumping
//! (peak height) and walking; baselines: "stand tall" and a hand-written jump reward, trained alike.
//!
//! Scoring is CPU-heavy (seconds to minutes), so [`Domain::score`] hands it to the async runtime's
//! blocking pool when there is one.

pub mod tasks;
pub mod training;

use crate::cem::CemSettings;
use crate::go2::Go2;
use crate::reward::{Native, RewardCompiler, RewardSource};
use crate::rewards;
use hyperagent_domains::domain::{DataError, DataFile, Domain, ScoreFuture, SetReport, Split, Staging, TestSets};
use hyperagent_domains::{Task, TaskScore};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use tasks::{Goal, TaskSpec};
use training::RewardCache;

pub const DOMAIN: &str = "robotics";

/// Most tasks in a split, and most rollouts per training.
pub const MAX_TASKS: usize = 64;
pub const MAX_ROLLOUTS: usize = 100_000;

/// The domain's settings: the `[domain.robotics]` table of a run's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Walking tasks in the training and validation splits.
    pub train_tasks: usize,
    pub validation_tasks: usize,
    /// Training tasks evaluated first; the rest only when their mean reaches `staged_threshold`.
    pub staged_tasks: usize,
    pub staged_threshold: f64,
    /// Tasks in each test set (`jump`, `walk`).
    pub test_tasks: usize,
    /// Rollouts per training (whole generations of `population`), and the optimiser's shape.
    pub rollouts: usize,
    pub population: usize,
    pub elite: usize,
    /// Seconds per rollout, at 50 control steps per second.
    pub episode_seconds: f64,
    /// Threads per training (the result never depends on it).
    pub threads: usize,
    /// Where the Go2 model is read from (default: the run's data directory).
    pub data_dir: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            train_tasks: 6,
            validation_tasks: 3,
            staged_tasks: 3,
            staged_threshold: 0.45,
            test_tasks: 3,
            rollouts: 48,
            population: 12,
            elite: 3,
            episode_seconds: 4.0,
            threads: 2,
            data_dir: None,
        }
    }
}

impl Settings {
    fn validate(&self) -> Result<(), String> {
        let tasks = [
            ("train_tasks", self.train_tasks),
            ("validation_tasks", self.validation_tasks),
            ("test_tasks", self.test_tasks),
        ];
        if let Some((name, _)) = tasks.iter().find(|(_, n)| !(1..=MAX_TASKS).contains(n)) {
            return Err(format!("{name} must be in 1..={MAX_TASKS}"));
        }
        if self.staged_tasks == 0 || self.staged_tasks > self.train_tasks {
            return Err("staged_tasks must be in 1..=train_tasks".into());
        }
        if !(0.0..=1.0).contains(&self.staged_threshold) {
            return Err("staged_threshold must be in [0, 1]".into());
        }
        if self.population < 2 || self.population > crate::cem::MAX_POPULATION {
            return Err(format!("population must be in 2..={}", crate::cem::MAX_POPULATION));
        }
        if self.elite == 0 || self.elite > self.population {
            return Err("elite must be in 1..=population".into());
        }
        if self.rollouts < self.population || self.rollouts > MAX_ROLLOUTS {
            return Err(format!("rollouts must be in population..={MAX_ROLLOUTS}"));
        }
        if !(1..=crate::cem::MAX_THREADS).contains(&self.threads) {
            return Err(format!("threads must be in 1..={}", crate::cem::MAX_THREADS));
        }
        let steps = self.episode_seconds * tasks::CONTROL_HZ;
        if !(steps >= 50.0 && steps <= crate::rollout::MAX_EPISODE_STEPS as f64) {
            return Err(format!(
                "episode_seconds must be in 1..={}",
                crate::rollout::MAX_EPISODE_STEPS as f64 / tasks::CONTROL_HZ
            ));
        }
        Ok(())
    }

    fn episode_steps(&self) -> u32 {
        (self.episode_seconds * tasks::CONTROL_HZ).round() as u32
    }

    fn cem(&self) -> CemSettings {
        CemSettings {
            rollouts: self.rollouts,
            population: self.population,
            elite: self.elite,
            threads: self.threads,
            ..CemSettings::default()
        }
    }
}

/// The baselines of the test table, each trained like an answer.
const BASELINES: [&str; 2] = ["stand-tall", "jump"];

pub struct Robotics {
    inner: Arc<Scorer>,
}

/// What scoring needs, shared with the blocking pool.
struct Scorer {
    settings: Settings,
    data_dir: PathBuf,
    robot: OnceLock<Result<Go2, String>>,
    rewards: RewardCache,
}

impl Scorer {
    fn robot(&self) -> Result<&Go2, String> {
        self.robot.get_or_init(|| crate::load_go2(&self.data_dir)).as_ref().map_err(Clone::clone)
    }

    fn score(&self, task: &Task, answer: &str) -> TaskScore {
        self.train(task, || {
            let source = reward_source(answer)
                .ok_or("the answer must be a JSON object {\"reward\": \"<Rust source>\"}".to_owned())?;
            self.rewards.get(&source).map_err(|why| format!("the reward cannot be used: {why}"))
        })
    }

    fn baseline(&self, name: &str, task: &Task) -> Option<TaskScore> {
        let reward: Arc<dyn RewardSource> = match name {
            "stand-tall" => Arc::new(Native::<rewards::stand_tall::Reward>::new()),
            "jump" => Arc::new(Native::<rewards::jump::Reward>::new()),
            _ => return None,
        };
        Some(self.train(task, || Ok(reward)))
    }

    /// Trains with the reward `reward` gives on `task` and scores the trained gait: answers and
    /// baselines alike. The task and the robot are checked first, so that nothing is built for a
    /// task that cannot be trained.
    fn train(&self, task: &Task, reward: impl FnOnce() -> Result<Arc<dyn RewardSource>, String>) -> TaskScore {
        let Some(spec) = TaskSpec::of(task) else {
            return TaskScore::invalid(format!("{} is not a robotics task", task.id));
        };
        let robot = match self.robot() {
            Ok(robot) => robot,
            Err(e) => return TaskScore::invalid(e),
        };
        match reward() {
            Ok(reward) => training::score(robot, reward.as_ref(), &spec, &self.settings.cem()),
            Err(why) => TaskScore::invalid(why),
        }
    }
}

impl Robotics {
    /// The domain with `settings` (`null` for the defaults), the Go2 read from `data_dir` at first
    /// use, rewards built by `rewards` (without one, every answer scores 0 with the reason).
    pub fn open(
        settings: &serde_json::Value,
        data_dir: &Path,
        rewards: Option<Arc<dyn RewardCompiler>>,
    ) -> Result<Arc<dyn Domain>, String> {
        let settings: Settings = if settings.is_null() {
            Settings::default()
        } else {
            Settings::deserialize(settings).map_err(|e| e.to_string())?
        };
        settings.validate()?;
        let data_dir = settings.data_dir.clone().unwrap_or_else(|| data_dir.to_path_buf());
        let inner = Scorer { settings, data_dir, robot: OnceLock::new(), rewards: RewardCache::new(rewards) };
        Ok(Arc::new(Robotics { inner: Arc::new(inner) }))
    }

    fn split(&self, name: &str, prefix: &str, goal: Goal, count: usize, seed: u64) -> Split {
        let s = &self.inner.settings;
        tasks::split(name, prefix, goal, count, seed, s.episode_steps(), s.rollouts)
    }

    /// The Go2, or the data error that stops a run before its first task.
    fn check_robot(&self) -> Result<(), DataError> {
        self.inner.robot().map(|_| ()).map_err(|reason| DataError::Io {
            path: self.inner.data_dir.join(crate::MJCF_PATH).display().to_string(),
            reason,
        })
    }
}

impl Domain for Robotics {
    fn name(&self) -> &'static str {
        DOMAIN
    }

    fn splits(&self, train_seed: u64, validation_seed: u64) -> Result<(Split, Split), DataError> {
        self.check_robot()?;
        let s = &self.inner.settings;
        Ok((
            self.split("train", "train", Goal::Walk, s.train_tasks, train_seed),
            self.split("validation", "validation", Goal::Walk, s.validation_tasks, validation_seed),
        ))
    }

    fn test_sets(&self, _data_dir: &Path) -> Result<TestSets, DataError> {
        self.check_robot()?;
        // Fixed seeds: every run's best reward meets the same test tasks and baselines.
        let n = self.inner.settings.test_tasks;
        let sets =
            vec![self.split("jump", "test/jump", Goal::Jump, n, 1), self.split("walk", "test/walk", Goal::Walk, n, 2)];
        Ok(TestSets { sets, notice: None })
    }

    fn score<'a>(&'a self, task: &'a Task, answer: &'a str) -> ScoreFuture<'a> {
        let (inner, task, answer) = (self.inner.clone(), task.clone(), answer.to_owned());
        Box::pin(blocking(move || inner.score(&task, &answer)))
    }

    fn report(&self, tasks: &[Task], scores: &[TaskScore]) -> SetReport {
        let mean = hyperagent_domains::domain::mean_score(scores);
        let jumping = tasks.first().and_then(TaskSpec::of).is_some_and(|s| s.goal == Goal::Jump);
        SetReport {
            metric: if jumping { "peak height (m)" } else { "walk fitness" }.into(),
            value: mean,
            lower_is_better: false,
            score: mean,
            invalid: scores.iter().filter(|s| s.invalid.is_some()).count(),
            figures: Vec::new(),
        }
    }

    fn data_files(&self) -> Vec<DataFile> {
        vec![DataFile {
            path: crate::MJCF_PATH,
            source: "mujoco_menagerie unitree_go2/go2.xml (Unitree Go2 MJCF), BSD-3-Clause",
        }]
    }

    fn baselines(&self) -> Vec<&'static str> {
        BASELINES.to_vec()
    }

    fn baseline(&self, name: &str, task: &Task) -> Option<TaskScore> {
        self.inner.baseline(name, task)
    }

    fn costly_tasks(&self) -> bool {
        true
    }

    fn staging(&self) -> Staging {
        Staging { tasks: self.inner.settings.staged_tasks, threshold: self.inner.settings.staged_threshold }
    }
}

/// The reward's source in an answer `{"reward": "<Rust source>"}` (the sandbox has already
/// checked that the answer is JSON within its size limit).
fn reward_source(answer: &str) -> Option<String> {
    match serde_json::from_str::<serde_json::Value>(answer).ok()?.get_mut("reward")?.take() {
        serde_json::Value::String(source) => Some(source),
        _ => None,
    }
}

/// Runs `work` on the async runtime's blocking pool when there is one (so that training never
/// stalls the runtime's workers), here otherwise.
async fn blocking(work: impl FnOnce() -> TaskScore + Send + 'static) -> TaskScore {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle
            .spawn_blocking(work)
            .await
            .unwrap_or_else(|e| TaskScore::invalid(format!("scoring stopped on the host: {e}"))),
        Err(_) => work(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked() {
        let open = |json: serde_json::Value| Robotics::open(&json, Path::new("."), None).err().unwrap_or_default();
        assert_eq!(open(serde_json::Value::Null), "");
        assert!(open(serde_json::json!({"staged_tasks": 7})).contains("staged_tasks"));
        assert!(open(serde_json::json!({"rollouts": 5})).contains("rollouts"));
        assert!(open(serde_json::json!({"episode_seconds": 0.1})).contains("episode_seconds"));
        assert!(open(serde_json::json!({"surprise": 1})).contains("surprise"));
    }

    #[test]
    fn without_a_compiler_an_answer_scores_zero_with_the_reason() {
        let domain = Robotics::open(&serde_json::Value::Null, Path::new("/nonexistent"), None).unwrap();
        assert!(domain.splits(1, 2).is_err(), "the missing model stops the run before its first task");
        let task = tasks::task(
            "train/0000".into(),
            TaskSpec { goal: Goal::Walk, forward_speed: 0.5, episode_steps: 50, seed: 1 },
            12,
        );
        let scored = futures_lite_block_on(domain.score(&task, "pub struct Reward;"));
        assert_eq!(scored.score, 0.0);
        assert!(scored.invalid.unwrap().contains("Go2"));
    }

    /// A minimal executor for a future that never waits (no runtime: scoring runs inline).
    fn futures_lite_block_on<F: std::future::Future>(future: F) -> F::Output {
        let waker = std::task::Waker::noop();
        let mut context = std::task::Context::from_waker(waker);
        let mut future = std::pin::pin!(future);
        match future.as_mut().poll(&mut context) {
            std::task::Poll::Ready(value) => value,
            std::task::Poll::Pending => panic!("scoring without a runtime finishes in one poll"),
        }
    }
}
