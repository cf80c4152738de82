//! The report of one or more runs: a self-contained HTML page (inline SVG, a little plain
//! JavaScript, nothing fetched from anywhere) with the progress curves, the archive tree, a panel
//! per node, the test table, the provenance and the replay commands. It is made from the run log
//! and the archive only, so an imported bundle reports like the run that made it.
//!
//! Architecture invariant: this module reads; it never writes to the archive or a run log, and it
//! names no domain (what it shows of a domain comes from the log and the nodes).

pub mod curves;
pub mod model;
pub mod page;
pub mod svg;
pub mod tables;
pub mod tree;

pub use model::{DetailCache, RunReport};

use std::path::{Path, PathBuf};

/// The file a report directory holds.
pub const REPORT_FILE: &str = "index.html";

/// Writes the page of `runs` as `dir/index.html` (atomically) and returns its path.
pub fn write(dir: &Path, runs: &[RunReport]) -> std::io::Result<PathBuf> {
    let html = page::page_html(runs, false).map_err(std::io::Error::other)?;
    std::fs::create_dir_all(dir)?;
    let path = dir.join(REPORT_FILE);
    crate::fsutil::write_atomic(&path, html.as_bytes())?;
    Ok(path)
}
