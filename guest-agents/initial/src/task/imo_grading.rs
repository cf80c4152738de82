//! Olympiad proof grading: grade a student's proof as Correct, Almost, Partial or Incorrect.
//! Offline the lexical model of `imo_grading_model.rs` grades the response, with a tag that names
//! the problem (the splits grade responses to the same problems, and how hard a problem is says
//! much of its grades); when the host offers the task agent an LLM, one call does, and
//! `parse_label` reads the grade from its answer.

use super::imo_grading_model::MODEL;
use super::lexical::TAG;
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
        MODEL.predict(&text(&payload).unwrap_or_default()).to_owned()
    };
    Ok(json!({ "grade": grade }).to_string())
}

/// What the lexical model reads of a task (the learner reads the same): the response, then a tag
/// naming the problem by a hash of its statement.
pub fn text(payload: &Value) -> Option<String> {
    let response = payload["response"].as_str()?;
    let problem = payload["problem"].as_str().unwrap_or("");
    // FNV-1a: the same statement gives the same tag on every call and every machine.
    let hash = problem.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    Some(format!("{response}\n{TAG}problem:{hash:016x}"))
}

/// The grade in the LLM's answer: the answer itself, trimmed.
pub fn parse_label(answer: &str) -> String {
    answer.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_names_the_problem_alike_for_alike_statements() {
        let task = |problem: &str| json!({ "response": "We prove it.", "problem": problem });
        let a = text(&task("Let n be odd.")).unwrap();
        assert!(a.starts_with("We prove it.\n@problem:") && a.len() == "We prove it.\n@problem:".len() + 16, "{a}");
        assert_eq!(a, text(&task("Let n be odd.")).unwrap());
        assert_ne!(a, text(&task("Let n be even.")).unwrap());
        assert_eq!(text(&json!({ "problem": "p" })), None, "no response, no text");
    }
}
