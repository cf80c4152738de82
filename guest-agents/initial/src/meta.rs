//! The meta agent: makes a child by rewriting one evolvable constant of `src/priority.rs`.
//!
//! Its own settings are the constants below; they are source like any other, so a meta agent
//! may rewrite them as well.

use agent_sdk::repo::Repo;
use agent_sdk::rng::Rng;
use agent_sdk::{AgentError, MetaReport, MetaRequest, log};

/// Relative size of one mutation step.
pub const STEP: f64 = 0.25;
/// Probability of replacing a constant with a fresh value instead of nudging it.
pub const RESET_PROBABILITY: f64 = 0.1;

const TARGET: &str = "src/priority.rs";
const NOTES: &str = "NOTES.md";

pub fn improve(request: &MetaRequest) -> Result<MetaReport, AgentError> {
    let repo = Repo::open(&request.repo_dir);
    let source = repo.read(TARGET).map_err(|e| AgentError::Failed(format!("cannot read {TARGET}: {e}")))?;
    let mut rng = Rng::derive(request.seed, "meta");
    let evolvable: Vec<usize> = source
        .lines()
        .enumerate()
        .filter(|(_, line)| line.trim_end().ends_with("// evolve"))
        .map(|(index, _)| index)
        .collect();
    let Some(&line_index) = rng.pick(&evolvable) else {
        return Err(AgentError::Failed(format!("{TARGET} has no line marked `// evolve`")));
    };
    let mut lines: Vec<String> = source.lines().map(str::to_owned).collect();
    let line = &lines[line_index];
    let (head, tail) =
        line.split_once('=').ok_or_else(|| AgentError::Failed(format!("line {} has no `=`", line_index + 1)))?;
    let value_text = tail.split(';').next().unwrap_or("").trim();
    let old: f64 = value_text.parse().map_err(|_| AgentError::Failed(format!("`{value_text}` is not a number")))?;
    let new = if rng.chance(RESET_PROBABILITY) {
        rng.unit() * 2.0 - 0.5
    } else {
        let scale = if old.abs() > 1e-9 { old.abs() } else { 0.1 };
        old + (rng.unit() * 2.0 - 1.0) * STEP * scale
    };
    let name = head.trim().trim_start_matches("pub const").trim().split(':').next().unwrap_or("?").to_owned();
    lines[line_index] = format!("{head}= {new:?}; // evolve");
    repo.write(TARGET, &(lines.join("\n") + "\n"))
        .map_err(|e| AgentError::Failed(format!("cannot write {TARGET}: {e}")))?;
    let summary = format!("{name}: {old:?} -> {new:?}");
    let mut notes = repo.read(NOTES).unwrap_or_default();
    notes.push_str(&format!("- {summary} (seed {}, {} iterations left)\n", request.seed, request.iterations_left));
    repo.write(NOTES, &notes).map_err(|e| AgentError::Failed(format!("cannot write {NOTES}: {e}")))?;
    log::info(&summary);
    Ok(MetaReport { summary, rationale: format!("random step of relative size {STEP} on one evolvable constant") })
}
