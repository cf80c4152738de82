//! The LLM path of the judgement meta agent: it shows the LLM one judgement domain's task module
//! (its prompt and the code that reads a label from the answer) with the parent's training
//! failures (answer, why it was refused, the expected label), and applies the search/replace edits
//! it proposes to that module.

use agent_sdk::edits;
use agent_sdk::history::History;
use agent_sdk::llm;
use agent_sdk::repo::Repo;

/// Failures quoted in the prompt, and how much of each answer.
const MAX_FAILURES: usize = 8;
const MAX_QUOTED_CHARS: usize = 300;

/// The judgement domain the parent did worst on, with its failures as prompt lines.
fn worst_domain(history: &History, domains: &[String]) -> Option<(String, f64, Vec<String>)> {
    let parent = history.lineage_ids().ok()?.last()?.clone();
    let mut worst: Option<(String, f64, Vec<String>)> = None;
    for domain in domains.iter().filter(|d| crate::judging::DOMAINS.contains(&d.as_str())) {
        let results = history.training_results(&parent, domain).unwrap_or_default();
        let accuracy = results.iter().filter_map(|r| r.score).sum::<f64>() / results.len().max(1) as f64;
        let failures: Vec<String> = results
            .iter()
            .filter(|r| r.score.unwrap_or(0.0) < 1.0)
            .take(MAX_FAILURES)
            .map(|r| {
                let cut = |s: &str| s.chars().take(MAX_QUOTED_CHARS).collect::<String>();
                format!(
                    "- task {}: answered {:?}; {}; expected {}",
                    r.task,
                    cut(r.answer.as_deref().unwrap_or("")),
                    r.invalid.as_deref().map_or("wrong label".to_owned(), |why| format!("refused: {}", cut(why))),
                    r.feedback["expected"]
                )
            })
            .collect();
        if worst.as_ref().is_none_or(|(_, a, _)| accuracy < *a) {
            worst = Some((domain.clone(), accuracy, failures));
        }
    }
    worst
}

/// Asks for edits to the worst domain's task module; returns (summary, the LLM's answer).
pub fn improve(repo: &Repo, history: &History, domains: &[String]) -> Result<(String, String), String> {
    let (domain, accuracy, failures) = worst_domain(history, domains).ok_or("no judgement results to show")?;
    let file = format!("src/task/{domain}.rs");
    let current = repo.read(&file).map_err(|e| format!("cannot read {file}: {e}"))?;
    let prompt = format!(
        "A task agent written in Rust answers `{domain}` tasks with one LLM call: `PROMPT` is the system \
         prompt, the task is the user message, and `parse_label` turns the LLM's reply into the label the \
         host expects. On its training tasks it scored {accuracy:.3}. Some failures:\n{}\n\n\
         Current {file}:\n```rust\n{current}```\n\n\
         Improve the prompt and the parsing so that the replies give the right label in the right form. \
         Answer with search/replace blocks:\n\
         <<<<<<< SEARCH {file}\n<exact lines to replace>\n=======\n<new lines>\n>>>>>>> REPLACE\n\
         Keep `pub fn solve` and `pub fn parse_label`. After the blocks, one line starting with `Summary:`.",
        failures.join("\n")
    );
    let answer =
        llm::ask("You are a careful Rust engineer. Answer with edit blocks and a summary line only.", &prompt, 4096)
            .map_err(|e| llm::describe(&e))?;
    let parsed = edits::parse(&answer)?;
    if parsed.is_empty() {
        return Err("the answer holds no edit block".into());
    }
    let files = edits::preview(repo, &parsed)?;
    if let Some((path, _)) = files.iter().find(|(path, _)| *path != file) {
        return Err(format!("the edit touches {path}; only {file} may change"));
    }
    if files.iter().any(|(_, text)| !text.contains("pub fn solve(") || !text.contains("pub fn parse_label(")) {
        return Err(format!("the edit removed `solve` or `parse_label` from {file}"));
    }
    edits::write(repo, &files)?;
    let line = answer.lines().find_map(|l| l.trim().strip_prefix("Summary:")).unwrap_or("no summary given");
    let summary = format!("LLM edit of {file}: {}", line.trim().chars().take(200).collect::<String>());
    Ok((summary, answer.chars().take(2000).collect()))
}
