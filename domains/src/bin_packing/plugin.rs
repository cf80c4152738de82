//! Bin packing as a [`Domain`]: generated training and validation splits (both test families by
//! default: Weibull, and OR-like uniform sizes with capacity 150; one family for FunSearch's
//! per-family protocol), the published
//! test sets (or generated stand-ins when the data directory lacks them), FunSearch's set metric,
//! and the first-fit and best-fit baselines.

use super::{Family, Instance, InstanceSet, best_fit, bins_used, first_fit, task_score};
use crate::domain::{DataError, DataFile, Domain, ScoreFuture, SetReport, Split, Staging, TestSets};
use crate::{Task, TaskScore};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

/// The test sets a run may name.
pub const TEST_SETS: [&str; 7] = ["OR1", "OR2", "OR3", "OR4", "Weibull 5k", "Weibull 10k", "Weibull 100k"];

/// The domain's settings: the `[domain.bin_packing]` table of a run's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Families of the generated training and validation instances, interleaved: `"weibull"`
    /// (FunSearch's, capacity 100) and `"or"` (OR-Library-like: sizes uniform in [20, 100],
    /// capacity 150). The default trains on both test families; FunSearch trained one heuristic
    /// per family (`families = ["weibull"]` or `["or"]`).
    pub families: Vec<Family>,
    /// Generated training and validation instances, and their sizes.
    pub train_instances: usize,
    pub train_items: usize,
    pub validation_instances: usize,
    pub validation_items: usize,
    /// Sizes of the generated OR-family instances, taken in turn in both splits; OR-Library's
    /// binpack1–4 hold 120, 250, 500 and 1000 items, and a heuristic that pays off over a long
    /// sequence can lose on a short one. Empty: the OR family has `train_items` and
    /// `validation_items` items too.
    pub or_items: Vec<usize>,
    /// Training tasks evaluated first; the rest only when their mean reaches `staged_threshold`.
    pub staged_tasks: usize,
    pub staged_threshold: f64,
    /// Test sets for the best node: OR1–OR4 and "Weibull 5k" (published; generated stand-ins when
    /// the data is missing), "Weibull 10k" and "Weibull 100k" (generated; slow).
    pub test_sets: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            families: vec![Family::Weibull, Family::Or],
            train_instances: 10,
            train_items: 500,
            validation_instances: 6,
            validation_items: 2000,
            or_items: vec![120, 250, 500, 1000],
            staged_tasks: 3,
            staged_threshold: 0.5,
            test_sets: TEST_SETS[..5].iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl Settings {
    fn validate(&self) -> Result<(), String> {
        if self.families.is_empty() || (1..self.families.len()).any(|i| self.families[..i].contains(&self.families[i]))
        {
            return Err("families must name at least one family, each once (\"weibull\", \"or\")".into());
        }
        if self.train_instances == 0 || self.validation_instances == 0 {
            return Err("the training and validation splits need at least one instance".into());
        }
        if self.staged_tasks == 0 || self.staged_tasks > self.train_instances {
            return Err("staged_tasks must be in 1..=train_instances".into());
        }
        if let Some(unknown) = self.test_sets.iter().find(|s| !TEST_SETS.contains(&s.as_str())) {
            return Err(format!("unknown test set `{unknown}` (available: {})", TEST_SETS.join(", ")));
        }
        if [self.train_items, self.validation_items].iter().chain(&self.or_items).any(|&n| n == 0 || n > 200_000) {
            return Err("instance sizes must be in 1..=200000 items".into());
        }
        Ok(())
    }
}

pub struct BinPacking {
    settings: Settings,
}

impl BinPacking {
    /// The domain with `settings` (`null` for the defaults).
    pub fn open(settings: &Value) -> Result<Arc<dyn Domain>, String> {
        let settings: Settings = if settings.is_null() {
            Settings::default()
        } else {
            Settings::deserialize(settings).map_err(|e| e.to_string())?
        };
        settings.validate()?;
        Ok(Arc::new(BinPacking { settings }))
    }
}

/// A split's tasks: ids `<split>/<instance>`, payloads as the task agent reads them.
fn split(name: &str, set: &InstanceSet, generated: bool) -> Split {
    let tasks = set.instances.iter().map(|i| Task { id: format!("{name}/{}", i.name), payload: i.payload() }).collect();
    Split { name: set.name.clone(), tasks, generated }
}

/// The instance a task's payload describes (payloads are written by this domain).
fn instance_of(task: &Task) -> Result<Instance, String> {
    let value: Value = serde_json::from_str(&task.payload).map_err(|e| e.to_string())?;
    let capacity = value["capacity"].as_u64().filter(|c| *c > 0).ok_or("no capacity")?;
    let items = value["items"].as_array().ok_or("no items")?.iter().filter_map(Value::as_u64).collect();
    let name = task.id.rsplit('/').next().unwrap_or("").to_owned();
    Ok(Instance { name, capacity, items })
}

/// Stand-ins for the published sets, clearly named, from fixed seeds.
fn generated_stand_ins() -> Vec<InstanceSet> {
    let mut sets: Vec<InstanceSet> = [(1, 120), (2, 250), (3, 500), (4, 1000)]
        .iter()
        .map(|&(k, items)| {
            let name = format!("OR{k} (generated)");
            let instances = (0..20)
                .map(|i| super::uniform_instance(&format!("u{items}_{i:02}"), 150_000 + k * 100 + i, items as usize))
                .collect();
            InstanceSet { name, instances }
        })
        .collect();
    sets.push(super::weibull_set("Weibull 5k (generated)", 5_000, 5, 5_000));
    sets
}

impl Domain for BinPacking {
    fn name(&self) -> &'static str {
        super::DOMAIN
    }

    fn splits(&self, train_seed: u64, validation_seed: u64) -> Result<(Split, Split), DataError> {
        let s = &self.settings;
        let train =
            super::generated_set("train", train_seed, s.train_instances, s.train_items, &s.or_items, &s.families);
        let validation = super::generated_set(
            "validation",
            validation_seed,
            s.validation_instances,
            s.validation_items,
            &s.or_items,
            &s.families,
        );
        Ok((split("train", &train, true), split("validation", &validation, true)))
    }

    fn test_sets(&self, data_dir: &Path) -> Result<TestSets, DataError> {
        let wanted = &self.settings.test_sets;
        let (published, notice) = match super::published_sets(data_dir) {
            Ok(sets) => (sets.into_iter().map(|s| (s, false)).collect::<Vec<_>>(), None),
            Err(super::DataError::Io { path, .. }) => {
                let notice = format!(
                    "bin_packing: the published test sets were not found ({path} is missing); generated \
                     stand-ins are used, named \"(generated)\". Point --data-dir or HYPERAGENT_DATA_DIR at \
                     the data to use OR-Library and FunSearch's Weibull 5k."
                );
                (generated_stand_ins().into_iter().map(|s| (s, true)).collect(), Some(notice))
            }
            Err(e) => return Err(DataError::Parse { path: "bin_packing".into(), reason: e.to_string() }),
        };
        let mut sets: Vec<Split> = published
            .iter()
            .filter(|(set, _)| wanted.iter().any(|w| set.name == *w || set.name == format!("{w} (generated)")))
            .map(|(set, generated)| split("test", set, *generated))
            .collect();
        if wanted.iter().any(|w| w.starts_with("Weibull 10")) {
            for set in super::generated_test_sets().iter().filter(|s| wanted.contains(&s.name)) {
                sets.push(split("test", set, true));
            }
        }
        Ok(TestSets { sets, notice })
    }

    fn score<'a>(&'a self, task: &'a Task, answer: &'a str) -> ScoreFuture<'a> {
        Box::pin(async move {
            match instance_of(task) {
                Ok(instance) => super::score(&instance, answer),
                Err(e) => TaskScore::invalid(format!("the task's payload is unreadable: {e}")),
            }
        })
    }

    /// FunSearch's aggregation: the excess of the mean bin count over the mean L1 bound. An
    /// invalid answer counts as the worst valid packing, one bin per item.
    fn report(&self, tasks: &[Task], scores: &[TaskScore]) -> SetReport {
        let (mut used, mut bound) = (0u64, 0u64);
        for (task, score) in tasks.iter().zip(scores) {
            let Ok(instance) = instance_of(task) else { continue };
            used += score.details.get("bins").and_then(Value::as_u64).unwrap_or(instance.items.len() as u64);
            bound += instance.l1_bound();
        }
        let excess = if bound == 0 { 0.0 } else { (used as f64 - bound as f64) / bound as f64 };
        SetReport {
            metric: "excess".into(),
            value: excess,
            lower_is_better: true,
            score: crate::domain::mean_score(scores),
            invalid: scores.iter().filter(|s| s.invalid.is_some()).count(),
            figures: Vec::new(),
        }
    }

    fn data_files(&self) -> Vec<DataFile> {
        const OR: &str = "OR-Library binpack (J.E. Beasley; Falkenauer's u instances, 1996), verbatim copy \
                          from danielramraz/AI_Lab-hw1 @ 291868fc0f03; no licence declared";
        vec![
            DataFile { path: "bin_packing/orlib_binpack1.txt", source: OR },
            DataFile { path: "bin_packing/orlib_binpack2.txt", source: OR },
            DataFile { path: "bin_packing/orlib_binpack3.txt", source: OR },
            DataFile { path: "bin_packing/orlib_binpack4.txt", source: OR },
            DataFile {
                path: "bin_packing/funsearch_weibull5k.json",
                source: "FunSearch's Weibull 5k set (google-deepmind/funsearch @ cc53f274237d, \
                         bin_packing.ipynb, re-encoded as JSON); CC BY 4.0",
            },
        ]
    }

    fn baselines(&self) -> Vec<&'static str> {
        vec!["first fit", "best fit"]
    }

    fn baseline(&self, name: &str, task: &Task) -> Option<TaskScore> {
        let packer: super::Packer = match name {
            "first fit" => first_fit,
            "best fit" => best_fit,
            _ => return None,
        };
        let instance = instance_of(task).ok()?;
        let used = bins_used(&instance, &packer(&instance)).ok()?;
        Some(TaskScore {
            score: task_score(&instance, used),
            invalid: None,
            details: serde_json::json!({"bins": used, "l1_bound": instance.l1_bound()}),
        })
    }

    fn staging(&self) -> Staging {
        Staging { tasks: self.settings.staged_tasks, threshold: self.settings.staged_threshold }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_scores_go_through_the_trait() {
        let domain = BinPacking::open(&Value::Null).unwrap();
        let (train, validation) = domain.splits(1, 2).unwrap();
        assert_eq!((train.tasks.len(), validation.tasks.len()), (10, 6));
        // Both test families, interleaved, so the staged sample holds both.
        let capacities: Vec<u64> = train.tasks[..3].iter().map(|t| instance_of(t).unwrap().capacity).collect();
        assert_eq!(capacities, [100, 150, 100]);
        let weibull = BinPacking::open(&serde_json::json!({"families": ["weibull"]})).unwrap();
        assert!(weibull.splits(1, 2).unwrap().0.tasks.iter().all(|t| instance_of(t).unwrap().capacity == 100));
        assert!(BinPacking::open(&serde_json::json!({"families": []})).is_err());
        assert!(BinPacking::open(&serde_json::json!({"families": ["or", "or"]})).is_err());
        assert!(BinPacking::open(&serde_json::json!({"families": ["gaussian"]})).is_err());
        assert_eq!(train.tasks[0].id, "train/train_00");
        let task = &train.tasks[0];
        let best = domain.baseline("best fit", task).unwrap();
        let scores = [best.clone()];
        let report = domain.report(std::slice::from_ref(task), &scores);
        assert_eq!((report.metric.as_str(), report.lower_is_better), ("excess", true));
        assert!((report.score - best.score).abs() < 1e-12);
        assert!(BinPacking::open(&serde_json::json!({"test_sets": ["OR9"]})).is_err());
        assert!(BinPacking::open(&serde_json::json!({"surprise": 1})).is_err());
    }

    #[test]
    fn missing_data_gives_labelled_stand_ins_and_a_notice() {
        let domain = BinPacking::open(&Value::Null).unwrap();
        let sets = domain.test_sets(Path::new("/nonexistent")).unwrap();
        let names: Vec<&str> = sets.sets.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["OR1 (generated)", "OR2 (generated)", "OR3 (generated)", "OR4 (generated)", "Weibull 5k (generated)"]
        );
        assert!(sets.sets.iter().all(|s| s.generated));
        assert!(sets.notice.unwrap().contains("/nonexistent"));
        let or1 = &sets.sets[0].tasks[0];
        let instance = instance_of(or1).unwrap();
        assert!(instance.items.iter().all(|&s| (20..=100).contains(&s)) && instance.items.len() == 120);
    }
}
