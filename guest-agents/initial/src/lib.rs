//! The initial hyperagent.
//!
//! - `task` packs items online into bins (`task.rs`), scoring each open bin with the evolvable
//!   priority function in `priority.rs`.
//! - `meta` makes a child by rewriting the evolvable constants of `priority.rs` (`meta.rs`); its
//!   own mutation settings live in `meta.rs`, where a meta agent may change them too.

mod meta;
mod priority;
mod task;

use agent_sdk::{AgentError, Guest, MetaReport, MetaRequest, TaskRequest};

struct Agent;

impl Guest for Agent {
    fn task(request: TaskRequest) -> Result<String, AgentError> {
        task::solve(&request)
    }

    fn meta(request: MetaRequest) -> Result<MetaReport, AgentError> {
        meta::improve(&request)
    }
}

agent_sdk::export_hyperagent!(Agent);
