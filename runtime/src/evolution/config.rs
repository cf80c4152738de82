//! The configuration of a run: a TOML file, command-line overrides, and the defaults of the
//! embedded run (the registry's first domain, offline).
//!
//! The loop's own settings are fields here; each domain's settings are a `[domain.<name>]` table
//! that only the domain reads.

use super::selection::Selection;
use hyperagent_domains::Domain;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// The task domains of the run; a node's score is the mean of its per-domain scores.
    pub domains: Vec<String>,
    /// Each domain's settings, as its `[domain.<name>]` table (absent: the domain's defaults).
    pub domain: BTreeMap<String, serde_json::Value>,
    /// Every random choice of the run derives from this seed.
    pub seed: u64,
    /// Generations after the initial one.
    pub generations: u32,
    /// Children made (and evaluated in parallel) per generation.
    pub children_per_generation: u32,
    pub selection: Selection,
    /// With `selection = "agent"`: the rule a generation falls back to when the hyperagent's
    /// selector fails or answers what cannot be used (absent: `dgm-h`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selection_fallback: Option<Selection>,
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
    /// Wall-clock deadline of a meta call, in seconds. Absent: what `meta_fuel` takes at 10⁸ units
    /// a second, and at least 60 s (100 s by default), so that the fuel and not the machine's load
    /// ends a call; with an LLM, that plus long enough for `meta_llm_calls` completions at their
    /// worst (every attempt to its timeout, the longest backoffs), so that a healthy slow backend
    /// never kills a meta call. A shorter one is allowed, with a warning.
    pub meta_deadline_secs: Option<u64>,
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
            domains: vec![crate::domains::names()[0].to_owned()],
            domain: BTreeMap::new(),
            seed: 0,
            generations: 30,
            children_per_generation: 2,
            selection: Selection::DgmH,
            selection_fallback: None,
            fixed_meta: false,
            no_archive: false,
            task_fuel: 20_000_000_000,
            meta_fuel: 10_000_000_000,
            memory_mib: 256,
            meta_llm_calls: 12,
            meta_deadline_secs: None,
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
        // Opening reads no data and builds nothing, so any directory and no services serve to
        // check the names and settings.
        self.open_domains(std::path::Path::new("."), &crate::domains::HostServices::none())?;
        if self.selection_fallback == Some(Selection::Agent) {
            return Err("selection_fallback cannot be `agent`: it is what the host uses when the agent fails".into());
        }
        if self.children_per_generation == 0 || self.children_per_generation > 64 {
            return Err("children_per_generation must be in 1..=64".into());
        }
        // The configuration is hashed in canonical JSON, whose numbers are doubles.
        let exact = crate::canonical::MAX_EXACT_INTEGER;
        for (name, value) in [("seed", self.seed), ("task_fuel", self.task_fuel), ("meta_fuel", self.meta_fuel)] {
            if value > exact {
                return Err(format!("{name} must be at most {exact} (2^53 - 1, what JSON carries exactly)"));
            }
        }
        // Checked before the initial node is evaluated: the engine refuses larger caps per call.
        let max_mib = crate::sandbox::EngineSettings::default().max_memory_bytes >> 20;
        if self.memory_mib == 0 || self.memory_mib > max_mib {
            return Err(format!("memory_mib must be in 1..={max_mib}: the sandbox's maximum is {max_mib} MiB"));
        }
        Ok(())
    }

    /// What is allowed but likely a mistake, for the CLI to say before the run starts.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if let (Some(deadline), Some(llm)) = (self.meta_deadline_secs, &self.llm) {
            let needed = self.llm_time(llm);
            if std::time::Duration::from_secs(deadline) < needed {
                warnings.push(format!(
                    "meta_deadline_secs = {deadline} is shorter than {} s, what {} completion(s) may take at worst \
                     with [llm] timeout_ms = {} and max_retries = {}: a slow backend will end meta calls at their \
                     deadline (recorded, so replays end them alike)",
                    needed.as_secs(),
                    self.meta_llm_calls,
                    llm.timeout_ms,
                    llm.max_retries
                ));
            }
        }
        warnings
    }

    /// The wall-clock deadline of a meta call (see `meta_deadline_secs`).
    pub fn meta_deadline(&self) -> std::time::Duration {
        match (self.meta_deadline_secs, &self.llm) {
            (Some(secs), _) => std::time::Duration::from_secs(secs),
            (None, Some(llm)) => self.llm_time(llm) + crate::sandbox::limits::deadline_past_fuel(self.meta_fuel),
            (None, None) => crate::sandbox::limits::deadline_past_fuel(self.meta_fuel),
        }
    }

    /// The longest the meta call's completions may take at worst.
    fn llm_time(&self, llm: &crate::llm::LlmConfig) -> std::time::Duration {
        llm.worst_completion() * self.meta_llm_calls
    }

    /// The run's domains, each built from its settings; refuses unknown, repeated or missing
    /// domains and settings for a domain the run does not have. Their data is in `data_dir`; they
    /// may use the host's `services`.
    pub fn open_domains(
        &self,
        data_dir: &std::path::Path,
        services: &crate::domains::HostServices,
    ) -> Result<Vec<Arc<dyn Domain>>, String> {
        if self.domains.is_empty() {
            return Err(format!("a run needs at least one domain (available: {})", crate::domains::names().join(", ")));
        }
        if let Some(stray) = self.domain.keys().find(|name| !self.domains.contains(name)) {
            return Err(format!("[domain.{stray}] holds settings for a domain the run does not list in `domains`"));
        }
        let mut opened: Vec<Arc<dyn Domain>> = Vec::new();
        for name in &self.domains {
            if opened.iter().any(|d| d.name() == name) {
                return Err(format!("domain `{name}` is listed twice"));
            }
            let settings = self.domain.get(name).cloned().unwrap_or(serde_json::Value::Null);
            opened.push(crate::domains::open(name, &settings, data_dir, services)?);
        }
        Ok(opened)
    }

    /// The hash of the configuration's canonical JSON (RFC 8785), recorded with the run; anyone
    /// can recompute it from the configuration in the log.
    pub fn hash(&self) -> crate::hash::ContentHash {
        crate::hash::ContentHash::of(&crate::canonical::to_vec(self))
    }
}

#[cfg(test)]
mod tests {
    use super::RunConfig;

    #[test]
    fn bad_configurations_are_refused_with_a_reason() {
        assert!(RunConfig::default().validate().is_ok());
        let refused = |config: RunConfig| config.validate().unwrap_err();
        assert!(
            refused(RunConfig { domains: vec!["chess".into()], ..RunConfig::default() }).contains("unknown domain")
        );
        assert!(refused(RunConfig { domains: vec![], ..RunConfig::default() }).contains("at least one domain"));
        assert!(refused(RunConfig { children_per_generation: 65, ..RunConfig::default() }).contains("1..=64"));
        assert!(refused(RunConfig { memory_mib: 1 << 44, ..RunConfig::default() }).contains("1..=1024"));
        assert!(refused(RunConfig { seed: 1 << 53, ..RunConfig::default() }).contains("2^53"));
        let llm = crate::llm::LlmConfig { timeout_ms: 120_000, max_retries: 0, ..Default::default() };
        let slow = RunConfig {
            llm: Some(llm.clone()),
            meta_llm_calls: 2,
            meta_deadline_secs: Some(60),
            ..RunConfig::default()
        };
        assert!(slow.validate().is_ok());
        assert!(slow.warnings()[0].contains("shorter than 240 s"), "{:?}", slow.warnings());
        let derived = RunConfig { llm: Some(llm), meta_llm_calls: 2, ..RunConfig::default() };
        assert_eq!(derived.meta_deadline().as_secs(), 340, "240 s of completions, and 100 s for the fuel");
        assert_eq!(RunConfig::default().meta_deadline().as_secs(), 100, "10^10 fuel at 10^8 a second");
        let with = |settings: &str| RunConfig::from_toml(&format!("[domain.bin_packing]\n{settings}\n")).unwrap_err();
        assert!(with("staged_tasks = 11").contains("staged_tasks"));
        assert!(with("train_items = 200001").contains("200000"));
        assert!(with("test_sets = [\"OR9\"]").contains("unknown test set"));
        assert!(RunConfig::from_toml("[domain.chess]\nx = 1\n").unwrap_err().contains("does not list"));
        assert!(RunConfig::from_toml("generations = 3\nsurprise = 1\n").unwrap_err().contains("surprise"));
        let read = RunConfig::from_toml("[domain.bin_packing]\ntrain_instances = 4\n").unwrap();
        assert_eq!(read.domain["bin_packing"]["train_instances"], 4);
    }
}
