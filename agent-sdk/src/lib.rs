//! The guest side of a hyperagent.
//!
//! A hyperagent is a Rust crate compiled to a WebAssembly component that exports `task`, `meta`
//! and `select` (see `wit/hyperagent.wit`). This crate holds the generated bindings and the helpers every
//! hyperagent needs:
//!
//! - [`log`]: lines in the call's report;
//! - [`llm`]: completions through the host's metered gateway;
//! - [`tool_loop`] and [`file_tools`]: a model editing `/repo` through tool calls;
//! - [`workbench`]: the host's tools over `/repo` for meta calls (building it as the child will be,
//!   and trying its task agent on a training task);
//! - [`task_tools`]: tools a task call's domain offers (coding: run tests of one's own);
//! - [`repo`]: reading and rewriting the hyperagent's own source under `/repo`;
//! - [`history`]: reading the evaluation history under `/history`;
//! - [`rng`]: deterministic randomness from the seed the host hands over;
//! - [`select`]: the archive a parent selector is shown;
//! - [`kernels`]: small compute kernels shared with the host's benchmarks.
//!
//! A minimal hyperagent:
//!
//! ```ignore
//! use agent_sdk::{AgentError, Guest, MetaReport, MetaRequest, SelectRequest, TaskRequest};
//! struct Agent;
//! impl Guest for Agent {
//!     fn task(request: TaskRequest) -> Result<String, AgentError> { Ok(request.payload) }
//!     fn meta(_: MetaRequest) -> Result<MetaReport, AgentError> {
//!         Ok(MetaReport { summary: "no change".into(), rationale: String::new() })
//!     }
//!     fn select(request: SelectRequest) -> Result<Vec<String>, String> {
//!         let first = agent_sdk::select::nodes(&request)?.into_iter().find(|n| n.valid);
//!         Ok(vec![first.ok_or("no valid node")?.node; request.count as usize])
//!     }
//! }
//! agent_sdk::export_hyperagent!(Agent);
//! ```

// Lets the generated bindings name this crate by its public path from inside it too.
extern crate self as agent_sdk;

pub mod edits;
pub mod file_tools;
pub mod history;
pub mod kernels;
pub mod llm;
pub mod log;
pub mod repo;
pub mod rng;
pub mod select;
pub mod task_tools;
pub mod tool_loop;
pub mod workbench;

/// Bindings generated from the WIT contract. Most guests only need the re-exports at the crate
/// root.
#[allow(clippy::too_many_arguments)] // generated code
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "hyperagent",
        export_macro_name: "export_hyperagent",
        pub_export_macro: true,
        default_bindings_module: "agent_sdk::bindings",
        runtime_path: "agent_sdk::__private::wit_bindgen::rt",
    });
}

pub use bindings::Guest;
pub use bindings::hyperagent::agent::host::environment;
pub use bindings::hyperagent::agent::types::{AgentError, Budget, MetaReport, MetaRequest, SelectRequest, TaskRequest};

pub use serde;
pub use serde_json;

/// Registers a type implementing [`Guest`] as this component's exports.
#[macro_export]
macro_rules! export_hyperagent {
    ($agent:ident) => {
        $crate::bindings::export_hyperagent!($agent with_types_in $crate::bindings);
    };
}

#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;
}

/// Version of the SDK, reported in node provenance.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");
