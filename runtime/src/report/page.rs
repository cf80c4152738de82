//! The page: the views of each run put into one HTML file with its style, its script and every
//! node's panel as JSON. The templates escape what they print (minijinja escapes by default in
//! `.html` templates); the SVG parts arrive already escaped, as safe strings.

use super::model::{NodeView, RunReport};
use super::{curves, tables, tree};
use minijinja::{Environment, Value, context};
use serde::Serialize;
use std::sync::OnceLock;

const PAGE: &str = include_str!("assets/page.html");
const MAIN: &str = include_str!("assets/main.html");
const STYLE: &str = include_str!("assets/page.css");
const SCRIPT: &str = include_str!("assets/page.js");

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.add_template("page.html", PAGE).expect("the page template parses");
        env.add_template("main.html", MAIN).expect("the main template parses");
        env
    })
}

/// What a node's panel needs, as the script reads it.
#[derive(Serialize)]
struct NodeEntry<'a> {
    run: &'a str,
    generation: u32,
    slot: u32,
    status: &'a str,
    score: Option<f64>,
    parent: Option<String>,
    #[serde(flatten)]
    detail: &'a super::model::NodeDetail,
}

/// Every node's panel as JSON that is safe inside a `<script>` element: no `<`, `>` or `&` is
/// left as such, so no text can close the element.
fn node_json(runs: &[RunReport]) -> String {
    let mut map = serde_json::Map::new();
    for run in runs {
        for node in &run.nodes {
            let entry = NodeEntry {
                run: &run.id,
                generation: node.generation,
                slot: node.slot,
                status: &node.status,
                score: node.score.filter(|s| s.is_finite()),
                parent: node.parent.map(|p| p.to_hex()),
                detail: &node.detail,
            };
            map.insert(node.id.to_hex(), serde_json::to_value(entry).unwrap_or_default());
        }
    }
    let json = serde_json::Value::Object(map).to_string();
    json.replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026")
}

fn best_node(run: &RunReport) -> Option<&NodeView> {
    run.best.and_then(|b| run.nodes.iter().find(|n| n.id == b))
}

fn run_context(run: &RunReport) -> Value {
    let best = best_node(run);
    let generations = run.nodes.iter().map(|n| n.generation).max().unwrap_or(0);
    let state = match (&run.stopped, run.finished) {
        (_, true) => "finished",
        (Some(_), false) => "stopped",
        (None, false) => "in progress",
    };
    context! {
        id => &run.id,
        node_count => run.nodes.len(),
        generations => generations,
        planned => run.generations_planned,
        state => state,
        best => best.map(|n| n.id.to_hex()),
        best_short => best.map(|n| n.id.short()),
        best_score => super::svg::score(best.and_then(|n| n.score)),
        stopped => &run.stopped,
        curves => Value::from_safe_string(curves::render(run)),
        tree => Value::from_safe_string(tree::render(run)),
        tests => Value::from_safe_string(tables::tests(run)),
        provenance => Value::from_safe_string(tables::provenance(run)),
        commands => tables::replay_commands(run),
        config => &run.config_toml,
    }
}

/// The part of the page that changes as runs grow (what the live view swaps in).
pub fn main_html(runs: &[RunReport]) -> Result<String, minijinja::Error> {
    let comparison = (runs.len() > 1).then(|| Value::from_safe_string(curves::comparison(runs)));
    let contexts: Vec<Value> = runs.iter().map(run_context).collect();
    environment().get_template("main.html")?.render(context! {
        runs => contexts,
        comparison => comparison,
        nodes => Value::from_safe_string(node_json(runs)),
    })
}

/// The whole page. `live`: the script follows the run log through the server's events.
pub fn page_html(runs: &[RunReport], live: bool) -> Result<String, minijinja::Error> {
    let title = match runs {
        [one] => format!("hyperagent run {}", one.id),
        many => format!("hyperagent: {} runs", many.len()),
    };
    environment().get_template("page.html")?.render(context! {
        title => title,
        live => live,
        style => Value::from_safe_string(STYLE.to_owned()),
        script => Value::from_safe_string(SCRIPT.to_owned()),
        main => Value::from_safe_string(main_html(runs)?),
    })
}
