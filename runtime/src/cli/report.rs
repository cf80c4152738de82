//! `hyperagent report <run>… [-o DIR]`: the static page of one or more runs.

use super::open_archive;
use super::run::{latest_run, run_log};
use super::terminal::outln;
use anyhow::{Context, Result};
use hyperagent::report::{self, DetailCache, RunReport};
use hyperagent::settings::Paths;
use std::path::{Path, PathBuf};

/// Where a report goes when no directory is named: beside the runs, under the home.
pub fn default_dir(paths: &Paths, runs: &[String]) -> PathBuf {
    let name = match runs {
        [one] => one.clone(),
        many => format!("{}-and-{}-more", many[0], many.len() - 1),
    };
    paths.home.join("reports").join(name)
}

/// Reads each run from its log and the archive.
pub fn load_runs(paths: &Paths, runs: &[String]) -> Result<Vec<RunReport>> {
    let archive = open_archive(paths)?;
    let mut cache = DetailCache::default();
    runs.iter()
        .map(|id| {
            let log = run_log(paths, id);
            RunReport::load(&archive, id, &log, &mut cache)
                .with_context(|| format!("cannot read the run log {}", log.display()))
        })
        .collect()
}

pub fn report(paths: &Paths, runs: Vec<String>, out: Option<&Path>) -> Result<()> {
    let runs = if runs.is_empty() { vec![latest_run(paths)?] } else { runs };
    let started = std::time::Instant::now();
    let reports = load_runs(paths, &runs)?;
    let dir = out.map_or_else(|| default_dir(paths, &runs), Path::to_path_buf);
    let path =
        report::write(&dir, &reports).with_context(|| format!("cannot write the report in {}", dir.display()))?;
    let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    let nodes: usize = reports.iter().map(|r| r.nodes.len()).sum();
    outln!(
        "report of {} run(s), {nodes} nodes: {} ({} KiB, {:.2} s)",
        reports.len(),
        path.display(),
        bytes / 1024,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
