//! `hyperagent transfer --from <node> --to <domain> --k K`: imp@k, how much a meta agent improves
//! a task agent it did not grow up with.
//!
//! imp@k(M, A) is the test value of the best (by validation) of the k children that meta agent M
//! makes from agent A with M held fixed, minus A's own test value. Here A is the archived node's
//! whole source (in a single code base, the target domain's task agent in it is whatever the node
//! carries: the initial one when the node's run never trained that domain), and the k children
//! come from a fixed-meta run of k generations of one child each in the target domain, whose
//! initial hyperagent is the node. The same run from the initial hyperagent is the reference.

use super::experiment::ensure_run;
use super::terminal::{errln, outln};
use anyhow::{Context, Result, bail};
use hyperagent::evolution::config::RunConfig;
use hyperagent::experiment::{RunResults, test_results};
use hyperagent::hash::ContentHash;
use hyperagent::settings::Paths;
use std::path::PathBuf;

pub struct TransferArgs {
    pub from: String,
    pub to: String,
    pub k: u32,
    pub seed: u64,
    /// A run configuration whose other settings (fuel, the domain's table...) the runs keep.
    pub base: Option<RunConfig>,
    pub data_dir: PathBuf,
}

pub async fn transfer(paths: &Paths, args: TransferArgs) -> Result<()> {
    if args.k == 0 {
        bail!("--k must be at least 1");
    }
    let archive = super::open_archive(paths)?;
    let node = super::inspect::find_node(&archive, &args.from)?;
    let agent = materialise(paths, &archive, &node)?;
    let base = args.base.clone().unwrap_or_default();
    let config = |initial_agent: Option<PathBuf>| -> Result<RunConfig> {
        let config = RunConfig {
            domains: vec![args.to.clone()],
            generations: args.k,
            children_per_generation: 1,
            fixed_meta: true,
            no_archive: false,
            seed: args.seed,
            initial_agent,
            ..base.clone()
        };
        config.validate().map_err(anyhow::Error::msg)?;
        Ok(config)
    };
    let cells = [
        (format!("transfer-{}-{}-k{}-s{}", node.short(), args.to, args.k, args.seed), config(Some(agent.clone()))?),
        (format!("transfer-initial-{}-k{}-s{}", args.to, args.k, args.seed), config(base.initial_agent.clone())?),
    ];
    let mut gains = Vec::new();
    for (index, (run_id, config)) in cells.iter().enumerate() {
        let progress = format!("[{}/2] {run_id}", index + 1);
        let events = ensure_run(paths, run_id, config, &args.data_dir, &progress).await?;
        let best = test_results(&events, "best").context("the run has no tested best node")?;
        // When the best node is the initial one, it was tested once, as "best".
        let initial = test_results(&events, "initial").unwrap_or_else(|| best.clone());
        gains.push((run_id.clone(), initial, best));
    }
    print_table(&node, &args, &gains);
    outln!("the transferred hyperagent's source: {} (an `initial_agent` for further runs)", agent.display());
    Ok(())
}

/// Writes the node's source under `<home>/transfers/<tree hash>/` (once: the name is its hash).
fn materialise(paths: &Paths, archive: &hyperagent::archive::Archive, node: &ContentHash) -> Result<PathBuf> {
    let record = archive.get_node(node)?;
    if record.component.is_none() {
        bail!("node {} did not build: there is no meta agent to transfer", node.short());
    }
    let dir = paths.home.join("transfers").join(record.tree.to_hex());
    if !dir.is_dir() {
        let tree = archive.get_tree(&record.tree)?;
        let staging = paths.home.join("transfers").join(format!(".{}.partial", record.tree.to_hex()));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging).with_context(|| format!("cannot create {}", staging.display()))?;
        tree.write_to(&staging).with_context(|| format!("cannot write {}", staging.display()))?;
        std::fs::rename(&staging, &dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    errln!("transferring node {} (source {})", node.short(), dir.display());
    Ok(dir)
}

fn print_table(node: &ContentHash, args: &TransferArgs, gains: &[(String, RunResults, RunResults)]) {
    outln!(
        "imp@{} on {} (test value of the best of {} fixed-meta children by validation, minus the starting \
         agent's), seed {}:",
        args.k,
        args.to,
        args.k,
        args.seed
    );
    outln!("  {:<28} {:<20} {:>10} {:>10} {:>10}", "meta agent", "set", "start", "best", "imp@k");
    for ((_, start, best), who) in gains.iter().zip([format!("node {}", node.short()), "initial".to_owned()]) {
        for ((domain, set), (metric, lower_is_better, value)) in best {
            let Some((_, _, before)) = start.get(&(domain.clone(), set.clone())) else { continue };
            // imp@k is a gain: for a metric where lower is better, a drop counts as positive.
            let gain = if *lower_is_better { before - value } else { value - before };
            outln!(
                "  {:<28} {:<20} {:>9.2}% {:>9.2}% {:>+9.2}%  ({metric})",
                who,
                super::terminal::line(set),
                before * 100.0,
                value * 100.0,
                gain * 100.0
            );
        }
    }
}
