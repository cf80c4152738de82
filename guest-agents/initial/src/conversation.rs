//! The LLM meta agent: a model in a loop of tool calls over this repository (list, view, edit,
//! check the build, try a training task, finish), asked to improve any part of it, itself included. A model or server that does not call
//! tools can answer with search/replace blocks instead, which are applied as before. A
//! conversation that changes nothing is an error: the meta agent then mutates instead.

use crate::meta::{NOTES, TASK_FILE, append_note};
use agent_sdk::MetaReport;
use agent_sdk::history::History;
use agent_sdk::repo::Repo;
use agent_sdk::tool_loop::{self, Ending, LoopSettings};

/// Answers (turns) one conversation may take; the host's per-call allowance may end it sooner.
pub const MAX_TURNS: u32 = 40;
/// Tokens asked for per answer.
pub const MAX_OUTPUT_TOKENS: u32 = 2048;
/// Bytes of conversation kept; older tool results are dropped beyond it.
pub const TRANSCRIPT_BYTES: usize = 96 * 1024;

/// Training task ids named to the model for `try_task`.
const TASK_IDS_SHOWN: usize = 4;

const SYSTEM: &str = "You are a careful Rust engineer improving a self-improving agent's own source code. \
     Work with the tools: list and view files, edit them with str_replace (copy old_str exactly), create or insert, \
     check_build to compile, try_task to score the task agent on a training task, then call finish with a \
     one-line summary. Make one focused change that can compile.";

/// A line naming a few training tasks per domain, for `try_task`.
fn trial_hint(history: &History) -> String {
    let domains = history.domains().unwrap_or_default();
    let named: Vec<String> = domains
        .iter()
        .filter_map(|domain| {
            let ids: Vec<String> =
                history.training_tasks(domain).ok()?.into_iter().take(TASK_IDS_SHOWN).map(|(id, _)| id).collect();
            (!ids.is_empty()).then(|| format!("{domain}: {}", ids.join(", ")))
        })
        .collect();
    if named.is_empty() { String::new() } else { format!("Training tasks for try_task: {}.\n", named.join("; ")) }
}

/// What the conversation is told about the task agent: what it does, the file that holds it, and
/// what must stay in that file.
struct Focus {
    description: String,
    file: &'static str,
    keep: String,
}

/// The task agents' modules the conversation is pointed at, by domain.
const CODING_FILE: &str = "src/task/coding.rs";
const ROBOTICS_FILE: &str = "src/task/robotics_weights.rs";
const PAPER_REVIEW_FILE: &str = "src/task/paper_review.rs";
const IMO_GRADING_FILE: &str = "src/task/imo_grading.rs";
/// The task entry point of the modules that have one.
const SOLVE: &str = "`pub fn solve(request: &TaskRequest) -> Result<String, AgentError>`";

/// The focus for a run over `domains` (the first one this agent knows, in this order).
fn focus(domains: &[String]) -> Focus {
    let has = |name: &str| domains.iter().any(|d| d == name);
    if has("coding") {
        return Focus {
            description: format!(
                "its task agent solves Rust programming exercises with one LLM call each ({CODING_FILE} holds the \
                 prompt and how the answer becomes the solution's src/lib.rs); a solution scores 1 when every \
                 hidden test of the exercise passes, else 0"
            ),
            file: CODING_FILE,
            keep: SOLVE.to_owned(),
        };
    }
    if has("robotics") {
        return Focus {
            description: format!(
                "its task agent writes the reward function a simulated Unitree Go2 quadruped is trained with; \
                 without an LLM the reward is a sum of named terms weighted by the constants of {ROBOTICS_FILE} \
                 (src/task/robotics.rs writes them into the reward's source). The host trains a gait with the \
                 reward and scores how well the robot then walks at a commanded speed (0..1, higher is better); \
                 the test task is a jump"
            ),
            file: ROBOTICS_FILE,
            keep: "every `pub const` (src/task/robotics.rs reads them all)".to_owned(),
        };
    }
    if has("paper_review") {
        return Focus {
            description: format!(
                "its task agent predicts whether an ICLR paper was accepted from its title and abstract \
                 ({PAPER_REVIEW_FILE}, with an offline model in src/task/paper_review_model.rs); the score is \
                 the accuracy of its accept/reject answers"
            ),
            file: PAPER_REVIEW_FILE,
            keep: SOLVE.to_owned(),
        };
    }
    if has("imo_grading") {
        return Focus {
            description: format!(
                "its task agent grades olympiad proofs as Correct, Almost, Partial or Incorrect \
                 ({IMO_GRADING_FILE}, with an offline model in src/task/imo_grading_model.rs); the score is the \
                 accuracy of its grades"
            ),
            file: IMO_GRADING_FILE,
            keep: SOLVE.to_owned(),
        };
    }
    Focus {
        description: format!(
            "its task agent packs items into bins online (each arriving item goes into the open bin with the \
             highest priority, or a new bin if none fits; {TASK_FILE} holds the priority function); scores are 1 \
             minus the excess of bins over the L1 bound (higher is better)"
        ),
        file: TASK_FILE,
        keep: "`pub fn priority(item: f64, remaining: f64, capacity: f64, index: f64, bins: f64) -> f64`".to_owned(),
    }
}

pub fn improve(repo: &Repo, history: &History, lineage: &[(String, Option<f64>)]) -> Result<MetaReport, String> {
    let Focus { description, file, keep } = focus(&history.domains().unwrap_or_default());
    let current = repo.read(file).map_err(|e| e.to_string())?;
    let notes = repo.read(NOTES).unwrap_or_default();
    let trials = trial_hint(history);
    let ancestors: String = lineage
        .iter()
        .map(|(summary, score)| format!("- score {}: {summary}\n", score.map_or("-".into(), |s| format!("{s:.5}"))))
        .collect();
    let task = format!(
        "This repository is a hyperagent: {description}. Its meta agent (src/meta.rs, src/search.rs, \
         src/conversation.rs and the rest) makes its children. Improve any part of this repository, including \
         yourself.\n\n\
         Ancestors, oldest first (score: change):\n{ancestors}\n{trials}\
         Notes left by earlier attempts:\n{notes}\n\
         Current {file}:\n```rust\n{current}```\n\n\
         Keep {keep} in {file}. If you cannot call tools, answer with search/replace blocks instead:\n\
         <<<<<<< SEARCH {file}\n<exact lines to replace>\n=======\n<new lines>\n>>>>>>> REPLACE\n\
         and one line starting with `Summary:` saying what you changed and why."
    );
    let settings = LoopSettings {
        max_turns: MAX_TURNS,
        max_output_tokens: MAX_OUTPUT_TOKENS,
        transcript_bytes: TRANSCRIPT_BYTES,
        temperature_milli: Some(0),
    };
    let outcome = tool_loop::run(repo, SYSTEM, &task, &settings);
    let (files, summary) = if !outcome.written.is_empty() {
        (outcome.written.clone(), outcome.summary.clone())
    } else if outcome.ending == Ending::Answered {
        match apply_blocks(repo, &outcome.final_text) {
            Ok(files) => (files, summary_line(&outcome.final_text)),
            Err(why) => {
                append_note(repo, &format!("LLM edit rejected ({why}); fell back to mutation"))
                    .map_err(|e| e.to_string())?;
                return Err(why);
            }
        }
    } else {
        let why = match &outcome.ending {
            Ending::LlmFailed(why) => why.clone(),
            other => format!("the conversation changed nothing ({other:?} after {} turn(s))", outcome.turns),
        };
        return Err(why);
    };
    let line = format!("LLM edit of {}: {summary}", files.join(", "));
    append_note(repo, &line).map_err(|e| e.to_string())?;
    Ok(MetaReport {
        summary: line,
        rationale: format!(
            "{} turn(s), {} tool call(s), ended {:?}; last answer: {}",
            outcome.turns,
            outcome.tool_calls,
            outcome.ending,
            outcome.final_text.chars().take(1500).collect::<String>()
        ),
    })
}

/// The `Summary:` line of an answer, or a placeholder.
fn summary_line(answer: &str) -> String {
    answer
        .lines()
        .find_map(|l| l.trim().strip_prefix("Summary:"))
        .map(|s| s.trim().chars().take(200).collect::<String>())
        .unwrap_or_else(|| "no summary given".into())
}

/// Applies the search/replace blocks of an answer. They are checked in memory first: a rejected
/// answer leaves the repository untouched, so the mutation fallback starts from the parent's source.
fn apply_blocks(repo: &Repo, answer: &str) -> Result<Vec<String>, String> {
    let edits = agent_sdk::edits::parse(answer)?;
    if edits.is_empty() {
        return Err("the answer holds no edit block and called no tool".to_owned());
    }
    let files = agent_sdk::edits::preview(repo, &edits)?;
    let task = files.iter().find(|(path, _)| path == TASK_FILE).map(|(_, text)| text.as_str());
    if task.is_some_and(|text| !text.contains("pub fn priority(")) {
        return Err(format!("the edit removed `pub fn priority` from {TASK_FILE}"));
    }
    agent_sdk::edits::write(repo, &files)?;
    Ok(files.into_iter().map(|(path, _)| path).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_focus_follows_the_runs_domains() {
        let of = |names: &[&str]| focus(&names.iter().map(|n| n.to_string()).collect::<Vec<_>>());
        assert_eq!(of(&["bin_packing"]).file, TASK_FILE);
        assert_eq!(of(&["robotics"]).file, ROBOTICS_FILE);
        assert!(of(&["robotics"]).description.contains("quadruped"));
        assert_eq!(of(&["imo_grading", "paper_review"]).file, PAPER_REVIEW_FILE);
        assert_eq!(of(&["imo_grading"]).file, IMO_GRADING_FILE);
        assert_eq!(of(&["coding", "robotics"]).file, CODING_FILE);
        assert_eq!(of(&[]).file, TASK_FILE);
    }
}
