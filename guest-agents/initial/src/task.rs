//! The task agent: one module per domain, chosen by the request's `domain`.

pub mod bin_packing;
mod coding;
pub mod imo_grading;
pub mod imo_grading_model;
pub mod lexical;
mod paper_review;
pub mod paper_review_model;
mod robotics;
mod robotics_weights;

use agent_sdk::{AgentError, TaskRequest};

pub fn solve(request: &TaskRequest) -> Result<String, AgentError> {
    match request.domain.as_str() {
        "bin_packing" => bin_packing::solve(request),
        "paper_review" => paper_review::solve(request),
        "imo_grading" => imo_grading::solve(request),
        "robotics" => robotics::solve(request),
        "coding" => coding::solve(request),
        other => Err(AgentError::InvalidRequest(format!(
            "this agent has no task agent for the domain `{other}` (it knows: bin_packing, paper_review, imo_grading, \
             robotics, coding)"
        ))),
    }
}
