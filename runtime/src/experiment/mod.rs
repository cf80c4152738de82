//! Experiments: a plan of methods × seeds, each cell an ordinary run, and a summary of the best
//! nodes' test values with medians, bootstrap intervals and Wilcoxon signed-rank tests, as the
//! paper's protocol reports them (`plan.rs`, `summary.rs`, `stats.rs`). The CLI runs the cells.

pub mod ensemble;
pub mod plan;
pub mod stats;
pub mod summary;

pub use plan::{Cell, Method, Plan};
pub use summary::{RunResults, Summary, run_results, summarise, test_results};
