//! The meta agent when the run holds a judgement domain (paper review, proof grading).
//!
//! Offline it retrains each judgement domain's lexical model from `/history` (`learn.rs`), after
//! mutating one of its learning settings with the probability those settings give. With an LLM it
//! asks for a better prompt and answer parsing instead (`prompting.rs`), falling back to training
//! when the answer is unusable. A bin-packing domain in the same run gets the program search the
//! meta agent runs for bin packing alone (`search.rs`), screening within half its usual fuel.

use crate::learn::{self, IMO_GRADING, LEARNING_FILE, PAPER_REVIEW, Settings};
use crate::meta;
use agent_sdk::history::History;
use agent_sdk::repo::Repo;
use agent_sdk::rng::Rng;
use agent_sdk::{AgentError, MetaReport, MetaRequest, llm, log};

/// The share of its usual screening fuel the program search gets in a run that also trains
/// judgement models.
const MIXED_SCREEN_SHARE: f64 = 0.5;

/// The judgement domains this agent can train.
pub const DOMAINS: [&str; 2] = [PAPER_REVIEW.name, IMO_GRADING.name];

/// Whether any of the run's domains (as `/history/tasks/` names them) is a judgement domain.
pub fn applies(history: &History) -> bool {
    history.domains().unwrap_or_default().iter().any(|d| DOMAINS.contains(&d.as_str()))
}

pub fn improve(
    request: &MetaRequest,
    repo: &Repo,
    history: &History,
    lineage: &[(String, Option<f64>)],
) -> Result<MetaReport, AgentError> {
    let domains = history.domains().unwrap_or_default();
    let has = |name: &str| domains.iter().any(|d| d == name);
    let credit = meta::credit_genes(lineage);
    let mut parts = Vec::new();
    let mut rationale = String::new();
    if llm::available() {
        match crate::prompting::improve(repo, history, &domains) {
            Ok((summary, answer)) => {
                parts.push(summary);
                rationale = answer;
            }
            Err(why) => log::warn(format!("LLM edit unusable, training instead: {why}")),
        }
    }
    if parts.is_empty() {
        let mut rng = Rng::derive(request.seed, "learn");
        let settings = Settings::own();
        if rng.chance(settings.self_mutation) {
            let genes = meta::genes(repo, LEARNING_FILE)?;
            parts.push(meta::render_change(&meta::mutate_one(repo, &genes, &credit, &mut rng)?));
        }
        let mut trained = Vec::new();
        if has(PAPER_REVIEW.name) {
            trained.push(learn::train(&PAPER_REVIEW, history, repo, &settings, &mut rng));
        }
        if has(IMO_GRADING.name) {
            trained.push(learn::train(&IMO_GRADING, history, repo, &settings, &mut rng));
        }
        for outcome in trained {
            match outcome {
                Ok(summary) => parts.push(summary),
                Err(why) => log::warn(&why),
            }
        }
        rationale = format!("logistic-regression steps from /history's training labels; settings {settings:?}");
    }
    if has("bin_packing") {
        // The search writes its own note and rationale; its summary joins this one.
        let searched = crate::search::improve_within(request, repo, history, lineage, MIXED_SCREEN_SHARE)?;
        parts.push(searched.summary);
        rationale = format!("{rationale}\n\nbin packing: {}", searched.rationale);
    }
    if parts.is_empty() {
        return Err(AgentError::Failed("nothing to learn from yet: /history holds no labelled training result".into()));
    }
    let summary = parts.join("; ");
    meta::append_note(repo, &format!("{summary} (seed {}, {} iterations left)", request.seed, request.iterations_left))
        .map_err(|e| AgentError::Failed(format!("cannot write NOTES.md: {e}")))?;
    log::info(&summary);
    Ok(MetaReport { summary, rationale })
}
