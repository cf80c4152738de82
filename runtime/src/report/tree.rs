//! The archive tree: one column per generation, one row per leaf, a parent on the row of its
//! first child, so that a lineage reads as a straight line and the tree needs as many rows as it
//! has leaves. Nodes are coloured by score; failures have shapes of their own; the best node and
//! its ancestors are marked.

use super::model::{NodeView, RunReport};
use super::svg::{class_name, esc, num, ramp, score, text};
use crate::hash::ContentHash;
use std::collections::{HashMap, HashSet};
use std::fmt::Write;

/// Widest a tree is drawn, in pixels, before columns shrink to fit.
const TARGET_WIDTH: f64 = 1100.0;
const MARGIN_LEFT: f64 = 30.0;
const MARGIN_TOP: f64 = 28.0;

/// Where each node is drawn: its column and row.
pub struct Layout {
    pub position: Vec<(u32, usize)>,
    pub rows: usize,
    pub generations: u32,
}

/// Rows by a depth-first walk from each root, children in (generation, slot) order.
pub fn layout(nodes: &[NodeView]) -> Layout {
    let index: HashMap<ContentHash, usize> = nodes.iter().enumerate().map(|(i, n)| (n.id, i)).collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    let mut roots = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        match node.parent.and_then(|p| index.get(&p)) {
            Some(&p) if p != i => children[p].push(i),
            _ => roots.push(i),
        }
    }
    for list in &mut children {
        list.sort_by_key(|&c| (nodes[c].generation, nodes[c].slot));
    }
    let mut row: Vec<Option<usize>> = vec![None; nodes.len()];
    let mut next_row = 0;
    // Iterative post-order: a lineage of thousands must not overflow the stack.
    let mut stack: Vec<(usize, bool)> = roots.iter().rev().map(|&r| (r, false)).collect();
    let mut seen = vec![false; nodes.len()];
    while let Some((i, expanded)) = stack.pop() {
        if expanded {
            row[i] = Some(children[i].iter().find_map(|&c| row[c]).unwrap_or_else(|| {
                next_row += 1;
                next_row - 1
            }));
            continue;
        }
        if std::mem::replace(&mut seen[i], true) {
            continue; // a cycle in a forged log: drawn once
        }
        stack.push((i, true));
        stack.extend(children[i].iter().rev().filter(|&&c| !seen[c]).map(|&c| (c, false)));
    }
    // Anything a cycle kept out of the walk still gets a row of its own.
    let position = nodes
        .iter()
        .zip(row)
        .map(|(n, r)| {
            (
                n.generation,
                r.unwrap_or_else(|| {
                    next_row += 1;
                    next_row - 1
                }),
            )
        })
        .collect();
    let generations = nodes.iter().map(|n| n.generation).max().unwrap_or(0);
    Layout { position, rows: next_row, generations }
}

/// The best node and its ancestors within the run.
pub fn lineage(report: &RunReport) -> HashSet<ContentHash> {
    let parents: HashMap<ContentHash, Option<ContentHash>> = report.nodes.iter().map(|n| (n.id, n.parent)).collect();
    let mut set = HashSet::new();
    let mut cursor = report.best;
    while let Some(id) = cursor {
        if !set.insert(id) {
            break;
        }
        cursor = parents.get(&id).copied().flatten();
    }
    set
}

/// The tree as an SVG element.
pub fn render(report: &RunReport) -> String {
    let layout = layout(&report.nodes);
    let column = (TARGET_WIDTH / f64::from(layout.generations + 1)).clamp(6.0, 70.0);
    let row_height = if layout.rows > 300 { 7.0 } else { 14.0 };
    let x = |g: u32| MARGIN_LEFT + f64::from(g) * column;
    let y = |r: usize| MARGIN_TOP + r as f64 * row_height;
    let width = x(layout.generations) + 40.0;
    let height = y(layout.rows.max(1)) + 10.0;
    let on_lineage = lineage(report);
    let (lo, hi) = score_range(&report.nodes);
    let mut out = String::with_capacity(report.nodes.len() * 260);
    let _ = write!(
        out,
        r#"<svg class="tree" id="tree-{id}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="archive tree of run {id}">"#,
        id = esc(&report.id),
        w = num(width),
        h = num(height)
    );
    axis(&mut out, layout.generations, column, &x);
    let index: HashMap<ContentHash, usize> = report.nodes.iter().enumerate().map(|(i, n)| (n.id, i)).collect();
    out.push_str(r#"<g class="edges">"#);
    for (i, node) in report.nodes.iter().enumerate() {
        let Some(&p) = node.parent.and_then(|p| index.get(&p)) else { continue };
        let ((pg, pr), (g, r)) = (layout.position[p], layout.position[i]);
        let class = if on_lineage.contains(&node.id) { "edge lineage" } else { "edge" };
        let _ =
            write!(out, r#"<path class="{class}" d="M{} {}V{}H{}"/>"#, num(x(pg)), num(y(pr)), num(y(r)), num(x(g)));
    }
    out.push_str("</g><g class=\"nodes\">");
    for (node, &(g, r)) in report.nodes.iter().zip(&layout.position) {
        node_mark(&mut out, report, node, (x(g), y(r)), on_lineage.contains(&node.id), (lo, hi));
    }
    out.push_str("</g></svg>");
    out
}

fn axis(out: &mut String, generations: u32, column: f64, x: &dyn Fn(u32) -> f64) {
    let step = ((40.0 / column).ceil() as u32).max(1);
    out.push_str(r#"<g class="axis">"#);
    for g in (0..=generations).step_by(step as usize) {
        text(out, x(g), 14.0, "tick", &g.to_string());
    }
    out.push_str("</g>");
}

/// The lowest and highest score among the nodes (the colour ramp's ends).
pub fn score_range(nodes: &[NodeView]) -> (f64, f64) {
    let scores = nodes.iter().filter_map(|n| n.score).filter(|s| s.is_finite());
    let (lo, hi) = scores.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), s| (lo.min(s), hi.max(s)));
    if lo > hi { (0.0, 1.0) } else { (lo, hi) }
}

/// One node: a shape by status, coloured by score, with a tooltip.
fn node_mark(
    out: &mut String,
    report: &RunReport,
    node: &NodeView,
    (cx, cy): (f64, f64),
    lineage: bool,
    (lo, hi): (f64, f64),
) {
    let status = class_name(&node.status);
    let best = report.best == Some(node.id);
    let mut classes = format!("node st-{status}");
    if lineage {
        classes.push_str(" lineage");
    }
    if best {
        classes.push_str(" best");
    }
    let fill = node.score.map_or_else(|| "#999".to_owned(), |s| ramp(if hi > lo { (s - lo) / (hi - lo) } else { 1.0 }));
    let summary = super::model::cut(&node.detail.summary, 160);
    let _ = write!(
        out,
        r#"<g class="{classes}" data-node="{id}" data-run="{run}" tabindex="0"><title>{short} · gen {g} slot {s} · {status_text} · score {score}&#10;{summary}</title>"#,
        id = node.id.to_hex(),
        run = esc(&report.id),
        short = node.id.short(),
        g = node.generation,
        s = node.slot,
        status_text = esc(&node.status),
        score = score(node.score),
        summary = esc(&summary),
    );
    let (x, y) = (num(cx), num(cy));
    let radius = if best { 7.0 } else { 4.5 };
    match status.as_str() {
        "evaluated" | "staged-only" => {
            let _ = write!(out, r#"<circle cx="{x}" cy="{y}" r="{}" fill="{fill}"/>"#, num(radius));
        }
        "load-failed" => {
            let _ = write!(out, r##"<path d="M{x} {}l4 4l-4 4l-4 -4z" fill="#e69f00"/>"##, num(cy - 4.0));
        }
        "meta-failed" => {
            let _ = write!(
                out,
                r##"<rect x="{}" y="{}" width="7" height="7" fill="#999"/>"##,
                num(cx - 3.5),
                num(cy - 3.5)
            );
        }
        _ => {
            // Refused or failed builds: a cross.
            let _ = write!(out, r#"<path class="cross" d="M{} {}l7 7m0 -7l-7 7"/>"#, num(cx - 3.5), num(cy - 3.5));
        }
    }
    out.push_str("</g>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::NodeDetail;
    use std::sync::Arc;

    fn id(n: u8) -> ContentHash {
        ContentHash::of(&[n])
    }

    fn node(n: u8, parent: Option<u8>, generation: u32, slot: u32, summary: &str) -> NodeView {
        let detail = NodeDetail { summary: summary.into(), ..NodeDetail::default() };
        NodeView {
            id: id(n),
            parent: parent.map(id),
            generation,
            slot,
            status: "evaluated".into(),
            score: Some(f64::from(n) / 10.0),
            detail: Arc::new(detail),
        }
    }

    #[test]
    fn a_lineage_is_one_row_and_each_leaf_has_its_own() {
        // 0 → 1 → {3, 4}; 0 → 2.
        let nodes = vec![
            node(0, None, 0, 0, ""),
            node(1, Some(0), 1, 0, ""),
            node(2, Some(0), 1, 1, ""),
            node(3, Some(1), 2, 0, ""),
            node(4, Some(1), 2, 1, ""),
        ];
        let layout = layout(&nodes);
        assert_eq!(layout.rows, 3);
        assert_eq!(layout.position, vec![(0, 0), (1, 0), (1, 2), (2, 0), (2, 1)]);
    }

    #[test]
    fn a_cycle_in_a_forged_log_is_drawn_once_per_node() {
        let nodes = vec![node(0, Some(1), 0, 0, ""), node(1, Some(0), 1, 0, "")];
        let layout = layout(&nodes);
        assert_eq!(layout.rows, 2);
        let report = RunReport {
            id: "r".into(),
            config_toml: String::new(),
            domains: Vec::new(),
            generations_planned: 1,
            llm: false,
            provenance: Vec::new(),
            nodes,
            best: Some(id(1)),
            finished: false,
            stopped: None,
            tests: Vec::new(),
        };
        assert_eq!(lineage(&report).len(), 2);
        assert_eq!(render(&report).matches("data-node=").count(), 2);
    }

    #[test]
    fn a_summary_is_text_in_the_tree() {
        let report = RunReport {
            id: "<b>run</b>".into(),
            config_toml: String::new(),
            domains: Vec::new(),
            generations_planned: 0,
            llm: false,
            provenance: Vec::new(),
            nodes: vec![node(0, None, 0, 0, "<script>alert(1)</script>")],
            best: Some(id(0)),
            finished: true,
            stopped: None,
            tests: Vec::new(),
        };
        let svg = render(&report);
        assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{svg}");
        assert!(!svg.contains("<script") && !svg.contains("<b>"), "{svg}");
        assert_eq!(svg.matches("class=\"node st-evaluated lineage best\"").count(), 1);
    }
}
