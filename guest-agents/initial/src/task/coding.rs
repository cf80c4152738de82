//! Coding: write the solution of an Exercism Rust exercise. The task agent needs an LLM: it shows
//! the model the statement, the manifest and the stub, and takes the last Rust code block of the
//! answer as `src/lib.rs`. Without an LLM it hands back the stub, which scores 0.

use agent_sdk::serde_json::{self, Value, json};
use agent_sdk::{AgentError, TaskRequest, llm};

/// The programmer's instructions.
pub const PROMPT: &str = "You are an expert Rust programmer. Solve the exercise: write the complete src/lib.rs, \
                          keeping every public item of the stub with its signature, using only the standard \
                          library. Answer with one ```rust code block holding the whole file.";

/// Tokens asked for per answer.
const MAX_OUTPUT_TOKENS: u32 = 4096;

pub fn solve(request: &TaskRequest) -> Result<String, AgentError> {
    let payload: Value = serde_json::from_str(&request.payload)
        .map_err(|e| AgentError::InvalidRequest(format!("payload is not JSON: {e}")))?;
    let stub = payload["files"]["src/lib.rs"].as_str().unwrap_or("").to_owned();
    let source = if llm::available() {
        let question = format!(
            "{}\n\nCargo.toml:\n```toml\n{}```\n\nsrc/lib.rs (the stub):\n```rust\n{stub}```",
            payload["statement"].as_str().unwrap_or(""),
            payload["manifest"].as_str().unwrap_or("")
        );
        let answer =
            llm::ask(PROMPT, &question, MAX_OUTPUT_TOKENS).map_err(|e| AgentError::Failed(llm::describe(&e)))?;
        last_rust_block(&answer).unwrap_or(stub)
    } else {
        stub
    };
    Ok(json!({ "files": { "src/lib.rs": source } }).to_string())
}

/// The last fenced code block of an answer (```rust, ```rs or bare ```).
pub fn last_rust_block(answer: &str) -> Option<String> {
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
    blocks.pop().filter(|b| !b.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_code_block_is_the_solution() {
        let answer = "Here:\n```rust\nfn a() {}\n```\nBetter:\n```rust\npub fn b() {}\n```\nDone.";
        assert_eq!(last_rust_block(answer).as_deref(), Some("pub fn b() {}\n"));
        assert_eq!(last_rust_block("no code"), None);
        assert_eq!(last_rust_block("```\n\n```"), None);
    }
}
