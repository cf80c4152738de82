//! `hyperagent experiment <plan.toml>`: runs every cell of a plan that has not finished (a killed
//! experiment resumes its unfinished run and reuses the finished ones), then writes the summary to
//! `<home>/experiments/<name>/summary.{md,json}` and prints it. Several processes may work through
//! one plan in one home at once: a cell whose run another process is writing is skipped.

use super::run::{RunOptions, run_log};
use super::terminal::{errln, outln};
use anyhow::{Context, Result, bail};
use hyperagent::evolution::config::RunConfig;
use hyperagent::evolution::log::{Event, RunLog};
use hyperagent::experiment::{Plan, run_results, summarise};
use hyperagent::settings::Paths;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub async fn experiment(paths: &Paths, plan_path: &Path, data_dir: PathBuf, summary_only: bool) -> Result<()> {
    let plan = Plan::read(plan_path).map_err(anyhow::Error::msg)?;
    let cells = plan.cells();
    let mut elsewhere = 0;
    if !summary_only {
        for (index, cell) in cells.iter().enumerate() {
            let progress = format!("[{}/{}] {}", index + 1, cells.len(), cell.run_id);
            if RunLog::in_use(&run_log(paths, &cell.run_id)) {
                errln!("{progress}: being run by another process, skipped");
                elsewhere += 1;
                continue;
            }
            if let Err(e) = ensure_run(paths, &cell.run_id, &cell.config, &data_dir, &progress).await {
                // Another process took the cell between the check and the start: its cell, not an error.
                if RunLog::in_use(&run_log(paths, &cell.run_id)) {
                    errln!("{progress}: taken by another process as it started, skipped");
                    elsewhere += 1;
                    continue;
                }
                return Err(e);
            }
        }
    }
    let mut results = BTreeMap::new();
    for cell in &cells {
        let log = run_log(paths, &cell.run_id);
        let found = if log.is_file() { run_results(&read(&log)?) } else { None };
        results.insert(cell.run_id.clone(), found);
    }
    let summary = summarise(&plan, &results);
    let dir = paths.home.join("experiments").join(&plan.name);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let markdown = summary.markdown();
    hyperagent::fsutil::write_atomic(&dir.join("summary.md"), markdown.as_bytes())?;
    let json = serde_json::to_vec_pretty(&summary)?;
    hyperagent::fsutil::write_atomic(&dir.join("summary.json"), &json)?;
    for line in markdown.lines() {
        outln!("{line}");
    }
    outln!("summary: {} (and summary.json)", dir.join("summary.md").display());
    if elsewhere > 0 {
        errln!(
            "{elsewhere} cell(s) were being run by another process: once it ends, `--summary-only` gives the whole table"
        );
    }
    Ok(())
}

/// Makes sure the run `run_id` with `config` is there and finished: reused when it is, resumed
/// when it was cut short, started when it is absent; refused when a run of that id has another
/// configuration. Returns its log. `progress` prefixes the line that says which.
pub async fn ensure_run(
    paths: &Paths,
    run_id: &str,
    config: &RunConfig,
    data_dir: &Path,
    progress: &str,
) -> Result<Vec<Event>> {
    let log = run_log(paths, run_id);
    let exists = log.is_file();
    if exists {
        let events = read(&log)?;
        check_same_config(&events, config, run_id)?;
        if run_results(&events).is_some() {
            errln!("{progress}: finished, reused");
            return Ok(events);
        }
    }
    errln!("{progress}: {}", if exists { "resuming" } else { "starting" });
    let options = RunOptions {
        config: config.clone(),
        llm: None,
        replay_from: None,
        run_id: Some(run_id.to_owned()),
        resume: exists.then(|| Some(run_id.to_owned())),
        data_dir: data_dir.to_owned(),
        signing_key: None,
        cluster: None,
    };
    super::run::run(paths, options).await.with_context(|| format!("run {run_id}"))?;
    read(&log)
}

fn read(log: &Path) -> Result<Vec<Event>> {
    RunLog::read(log).with_context(|| format!("cannot read {}", log.display()))
}

/// A run already there must be the cell's run: the plan may have changed since it was made. An
/// empty log is a run killed before it logged its start; resuming it starts it.
fn check_same_config(events: &[Event], config: &hyperagent::evolution::config::RunConfig, run_id: &str) -> Result<()> {
    match events.first() {
        None => Ok(()),
        Some(Event::Started { config: logged, .. }) if **logged == *config => Ok(()),
        Some(Event::Started { .. }) => bail!(
            "run {run_id} exists with another configuration than the plan gives it: rename the plan (its runs \
             are named after it) or remove that run"
        ),
        _ => bail!("run {run_id} has a log that does not start with its configuration"),
    }
}
