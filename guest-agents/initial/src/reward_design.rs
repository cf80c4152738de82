//! The meta agent when the run holds robot reward design: it mutates the weights of its walking
//! reward (`task/robotics_weights.rs`) with the gene helpers of `meta.rs`, credited by the score
//! changes of earlier mutations, and steered by its parent's training results in `/history`: a
//! parent whose gaits walked too slowly makes speed tracking likelier to be raised, one whose
//! gaits fell makes the tilt penalty likelier to be raised. A bin-packing domain in the same run
//! gets the program search as well.

use crate::meta;
use agent_sdk::history::History;
use agent_sdk::repo::Repo;
use agent_sdk::rng::Rng;
use agent_sdk::{AgentError, MetaReport, MetaRequest, log};

pub const DOMAIN: &str = "robotics";
const WEIGHTS_FILE: &str = "src/task/robotics_weights.rs";
/// This file: its settings below are genes too, mutated in the child (they take effect when the
/// child makes children of its own).
const OWN_FILE: &str = "src/reward_design.rs";

/// Probability of a second weight changing in the same child.
pub const SECOND_MUTATION: f64 = 0.3; // evolve 0.0..1.0
/// How strongly a symptom in the parent's training results attracts the mutation of its remedy.
pub const SYMPTOM_CREDIT: f64 = 0.05; // evolve 0.0..0.5
/// Speed shortfall (m/s, commanded minus walked, averaged) that counts as walking too slowly.
pub const SLOW_BY: f64 = 0.1; // evolve 0.02..0.4
/// Probability of also mutating one of these settings.
pub const SELF_MUTATION: f64 = 0.2; // evolve 0.0..1.0

/// Whether the run holds robot reward design.
pub fn applies(history: &History) -> bool {
    history.domains().unwrap_or_default().iter().any(|d| d == DOMAIN)
}

/// What the parent's training results say: tasks, mean fitness, mean shortfall of speed, falls.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Account {
    pub tasks: usize,
    pub fitness: f64,
    pub shortfall: f64,
    pub falls: usize,
}

pub fn parent_account(history: &History) -> Account {
    let Some(parent) = history.lineage_ids().ok().and_then(|ids| ids.last().cloned()) else {
        return Account::default();
    };
    let results = history.training_results(&parent, DOMAIN).unwrap_or_default();
    let mut account = Account::default();
    for result in &results {
        let feedback = &result.feedback;
        let (Some(commanded), Some(walked)) =
            (feedback["forward_speed"].as_f64(), feedback["fitness"]["mean_forward_speed"].as_f64())
        else {
            continue;
        };
        account.tasks += 1;
        account.fitness += result.score.unwrap_or(0.0);
        account.shortfall += commanded - walked;
        account.falls += usize::from(feedback["fitness"]["fell"].as_bool() == Some(true));
    }
    if account.tasks > 0 {
        account.fitness /= account.tasks as f64;
        account.shortfall /= account.tasks as f64;
    }
    account
}

/// The credit of the remedies of the parent's symptoms, in `meta::credit_genes`' form.
fn symptom_credit(account: &Account) -> Vec<(String, f64, f64)> {
    let mut credit = Vec::new();
    if account.tasks > 0 && account.shortfall > SLOW_BY {
        credit.push(("TRACKING".to_owned(), SYMPTOM_CREDIT, 1.0));
    }
    if account.tasks > 0 && account.falls * 2 >= account.tasks {
        credit.push(("ORIENTATION".to_owned(), SYMPTOM_CREDIT, 1.0));
    }
    credit
}

pub fn improve(
    request: &MetaRequest,
    repo: &Repo,
    history: &History,
    lineage: &[(String, Option<f64>)],
) -> Result<MetaReport, AgentError> {
    let mut rng = Rng::derive(request.seed, "reward-design");
    let account = parent_account(history);
    let mut credit = meta::credit_genes(lineage);
    // A gene with a lineage record keeps it; a symptom adds to it.
    for (name, extra, direction) in symptom_credit(&account) {
        match credit.iter_mut().find(|(n, _, _)| *n == name) {
            Some(entry) => entry.1 = entry.1.max(0.0) + extra,
            None => credit.push((name, extra, direction)),
        }
    }
    let mut parts =
        vec![meta::render_change(&meta::mutate_one(repo, &meta::genes(repo, WEIGHTS_FILE)?, &credit, &mut rng)?)];
    if rng.chance(SECOND_MUTATION) {
        // Read again: the first change rewrote the file.
        let genes = meta::genes(repo, WEIGHTS_FILE)?;
        parts.push(meta::render_change(&meta::mutate_one(repo, &genes, &credit, &mut rng)?));
    }
    if rng.chance(SELF_MUTATION) {
        let genes = meta::genes(repo, OWN_FILE)?;
        parts.push(meta::render_change(&meta::mutate_one(repo, &genes, &credit, &mut rng)?));
    }
    let mut rationale = format!(
        "parent's training: {} tasks, fitness {:.3}, walked {:.3} m/s slower than commanded on average, {} fell; \
         weights credited by the lineage's score changes",
        account.tasks, account.fitness, account.shortfall, account.falls
    );
    if history.domains().unwrap_or_default().iter().any(|d| d == "bin_packing") {
        let searched = crate::search::improve_within(request, repo, history, lineage, 0.5)?;
        parts.push(searched.summary);
        rationale = format!("{rationale}\n\nbin packing: {}", searched.rationale);
    }
    let summary = parts.join("; ");
    meta::append_note(repo, &format!("{summary} ({rationale})"))
        .map_err(|e| AgentError::Failed(format!("cannot write NOTES.md: {e}")))?;
    log::info(&summary);
    Ok(MetaReport { summary, rationale })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symptoms_point_at_their_remedies() {
        let slow = Account { tasks: 4, fitness: 0.5, shortfall: 0.3, falls: 0 };
        assert_eq!(symptom_credit(&slow), vec![("TRACKING".to_owned(), SYMPTOM_CREDIT, 1.0)]);
        let falling = Account { tasks: 4, fitness: 0.5, shortfall: 0.0, falls: 2 };
        assert_eq!(symptom_credit(&falling)[0].0, "ORIENTATION");
        assert!(symptom_credit(&Account::default()).is_empty());
    }
}
