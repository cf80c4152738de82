//! Ensembles of a run's best task agents: each of the top k nodes (by validation score) answers
//! every test task, the answer most of them gave wins (ties go to the better-ranked node's), and
//! the winning answers are scored as one agent's would be. For judgement domains this is the
//! majority vote the original offers; where agents seldom agree (a packing), it falls back to the
//! best node's answer task by task.

use crate::archive::Archive;
use crate::evolution::NodeRecord;
use crate::sandbox::{CallInput, CallLimits, Fuel, Grants, LoadedComponent, Sandbox, TaskInput};
use hyperagent_domains::{Domain, SetReport, Task, TaskScore};
use std::sync::Arc;

/// Most agents an ensemble may hold.
pub const MAX_K: usize = 64;

/// The `k` nodes with the highest validation scores, best first (the earlier node on a tie, so the
/// first is the run's best node).
pub fn top_nodes(nodes: &[NodeRecord], k: usize) -> Vec<&NodeRecord> {
    let mut ranked: Vec<&NodeRecord> = nodes.iter().filter(|n| n.can_be_parent()).collect();
    ranked.sort_by(|a, b| b.score.unwrap_or(0.0).total_cmp(&a.score.unwrap_or(0.0)));
    ranked.truncate(k);
    ranked
}

/// The answer most agents gave (outputs compared after trimming surrounding whitespace); on a tie,
/// the one given by the best-ranked agent among the tied. `None` when no agent answered.
pub fn vote(answers: &[Option<String>]) -> Option<String> {
    let mut tally: Vec<(&str, usize, usize)> = Vec::new(); // (answer, votes, first agent)
    for (rank, answer) in answers.iter().enumerate() {
        let Some(answer) = answer.as_deref().map(str::trim) else { continue };
        match tally.iter_mut().find(|(a, _, _)| *a == answer) {
            Some(entry) => entry.1 += 1,
            None => tally.push((answer, 1, rank)),
        }
    }
    tally.iter().max_by(|x, y| x.1.cmp(&y.1).then(y.2.cmp(&x.2))).map(|(answer, _, _)| (*answer).to_owned())
}

/// Budgets of the ensemble's task calls (the run's).
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub fuel: u64,
    pub memory_mib: u64,
}

/// Every agent's answer to every task: `answers[agent][task]` (`None`: no `ok` answer).
pub async fn answers(
    sandbox: &Arc<Sandbox>,
    agents: &[Arc<LoadedComponent>],
    domain: &dyn Domain,
    tasks: &[Task],
    budget: Budget,
) -> Vec<Vec<Option<String>>> {
    // As the run's task calls: a deadline past what the fuel buys.
    let limits = CallLimits {
        fuel: Fuel(budget.fuel),
        memory_bytes: budget.memory_mib << 20,
        deadline: crate::sandbox::limits::deadline_past_fuel(budget.fuel),
        ..CallLimits::default()
    };
    let mut all = Vec::with_capacity(agents.len());
    for agent in agents {
        let mut outputs = Vec::with_capacity(tasks.len());
        for task in tasks {
            let input = CallInput::Task(TaskInput {
                domain: domain.name().into(),
                task_id: task.id.clone(),
                payload: task.payload.clone(),
            });
            let grants = Grants { seed: crate::evolution::evaluate::task_seed(&task.id), ..Grants::default() };
            let output = match sandbox.call(agent, &input, &limits, &grants).await {
                Ok(report) if report.outcome.is_ok() => report.output,
                _ => None,
            };
            outputs.push(output);
        }
        all.push(outputs);
    }
    all
}

/// Scores `answers` (one per task, `None`: no answer) as the domain scores one agent's.
pub async fn report(domain: &dyn Domain, tasks: &[Task], answers: &[Option<String>]) -> SetReport {
    let mut scores = Vec::with_capacity(tasks.len());
    for (task, answer) in tasks.iter().zip(answers) {
        scores.push(match answer {
            Some(answer) => domain.score(task, answer).await,
            None => TaskScore::invalid("no agent answered".to_owned()),
        });
    }
    domain.report(tasks, &scores)
}

/// Loads the components of `nodes` from the archive.
pub fn load(
    archive: &Archive,
    sandbox: &Sandbox,
    nodes: &[&NodeRecord],
) -> Result<Vec<Arc<LoadedComponent>>, crate::evolution::RunError> {
    nodes
        .iter()
        .map(|node| {
            let component = node.component.expect("top nodes have components");
            Ok(sandbox.load(&archive.get_blob(&component)?)?)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(text: &str) -> Option<String> {
        Some(text.to_owned())
    }

    #[test]
    fn the_majority_wins_and_ties_go_to_the_better_ranked_agent() {
        assert_eq!(vote(&[some("b"), some("a"), some("a")]), some("a"));
        assert_eq!(vote(&[some("b"), some("a")]), some("b"), "a tie: the best-ranked agent's");
        assert_eq!(vote(&[None, some("a"), some("b"), some("b ")]), some("b"), "compared trimmed");
        assert_eq!(vote(&[None, some("a"), some("b")]), some("a"), "the best answering agent breaks the tie");
        assert_eq!(vote(&[None, None]), None);
    }
}
