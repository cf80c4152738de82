//! hyperagent: a runtime in which self-improving agents live as WebAssembly components.
//!
//! - [`sandbox`] runs a component's `task` and `meta` exports under fuel, memory and time limits;
//! - [`compiler`] turns a hyperagent's Rust source into a component, under a source policy;
//! - [`archive`] stores every variant content-addressed, atomically, verifiably;
//! - [`source_tree`] and [`hash`] are the shared vocabulary of the three.

pub mod archive;
pub mod audit;
pub mod canonical;
pub mod cluster;
pub mod coding;
pub mod compiler;
pub mod domains;
pub mod evolution;
pub mod experiment;
pub mod fsutil;
pub mod hash;
pub mod llm;
pub mod report;
pub mod reward;
pub mod run_object;
pub mod sandbox;
pub mod settings;
pub mod source_tree;
pub mod tree_walk;

/// Version of this host, recorded with everything it produces.
pub const HOST_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The wasmtime release the sandbox is built on; fuel costs depend on it.
pub const WASMTIME_VERSION: &str = "48.0.8";
