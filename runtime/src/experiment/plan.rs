//! An experiment plan: methods × seeds, each cell one run.
//!
//! ```toml
//! seeds = [0, 1, 2, 3, 4]
//! reference = "dgm-h"          # what the p-values compare against (default: the first method)
//! base = "paper_review.toml"   # a run configuration, relative to the plan (default: the defaults)
//! resamples = 1000             # bootstrap resamples for the intervals
//! [config]                     # overrides of the base for every method
//! domains = ["paper_review"]
//! [[method]]
//! name = "dgm-h"
//! [[method]]
//! name = "fixed-meta"
//! config = { fixed_meta = true }
//! ```
//!
//! A cell's configuration is the base, then `[config]`, then the method's `config` (tables merged
//! key by key, so `[method.config.domain.paper_review]` changes one domain's settings), then the
//! seed. Its run id is `<experiment>-<method>-s<seed>`, so the runs are ordinary runs (`status`,
//! `replay`, `export` work on them) and a rerun of the plan finds the ones already made.

use crate::evolution::config::RunConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Most cells a plan may have: each is a whole run.
const MAX_CELLS: usize = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    seeds: Vec<u64>,
    reference: Option<String>,
    base: Option<PathBuf>,
    #[serde(default = "default_resamples")]
    resamples: usize,
    #[serde(default)]
    config: toml::Table,
    method: Vec<MethodFile>,
}

fn default_resamples() -> usize {
    1000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MethodFile {
    name: String,
    #[serde(default)]
    config: toml::Table,
}

/// A method: its name and the configuration of its run for each seed.
#[derive(Debug, Clone)]
pub struct Method {
    pub name: String,
    /// The configuration without the seed (the seed is set per cell).
    pub config: RunConfig,
}

/// One cell: a method's run for one seed.
#[derive(Debug, Clone)]
pub struct Cell {
    pub method: String,
    pub seed: u64,
    pub run_id: String,
    pub config: RunConfig,
}

#[derive(Debug, Clone)]
pub struct Plan {
    /// The plan's file stem: the experiment's name and its runs' prefix.
    pub name: String,
    pub seeds: Vec<u64>,
    pub methods: Vec<Method>,
    pub reference: String,
    pub resamples: usize,
}

impl Plan {
    /// Reads and checks a plan file; every cell's configuration is validated before anything runs.
    pub fn read(path: &Path) -> Result<Plan, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let base_dir = path.parent().unwrap_or(Path::new("."));
        Plan::parse(&name, &text, base_dir).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// A plan named `name` from its text; `base` paths are relative to `base_dir`.
    pub fn parse(name: &str, text: &str, base_dir: &Path) -> Result<Plan, String> {
        check_name("experiment name (the plan's file name)", name)?;
        let file: PlanFile = toml::from_str(text).map_err(|e| e.to_string())?;
        if file.seeds.is_empty() {
            return Err("`seeds` must name at least one seed".into());
        }
        if has_duplicates(&file.seeds) {
            return Err("`seeds` lists a seed twice".into());
        }
        if file.method.is_empty() {
            return Err("a plan needs at least one [[method]]".into());
        }
        if file.seeds.len() * file.method.len() > MAX_CELLS {
            return Err(format!("a plan may have at most {MAX_CELLS} cells (methods x seeds)"));
        }
        if file.resamples == 0 || file.resamples > 1_000_000 {
            return Err("`resamples` must be in 1..=1000000".into());
        }
        let base = match &file.base {
            Some(relative) => {
                let path = base_dir.join(relative);
                let text =
                    std::fs::read_to_string(&path).map_err(|e| format!("cannot read base {}: {e}", path.display()))?;
                toml::from_str::<toml::Table>(&text).map_err(|e| format!("base {}: {e}", path.display()))?
            }
            None => toml::Table::new(),
        };
        let mut methods: Vec<Method> = Vec::new();
        for method in file.method {
            check_name("method name", &method.name)?;
            if methods.iter().any(|m| m.name == method.name) {
                return Err(format!("method `{}` is listed twice", method.name));
            }
            let mut table = base.clone();
            merge(&mut table, &file.config);
            merge(&mut table, &method.config);
            if table.contains_key("seed") {
                return Err(format!("method `{}`: the seed comes from `seeds`, not from a configuration", method.name));
            }
            let text = toml::to_string(&table).map_err(|e| e.to_string())?;
            let config = RunConfig::from_toml(&text).map_err(|e| format!("method `{}`: {e}", method.name))?;
            methods.push(Method { name: method.name, config });
        }
        let reference = file.reference.unwrap_or_else(|| methods[0].name.clone());
        if !methods.iter().any(|m| m.name == reference) {
            return Err(format!("the reference `{reference}` is not one of the methods"));
        }
        Ok(Plan { name: name.to_owned(), seeds: file.seeds, methods, reference, resamples: file.resamples })
    }

    /// Every cell, method by method, seed by seed.
    pub fn cells(&self) -> Vec<Cell> {
        let mut cells = Vec::new();
        for method in &self.methods {
            for &seed in &self.seeds {
                cells.push(Cell {
                    method: method.name.clone(),
                    seed,
                    run_id: format!("{}-{}-s{seed}", self.name, method.name),
                    config: RunConfig { seed, ..method.config.clone() },
                });
            }
        }
        cells
    }
}

/// Names become run ids and file names: letters, digits, `-`, `_` and `.`, not starting with `.`.
fn check_name(what: &str, name: &str) -> Result<(), String> {
    let fine = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if fine {
        Ok(())
    } else {
        Err(format!("{what} {name:?} must be 1-64 letters, digits, `-`, `_` or `.`, not starting with `.`"))
    }
}

fn has_duplicates(seeds: &[u64]) -> bool {
    let mut sorted = seeds.to_vec();
    sorted.sort_unstable();
    sorted.windows(2).any(|w| w[0] == w[1])
}

/// Merges `over` into `table`: tables key by key, anything else replaced.
fn merge(table: &mut toml::Table, over: &toml::Table) {
    for (key, value) in over {
        match (table.get_mut(key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(over_inner)) => merge(inner, over_inner),
            _ => {
                table.insert(key.clone(), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &str = r#"
seeds = [0, 1]
reference = "full"
[config]
generations = 2
[config.domain.bin_packing]
train_instances = 4
[[method]]
name = "full"
[[method]]
name = "fixed"
config = { fixed_meta = true, domain = { bin_packing = { train_items = 120 } } }
"#;

    #[test]
    fn cells_merge_the_base_the_shared_overrides_and_the_method() {
        let plan = Plan::parse("ablation", PLAN, Path::new(".")).unwrap();
        let cells = plan.cells();
        let ids: Vec<&str> = cells.iter().map(|c| c.run_id.as_str()).collect();
        assert_eq!(ids, ["ablation-full-s0", "ablation-full-s1", "ablation-fixed-s0", "ablation-fixed-s1"]);
        let fixed = &cells[3];
        assert!(fixed.config.fixed_meta && fixed.config.seed == 1 && fixed.config.generations == 2);
        let settings = &fixed.config.domain["bin_packing"];
        assert_eq!((settings["train_instances"].as_i64(), settings["train_items"].as_i64()), (Some(4), Some(120)));
        assert!(!cells[0].config.fixed_meta);
        assert_eq!(cells[0].config.domain["bin_packing"].get("train_items"), None);
    }

    #[test]
    fn bad_plans_are_refused_with_the_reason() {
        let refused = |text: &str| Plan::parse("p", text, Path::new(".")).unwrap_err();
        assert!(refused("seeds = []\n[[method]]\nname = \"a\"\n").contains("at least one seed"));
        assert!(refused("seeds = [1, 1]\n[[method]]\nname = \"a\"\n").contains("twice"));
        assert!(refused("seeds = [1]\nmethod = []\n").contains("[[method]]"));
        assert!(refused("seeds = [1]\n[[method]]\nname = \"a\"\n[[method]]\nname = \"a\"\n").contains("twice"));
        assert!(refused("seeds = [1]\n[[method]]\nname = \"../x\"\n").contains("letters"));
        assert!(refused("seeds = [1]\nreference = \"b\"\n[[method]]\nname = \"a\"\n").contains("reference"));
        assert!(refused("seeds = [1]\n[[method]]\nname = \"a\"\nconfig = { seed = 3 }\n").contains("seed"));
        assert!(refused("seeds = [1]\n[[method]]\nname = \"a\"\nconfig = { surprise = 3 }\n").contains("surprise"));
        assert!(refused("seeds = [1]\nsurprise = 2\n[[method]]\nname = \"a\"\n").contains("surprise"));
        assert!(Plan::parse(".hidden", "seeds = [1]\n[[method]]\nname = \"a\"\n", Path::new(".")).is_err());
        assert!(refused("seeds = [1]\nresamples = 0\n[[method]]\nname = \"a\"\n").contains("resamples"));
        assert!(refused("seeds = [1]\nresamples = 1000001\n[[method]]\nname = \"a\"\n").contains("resamples"));
        let seeds: Vec<String> = (0..=MAX_CELLS).map(|s| s.to_string()).collect();
        let many = format!("seeds = [{}]\n[[method]]\nname = \"a\"\n", seeds.join(", "));
        assert!(refused(&many).contains("at most 1000 cells"));
        let seeds: Vec<String> = (0..MAX_CELLS).map(|s| s.to_string()).collect();
        let most = format!("seeds = [{}]\n[[method]]\nname = \"a\"\n", seeds.join(", "));
        assert_eq!(Plan::parse("p", &most, Path::new(".")).unwrap().cells().len(), MAX_CELLS);
    }
}
