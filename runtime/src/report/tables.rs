//! The run's tables: the test sets (per domain: its baselines, the initial node and the best
//! node, in the domain's own metric), the provenance of the host that ran it, and the commands
//! that replay it.

use super::model::RunReport;
use super::svg::esc;
use crate::evolution::log::{Event, TestResult};
use std::fmt::Write;

/// One row's figure: the domain's metric (`None`) or one of its further figures.
fn figure(result: &TestResult, name: Option<&str>) -> Option<f64> {
    match name {
        None => Some(result.report.value),
        Some(f) => result.report.figures.iter().find(|x| x.metric == f).map(|x| x.value),
    }
}

fn percent(value: Option<f64>) -> String {
    value.map_or("–".to_owned(), |v| format!("{:.2}%", 100.0 * v))
}

/// The result named `wanted` (a test role or a baseline) for one set.
fn result<'a>(tests: &'a [Event], wanted: &str, domain: &str, set: &str) -> Option<&'a TestResult> {
    tests.iter().find_map(|e| {
        let (name, results) = match e {
            Event::Test { role, sets, .. } => (role, sets),
            Event::Baseline { domain: d, baseline, sets } if d == domain => (baseline, sets),
            _ => return None,
        };
        (name == wanted).then(|| results.iter().find(|r| r.domain == domain && r.set == set)).flatten()
    })
}

/// The test table, one per domain.
pub fn tests(report: &RunReport) -> String {
    let mut out = String::new();
    let mut domains: Vec<(String, String, bool)> = Vec::new();
    for event in &report.tests {
        let (Event::Test { sets, .. } | Event::Baseline { sets, .. }) = event else { continue };
        for r in sets {
            if !domains.iter().any(|d| d.0 == r.domain) {
                domains.push((r.domain.clone(), r.report.metric.clone(), r.report.lower_is_better));
            }
        }
    }
    if domains.is_empty() {
        return "<p class=\"note\">No test results yet: the run tests its best node when it finishes.</p>".into();
    }
    for (domain, metric, lower) in &domains {
        domain_table(&mut out, &report.tests, domain, metric, *lower);
    }
    out
}

fn domain_table(out: &mut String, tests: &[Event], domain: &str, metric: &str, lower: bool) {
    let baselines: Vec<&str> = tests
        .iter()
        .filter_map(|e| match e {
            Event::Baseline { domain: d, baseline, .. } if d == domain => Some(baseline.as_str()),
            _ => None,
        })
        .collect();
    let mut sets: Vec<(&str, bool)> = Vec::new();
    for event in tests {
        let (Event::Test { sets: results, .. } | Event::Baseline { sets: results, .. }) = event else { continue };
        for r in results.iter().filter(|r| r.domain == domain) {
            if !sets.iter().any(|(s, _)| *s == r.set) {
                sets.push((&r.set, r.generated));
            }
        }
    }
    let _ = write!(
        out,
        "<table class=\"tests\"><caption>{}: {} on the test sets ({} is better)</caption><tr><th>set</th>",
        esc(domain),
        esc(metric),
        if lower { "lower" } else { "higher" }
    );
    for name in baselines.iter().copied().chain(["initial", "best node"]) {
        let _ = write!(out, "<th>{}</th>", esc(name));
    }
    out.push_str("</tr>");
    for (set, generated) in sets {
        let label = if generated && !set.contains("generated") { format!("{set} (generated)") } else { set.to_owned() };
        let names: Vec<String> = result(tests, "best", domain, set)
            .map(|r| r.report.figures.iter().map(|f| f.metric.clone()).collect())
            .unwrap_or_default();
        for name in std::iter::once(None).chain(names.iter().map(|n| Some(n.as_str()))) {
            let value = |who: &str| result(tests, who, domain, set).and_then(|r| figure(r, name));
            let head = match name {
                None => esc(&label).into_owned(),
                Some(f) => format!("· {}", esc(f)),
            };
            let _ = write!(out, "<tr><td>{head}</td>");
            for b in &baselines {
                let _ = write!(out, "<td>{}</td>", percent(value(b)));
            }
            // When the best node is the initial one, it was tested once, as "best".
            let initial = value("initial").or_else(|| value("best"));
            let _ = write!(out, "<td>{}</td><td class=\"best\">{}</td></tr>", percent(initial), percent(value("best")));
        }
    }
    out.push_str("</table>");
}

/// The host and toolchain that made the run.
pub fn provenance(report: &RunReport) -> String {
    let mut out = String::from("<dl class=\"provenance\">");
    for (key, value) in &report.provenance {
        let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", esc(key), esc(value));
    }
    out.push_str("</dl>");
    out
}

/// The commands that check the run again from its records.
pub fn replay_commands(report: &RunReport) -> Vec<String> {
    let id = shell_word(&report.id);
    let mut commands = vec![format!("hyperagent replay --run {id}"), format!("hyperagent verify")];
    if report.llm {
        commands
            .push(format!("hyperagent run --config run.toml --llm replay --replay-from {id} --run-id {id}-replayed"));
    } else {
        commands.push(format!("hyperagent run --config run.toml --run-id {id}-again"));
    }
    commands
}

/// `text` quoted for a POSIX shell unless it needs no quotes.
fn shell_word(text: &str) -> String {
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c)) {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}
