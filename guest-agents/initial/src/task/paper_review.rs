//! Paper review: accept or reject a paper from its title and abstract. Offline the lexical model
//! of `paper_review_model.rs` decides; when the host offers the task agent an LLM, one call does,
//! and `parse_label` reads the label from its answer.

use super::paper_review_model::MODEL;
use agent_sdk::serde_json::{self, Value, json};
use agent_sdk::{AgentError, TaskRequest, llm};

/// The reviewer's instructions.
pub const PROMPT: &str = "You are an expert reviewer for ICLR. Read the paper's title and abstract and \
                          decide whether the paper was accepted or rejected.";

pub fn solve(request: &TaskRequest) -> Result<String, AgentError> {
    let payload: Value = serde_json::from_str(&request.payload)
        .map_err(|e| AgentError::InvalidRequest(format!("payload is not JSON: {e}")))?;
    let field = |name: &str| {
        payload[name].as_str().ok_or_else(|| AgentError::InvalidRequest(format!("`{name}` must be a string")))
    };
    let (title, abstract_) = (field("title")?, field("abstract")?);
    let decision = if llm::available() {
        let question = format!("Title: {title}\n\nAbstract: {abstract_}");
        let answer = llm::ask(PROMPT, &question, 512).map_err(|e| AgentError::Failed(llm::describe(&e)))?;
        parse_label(&answer)
    } else {
        MODEL.predict(&format!("{title}\n{abstract_}")).to_owned()
    };
    Ok(json!({ "decision": decision }).to_string())
}

/// The decision in the LLM's answer: the answer itself, trimmed.
pub fn parse_label(answer: &str) -> String {
    answer.trim().to_owned()
}
