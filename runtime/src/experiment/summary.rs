//! An experiment's summary: per method, domain and test set, the best node's test value of every
//! seed's run (the best node is chosen on validation by the run itself), their median with a 95%
//! bootstrap interval, and the Wilcoxon signed-rank test against the reference method over the
//! seeds both have.

use super::plan::Plan;
use super::stats::{Wilcoxon, bootstrap_median_interval, median, wilcoxon_signed_rank};
use crate::evolution::log::Event;
use serde::Serialize;
use std::collections::BTreeMap;

/// The seed of the bootstrap: a summary is the same bytes each time it is written.
const BOOTSTRAP_SEED: u64 = 0x5eed;
const LEVEL: f64 = 0.95;

/// One row: a method on one test set.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub method: String,
    pub domain: String,
    pub set: String,
    pub metric: String,
    pub lower_is_better: bool,
    /// (seed, value) for every seed whose run has a tested best node.
    pub values: Vec<(u64, f64)>,
    pub median: Option<f64>,
    /// The 95% percentile-bootstrap interval of the median.
    pub interval: Option<(f64, f64)>,
    /// Against the reference, paired by seed (none for the reference itself).
    pub versus_reference: Option<Comparison>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub reference: String,
    /// Seeds where this method did better than the reference, worse, and the same.
    pub better: usize,
    pub worse: usize,
    pub same: usize,
    /// The test on (this − reference) per seed; `None` when every pair is equal.
    pub wilcoxon: Option<Wilcoxon>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub experiment: String,
    pub seeds: Vec<u64>,
    pub reference: String,
    pub resamples: usize,
    pub level: f64,
    /// Runs without a tested best node (unfinished or failed), by run id.
    pub missing: Vec<String>,
    pub rows: Vec<Row>,
}

/// What one run's best node scored on each (domain, set): (metric, lower is better, value).
pub type RunResults = BTreeMap<(String, String), (String, bool, f64)>;

/// The best node's test results in a run log (present once the run has finished).
pub fn run_results(events: &[Event]) -> Option<RunResults> {
    test_results(events, "best")
}

/// The test results a run log holds for the node tested as `role` (`best`, `initial`). A set's
/// further figures (proof grading's points error) count as sets of their own, named
/// `<set> · <metric>` as the run's test table prints them.
pub fn test_results(events: &[Event], wanted: &str) -> Option<RunResults> {
    events.iter().find_map(|event| match event {
        Event::Test { role, sets, .. } if role == wanted => Some(
            sets.iter()
                .flat_map(|r| {
                    let main = (
                        (r.domain.clone(), r.set.clone()),
                        (r.report.metric.clone(), r.report.lower_is_better, r.report.value),
                    );
                    let further = r.report.figures.iter().map(|f| {
                        (
                            (r.domain.clone(), format!("{} · {}", r.set, f.metric)),
                            (f.metric.clone(), f.lower_is_better, f.value),
                        )
                    });
                    std::iter::once(main).chain(further)
                })
                .collect(),
        ),
        _ => None,
    })
}

/// The summary of `plan` from each cell's results (`None`: the run has none yet), keyed by run id.
pub fn summarise(plan: &Plan, results: &BTreeMap<String, Option<RunResults>>) -> Summary {
    let cells = plan.cells();
    let missing =
        cells.iter().filter(|c| results.get(&c.run_id).is_none_or(Option::is_none)).map(|c| c.run_id.clone()).collect();
    // Every (domain, set) any run reports, with its metric.
    let mut sets: BTreeMap<(String, String), (String, bool)> = BTreeMap::new();
    for run in results.values().flatten() {
        for (key, (metric, lower, _)) in run {
            sets.entry(key.clone()).or_insert((metric.clone(), *lower));
        }
    }
    let values_of = |method: &str, key: &(String, String)| -> Vec<(u64, f64)> {
        cells
            .iter()
            .filter(|c| c.method == method)
            .filter_map(|c| Some((c.seed, results.get(&c.run_id)?.as_ref()?.get(key)?.2)))
            .collect()
    };
    let mut rows = Vec::new();
    for (key, (metric, lower_is_better)) in &sets {
        let reference = values_of(&plan.reference, key);
        for method in &plan.methods {
            let values = values_of(&method.name, key);
            let plain: Vec<f64> = values.iter().map(|(_, v)| *v).collect();
            let versus_reference = (method.name != plan.reference)
                .then(|| compare(&values, &reference, &plan.reference, *lower_is_better));
            rows.push(Row {
                method: method.name.clone(),
                domain: key.0.clone(),
                set: key.1.clone(),
                metric: metric.clone(),
                lower_is_better: *lower_is_better,
                median: median(&plain),
                interval: bootstrap_median_interval(&plain, plan.resamples, LEVEL, BOOTSTRAP_SEED),
                values,
                versus_reference,
            });
        }
    }
    Summary {
        experiment: plan.name.clone(),
        seeds: plan.seeds.clone(),
        reference: plan.reference.clone(),
        resamples: plan.resamples,
        level: LEVEL,
        missing,
        rows,
    }
}

/// This method against the reference on the seeds both have.
fn compare(values: &[(u64, f64)], reference: &[(u64, f64)], name: &str, lower_is_better: bool) -> Comparison {
    let differences: Vec<f64> =
        values.iter().filter_map(|(seed, v)| reference.iter().find(|(s, _)| s == seed).map(|(_, r)| v - r)).collect();
    let gain = |d: f64| if lower_is_better { -d } else { d };
    Comparison {
        reference: name.to_owned(),
        better: differences.iter().filter(|d| gain(**d) > 0.0).count(),
        worse: differences.iter().filter(|d| gain(**d) < 0.0).count(),
        same: differences.iter().filter(|d| **d == 0.0).count(),
        wilcoxon: wilcoxon_signed_rank(&differences),
    }
}

/// A value in its metric: in the unit a metric names in closing parentheses, e.g. `peak height
/// (m)`; as a percentage otherwise (accuracies, excesses, fitnesses in [0, 1]).
pub fn shown(metric: &str, value: Option<f64>) -> String {
    match (metric.strip_suffix(')').and_then(|m| m.rsplit_once('(')), value) {
        (_, None) => "-".to_owned(),
        (Some((_, unit)), Some(v)) => format!("{v:.3} {unit}"),
        (None, Some(v)) => format!("{:.2}%", 100.0 * v),
    }
}

impl Summary {
    /// The summary as a Markdown table (also what the terminal shows).
    pub fn markdown(&self) -> String {
        let mut text = format!(
            "# Experiment {}\n\nSeeds {:?}. Per method: the median over seeds of the best node's test value (the best \
             node chosen on validation), its {:.0}% bootstrap interval ({} resamples), the per-seed values, and \
             against `{}` the seeds better/worse/same and the exact two-sided Wilcoxon signed-rank p-value (zero \
             differences left out, ties at mid-ranks).\n",
            self.experiment,
            self.seeds,
            self.level * 100.0,
            self.resamples,
            self.reference
        );
        let mut current = None;
        for row in &self.rows {
            let key = (&row.domain, &row.set);
            if current != Some(key) {
                current = Some(key);
                let better = if row.lower_is_better { "lower" } else { "higher" };
                text.push_str(&format!(
                    "\n## {} · {} ({}, {better} is better)\n\n| method | median | 95% interval | per seed | vs {} \
                     (better/worse/same) | p |\n|---|---:|---|---|---|---:|\n",
                    row.domain, row.set, row.metric, self.reference
                ));
            }
            let figure = |value: Option<f64>| shown(&row.metric, value);
            let interval =
                row.interval.map_or("-".into(), |(lo, hi)| format!("{} – {}", figure(Some(lo)), figure(Some(hi))));
            let seeds: Vec<String> = row.values.iter().map(|(s, v)| format!("{s}: {}", figure(Some(*v)))).collect();
            let (versus, p) = match &row.versus_reference {
                None => ("(reference)".to_owned(), "".to_owned()),
                Some(c) => (
                    format!("{}/{}/{}", c.better, c.worse, c.same),
                    c.wilcoxon.as_ref().map_or("-".into(), |w| format!("{:.3}", w.p_value)),
                ),
            };
            text.push_str(&format!(
                "| {} | {} | {interval} | {} | {versus} | {p} |\n",
                row.method,
                figure(row.median),
                seeds.join(", ")
            ));
        }
        if !self.missing.is_empty() {
            text.push_str(&format!("\nRuns without a tested best node yet: {}.\n", self.missing.join(", ")));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn results(values: &[(&str, f64)]) -> Option<RunResults> {
        Some(
            values
                .iter()
                .map(|(set, v)| (("packing".to_owned(), (*set).to_owned()), ("excess".to_owned(), true, *v)))
                .collect(),
        )
    }

    #[test]
    fn rows_pair_seeds_with_the_reference_and_respect_the_metric_direction() {
        let plan = Plan::parse(
            "e",
            "seeds = [0, 1, 2]\n[[method]]\nname = \"full\"\n[[method]]\nname = \"fixed\"\n",
            Path::new("."),
        )
        .unwrap();
        let mut runs = BTreeMap::new();
        runs.insert("e-full-s0".to_owned(), results(&[("OR1", 0.03)]));
        runs.insert("e-full-s1".to_owned(), results(&[("OR1", 0.02)]));
        runs.insert("e-full-s2".to_owned(), results(&[("OR1", 0.05)]));
        runs.insert("e-fixed-s0".to_owned(), results(&[("OR1", 0.04)]));
        runs.insert("e-fixed-s1".to_owned(), results(&[("OR1", 0.02)]));
        runs.insert("e-fixed-s2".to_owned(), None);
        let summary = summarise(&plan, &runs);
        assert_eq!(summary.missing, ["e-fixed-s2"]);
        let full = &summary.rows[0];
        assert_eq!((full.method.as_str(), full.median), ("full", Some(0.03)));
        assert!(full.versus_reference.is_none(), "the first method is the reference");
        let fixed = &summary.rows[1];
        assert_eq!(fixed.values, [(0, 0.04), (1, 0.02)]);
        assert_eq!(fixed.median, Some(0.03));
        let versus = fixed.versus_reference.as_ref().unwrap();
        // Lower excess is better: 0.04 against 0.03 is worse; seed 2 has no pair.
        assert_eq!((versus.better, versus.worse, versus.same), (0, 1, 1));
        assert_eq!(versus.wilcoxon.as_ref().map(|w| (w.n, w.zeros)), Some((1, 1)));
        let markdown = summary.markdown();
        assert!(markdown.contains("| fixed | 3.00% |") && markdown.contains("0: 4.00%, 1: 2.00%"), "{markdown}");
        assert!(markdown.contains("lower is better") && markdown.contains("e-fixed-s2"), "{markdown}");
    }

    #[test]
    fn a_sets_further_figures_are_summarised_as_sets_of_their_own() {
        use crate::evolution::log::TestResult;
        use hyperagent_domains::{Figure, SetReport};
        let mae = Figure { metric: "points MAE".into(), value: 0.2, lower_is_better: true };
        let report = SetReport {
            metric: "accuracy".into(),
            value: 0.64,
            lower_is_better: false,
            score: 0.64,
            invalid: 0,
            figures: vec![mae],
        };
        let test = TestResult { domain: "imo_grading".into(), set: "test".into(), generated: false, report };
        let node = crate::hash::ContentHash::of(b"node");
        let events = [Event::Test { node, role: "best".into(), sets: vec![test] }];
        let found = run_results(&events).unwrap();
        let key = |set: &str| ("imo_grading".to_owned(), set.to_owned());
        assert_eq!(found[&key("test")], ("accuracy".to_owned(), false, 0.64));
        assert_eq!(found[&key("test · points MAE")], ("points MAE".to_owned(), true, 0.2));
        assert_eq!(found.len(), 2);
        assert!(test_results(&events, "initial").is_none());
    }

    #[test]
    fn values_are_shown_in_the_unit_their_metric_names() {
        assert_eq!(shown("peak height (m)", Some(0.37088)), "0.371 m");
        assert_eq!(shown("excess", Some(0.0398)), "3.98%");
        assert_eq!(shown("accuracy", None), "-");
    }
}
