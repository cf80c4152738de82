//! Progress curves: per generation every child's score as a point (filled: validated in full;
//! hollow: stopped by the staged gate, scored on its sample), the best so far as a step line, and
//! reference lines (the initial node; the domains' baselines by their mean task score on the test
//! sets). For several runs, their best-so-far curves side by side with the median and the band
//! from the lowest to the highest run.

use super::model::{NodeView, RunReport};
use super::svg::{esc, line, num, text};
use crate::evolution::log::Event;
use std::fmt::Write;

const WIDTH: f64 = 520.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 24.0;
const BOTTOM: f64 = 30.0;

/// A horizontal line at a score, with its label.
struct Reference {
    label: String,
    value: f64,
    class: &'static str,
}

/// The plotting area: generation and score to pixels.
struct Frame {
    generations: u32,
    lo: f64,
    hi: f64,
}

impl Frame {
    fn new(generations: u32, values: impl Iterator<Item = f64>) -> Frame {
        let (lo, hi) = values
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let (lo, hi) = if lo > hi { (0.0, 1.0) } else { (lo, hi) };
        let pad = ((hi - lo) * 0.08).max(1e-4);
        Frame { generations: generations.max(1), lo: lo - pad, hi: hi + pad }
    }

    fn x(&self, generation: f64) -> f64 {
        LEFT + generation / f64::from(self.generations) * (WIDTH - LEFT - RIGHT)
    }

    fn y(&self, value: f64) -> f64 {
        TOP + (self.hi - value) / (self.hi - self.lo) * (HEIGHT - TOP - BOTTOM)
    }

    fn open(&self, out: &mut String, title: &str, class: &str) {
        let _ = write!(
            out,
            r#"<svg class="chart {class}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}">"#,
            w = num(WIDTH),
            h = num(HEIGHT),
            t = esc(title)
        );
        text(out, LEFT, 14.0, "chart-title", title);
        let bottom = HEIGHT - BOTTOM;
        line(out, (LEFT, bottom), (WIDTH - RIGHT, bottom), "axis");
        line(out, (LEFT, TOP), (LEFT, bottom), "axis");
        for i in 0..=4 {
            let value = self.lo + (self.hi - self.lo) * f64::from(i) / 4.0;
            text(out, LEFT - 4.0, self.y(value) + 3.0, "tick end", &format!("{value:.4}"));
        }
        let step = (self.generations / 6).max(1);
        for g in (0..=self.generations).step_by(step as usize) {
            text(out, self.x(f64::from(g)), bottom + 14.0, "tick mid", &g.to_string());
        }
        text(out, WIDTH - RIGHT, bottom + 26.0, "tick end", "generation");
    }

    fn references(&self, out: &mut String, references: &[Reference]) {
        for (i, r) in references.iter().enumerate() {
            let y = self.y(r.value);
            line(out, (LEFT, y), (WIDTH - RIGHT, y), r.class);
            // Labels stack in the right margin so that close lines stay readable.
            text(
                out,
                WIDTH - RIGHT + 6.0,
                TOP + 12.0 * i as f64 + 8.0,
                &format!("label {}", r.class),
                &format!("{} {:.4}", r.label, r.value),
            );
        }
    }

    /// A step line through (generation, value) points sorted by generation.
    fn steps(&self, out: &mut String, points: &[(u32, f64)], class: &str) {
        let mut d = String::new();
        for (i, &(g, v)) in points.iter().enumerate() {
            let (x, y) = (num(self.x(f64::from(g))), num(self.y(v)));
            if i == 0 {
                let _ = write!(d, "M{x} {y}");
            } else {
                let _ = write!(d, "H{x}V{y}");
            }
        }
        if let Some(&(_, v)) = points.last() {
            let _ = write!(d, "H{}V{}", num(self.x(f64::from(self.generations))), num(self.y(v)));
        }
        let _ = write!(out, r#"<path class="{class}" d="{d}"/>"#);
    }
}

/// The best score so far at each generation where it changes.
pub fn best_so_far(points: &[(u32, f64)]) -> Vec<(u32, f64)> {
    let mut sorted = points.to_vec();
    sorted.sort_by_key(|p| p.0);
    let mut out: Vec<(u32, f64)> = Vec::new();
    for (g, v) in sorted {
        match out.last() {
            Some(&(_, best)) if v <= best => {}
            Some(&(last, _)) if last == g => *out.last_mut().expect("not empty") = (g, v),
            _ => out.push((g, v)),
        }
    }
    out
}

/// A node's score in one domain (`None`: the mean over domains, the selection score).
fn score_in(node: &NodeView, domain: Option<&str>) -> Option<f64> {
    match domain {
        None => node.score,
        Some(d) => node.detail.scores.iter().find(|s| s.domain == d).map(|s| s.score),
    }
}

/// The baselines of `domain` by their mean task score over its test sets.
fn baselines(tests: &[Event], domain: &str) -> Vec<Reference> {
    tests
        .iter()
        .filter_map(|e| match e {
            Event::Baseline { domain: d, baseline, sets } if d == domain && !sets.is_empty() => Some(Reference {
                label: format!("{baseline} (test)"),
                value: sets.iter().map(|s| s.report.score).sum::<f64>() / sets.len() as f64,
                class: "ref baseline",
            }),
            _ => None,
        })
        .collect()
}

/// One chart of a run: the mean over domains (`None`) or one domain.
fn chart(report: &RunReport, domain: Option<&str>) -> String {
    let points: Vec<(&NodeView, f64)> =
        report.nodes.iter().filter_map(|n| score_in(n, domain).filter(|v| v.is_finite()).map(|v| (n, v))).collect();
    let mut references = Vec::new();
    if let Some((_, v)) = points.iter().find(|(n, _)| n.parent.is_none()) {
        references.push(Reference { label: "initial".into(), value: *v, class: "ref initial" });
    }
    match domain {
        Some(d) => references.extend(baselines(&report.tests, d)),
        None if report.domains.len() == 1 => references.extend(baselines(&report.tests, &report.domains[0])),
        None => {}
    }
    let generations = report.nodes.iter().map(|n| n.generation).max().unwrap_or(0).max(report.generations_planned);
    let frame = Frame::new(generations, points.iter().map(|p| p.1).chain(references.iter().map(|r| r.value)));
    let title = match domain {
        Some(d) => format!("{d}: score per child"),
        None if report.domains.len() > 1 => "mean over domains: score per child".to_owned(),
        None => format!("{}: score per child", report.domains.first().map_or("score", |d| d.as_str())),
    };
    let mut out = String::new();
    frame.open(&mut out, &title, "progress");
    frame.references(&mut out, &references);
    for (node, value) in &points {
        let hollow = node.status != "evaluated";
        let _ = write!(
            out,
            r#"<circle class="{}" cx="{}" cy="{}" r="3"><title>{} gen {} · {}</title></circle>"#,
            if hollow { "pt staged" } else { "pt full" },
            num(frame.x(f64::from(node.generation))),
            num(frame.y(*value)),
            node.id.short(),
            node.generation,
            super::svg::score(Some(*value))
        );
    }
    let curve: Vec<(u32, f64)> = points.iter().map(|(n, v)| (n.generation, *v)).collect();
    frame.steps(&mut out, &best_so_far(&curve), "best-so-far");
    legend(&mut out);
    out.push_str("</svg>");
    out
}

fn legend(out: &mut String) {
    let y = HEIGHT - 6.0;
    let _ = write!(out, r#"<circle class="pt full" cx="{}" cy="{}" r="3"/>"#, num(LEFT), num(y - 3.0));
    text(out, LEFT + 6.0, y, "tick", "validated");
    let _ = write!(out, r#"<circle class="pt staged" cx="{}" cy="{}" r="3"/>"#, num(LEFT + 70.0), num(y - 3.0));
    text(out, LEFT + 76.0, y, "tick", "staged only");
    line(out, (LEFT + 150.0, y - 3.0), (LEFT + 166.0, y - 3.0), "best-so-far");
    text(out, LEFT + 170.0, y, "tick", "best so far");
}

/// A run's charts: the mean, then each domain when there are several.
pub fn render(report: &RunReport) -> String {
    let mut out = chart(report, None);
    if report.domains.len() > 1 {
        for domain in &report.domains {
            out.push_str(&chart(report, Some(domain)));
        }
    }
    out
}

/// Several runs' best-so-far curves, their median and the band from the lowest to the highest.
pub fn comparison(runs: &[RunReport]) -> String {
    let generations = runs.iter().flat_map(|r| r.nodes.iter().map(|n| n.generation)).max().unwrap_or(0);
    // Each run's best so far at every generation (none before its first scored node).
    let curves: Vec<Vec<Option<f64>>> = runs
        .iter()
        .map(|r| {
            let mut best: Option<f64> = None;
            (0..=generations)
                .map(|g| {
                    for v in r.nodes.iter().filter(|n| n.generation == g).filter_map(|n| n.score) {
                        best = Some(best.map_or(v, |b: f64| b.max(v)));
                    }
                    best
                })
                .collect()
        })
        .collect();
    let frame = Frame::new(generations, curves.iter().flatten().flatten().copied());
    let mut out = String::new();
    frame.open(&mut out, &format!("{} runs: best so far, median and range", runs.len()), "comparison");
    let column = |g: usize| -> Vec<f64> {
        let mut v: Vec<f64> = curves.iter().filter_map(|c| c[g]).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let (mut upper, mut lower, mut median) = (Vec::new(), Vec::new(), Vec::new());
    for g in 0..=generations as usize {
        let values = column(g);
        if let (Some(lo), Some(hi)) = (values.first(), values.last()) {
            let x = frame.x(g as f64);
            upper.push(format!("{} {}", num(x), num(frame.y(*hi))));
            lower.push(format!("{} {}", num(x), num(frame.y(*lo))));
            let mid = values.len() / 2;
            let m = if values.len() % 2 == 1 { values[mid] } else { (values[mid - 1] + values[mid]) / 2.0 };
            median.push(format!("{} {}", num(x), num(frame.y(m))));
        }
    }
    lower.reverse();
    if !upper.is_empty() {
        let _ = write!(out, r#"<path class="band" d="M{}L{}Z"/>"#, upper.join("L"), lower.join("L"));
    }
    for (run, curve) in runs.iter().zip(&curves) {
        let points: Vec<(u32, f64)> = curve.iter().enumerate().filter_map(|(g, v)| v.map(|v| (g as u32, v))).collect();
        let _ = write!(out, "<g><title>{}</title>", esc(&run.id));
        frame.steps(&mut out, &best_so_far(&points), "run-curve");
        out.push_str("</g>");
    }
    if !median.is_empty() {
        let _ = write!(out, r#"<path class="median" d="M{}"/>"#, median.join("L"));
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evolution::log::TestResult;
    use crate::hash::ContentHash;
    use crate::report::model::{DomainScores, NodeDetail};
    use std::sync::Arc;

    fn node(n: u8, generation: u32, scores: [f64; 2]) -> NodeView {
        let detail = NodeDetail {
            scores: ["a", "b"]
                .iter()
                .zip(scores)
                .map(|(d, s)| DomainScores {
                    domain: d.to_string(),
                    staged: Some(s),
                    train: Some(s),
                    validation: Some(s),
                    score: s,
                })
                .collect(),
            ..NodeDetail::default()
        };
        NodeView {
            id: ContentHash::of(&[n]),
            parent: (n > 0).then(|| ContentHash::of(&[0])),
            generation,
            slot: 0,
            status: "evaluated".into(),
            score: Some((scores[0] + scores[1]) / 2.0),
            detail: Arc::new(detail),
        }
    }

    #[test]
    fn several_domains_get_a_chart_each_beside_the_mean_with_their_baselines() {
        let report = |id: &str| RunReport {
            id: id.into(),
            config_toml: String::new(),
            domains: vec!["a".into(), "b".into()],
            generations_planned: 2,
            llm: false,
            provenance: Vec::new(),
            nodes: vec![node(0, 0, [0.5, 0.7]), node(1, 1, [0.6, 0.65]), node(2, 2, [0.4, 0.9])],
            best: None,
            finished: false,
            stopped: None,
            tests: vec![Event::Baseline {
                domain: "b".into(),
                baseline: "<majority>".into(),
                sets: vec![TestResult {
                    domain: "b".into(),
                    set: "test".into(),
                    generated: false,
                    report: hyperagent_domains::SetReport {
                        metric: "accuracy".into(),
                        value: 0.55,
                        lower_is_better: false,
                        score: 0.55,
                        invalid: 0,
                        figures: Vec::new(),
                    },
                }],
            }],
        };
        let svg = render(&report("one"));
        assert_eq!(svg.matches("<svg class=\"chart progress\"").count(), 3);
        assert!(svg.contains("mean over domains") && svg.contains(">a: score per child<"));
        // The baseline is drawn in its own domain's chart only, its name escaped.
        assert_eq!(svg.matches("&lt;majority&gt; (test) 0.5500").count(), 1);
        let two = comparison(&[report("one"), report("two")]);
        assert_eq!(two.matches("class=\"run-curve\"").count(), 2);
        assert_eq!(two.matches("class=\"median\"").count(), 1);
    }

    #[test]
    fn the_best_so_far_only_rises() {
        let points = [(0, 0.5), (1, 0.4), (1, 0.6), (2, 0.55), (3, 0.7)];
        assert_eq!(best_so_far(&points), vec![(0, 0.5), (1, 0.6), (3, 0.7)]);
    }
}
