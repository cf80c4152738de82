//! `hyperagent replay`, `export` and `import`: a run checked again, and a run carried between homes.

use super::inspect::{find_node, run_of_node};
use super::run::{run_log, runs_dir};
use super::terminal::{errln, outln};
use super::{new_sandbox, open_archive, ready_compiler};
use anyhow::{Context, Result, bail};
use hyperagent::evolution::config::RunConfig;
use hyperagent::evolution::log::{Event, RunLog};
use hyperagent::evolution::replay_index;
use hyperagent::hash::ContentHash;
use hyperagent::settings::Paths;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// `hyperagent replay`: rebuild and re-run archived nodes, and re-derive a run's parent choices.
pub async fn replay(paths: &Paths, node: Option<String>, run: Option<String>, data_dir: &Path) -> Result<bool> {
    use hyperagent::audit::{Auditor, check_parent_choices, tasks_by_id};
    let archive = open_archive(paths)?;
    let (run_id, only) = match (node, run) {
        (Some(node), run) => {
            let id = find_node(&archive, &node)?;
            (
                match run {
                    Some(run) => run,
                    None => run_of_node(paths, &id)?,
                },
                Some(id),
            )
        }
        (None, Some(run)) => (run, None),
        (None, None) => bail!("name a node, or a run with --run <id>"),
    };
    let log = run_log(paths, &run_id);
    let events = RunLog::read(&log).with_context(|| format!("cannot read {}", log.display()))?;
    let (config, mut clean) = logged_config(&log, &events)?;
    let compiler = Arc::new(ready_compiler(paths, Duration::from_secs(300))?);
    let sandbox = Arc::new(new_sandbox(paths)?);
    let services = hyperagent::domains::HostServices::with_compiler(compiler.clone());
    let domains = hyperagent::evolution::run_domains(config, data_dir, &services)?;
    let provenance = hyperagent::evolution::provenance(&sandbox, &compiler, data_dir, &domains)?;
    let records = Arc::new(replay_index(&archive, &events)?);
    let tasks = tasks_by_id(&domains);
    let auditor = Auditor { archive: &archive, compiler: &compiler, sandbox: &sandbox, provenance, tasks, domains };
    if only.is_none() {
        let problems = check_parent_choices(&archive, config, &events)?;
        if problems.is_empty() {
            outln!("parent choices: every one re-derived from the seed and the archive");
        }
        for problem in &problems {
            outln!("parent choice mismatch: {problem}");
        }
        clean &= problems.is_empty();
    }
    let nodes: Vec<ContentHash> = events
        .iter()
        .filter_map(|e| if let Event::Node { node, .. } = e { Some(*node) } else { None })
        .filter(|n| only.is_none_or(|o| o == *n))
        .collect();
    // Every node of the run as the loop entered them, for the meta calls made again.
    let mut entered = Vec::new();
    for event in &events {
        if let Event::Node { node, .. } = event {
            hyperagent::evolution::enter_node(&mut entered, hyperagent::evolution::node_record(&archive, node)?);
        }
    }
    let view = hyperagent::audit::meta::RunView {
        config,
        domains: &auditor.domains,
        nodes: &entered,
        tree_limits: compiler.tree_limits(),
        compiler: &compiler,
        trial_domains: hyperagent::evolution::workbench::trial_domains(&auditor.domains),
        entries: Default::default(),
    };
    let mut differences_shown = false;
    for node in nodes {
        let mut audit = auditor.replay_node(&node, config, &records).await?;
        if let Some(record) = entered.iter().find(|n| n.id == node) {
            let remade = hyperagent::audit::remake_child(&archive, &sandbox, &view, record, &records).await?;
            audit.mismatches.extend(remade.into_iter().map(|d| format!("meta call made again: {d}")));
            audit.meta_remade = record.parent.is_some();
        }
        print_node_audit(&node, &audit, &mut differences_shown);
        clean &= audit.is_clean();
    }
    outln!(
        "{}",
        if clean {
            "replay: everything checked agrees with the archive"
        } else {
            "replay: the archive and the replay disagree"
        }
    );
    Ok(clean)
}

/// The configuration a run's log starts with, checked (the log may come from another machine:
/// it must be one a run could have had), and whether it has its logged hash.
fn logged_config<'a>(log: &Path, events: &'a [Event]) -> Result<(&'a RunConfig, bool)> {
    let Some(Event::Started { config, config_hash, .. }) = events.first() else {
        bail!("{} does not start with the run's configuration", log.display())
    };
    config.validate().map_err(|e| anyhow::anyhow!("the logged configuration is invalid: {e}"))?;
    super::flags::check_run_config(config).map_err(|e| anyhow::anyhow!("the logged configuration is invalid: {e}"))?;
    let clean = config.hash() == *config_hash;
    if !clean {
        outln!(
            "configuration mismatch: the logged configuration does not have its logged hash {}",
            config_hash.short()
        );
    }
    Ok((config, clean))
}

fn print_node_audit(node: &ContentHash, audit: &hyperagent::audit::NodeAudit, differences_shown: &mut bool) {
    let build = match audit.rebuilt_identical {
        Some(true) => "rebuilt bit for bit",
        Some(false) => "REBUILT DIFFERENTLY",
        None => "not built",
    };
    let meta = if audit.meta_remade { ", meta call made again" } else { "" };
    outln!(
        "{} {build}{meta}, {} task(s) re-run: {}",
        node.short(),
        audit.tasks_checked,
        if audit.is_clean() { "identical".to_owned() } else { format!("{} mismatch(es)", audit.mismatches.len()) }
    );
    for mismatch in &audit.mismatches {
        outln!("  {mismatch}");
    }
    if !audit.provenance_differences.is_empty() && !*differences_shown {
        outln!("  this host differs from the recording one: {}", audit.provenance_differences.join("; "));
        *differences_shown = true;
    }
}

/// `hyperagent export <run> <file>`.
pub fn export(paths: &Paths, run: &str, file: &Path) -> Result<()> {
    let archive = open_archive(paths)?;
    let log_path = run_log(paths, run);
    let log = std::fs::read(&log_path).with_context(|| format!("cannot read {}", log_path.display()))?;
    let events = RunLog::read(&log_path)?;
    let mut roots = Vec::new();
    for event in &events {
        match event {
            Event::Node { node, .. } | Event::Test { node, .. } => roots.push(*node),
            Event::LlmExchange { record, .. } => roots.push(*record),
            _ => {}
        }
    }
    let run_dir = runs_dir(paths).join(run);
    let head = std::fs::read_to_string(run_dir.join("head")).ok().and_then(|t| t.trim().parse().ok());
    let signature = std::fs::read(run_dir.join("head.sig")).ok();
    // Every run object of this run travels with it (they anchor its log's prefixes).
    let mut run_objects = Vec::new();
    for id in archive.run_object_ids()? {
        if archive.get_run_object(&id).is_ok_and(|o| o.run == run) {
            run_objects.push(id);
        }
    }
    let head = head.map(|object| hyperagent::archive::bundle::Head {
        object,
        signature: signature.as_deref(),
        run_objects: run_objects.clone(),
    });
    let bundle = hyperagent::archive::bundle::export(&archive, run, &log, &roots, head)?;
    hyperagent::fsutil::write_atomic(file, &bundle).with_context(|| format!("cannot write {}", file.display()))?;
    outln!("exported run {run}: {} bytes to {}", bundle.len(), file.display());
    Ok(())
}

/// `hyperagent import <file>`.
/// `hyperagent import <file>`. A damaged or altered bundle is the bundle's failure (exit 1),
/// refused before anything of it is trusted; `Ok(false)` says so.
pub fn import(paths: &Paths, file: &Path) -> Result<bool> {
    use hyperagent::archive::bundle::BundleError;
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let archive = open_archive(paths)?;
    let bundle = match hyperagent::archive::bundle::import(&archive, &bytes) {
        Ok(bundle) => bundle,
        Err(e @ (BundleError::Tampered { .. } | BundleError::Format(_))) => {
            errln!("error: {e}");
            return Ok(false);
        }
        Err(e) => return Err(e.into()),
    };
    let log_path = run_log(paths, &bundle.run_id);
    if log_path.exists() {
        if std::fs::read(&log_path)? != bundle.log {
            bail!("a different run {} already exists here; its log was left alone", bundle.run_id);
        }
    } else {
        hyperagent::fsutil::write_atomic(&log_path, &bundle.log)?;
    }
    let run_dir = runs_dir(paths).join(&bundle.run_id);
    if let Some(head) = bundle.head {
        hyperagent::fsutil::write_atomic(&run_dir.join("head"), head.to_hex().as_bytes())?;
    }
    if let Some(signature) = &bundle.signature {
        hyperagent::fsutil::write_atomic(&run_dir.join("head.sig"), signature)?;
    }
    outln!(
        "imported run {}: {} objects, {} nodes; replay it with `hyperagent replay --run {}`",
        bundle.run_id,
        bundle.objects.len(),
        bundle.nodes.len(),
        bundle.run_id
    );
    Ok(true)
}
