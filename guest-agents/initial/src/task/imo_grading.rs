//! Olympiad proof grading: grade a student's proof as Correct, Almost, Partial or Incorrect.
//! Offline the lexical model of `imo_grading_model.rs` grades the response; when the host offers
//! the task agent an LLM, one call does, and `parse_label` reads the grade from its answer.

use super::imo_grading_model::MODEL;
use agent_sdk::serde_json::{self, Value, json};
use agent_sdk::{AgentError, TaskRequest, llm};

/// The grader's instructions.
pub const PROMPT: &str = "You are an IMO grader. Grade the student's response to the problem, using the \
                          reference solution and the grading guidelines.";

pub fn solve(request: &TaskRequest) -> Result<String, AgentError> {
    let payload: Value = serde_json::from_str(&request.payload)
        .map_err(|e| AgentError::InvalidRequest(format!("payload is not JSON: {e}")))?;
    let field = |name: &str| {
        payload[name].as_str().ok_or_else(|| AgentError::InvalidRequest(format!("`{name}` must be a string")))
    };
    let response = field("response")?;
    let grade = if llm::available() {
        let question = format!(
            "Problem:\n{}\n\nReference solution:\n{}\n\nGrading guidelines:\n{}\n\nStudent response:\n{response}",
            field("problem")?,
            field("solution")?,
            field("grading_guidelines")?
        );
        let answer = llm::ask(PROMPT, &question, 512).map_err(|e| AgentError::Failed(llm::describe(&e)))?;
        parse_label(&answer)
    } else {
        MODEL.predict(response).to_owned()
    };
    Ok(json!({ "grade": grade }).to_string())
}

/// The grade in the LLM's answer: the answer itself, trimmed.
pub fn parse_label(answer: &str) -> String {
    answer.trim().to_owned()
}
