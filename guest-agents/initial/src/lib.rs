//! The initial hyperagent.
//!
//! - `task` answers each domain's tasks with that domain's module (`task.rs` dispatches on the
//!   request's domain). Bin packing (`task/bin_packing.rs`) packs items online, scoring each open
//!   bin with the evolvable priority function in `priority.rs`.
//! - `meta` makes a child (`meta.rs`). For bin packing it searches over programs (`search.rs`):
//!   it parses `priority.rs` with syn (`program.rs`) and edits its expressions with typed
//!   operators (`operators.rs`), weighted by a strategy it may rewrite in its child
//!   (`strategy.rs`) and by the credit `/history` gives each operator; it screens candidates on
//!   training instances with an interpreter (`interpret.rs`, `screen.rs`) and keeps the best.
//! - Paper review and proof grading (`task/paper_review.rs`, `task/imo_grading.rs`) answer with a
//!   lexical model whose table is `task/<domain>_model.rs`, or with one LLM call when offered one.
//!   The meta agent retrains the tables from `/history` (`judging.rs`, `learn.rs`) with settings
//!   it also mutates (`learning.rs`), or asks the LLM for a better prompt (`prompting.rs`).
//! - Robot reward design (`task/robotics.rs`) answers with the source of a reward function made
//!   of named terms whose weights are `task/robotics_weights.rs`, or one the LLM writes when
//!   offered one; the meta agent mutates the weights, steered by the training results in
//!   `/history` (`reward_design.rs`).
//! - `select` chooses the run's parents when the run leaves that to the hyperagent
//!   (`selection = "agent"`): uniformly at random (`select.rs`).

mod conversation;
mod interpret;
mod judging;
mod learn;
mod learning;
mod meta;
mod operators;
mod priority;
mod program;
mod prompting;
mod reward_design;
mod screen;
mod search;
mod select;
mod strategy;
mod task;

use agent_sdk::{AgentError, Guest, MetaReport, MetaRequest, SelectRequest, TaskRequest};

struct Agent;

impl Guest for Agent {
    fn task(request: TaskRequest) -> Result<String, AgentError> {
        task::solve(&request)
    }

    fn meta(request: MetaRequest) -> Result<MetaReport, AgentError> {
        meta::improve(&request)
    }

    fn select(request: SelectRequest) -> Result<Vec<String>, String> {
        select::choose(&request)
    }
}

agent_sdk::export_hyperagent!(Agent);
