//! `hyperagent run`, `status`, `show` and `lineage`.

use super::terminal::{self, errln, outln};
use super::{new_sandbox, open_archive, ready_compiler};
use anyhow::{Context, Result, bail};
use hyperagent::archive::Archive;
use hyperagent::evolution::config::RunConfig;
use hyperagent::evolution::log::{Event, RunLog};
use hyperagent::evolution::{Evolution, Progress, RunSetup, replay_index};
use hyperagent::experiment::summary::shown;
use hyperagent::hash::ContentHash;
use hyperagent::llm::{Backend, Source};
use hyperagent::settings::Paths;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where meta agents' completions come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LlmMode {
    /// No LLM: meta agents get "not configured" and work offline.
    Off,
    /// The backend in the configuration's `[llm]` section.
    Live,
    /// Answers from the records of another run (`--replay-from`); the network is never used.
    Replay,
}

pub struct RunOptions {
    pub config: RunConfig,
    pub llm: Option<LlmMode>,
    pub replay_from: Option<String>,
    pub run_id: Option<String>,
    /// `Some(None)`: resume the latest run; `Some(Some(id))`: that run.
    pub resume: Option<Option<String>>,
    pub data_dir: PathBuf,
    /// The lab's key, to sign every run object with.
    pub signing_key: Option<ed25519_dalek::SigningKey>,
    /// Workers over NATS make the children (`--nats`), with this share spot-checked here.
    pub cluster: Option<(hyperagent::cluster::NatsSettings, hyperagent::cluster::coordinator::FarmOptions)>,
}

pub fn runs_dir(paths: &Paths) -> PathBuf {
    paths.home.join("runs")
}

/// The log of the run `id`.
pub fn run_log(paths: &Paths, id: &str) -> PathBuf {
    runs_dir(paths).join(id).join("log.jsonl")
}

/// The newest run id (ids sort by start time).
pub fn latest_run(paths: &Paths) -> Result<String> {
    let mut ids: Vec<String> = std::fs::read_dir(runs_dir(paths))
        .with_context(|| format!("no runs under {}", runs_dir(paths).display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("log.jsonl").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    ids.pop().with_context(|| format!("no runs under {}", runs_dir(paths).display()))
}

/// `YYYYMMDD-HHMMSS` in UTC: run ids sort by start time.
fn timestamp_id() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}-{:02}{:02}{:02}", rest / 3600, rest % 3600 / 60, rest % 60)
}

pub async fn run(paths: &Paths, options: RunOptions) -> Result<()> {
    let (run_id, resume) = match &options.resume {
        Some(Some(id)) => (id.clone(), true),
        Some(None) => (latest_run(paths)?, true),
        None => (options.run_id.clone().unwrap_or_else(timestamp_id), false),
    };
    let run_dir = runs_dir(paths).join(&run_id);
    let archive = open_archive(paths)?;
    let compiler = ready_compiler(paths, Duration::from_secs(300))?;
    let sandbox = new_sandbox(paths)?;
    let initial_agent = options.config.initial_agent.clone().unwrap_or_else(|| paths.guest_agents().join("initial"));
    let setup = RunSetup {
        archive,
        compiler: Arc::new(compiler),
        sandbox: Arc::new(sandbox),
        data_dir: options.data_dir.clone(),
        initial_agent,
    };
    for warning in options.config.warnings() {
        errln!("warning: {warning}");
    }
    let llm_config = options.config.llm.clone();
    // A replay must make the nodes the replayed run made; these are they.
    let mut expected = Vec::new();
    let mode = options.llm.unwrap_or(if llm_config.is_some() { LlmMode::Live } else { LlmMode::Off });
    let source = match mode {
        LlmMode::Off => None,
        LlmMode::Live => {
            let config = llm_config.context("--llm live needs an [llm] section in the run configuration")?;
            Some(Source::Live(Arc::new(Backend::new(config)?)))
        }
        LlmMode::Replay => {
            let from = options
                .replay_from
                .clone()
                .context("--llm replay needs --replay-from <run id>: the run whose records answer")?;
            let log = run_log(paths, &from);
            let events = RunLog::read(&log).with_context(|| format!("cannot read {}", log.display()))?;
            let index = replay_index(&setup.archive, &events)?;
            expected = events
                .iter()
                .filter_map(|e| match e {
                    Event::Node { generation, slot, node, .. } => Some((*generation, *slot, *node)),
                    _ => None,
                })
                .collect();
            errln!("replaying {} recorded LLM exchanges of run {from}; the network is not used", index.len());
            Some(Source::Replay(Arc::new(index)))
        }
    };
    if options.cluster.is_some() && matches!(source, Some(Source::Replay(_))) {
        bail!("--nats with --llm replay: a replay runs on this machine (drop --nats)");
    }
    let mut evolution = Evolution::open(options.config, run_dir.clone(), resume, setup)?;
    let mut coordinator = None;
    if let Some((settings, farm)) = &options.cluster {
        let say = Arc::new(|line: String| errln!("{line}"));
        let started = hyperagent::cluster::coordinator::Coordinator::start(settings, &run_dir, farm.clone(), say)
            .await
            .context("cannot coordinate workers")?;
        errln!("children are made by workers at {} (run {} on the server)", settings.url, started.run());
        let started = Arc::new(started);
        evolution = evolution.with_farm(started.clone());
        coordinator = Some(started);
    }
    if let Some(source) = source {
        evolution = evolution.with_llm(source);
    }
    if let Some(key) = options.signing_key {
        evolution = evolution.with_signing_key(key);
    }
    if !expected.is_empty() {
        evolution = evolution.expecting(expected);
    }
    if evolution.is_finished() {
        errln!("run {run_id} is already complete");
    } else {
        errln!(
            "{} run {run_id}: {} generations x {} children, seed {}, selection {:?}{}{}",
            if resume { "resuming" } else { "starting" },
            evolution.config.generations,
            evolution.config.children_per_generation,
            evolution.config.seed,
            evolution.config.selection,
            if evolution.config.fixed_meta { ", fixed meta agent" } else { "" },
            if evolution.config.no_archive { ", no archive" } else { "" },
        );
        let reporter = Reporter::new(evolution.config.generations);
        evolution.run(&|p| reporter.report(p)).await?;
        reporter.finish();
    }
    if let Some(coordinator) = coordinator {
        coordinator.finish().await.context("cannot close the run's session on the server")?;
    }
    if let Some(reason) = evolution.stopped() {
        errln!("the run stopped early: {reason}");
    }
    print_summary(&evolution)?;
    if let Ok(events) = RunLog::read(&run_dir.join("log.jsonl")) {
        super::llm_view::print_llm_usage(evolution.archive(), &events);
    }
    outln!("results: {} (log: {})", run_dir.display(), run_dir.join("log.jsonl").display());
    Ok(())
}

/// Progress bars on a terminal, plain lines otherwise.
struct Reporter {
    bar: Option<indicatif::ProgressBar>,
    best: Mutex<Option<f64>>,
}

impl Reporter {
    fn new(generations: u32) -> Reporter {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(u64::from(generations) + 1);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] gen {pos}/{len} {msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar
        });
        Reporter { bar, best: Mutex::new(None) }
    }

    fn report(&self, progress: Progress) {
        match progress {
            Progress::Generation { generation, .. } => {
                if let Some(bar) = &self.bar {
                    bar.set_position(u64::from(generation));
                }
            }
            Progress::Child { generation, slot, status, score, summary } => {
                let mut best = self.best.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(score) = score
                    && best.is_none_or(|b| score > b)
                {
                    *best = Some(score);
                }
                let score_text = score.map_or("-".to_owned(), |s| format!("{s:.5}"));
                let line = terminal::line(&format!(
                    "gen {generation:>3} slot {slot}: {status:<12} score {score_text} {summary}"
                ))
                .into_owned();
                match &self.bar {
                    Some(bar) => {
                        bar.set_message(format!("best {:.5}", best.unwrap_or(0.0)));
                        bar.println(line);
                    }
                    None => eprintln!("{line}"),
                }
            }
            Progress::Testing { node } => self.say(format!("evaluating node {} on the test sets", node.short())),
            Progress::Notice(notice) => self.say(format!("note: {notice}")),
        }
    }

    fn say(&self, line: String) {
        match &self.bar {
            Some(bar) => bar.println(terminal::line(&line)),
            None => errln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn print_summary(evolution: &Evolution) -> Result<()> {
    let best = evolution.best().context("no evaluated node")?;
    outln!(
        "best node {} (generation {}, validation score {:.5}): {}",
        best.id.short(),
        best.generation,
        best.score.unwrap_or(0.0),
        terminal::line(&best.summary)
    );
    print_test_table(evolution.test_events());
    Ok(())
}

/// The test table: per domain, every test set with the domain's baselines, the initial node and
/// the best node, in the domain's own metric.
pub fn print_test_table(events: &[Event]) {
    let mut columns: Vec<(String, String)> = Vec::new(); // (domain, baseline)
    let mut sets: Vec<(String, String, bool)> = Vec::new(); // (domain, set, generated)
    let mut metric: std::collections::BTreeMap<String, (String, bool)> = Default::default();
    // A domain's sets may be measured differently (a jump's height beside a walk's fitness).
    let mut set_metric: std::collections::BTreeMap<(String, String), String> = Default::default();
    for event in events {
        let results = match event {
            Event::Baseline { domain, baseline, sets } => {
                columns.push((domain.clone(), baseline.clone()));
                sets
            }
            Event::Test { sets, .. } => sets,
            _ => continue,
        };
        for result in results {
            let key = (result.domain.clone(), result.set.clone(), result.generated);
            if !sets.contains(&key) {
                sets.push(key);
            }
            metric.insert(result.domain.clone(), (result.report.metric.clone(), result.report.lower_is_better));
            set_metric.insert((result.domain.clone(), result.set.clone()), result.report.metric.clone());
        }
    }
    let report_of = |wanted: &str, domain: &str, set: &str| {
        events.iter().find_map(|e| {
            let (name, results) = match e {
                Event::Test { role, sets, .. } => (role, sets),
                Event::Baseline { domain: d, baseline, sets } if d == domain => (baseline, sets),
                _ => return None,
            };
            (name == wanted).then(|| results.iter().find(|r| r.domain == domain && r.set == set)).flatten()
        })
    };
    for (domain, (metric, lower_is_better)) in &metric {
        let better = if *lower_is_better { "lower" } else { "higher" };
        let own: Vec<(&String, &String)> =
            set_metric.iter().filter(|((d, _), _)| d == domain).map(|((_, s), m)| (s, m)).collect();
        if own.iter().all(|(_, m)| *m == metric) {
            outln!("{domain}: {metric} on the test sets ({better} is better):");
        } else {
            let each: Vec<String> = own.iter().map(|(s, m)| format!("{s}: {m}")).collect();
            outln!("{domain} on the test sets ({}; {better} is better):", each.join(", "));
        }
        let baselines: Vec<&str> = columns.iter().filter(|(d, _)| d == domain).map(|(_, b)| b.as_str()).collect();
        let mut header = format!("  {:<24}", "set");
        for name in baselines.iter().copied().chain(["initial", "best node"]) {
            header.push_str(&format!(" {name:>10}"));
        }
        outln!("{header}");
        for (_, set, generated) in sets.iter().filter(|(d, ..)| d == domain) {
            let this_metric = set_metric.get(&(domain.clone(), set.clone())).unwrap_or(metric);
            let label =
                if *generated && !set.contains("generated") { format!("{set} (generated)") } else { set.clone() };
            // The domain's metric, then its further figures (e.g. a points error), one row each.
            let figure_names: Vec<String> = report_of("best", domain, set)
                .map(|r| r.report.figures.iter().map(|f| f.metric.clone()).collect())
                .unwrap_or_default();
            for figure in std::iter::once(None).chain(figure_names.iter().map(Some)) {
                let value = |name: &str| {
                    report_of(name, domain, set).and_then(|r| match figure {
                        None => Some(r.report.value),
                        Some(f) => r.report.figures.iter().find(|x| &x.metric == f).map(|x| x.value),
                    })
                };
                let mut row = match figure {
                    None => format!("  {label:<24}"),
                    Some(f) => format!("  {:<24}", format!("  · {f}")),
                };
                let show = |v| shown(figure.map_or(this_metric.as_str(), |f| f.as_str()), v);
                for name in &baselines {
                    row.push_str(&format!(" {:>10}", show(value(name))));
                }
                // When the best node is the initial one, it was tested once, as "best".
                let initial = value("initial").or_else(|| value("best"));
                row.push_str(&format!(" {:>10} {:>10}", show(initial), show(value("best"))));
                outln!("{row}");
            }
        }
    }
}

pub fn resolve_run(paths: &Paths, run: Option<String>) -> Result<(String, Vec<Event>)> {
    let id = match run {
        Some(id) => id,
        None => latest_run(paths)?,
    };
    let log = run_log(paths, &id);
    let events = RunLog::read(&log).with_context(|| format!("cannot read the run log {}", log.display()))?;
    Ok((id, events))
}

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
    for event in &events {
        match event {
            Event::Finished { best } => outln!("finished; best node {}", best.short()),
            Event::Stopped { reason } => outln!("stopped early: {}", terminal::line(reason)),
            _ => {}
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
fn run_of_node(paths: &Paths, node: &ContentHash) -> Result<String> {
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
