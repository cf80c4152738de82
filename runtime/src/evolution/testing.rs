//! The test phase: the domains' baselines on their test sets, then the best node and the initial
//! one, each once and logged.

use super::evaluate::{self, TaskSettings};
use super::log::{Event, TestResult};
use super::{Evolution, Progress, RunError};
use crate::hash::ContentHash;
use hyperagent_domains::{Domain, Split};

impl Evolution {
    /// Evaluates the initial and the best node on the test sets (once each; logged).
    pub(super) async fn test_phase(&mut self, progress: &(dyn Fn(Progress) + Sync)) -> Result<(), RunError> {
        self.test_baselines()?;
        let mut targets = vec![("best", self.best().map(|b| b.id))];
        // Test calls get no LLM: the test split measures the task agent as archived, and a replay
        // of the run must not depend on answers it never recorded.
        if self.initial().map(|n| n.id) != targets[0].1 {
            targets.push(("initial", self.initial().map(|n| n.id)));
        }
        for (role, node) in targets {
            let Some(node) = node else { continue };
            let already = self.tests.iter().any(|e| matches!(e, Event::Test { node: n, .. } if *n == node));
            if already {
                continue;
            }
            progress(Progress::Testing { node });
            let results = self.test_node(&node).await?;
            let event = Event::Test { node, role: role.into(), sets: results };
            self.append(&event)?;
            self.tests.push(event);
        }
        Ok(())
    }

    /// The domains' host baselines on the test sets, once, so that reports need not recompute them.
    fn test_baselines(&mut self) -> Result<(), RunError> {
        for (run, sets) in self.domains.clone().iter().zip(self.test_sets.clone()) {
            let domain = &run.domain;
            for baseline in domain.baselines() {
                let logged = self.tests.iter().any(|e| {
                    matches!(e, Event::Baseline { domain: d, baseline: b, .. } if d == domain.name() && b == baseline)
                });
                if logged {
                    continue;
                }
                let results = sets
                    .sets
                    .iter()
                    .map(|set| {
                        let scores: Vec<_> = set
                            .tasks
                            .iter()
                            .map(|t| {
                                domain
                                    .baseline(baseline, t)
                                    .unwrap_or_else(|| hyperagent_domains::TaskScore::invalid("no baseline"))
                            })
                            .collect();
                        test_result(domain.as_ref(), set, &scores)
                    })
                    .collect();
                let event = Event::Baseline { domain: domain.name().into(), baseline: baseline.into(), sets: results };
                self.append(&event)?;
                self.tests.push(event);
            }
        }
        Ok(())
    }

    /// A node's results on every domain's test sets.
    pub async fn test_node(&self, node: &ContentHash) -> Result<Vec<TestResult>, RunError> {
        let component = self
            .archive
            .get_node(node)?
            .component
            .ok_or_else(|| RunError::Invalid("the node has no component".into()))?;
        let loaded = self.sandbox.load(&self.archive.get_blob(&component)?)?;
        let parallelism = std::thread::available_parallelism().map_or(2, |n| n.get());
        let settings =
            TaskSettings { fuel: self.config.task_fuel, memory_mib: self.config.memory_mib, parallelism, llm: None };
        let mut results = Vec::new();
        for (run, sets) in self.domains.iter().zip(&self.test_sets) {
            for set in &sets.sets {
                let records =
                    evaluate::run_set(&self.sandbox, &loaded, &run.domain, &set.tasks, &settings, false).await;
                let scores: Vec<_> = records.iter().map(evaluate::TaskRecord::task_score).collect();
                results.push(test_result(run.domain.as_ref(), set, &scores));
            }
        }
        Ok(results)
    }
}

/// A test set's result from its tasks' scores, in the domain's terms.
fn test_result(domain: &dyn Domain, set: &Split, scores: &[hyperagent_domains::TaskScore]) -> TestResult {
    TestResult {
        domain: domain.name().to_owned(),
        set: set.name.clone(),
        generated: set.generated,
        report: domain.report(&set.tasks, scores),
    }
}
