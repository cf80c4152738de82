//! The configuration of a run: a TOML file, command-line overrides, and the defaults of the
//! embedded run (bin packing, offline).

use super::selection::Selection;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// The task domain (only `bin_packing` today).
    pub domain: String,
    /// Every random choice of the run derives from this seed.
    pub seed: u64,
    /// Generations after the initial one.
    pub generations: u32,
    /// Children made (and evaluated in parallel) per generation.
    pub children_per_generation: u32,
    pub selection: Selection,
    /// Training tasks evaluated first; the rest of the training split and the validation split are
    /// evaluated only when their mean score reaches `staged_threshold`.
    pub staged_tasks: usize,
    pub staged_threshold: f64,
    /// Generated training and validation instances (Weibull, as FunSearch defines them).
    pub train_instances: usize,
    pub train_items: usize,
    pub validation_instances: usize,
    pub validation_items: usize,
    /// Test sets evaluated on the best node at the end: OR1–OR4 and "Weibull 5k" (published),
    /// "Weibull 10k" and "Weibull 100k" (generated; slow).
    pub test_sets: Vec<String>,
    /// Ablation "without self-improvement": the initial meta agent makes every child.
    pub fixed_meta: bool,
    /// Ablation "without open-ended exploration": the parent is always the newest child.
    pub no_archive: bool,
    /// Fuel per task call and per meta call.
    pub task_fuel: u64,
    pub meta_fuel: u64,
    pub memory_mib: u64,
    /// Completions a meta call may request when an LLM is configured.
    pub meta_llm_calls: u32,
    /// Completions each task call may request (0: task agents work without the LLM).
    pub task_llm_calls: u32,
    /// The initial hyperagent's source (default: guest-agents/initial of the checkout).
    pub initial_agent: Option<PathBuf>,
    /// The LLM backend meta agents may call (none: the embedded default works offline).
    pub llm: Option<crate::llm::LlmConfig>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            domain: "bin_packing".into(),
            seed: 0,
            generations: 30,
            children_per_generation: 2,
            selection: Selection::DgmH,
            staged_tasks: 3,
            staged_threshold: 0.5,
            train_instances: 10,
            train_items: 500,
            validation_instances: 5,
            validation_items: 2000,
            test_sets: vec!["OR1".into(), "OR2".into(), "OR3".into(), "OR4".into(), "Weibull 5k".into()],
            fixed_meta: false,
            no_archive: false,
            task_fuel: 20_000_000_000,
            meta_fuel: 2_000_000_000,
            memory_mib: 256,
            meta_llm_calls: 4,
            task_llm_calls: 0,
            initial_agent: None,
            llm: None,
        }
    }
}

impl RunConfig {
    pub fn from_toml(text: &str) -> Result<RunConfig, String> {
        let config: RunConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.domain != "bin_packing" {
            return Err(format!("unknown domain `{}` (available: bin_packing)", self.domain));
        }
        if self.children_per_generation == 0 || self.children_per_generation > 64 {
            return Err("children_per_generation must be in 1..=64".into());
        }
        if self.train_instances == 0 || self.validation_instances == 0 {
            return Err("the training and validation splits need at least one instance".into());
        }
        if self.staged_tasks == 0 || self.staged_tasks > self.train_instances {
            return Err("staged_tasks must be in 1..=train_instances".into());
        }
        let known = ["OR1", "OR2", "OR3", "OR4", "Weibull 5k", "Weibull 10k", "Weibull 100k"];
        if let Some(unknown) = self.test_sets.iter().find(|s| !known.contains(&s.as_str())) {
            return Err(format!("unknown test set `{unknown}` (available: {})", known.join(", ")));
        }
        if self.train_items == 0
            || self.validation_items == 0
            || self.train_items > 200_000
            || self.validation_items > 200_000
        {
            return Err("instance sizes must be in 1..=200000 items".into());
        }
        Ok(())
    }

    /// The canonical hash of the configuration, recorded with the run.
    pub fn hash(&self) -> crate::hash::ContentHash {
        crate::hash::ContentHash::of(&serde_json::to_vec(self).expect("a config serialises"))
    }
}

#[cfg(test)]
mod tests {
    use super::RunConfig;

    #[test]
    fn bad_configurations_are_refused_with_a_reason() {
        assert!(RunConfig::default().validate().is_ok());
        let refused = |config: RunConfig| config.validate().unwrap_err();
        assert!(refused(RunConfig { domain: "chess".into(), ..RunConfig::default() }).contains("unknown domain"));
        assert!(refused(RunConfig { children_per_generation: 65, ..RunConfig::default() }).contains("1..=64"));
        assert!(refused(RunConfig { staged_tasks: 11, ..RunConfig::default() }).contains("staged_tasks"));
        assert!(refused(RunConfig { train_items: 200_001, ..RunConfig::default() }).contains("200000"));
        assert!(
            refused(RunConfig { test_sets: vec!["OR9".into()], ..RunConfig::default() }).contains("unknown test set")
        );
        assert!(RunConfig::from_toml("generations = 3\nsurprise = 1\n").unwrap_err().contains("surprise"));
    }
}
