//! The initial hyperagent.
//!
//! - `task` answers each domain's tasks with that domain's module (`task.rs` dispatches on the
//!   request's domain). Bin packing (`task/bin_packing.rs`) packs items online, scoring each open
//!   bin with the evolvable priority function in `priority.rs`.
//! - `meta` makes a child by rewriting the evolvable constants of `priority.rs` (`meta.rs`); its
//!   own mutation settings live in `meta.rs`, where a meta agent may change them too.
//! - Paper review and proof grading (`task/paper_review.rs`, `task/imo_grading.rs`) answer with a
//!   lexical model whose table is `task/<domain>_model.rs`, or with one LLM call when offered one.
//!   The meta agent retrains the tables from `/history` (`judging.rs`, `learn.rs`) with settings
//!   it also mutates (`learning.rs`), or asks the LLM for a better prompt (`prompting.rs`).

mod judging;
mod learn;
mod learning;
mod meta;
mod priority;
mod prompting;
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
