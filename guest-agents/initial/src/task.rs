//! The task agent: one module per domain, chosen by the request's `domain`.

mod bin_packing;

use agent_sdk::{AgentError, TaskRequest};

pub fn solve(request: &TaskRequest) -> Result<String, AgentError> {
    match request.domain.as_str() {
        "bin_packing" => bin_packing::solve(request),
        other => Err(AgentError::InvalidRequest(format!(
            "this agent has no task agent for the domain `{other}` (it knows: bin_packing)"
        ))),
    }
}
