//! `hyperagent report`: the page of a real short run, opened in a real headless Chromium. Every
//! node of the run is in the tree, the best node is marked, a node's panel shows its change; and
//! text a guest wrote (a summary, a diff) reaches the page as text, never as markup.

mod browser;
mod common;

use common::{hyperagent_cli, log_events, small_config, write_chained_log};
use hyperagent::archive::Archive;
use hyperagent::evolution::log::{Event, RunLog};
use hyperagent::hash::ContentHash;
use std::path::{Path, PathBuf};

/// A real run of `generations` generations in `home`, named `id`.
pub fn short_run(home: &Path, id: &str, generations: u32) {
    common::run_config(home, &hyperagent::evolution::config::RunConfig { generations, ..small_config() }, id);
}

fn report(home: &Path, runs: &[&str], out: &Path) -> PathBuf {
    let mut args = vec!["report"];
    args.extend(runs);
    args.extend(["-o", out.to_str().unwrap()]);
    let output = hyperagent_cli(home, &args);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    out.join("index.html")
}

fn url(page: &Path) -> String {
    format!("file://{}", page.canonicalize().unwrap().display())
}

/// A child whose source differs from its parent's, and its parent.
fn changed_child(archive: &Archive, events: &[Event]) -> (ContentHash, ContentHash) {
    events
        .iter()
        .find_map(|e| match e {
            Event::Node { node, parent: Some(parent), .. }
                if archive.get_node(node).unwrap().tree != archive.get_node(parent).unwrap().tree =>
            {
                Some((*node, *parent))
            }
            _ => None,
        })
        .expect("some child changed its source")
}

#[test]
fn the_report_of_a_real_run_shows_every_node_the_best_and_a_change() {
    let home = tempfile::tempdir().unwrap();
    short_run(home.path(), "short", 3);
    let events = RunLog::read(&home.path().join("runs/short/log.jsonl")).unwrap();
    let nodes: Vec<String> = events
        .iter()
        .filter_map(|e| if let Event::Node { node, .. } = e { Some(node.to_hex()) } else { None })
        .collect();
    let best = events.iter().find_map(|e| if let Event::Finished { best } = e { Some(best.to_hex()) } else { None });
    let best = best.expect("the run finished");
    let page = report(home.path(), &["short"], &home.path().join("report"));
    // Self-contained: nothing is fetched from anywhere.
    let html = std::fs::read_to_string(&page).unwrap();
    for remote in ["http://", "https://", "src=\"", "<link"] {
        assert!(!html.contains(remote), "the page refers to `{remote}`");
    }

    let mut chrome = browser::Browser::start(1400, 1000);
    chrome.open(&url(&page));
    let shown: Vec<String> = serde_json::from_value(
        chrome.eval("Array.from(document.querySelectorAll('#tree-short [data-node]'), e => e.dataset.node)"),
    )
    .unwrap();
    let mut expected = nodes.clone();
    expected.sort();
    let mut seen = shown.clone();
    seen.sort();
    assert_eq!(seen, expected, "every node of the run, once each, in the tree");
    let marked: Vec<String> =
        serde_json::from_value(chrome.eval("Array.from(document.querySelectorAll('.node.best'), e => e.dataset.node)"))
            .unwrap();
    assert_eq!(marked, vec![best.clone()], "the best node, and only it, is marked");
    assert_eq!(chrome.eval("document.querySelectorAll('.chart path.best-so-far').length"), 1);
    assert!(chrome.eval("document.querySelectorAll('.chart .pt').length").as_u64().unwrap() >= 1);
    assert_eq!(chrome.eval("document.querySelectorAll('table.tests').length"), 1);

    // A node's panel: opened by clicking it in the tree, it shows the node's diff.
    let archive = Archive::open(home.path().join("archive")).unwrap();
    let (child, parent) = changed_child(&archive, &events);
    assert!(chrome.eval("document.getElementById('panel').hidden").as_bool().unwrap());
    chrome.eval(&format!(
        "document.querySelector('.node[data-node=\"{}\"] circle, .node[data-node=\"{}\"] path').dispatchEvent(new MouseEvent('click', {{bubbles: true}}))",
        child.to_hex(),
        child.to_hex()
    ));
    chrome.wait_for("!document.getElementById('panel').hidden", std::time::Duration::from_secs(10));
    assert_eq!(chrome.eval("document.getElementById('panel-body').dataset.node"), child.to_hex());
    let diff =
        chrome.eval("Array.from(document.querySelectorAll('#panel-body .diff span'), s => s.textContent).join('\\n')");
    let diff = diff.as_str().unwrap().to_owned();
    // The panel's diff is the change between the two archived trees: a line it adds is in the
    // child's source and a line it removes in the parent's.
    let added: Vec<&str> = diff.lines().filter(|l| l.starts_with('+') && !l.starts_with("+++")).collect();
    let removed: Vec<&str> = diff.lines().filter(|l| l.starts_with('-') && !l.starts_with("---")).collect();
    assert!(!added.is_empty() || !removed.is_empty(), "the diff shows a change: {diff}");
    let source = |id: &ContentHash| {
        let tree = archive.get_tree(&archive.get_node(id).unwrap().tree).unwrap();
        tree.files.values().map(|f| String::from_utf8_lossy(&f.bytes).into_owned()).collect::<Vec<_>>().join("\n")
    };
    let (child_source, parent_source) = (source(&child), source(&parent));
    for line in &added {
        assert!(child_source.contains(&line[1..]), "{line} is not in the child");
    }
    for line in &removed {
        assert!(parent_source.contains(&line[1..]), "{line} is not in the parent");
    }
    assert!(
        chrome
            .eval("document.querySelectorAll('#panel-body .diff .add, #panel-body .diff .del').length")
            .as_u64()
            .unwrap()
            >= 1
    );
    chrome.screenshot(&browser::artifacts().join("report.png"), true);
}

/// The initial node of `run` replaced by one whose account and source carry markup, the log
/// re-chained to name it.
fn hostile_copy(home: &Path, from: &str, to: &str) -> ContentHash {
    let archive = Archive::open(home.join("archive")).unwrap();
    let mut events = log_events(&home.join("runs").join(from).join("log.jsonl"));
    let at = events.iter().rposition(|e| e["event"] == "node" && !e["parent"].is_null()).unwrap();
    let old: ContentHash = events[at]["node"].as_str().unwrap().parse().unwrap();
    let mut node = archive.get_node(&old).unwrap();
    let hostile = "<script>window.pwned = 1</script><img src=x onerror=\"window.pwned = 2\"></pre></div>";
    node.metadata.get_mut("meta").unwrap()["summary"] = serde_json::json!(hostile);
    let mut tree = archive.get_tree(&node.tree).unwrap();
    tree.insert("NOTES.md", format!("{hostile}\n</script><script>window.pwned = 3</script>\n")).unwrap();
    node.tree = archive.put_tree(&tree).unwrap();
    let id = archive.put_node(&node).unwrap();
    events[at]["node"] = serde_json::json!(id);
    std::fs::create_dir_all(home.join("runs").join(to)).unwrap();
    write_chained_log(&home.join("runs").join(to).join("log.jsonl"), &events[..=at]);
    id
}

#[test]
fn markup_a_guest_wrote_is_shown_as_text() {
    let home = tempfile::tempdir().unwrap();
    short_run(home.path(), "plain", 1);
    let id = hostile_copy(home.path(), "plain", "hostile");
    let page = report(home.path(), &["hostile", "plain"], &home.path().join("report"));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("<script>window.pwned"), "markup from the archive reached the page as markup");

    let mut chrome = browser::Browser::start(1200, 900);
    chrome.open(&format!("{}#node={}", url(&page), id.to_hex()));
    chrome.wait_for("!document.getElementById('panel').hidden", std::time::Duration::from_secs(10));
    assert_eq!(chrome.eval("typeof window.pwned"), "undefined", "a script from the archive ran");
    assert_eq!(chrome.eval("document.querySelectorAll('img').length"), 0);
    let summary = chrome.eval("document.querySelector('#panel-body .summary').textContent");
    assert!(summary.as_str().unwrap().starts_with("<script>window.pwned = 1</script>"), "{summary}");
    let diff = chrome.eval("document.querySelector('#panel-body .diff').textContent");
    assert!(diff.as_str().unwrap().contains("+</script><script>window.pwned = 3</script>"), "{diff}");
    // Two runs: their curves side by side, and both trees.
    assert_eq!(chrome.eval("document.querySelectorAll('.chart.comparison .run-curve').length"), 2);
    assert_eq!(chrome.eval("document.querySelectorAll('svg.tree').length"), 2);
}

#[test]
fn an_imported_run_reports_like_the_run_that_made_it() {
    let home = tempfile::tempdir().unwrap();
    short_run(home.path(), "made", 1);
    let bundle = home.path().join("made.bundle");
    let export = hyperagent_cli(home.path(), &["export", "made", bundle.to_str().unwrap()]);
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    let elsewhere = tempfile::tempdir().unwrap();
    let import = hyperagent_cli(elsewhere.path(), &["import", bundle.to_str().unwrap()]);
    assert!(import.status.success(), "{}", String::from_utf8_lossy(&import.stderr));
    let here = std::fs::read_to_string(report(home.path(), &["made"], &home.path().join("report"))).unwrap();
    let there = std::fs::read_to_string(report(elsewhere.path(), &["made"], &elsewhere.path().join("report"))).unwrap();
    let nodes = RunLog::read(&home.path().join("runs/made/log.jsonl"))
        .unwrap()
        .iter()
        .filter(|e| matches!(e, Event::Node { .. }))
        .count();
    assert_eq!(there.matches("<g class=\"node ").count(), nodes);
    // Byte for byte the same page: it depends on nothing but the log and the archive.
    assert_eq!(here, there);
}
