//! `hyperagent run`: a run's options, its progress lines and its summary, and where runs live.

use super::terminal::{self, errln, outln};
use super::{new_sandbox, open_archive, ready_compiler};
use anyhow::{Context, Result, bail};
use hyperagent::evolution::config::RunConfig;
use hyperagent::evolution::log::{Event, RunLog};
use hyperagent::evolution::{Evolution, Progress, RunSetup, replay_index};
use hyperagent::experiment::summary::shown;
use hyperagent::llm::{Backend, Source};
use hyperagent::settings::Paths;
use std::io::IsTerminal;
use std::path::PathBuf;
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
