//! `hyperagent ensemble [RUN] --k N`: the majority vote of a run's top k task agents (by
//! validation) on its test sets, beside the single best node (see `experiment::ensemble`).

use super::run::resolve_run;
use super::terminal::{line, outln};
use super::{new_sandbox, open_archive, ready_compiler};
use anyhow::{Result, bail};
use hyperagent::evolution::log::Event;
use hyperagent::experiment::ensemble::{Budget, MAX_K, answers, load, report, top_nodes, vote};
use hyperagent::settings::Paths;
use hyperagent_domains::SetReport;
use std::path::Path;
use std::sync::Arc;

pub async fn ensemble(paths: &Paths, run: Option<String>, k: usize, data_dir: &Path) -> Result<()> {
    if k == 0 || k > MAX_K {
        bail!("--k must be in 1..={MAX_K}");
    }
    let (id, events) = resolve_run(paths, run)?;
    let Some(Event::Started { config, .. }) = events.first() else {
        bail!("run {id}: the log does not start with the run's configuration")
    };
    config.validate().map_err(|e| anyhow::anyhow!("run {id}: the logged configuration is invalid: {e}"))?;
    if config.task_llm_calls > 0 {
        bail!("run {id}: its task agents call an LLM, which an ensemble would call again; not supported");
    }
    let archive = open_archive(paths)?;
    let mut nodes = Vec::new();
    for event in &events {
        if let Event::Node { node, .. } = event {
            nodes.push(hyperagent::evolution::node_record(&archive, node)?);
        }
    }
    let top = top_nodes(&nodes, k);
    if top.is_empty() {
        bail!("run {id} has no evaluated node");
    }
    let sandbox = Arc::new(new_sandbox(paths)?);
    let agents = load(&archive, &sandbox, &top)?;
    let budget = Budget { fuel: config.task_fuel, memory_mib: config.memory_mib };
    let names: Vec<String> = top.iter().map(|n| n.id.short()).collect();
    outln!(
        "run {id}: the majority vote of the top {} by validation ({}) on the test sets:",
        top.len(),
        names.join(", ")
    );
    outln!("  {:<16} {:<22} {:>12} {:>12}", "domain", "set", "best node", "ensemble");
    // Domains that score by building answers build them here.
    let services = if config.domains.iter().any(|d| hyperagent::domains::needs_services(d)) {
        let compiler = Arc::new(ready_compiler(paths, std::time::Duration::from_secs(300))?);
        hyperagent::domains::HostServices::with_compiler(compiler)
    } else {
        hyperagent::domains::HostServices::none()
    };
    for run_domain in hyperagent::evolution::run_domains(config, data_dir, &services)? {
        let domain = run_domain.domain.as_ref();
        for set in run_domain.domain.test_sets(data_dir)?.sets {
            let all = answers(&sandbox, &agents, domain, &set.tasks, budget).await;
            let voted: Vec<Option<String>> = (0..set.tasks.len())
                .map(|t| vote(&all.iter().map(|agent| agent[t].clone()).collect::<Vec<_>>()))
                .collect();
            let best = report(domain, &set.tasks, &all[0]).await;
            let voted = report(domain, &set.tasks, &voted).await;
            print_rows(domain.name(), &set.name, &best, &voted);
        }
    }
    Ok(())
}

/// The set's metric, then each further figure, one row each.
fn print_rows(domain: &str, set: &str, best: &SetReport, voted: &SetReport) {
    let percent = |v: f64| format!("{:.2}%", v * 100.0);
    outln!(
        "  {:<16} {:<22} {:>12} {:>12}  ({})",
        domain,
        line(set),
        percent(best.value),
        percent(voted.value),
        best.metric
    );
    for (a, b) in best.figures.iter().zip(&voted.figures) {
        outln!(
            "  {:<16} {:<22} {:>12} {:>12}  ({})",
            "",
            format!("  · {}", a.metric),
            percent(a.value),
            percent(b.value),
            a.metric
        );
    }
}
