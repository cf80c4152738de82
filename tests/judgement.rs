//! The judgement domains (paper review, proof grading) end to end with the real CLI: the offline
//! meta agent retrains its task agents from `/history`, and `/history` never shows a validation or
//! test task; the LLM path improves a task agent that a scripted server answers, and the run
//! replays with the server stopped. Needs the data directory (`HYPERAGENT_DATA_DIR`).

mod common;

use common::{data_dir, guest_target_dir};
use hyperagent::evolution::history;
use hyperagent::evolution::log::{Event, RunLog};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

/// Whether the judgement data is present; says so when it is not.
fn have_data() -> bool {
    let present = data_dir().join("paper_review").is_dir() && data_dir().join("imo_grading").is_dir();
    if !present {
        eprintln!("skipped: no judgement data under {} (set HYPERAGENT_DATA_DIR)", data_dir().display());
    }
    present
}

/// A small run over `domains`: 20 tasks per split, 5 staged.
fn config(domains: &[&str], generations: u32, extra: &str, threshold: f64) -> String {
    let mut text =
        format!("domains = {domains:?}\nseed = 3\ngenerations = {generations}\nchildren_per_generation = 1\n{extra}\n");
    for domain in domains.iter().filter(|d| **d != "bin_packing") {
        text.push_str(&format!(
            "[domain.{domain}]\ntrain_tasks = 20\nvalidation_tasks = 20\ntest_tasks = 20\nstaged_tasks = 5\n\
             staged_threshold = {threshold:?}\n"
        ));
    }
    if domains.contains(&"bin_packing") {
        text.push_str(
            "[domain.bin_packing]\ntrain_instances = 2\ntrain_items = 100\nstaged_tasks = 1\n\
             validation_instances = 1\nvalidation_items = 100\ntest_sets = [\"OR1\"]\n",
        );
    }
    text
}

fn run(home: &Path, config: &str, extra: &[&str]) -> Output {
    let path = home.join("run.toml");
    std::fs::write(&path, config).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_hyperagent"))
        .args(["run", "--config"])
        .arg(&path)
        .args(extra)
        // The flag alone must reach the domains: no environment variable to fall back on.
        .arg("--data-dir")
        .arg(data_dir())
        .env_remove("HYPERAGENT_DATA_DIR")
        .env("HYPERAGENT_HOME", home)
        .env("HYPERAGENT_GUEST_TARGET", guest_target_dir())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    output
}

fn events(home: &Path, run: &str) -> Vec<Event> {
    RunLog::read(&home.join("runs").join(run).join("log.jsonl")).unwrap()
}

/// Every node's summary, in order.
fn summaries(home: &Path, run: &str) -> Vec<String> {
    let archive = hyperagent::archive::Archive::open(home.join("archive")).unwrap();
    events(home, run)
        .iter()
        .filter_map(|e| match e {
            Event::Node { node, .. } => Some(hyperagent::evolution::node_record(&archive, node).unwrap().summary),
            _ => None,
        })
        .collect()
}

/// Writes `/history` as the loop would for a child of the run's last node.
fn history_of(home: &Path, run: &str, config: &str) -> (PathBuf, Vec<hyperagent::evolution::evaluate::RunDomain>) {
    let config = hyperagent::evolution::config::RunConfig::from_toml(config).unwrap();
    let archive = hyperagent::archive::Archive::open(home.join("archive")).unwrap();
    let domains =
        hyperagent::evolution::run_domains(&config, &data_dir(), &hyperagent::domains::HostServices::none()).unwrap();
    let training = history::training_tasks(&domains);
    let mut nodes = Vec::new();
    for event in events(home, run) {
        if let Event::Node { node, .. } = event {
            hyperagent::evolution::enter_node(&mut nodes, hyperagent::evolution::node_record(&archive, &node).unwrap());
        }
    }
    let entries: Vec<_> = nodes
        .iter()
        .map(|node| {
            let parent_tree = node.parent.and_then(|p| nodes.iter().find(|n| n.id == p)).map(|p| p.tree);
            (node.id, Arc::new(history::node_entry(&archive, node, parent_tree, &domains, &training).unwrap()))
        })
        .collect();
    let dir = home.join("history");
    let last = nodes.last().unwrap().id;
    history::write(
        &dir,
        &history::archive_list(&nodes, hyperagent::evolution::selection::Selection::DgmH),
        &entries,
        &history::task_inputs(&domains),
        &last,
    )
    .unwrap();
    (dir, domains)
}

fn all_text(dir: &Path) -> String {
    let mut text = String::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            pending.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            text.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
    text
}

#[test]
fn the_offline_meta_agent_trains_from_history_and_history_holds_no_held_out_task() {
    if !have_data() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let text = config(&["paper_review", "imo_grading"], 2, "", 0.1);
    run(home.path(), &text, &["--run-id", "offline"]);
    // Each child retrained both models and fits its training labels at least as well as its parent;
    // the first child, whose parent is the hand-written initial model, fits them better.
    let children = &summaries(home.path(), "offline")[1..];
    assert_eq!(children.len(), 2);
    for (index, summary) in children.iter().enumerate() {
        for domain in ["paper_review", "imo_grading"] {
            let part = summary.split("; ").find(|p| p.starts_with(&format!("{domain} model retrained"))).unwrap();
            let (before, after) = part.rsplit_once("training accuracy ").unwrap().1.split_once(" => ").unwrap();
            let (before, after) = (before.parse::<f64>().unwrap(), after.parse::<f64>().unwrap());
            assert!(after >= before && (index > 0 || after > before), "{part}");
        }
    }

    let (dir, domains) = history_of(home.path(), "offline", &text);
    let seen = all_text(&dir);
    for run in &domains {
        let tasks: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("tasks/{}.json", run.domain.name()))).unwrap(),
        )
        .unwrap();
        assert_eq!(tasks.as_array().unwrap().len(), run.train.tasks.len());
        // The held-out tasks appear neither by id nor by their text.
        for task in &run.validation.tasks {
            assert!(!seen.contains(&task.id), "{} reached /history", task.id);
            let payload: Value = serde_json::from_str(&task.payload).unwrap();
            let text = payload.get("abstract").or(payload.get("response")).and_then(Value::as_str).unwrap();
            let sample: String = text.chars().skip(20).take(80).collect();
            assert!(!seen.contains(&sample), "a validation input of {} reached /history", run.domain.name());
        }
    }
    assert!(!seen.contains("validation/") && !seen.contains("\"test/"), "a held-out id reached /history");
    // Training answers come with the expected label.
    let initial = std::fs::read_dir(dir.join("nodes")).unwrap().next().unwrap().unwrap().path();
    let entry: Value = serde_json::from_str(&std::fs::read_to_string(initial).unwrap()).unwrap();
    let labelled =
        entry["training"].as_array().unwrap().iter().filter(|r| r["feedback"]["expected"].is_string()).count();
    assert!(labelled >= 10, "{entry}");
}

#[test]
fn a_run_of_three_domains_reports_each_in_its_own_metric() {
    if !have_data() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let output =
        run(home.path(), &config(&["bin_packing", "paper_review", "imo_grading"], 1, "", 0.1), &["--run-id", "three"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    for header in ["bin_packing: excess", "paper_review: accuracy", "imo_grading: accuracy"] {
        assert!(stdout.contains(header), "{header} missing from:\n{stdout}");
    }
    assert!(stdout.contains("majority") && stdout.contains("tfidf+lr"), "{stdout}");
    // The points error is logged beside the accuracy of every IMO test report.
    let tests: Vec<_> = events(home.path(), "three")
        .into_iter()
        .flat_map(|e| match e {
            Event::Test { sets, .. } | Event::Baseline { sets, .. } => sets,
            _ => Vec::new(),
        })
        .filter(|r| r.domain == "imo_grading")
        .collect();
    assert!(!tests.is_empty());
    for result in tests {
        let mae = &result.report.figures[0];
        assert!(mae.metric == "points MAE" && (0.0..=1.0).contains(&mae.value), "{:?}", result.report);
    }
}

/// A scripted OpenAI-compatible server. Task calls get a chatty reply that names the label in a
/// sentence (which the initial `parse_label` cannot read); meta calls get an edit of the task
/// module they were shown that makes `parse_label` find the label in the sentence.
fn scripted_server() -> common::http::Server {
    common::http::Server::start(|_, request| {
        let body = request.json();
        let system = body["messages"][0]["content"].as_str().unwrap_or("");
        let user = body["messages"][1]["content"].as_str().unwrap_or("");
        let reply = if system.contains("Rust engineer") {
            meta_reply(user)
        } else if system.contains("reviewer") {
            let accept = user.contains("state-of-the-art") || user.contains("outperform");
            format!("Having read it closely, my decision: {}.", if accept { "Accept" } else { "Reject" })
        } else {
            let grade = if user.contains("\\boxed") || user.contains("QED") { "Correct" } else { "Incorrect" };
            format!("The proof deserves the grade: {grade}.")
        };
        common::http::Reply::json(200, common::http::openai_reply(&reply))
    })
}

fn meta_reply(prompt: &str) -> String {
    let file =
        prompt.split("Current ").nth(1).and_then(|rest| rest.split(':').next()).unwrap_or("src/task/paper_review.rs");
    let labels = if file.contains("paper_review") {
        r#"["accept", "reject"]"#
    } else {
        r#"["Correct", "Almost", "Partial", "Incorrect"]"#
    };
    format!(
        "<<<<<<< SEARCH {file}\npub fn parse_label(answer: &str) -> String {{\n    answer.trim().to_owned()\n}}\n=======\n\
         pub fn parse_label(answer: &str) -> String {{\n    let lower = answer.to_lowercase();\n    \
         let labels: [&str; {n}] = {labels};\n    \
         labels.iter().filter_map(|l| lower.rfind(&l.to_lowercase()).map(|at| (at, *l))).max().map_or(answer.trim().to_owned(), |(_, l)| l.to_owned())\n}}\n\
         >>>>>>> REPLACE\nSummary: read the label from the last label word in the reply\n",
        n = if file.contains("paper_review") { 2 } else { 4 },
    )
}

#[test]
fn the_llm_path_fixes_the_parsing_and_replays_without_the_network() {
    if !have_data() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let server = scripted_server();
    let llm = format!(
        "task_llm_calls = 100\n[llm]\nprovider = \"open-ai\"\nbase_url = \"{}\"\nmodel = \"scripted\"\napi_key_env = \"\"\n\
         initial_backoff_ms = 10\n\n[llm.budget]\nmax_calls = 2000\n",
        server.base_url
    );
    // The top-level keys must come before the tables.
    let (top, tables) = llm.split_once("[llm]").unwrap();
    // No staged gate: a child that fixed one domain is evaluated although the other still fails.
    let text = config(&["paper_review", "imo_grading"], 2, top, 0.0) + "[llm]" + tables;
    run(home.path(), &text, &["--run-id", "live"]);
    let scores: Vec<(Option<f64>, String)> = {
        let archive = hyperagent::archive::Archive::open(home.path().join("archive")).unwrap();
        events(home.path(), "live")
            .iter()
            .filter_map(|e| match e {
                Event::Node { node, .. } => {
                    let record = hyperagent::evolution::node_record(&archive, node).unwrap();
                    Some((record.score, record.summary))
                }
                _ => None,
            })
            .collect()
    };
    // The initial agent passes the chatty reply on as its label and every answer is refused, as
    // the original's initial agent scored 0 on paper review; the edited children read the label.
    assert_eq!(scores[0].0.unwrap_or(0.0), 0.0, "{scores:?}");
    assert!(
        scores[1..].iter().any(|(score, summary)| score.unwrap_or(0.0) > 0.0 && summary.starts_with("LLM edit")),
        "{scores:?}"
    );

    server.stop();
    let requests = server.count();
    let replay_config = home.path().join("run.toml");
    let replay = Command::new(env!("CARGO_BIN_EXE_hyperagent"))
        .args(["run", "--config"])
        .arg(&replay_config)
        .args(["--run-id", "replayed", "--llm", "replay", "--replay-from", "live"])
        .env("HYPERAGENT_HOME", home.path())
        .env("HYPERAGENT_DATA_DIR", data_dir())
        .env("HYPERAGENT_GUEST_TARGET", guest_target_dir())
        .output()
        .unwrap();
    assert!(replay.status.success(), "{}", String::from_utf8_lossy(&replay.stderr));
    assert_eq!(server.count(), requests, "the replay reached the network");
    let nodes = |run: &str| {
        events(home.path(), run)
            .into_iter()
            .filter_map(|e| match e {
                Event::Node { node, .. } => Some(node),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(nodes("replayed"), nodes("live"));
}
