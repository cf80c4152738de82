//! `hyperagent status`, `show` and `lineage`: what a run and its nodes hold.

use super::open_archive;
use super::run::{print_test_table, resolve_run, run_log, runs_dir};
use super::terminal::{self, outln};
use anyhow::{Context, Result, bail};
use hyperagent::archive::Archive;
use hyperagent::evolution::log::{Event, RunLog};
use hyperagent::hash::ContentHash;
use hyperagent::settings::Paths;

pub fn status(paths: &Paths, run: Option<String>) -> Result<()> {
    let (id, events) = resolve_run(paths, run)?;
    let archive = open_archive(paths)?;
    outln!("run {id}");
    outln!(
        "{:<13} {:<13} {:>4} {:>4} {:<12} {:>9} {:>9} {:>14}  change",
        "node",
        "parent",
        "gen",
        "slot",
        "status",
        "staged",
        "score",
        "eval fuel"
    );
    let mut disagreements = Vec::new();
    for event in &events {
        let Event::Node { generation, slot, node, parent, score, status } = event else { continue };
        // The table shows what the log says only where the node says the same; otherwise loudly.
        let mark = match hyperagent::audit::node_event_agrees(&archive, event) {
            Ok(()) => "",
            Err(why) => {
                disagreements.push(format!("{}: {why}", node.short()));
                " !"
            }
        };
        let metadata = archive.get_node(node).map(|n| n.metadata).unwrap_or_default();
        let evaluation = metadata.get("evaluation");
        let domains = evaluation.and_then(|e| e["domains"].as_array()).cloned().unwrap_or_default();
        // The staged sample's mean, over the domains.
        let staged = (!domains.is_empty())
            .then(|| domains.iter().filter_map(|d| d["staged"]["mean"].as_f64()).sum::<f64>() / domains.len() as f64);
        let fuel = evaluation.and_then(|e| e["fuel"].as_u64());
        let summary = metadata.get("meta").and_then(|m| m["summary"].as_str()).unwrap_or("");
        // With several domains, each one's score before the change.
        let per_domain: String = if domains.len() > 1 {
            let parts: Vec<String> = domains
                .iter()
                .map(|d| format!("{} {:.3}", d["domain"].as_str().unwrap_or("?"), d["score"].as_f64().unwrap_or(0.0)))
                .collect();
            format!("[{}] ", parts.join(", "))
        } else {
            String::new()
        };
        outln!(
            "{:<13} {:<13} {generation:>4} {slot:>4} {status:<12} {:>9} {:>9} {:>14}  {per_domain}{}{mark}",
            node.short(),
            parent.map_or("-".to_owned(), |p| p.short()),
            staged.map_or("-".to_owned(), |s| format!("{s:.5}")),
            score.map_or("-".to_owned(), |s| format!("{s:.5}")),
            fuel.map_or("-".to_owned(), |f| f.to_string()),
            summary.chars().take(80).collect::<String>()
        );
    }
    for disagreement in &disagreements {
        outln!("WARNING: the log and the archive disagree about node {disagreement}");
    }
    let mut ended = false;
    for event in &events {
        match event {
            Event::Finished { best } => outln!("finished; best node {}", best.short()),
            Event::Stopped { reason } => outln!("stopped early: {}", terminal::line(reason)),
            _ => continue,
        }
        ended = true;
    }
    if !ended {
        // The log's lock tells a run that goes on from one that was cut short.
        if RunLog::in_use(&run_log(paths, &id)) {
            outln!("in progress: another process is writing this run");
        } else {
            outln!("not running and not finished: `hyperagent run --resume {}` goes on with it", terminal::line(&id));
        }
    }
    print_test_table(&events);
    super::llm_view::print_llm_usage(&archive, &events);
    print_parent_choice(&archive, &events);
    Ok(())
}

/// The nodes most likely to be chosen as the next generation's parents, with what the run's rule
/// judges them by (own and clade results are task-level: passes of tasks).
fn print_parent_choice(archive: &Archive, events: &[Event]) {
    const SHOWN: usize = 10;
    let Some(Event::Started { config, .. }) = events.first() else { return };
    let mut nodes = Vec::new();
    for event in events {
        if let Event::Node { node, .. } = event
            && let Ok(record) = hyperagent::evolution::node_record(archive, node)
        {
            hyperagent::evolution::enter_node(&mut nodes, record);
        }
    }
    let rule = hyperagent::evolution::effective_rule(config);
    if rule == hyperagent::evolution::selection::Selection::Agent {
        print_selector_events(events);
        return;
    }
    let stats = hyperagent::evolution::selection_view(&nodes, rule);
    let mut ranked: Vec<usize> = (0..nodes.len()).filter(|&i| stats[i].chance > 0.0).collect();
    if ranked.is_empty() {
        return;
    }
    ranked.sort_by(|&a, &b| stats[b].chance.total_cmp(&stats[a].chance).then(a.cmp(&b)));
    let label = serde_json::to_value(rule).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    outln!("next parent choice ({label}; {} of {} candidates shown)", ranked.len().min(SHOWN), ranked.len());
    outln!("{:<13} {:>8} {:>16} {:>16} {:>10}", "node", "chance", "own", "clade", "clade mean");
    let tally = |t: hyperagent::evolution::selection::Tally| format!("{:.1}/{}", t.passes, t.tasks);
    for &i in ranked.iter().take(SHOWN) {
        let s = &stats[i];
        outln!(
            "{:<13} {:>8.4} {:>16} {:>16} {:>10.4}",
            nodes[i].id.short(),
            s.chance,
            tally(s.own),
            tally(s.clade),
            s.clade.posterior_mean()
        );
    }
}

/// Under `selection = "agent"`: which selector chose each generation's parents, and why a
/// generation fell back to the host's rule.
fn print_selector_events(events: &[Event]) {
    let choices: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Selection { generation, selector, parents, fallback } => {
                Some((generation, selector, parents, fallback))
            }
            _ => None,
        })
        .collect();
    let fell_back = choices.iter().filter(|c| c.3.is_some()).count();
    outln!(
        "parent choice by the hyperagents' selectors: {} generation(s), {} chosen by a selector, {fell_back} by the fallback rule",
        choices.len(),
        choices.len() - fell_back
    );
    for (generation, selector, parents, fallback) in choices {
        let parents: Vec<String> = parents.iter().map(|p| p.short()).collect();
        let by = selector.map_or("-".to_owned(), |s| s.short());
        match fallback {
            None => outln!("  generation {generation:>4}: selector {by} chose {}", parents.join(", ")),
            Some(why) => {
                outln!("  generation {generation:>4}: fallback {} ({})", parents.join(", "), terminal::line(why))
            }
        }
    }
}

/// Finds a node by its full hash or a unique prefix.
pub fn find_node(archive: &Archive, text: &str) -> Result<ContentHash> {
    if let Ok(hash) = text.parse() {
        return Ok(hash);
    }
    let matches: Vec<ContentHash> =
        archive.node_ids()?.into_iter().filter(|id| id.to_hex().starts_with(text)).collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => bail!("no node starts with `{text}`"),
        _ => bail!("`{text}` matches {} nodes; give more digits", matches.len()),
    }
}

/// The meta call that made a node: its change, rationale, ending, log and tool uses.
fn print_meta_call(meta: &serde_json::Value) {
    outln!("change     {}", meta["summary"].as_str().unwrap_or("-"));
    if let Some(rationale) = meta["rationale"].as_str().filter(|r| !r.is_empty()) {
        outln!("rationale:");
        println!("{}", terminal::block(rationale, "  "));
    }
    if let Some(outcome) = meta.get("outcome") {
        outln!("meta call  {outcome} ({} fuel)", meta["fuel"]);
    }
    // What the meta agent said while it worked: why an edit was refused, what it fell back to.
    if let Some(logs) = meta["logs"].as_array().filter(|l| !l.is_empty()) {
        outln!("meta agent's log ({} line(s)):", logs.len());
        for line in logs {
            let level = line["level"].as_str().unwrap_or("?");
            outln!("  [{level}] {}", terminal::line(line["message"].as_str().unwrap_or("")));
        }
    }
    if let Some(tools) = meta["tools"].as_array().filter(|t| !t.is_empty()) {
        outln!("host tools used ({}):", tools.len());
        for tool in tools {
            let target = tool["target"].as_str().map(|t| format!(" {t}")).unwrap_or_default();
            let fuel = tool["fuel"].as_u64().map(|f| format!(" ({f} fuel)")).unwrap_or_default();
            let result = tool["result"].as_str().unwrap_or("");
            outln!("  {}{target} -> {result}{fuel}", tool["tool"].as_str().unwrap_or("?"));
        }
    }
}

pub fn show(paths: &Paths, node: &str) -> Result<()> {
    let archive = open_archive(paths)?;
    let id = find_node(&archive, node)?;
    let node = archive.get_node(&id)?;
    outln!("node       {id}");
    outln!("parent     {}", node.parent.map_or("-".to_owned(), |p| p.to_hex()));
    outln!("tree       {}", node.tree);
    outln!("component  {}", node.component.map_or("-".to_owned(), |c| c.to_hex()));
    for key in ["generation", "slot", "status", "score"] {
        if let Some(value) = node.metadata.get(key) {
            outln!("{key:<10} {value}");
        }
    }
    if let Some(meta) = node.metadata.get("meta") {
        print_meta_call(meta);
    }
    if let Some(evaluation) = node.metadata.get("evaluation") {
        let split = |name: &str| evaluation[name]["mean"].as_f64().map_or("-".to_owned(), |m| format!("{m:.5}"));
        outln!("scores     staged {} | train {} | validation {}", split("staged"), split("train"), split("validation"));
    }
    if let Some(build) = node.metadata.get("build").filter(|b| !b.is_null()) {
        if let Some(diagnostics) = build["diagnostics"].as_str() {
            outln!("build failed:");
            println!("{}", terminal::block(diagnostics, "  "));
        }
        if let Some(violations) = build["violations"].as_array() {
            outln!("refused by the source policy:");
            for v in violations {
                outln!("  {}", v.as_str().unwrap_or(""));
            }
        }
    }
    if let Some(records) = node.metadata.get("llm").and_then(|l| l.as_array()) {
        let records: Vec<ContentHash> = records.iter().filter_map(|r| r.as_str()?.parse().ok()).collect();
        super::llm_view::print_conversation(&archive, &records)?;
    }
    if let Some(parent) = node.parent {
        let parent_tree = archive.get_tree(&archive.get_node(&parent)?.tree)?;
        let tree = archive.get_tree(&node.tree)?;
        outln!("diff against the parent:");
        let paths: std::collections::BTreeSet<_> = parent_tree.files.keys().chain(tree.files.keys()).collect();
        for path in paths {
            let old =
                parent_tree.files.get(path).map(|f| String::from_utf8_lossy(&f.bytes).into_owned()).unwrap_or_default();
            let new = tree.files.get(path).map(|f| String::from_utf8_lossy(&f.bytes).into_owned()).unwrap_or_default();
            if old != new {
                let diff = similar::TextDiff::from_lines(&old, &new);
                let diff = diff
                    .unified_diff()
                    .context_radius(2)
                    .header(&format!("a/{path}"), &format!("b/{path}"))
                    .to_string();
                println!("{}", terminal::block(&diff, ""));
            }
        }
    }
    Ok(())
}

pub fn lineage(paths: &Paths, node: &str) -> Result<()> {
    let archive = open_archive(paths)?;
    let mut cursor = Some(find_node(&archive, node)?);
    let mut chain = Vec::new();
    while let Some(id) = cursor {
        let node = archive.get_node(&id)?;
        cursor = node.parent;
        chain.push((id, node));
        if chain.len() > 100_000 {
            bail!("the lineage does not end: the archive has a cycle");
        }
    }
    chain.reverse();
    outln!("{:<13} {:>4} {:>9}  change", "node", "gen", "score");
    for (id, node) in chain {
        let score = node.metadata.get("score").and_then(|s| s.as_f64()).map_or("-".to_owned(), |s| format!("{s:.5}"));
        let generation = node.metadata.get("generation").and_then(|g| g.as_u64()).unwrap_or(0);
        let summary = node.metadata.get("meta").and_then(|m| m["summary"].as_str()).unwrap_or("");
        outln!("{:<13} {generation:>4} {score:>9}  {summary}", id.short());
    }
    Ok(())
}

/// The run whose log names `node`.
pub fn run_of_node(paths: &Paths, node: &ContentHash) -> Result<String> {
    for entry in
        std::fs::read_dir(runs_dir(paths)).with_context(|| format!("no runs under {}", runs_dir(paths).display()))?
    {
        let entry = entry?;
        let log = entry.path().join("log.jsonl");
        if let Ok(events) = RunLog::read(&log)
            && events.iter().any(|e| matches!(e, Event::Node { node: n, .. } if n == node))
        {
            return Ok(entry.file_name().to_string_lossy().into_owned());
        }
    }
    bail!("no run's log names node {}", node.short())
}
