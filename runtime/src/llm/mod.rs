//! The LLM gateway behind the `llm-complete` import: real backends with timeouts, retries,
//! budgets and a concurrency limit; every exchange recorded in the archive; replay from the
//! records without the network.

pub mod backend;
pub mod record;
pub mod wire;

pub use backend::{Backend, LlmConfig};
pub use record::{CallGateway, Exchange, ReplayIndex, Source};
