//! The run-related commands of the CLI: `run`, `status`, `show`, `lineage`.

pub mod run;
