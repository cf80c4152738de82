//! Coding: write the solution of an Exercism Rust exercise. The task agent needs an LLM: it shows
//! the model the statement, the manifest and the stub, and takes the first Rust code block of the
//! answer as `src/lib.rs`. When the answer also holds tests (a second block) and the host offers
//! `run-tests`, it runs them, and while LLM calls are left and a test fails it shows the model the
//! failure and takes its corrected solution. Without an LLM it hands back the stub, which scores 0.

use agent_sdk::serde_json::{self, Value, json};
use agent_sdk::{AgentError, TaskRequest, llm, log, task_tools};

/// The programmer's instructions.
pub const PROMPT: &str = "You are an expert Rust programmer. Solve the exercise: write the complete src/lib.rs, \
                          keeping every public item of the stub with its signature, using only the standard \
                          library and the crates Cargo.toml declares. Answer with one ```rust code block holding the whole file, then a second \
                          ```rust block with a few tests of your own (an integration test file that uses the \
                          crate by its name).";

/// Tokens asked for per answer.
const MAX_OUTPUT_TOKENS: u32 = 4096;

pub fn solve(request: &TaskRequest) -> Result<String, AgentError> {
    let payload: Value = serde_json::from_str(&request.payload)
        .map_err(|e| AgentError::InvalidRequest(format!("payload is not JSON: {e}")))?;
    let stub = payload["files"]["src/lib.rs"].as_str().unwrap_or("").to_owned();
    if !llm::available() {
        return Ok(json!({ "files": { "src/lib.rs": stub } }).to_string());
    }
    let question = format!(
        "{}\n\nCargo.toml:\n```toml\n{}```\n\nsrc/lib.rs (the stub):\n```rust\n{stub}```",
        payload["statement"].as_str().unwrap_or(""),
        payload["manifest"].as_str().unwrap_or("")
    );
    let answer = llm::ask(PROMPT, &question, MAX_OUTPUT_TOKENS).map_err(|e| AgentError::Failed(llm::describe(&e)))?;
    let blocks = code_blocks(&answer);
    let mut source = blocks.first().cloned().unwrap_or(stub);
    if let Some(tests) = blocks.get(1) {
        source = refine(&question, source, tests);
    }
    Ok(json!({ "files": { "src/lib.rs": source } }).to_string())
}

/// Runs the model's own tests and, while a test fails and LLM calls are left, asks for a fix.
fn refine(question: &str, mut source: String, tests: &str) -> String {
    loop {
        let files = [("src/lib.rs".to_owned(), source.clone())];
        let run = match task_tools::run_tests(&files, tests) {
            Ok(run) => run,
            Err(why) => {
                log::info(format!("own tests not run: {why}"));
                return source;
            }
        };
        log::info(format!("own tests: {}", task_tools::describe(&run).lines().next().unwrap_or("")));
        if run.built && run.failed == 0 {
            return source;
        }
        let retry = format!(
            "{question}\n\nYour solution:\n```rust\n{source}```\n\nYour tests:\n```rust\n{tests}```\n\nRunning them \
             gave:\n{}\n\nAnswer with the corrected src/lib.rs in one ```rust block.",
            task_tools::describe(&run)
        );
        match llm::ask(PROMPT, &retry, MAX_OUTPUT_TOKENS) {
            Ok(answer) => match code_blocks(&answer).into_iter().next() {
                Some(fixed) => source = fixed,
                None => return source,
            },
            Err(e) => {
                log::info(format!("no fix asked: {}", llm::describe(&e)));
                return source;
            }
        }
    }
}

/// The fenced code blocks of an answer (```rust, ```rs or bare ```), in order, empty ones left out.
pub fn code_blocks(answer: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in answer.lines() {
        let fence = line.trim_start().starts_with("```");
        match (&mut current, fence) {
            (None, true) => current = Some(String::new()),
            (Some(block), true) => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), false) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, false) => {}
        }
    }
    blocks.retain(|b| !b.trim().is_empty());
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_blocks_are_read_in_order() {
        let answer = "Here:\n```rust\nfn a() {}\n```\nTests:\n```rust\n#[test] fn b() {}\n```\nDone.";
        assert_eq!(code_blocks(answer), ["fn a() {}\n", "#[test] fn b() {}\n"]);
        assert!(code_blocks("no code").is_empty());
        assert!(code_blocks("```\n\n```").is_empty());
    }
}
