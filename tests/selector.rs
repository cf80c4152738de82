//! The editable parent selector (`selection = "agent"`): hostile selectors are contained and
//! named, a run whose selector fails falls back generation by generation, and the initial
//! hyperagent's selector chooses a whole run's parents.

mod common;

use common::*;
use hyperagent::evolution::NodeRecord;
use hyperagent::evolution::config::RunConfig;
use hyperagent::evolution::log::{Event, RunLog};
use hyperagent::evolution::selection::{Selection, Tally};
use hyperagent::evolution::selector;
use hyperagent::hash::ContentHash;

/// An archive of four nodes; the first one's summary is the probe's selector op.
fn archive(op: &str) -> Vec<NodeRecord> {
    let node = |i: u8, valid: bool| NodeRecord {
        id: ContentHash::of(&[i]),
        parent: (i > 0).then(|| ContentHash::of(&[0])),
        generation: u32::from(i.min(1)),
        slot: 0,
        tree: ContentHash::of(b"tree"),
        component: valid.then(|| ContentHash::of(b"component")),
        score: valid.then_some(0.5),
        results: Tally { passes: 1.0, tasks: 2 },
        status: if valid { "evaluated" } else { "build-failed" }.into(),
        summary: if i == 0 { serde_json::json!({ "select": op }).to_string() } else { String::new() },
        children: 0,
        exchanges: Vec::new(),
    };
    vec![node(0, true), node(1, true), node(2, false), node(3, true)]
}

fn ask(op: &str, count: u32) -> selector::SelectorAnswer {
    let nodes = archive(op);
    block_on(selector::ask(&world().sandbox, nodes[0].id, &probe(), &nodes, count, 7)).expect("host setup")
}

#[test]
fn a_plain_answer_is_checked_and_used() {
    let answer = ask("first", 2);
    assert_eq!(answer.parents, Ok(vec![ContentHash::of(&[0]); 2]));
    assert!(answer.fuel > 0);
    assert_eq!(ask("last", 1).parents, Ok(vec![ContentHash::of(&[3])]));
}

#[test]
fn hostile_selectors_end_in_a_named_refusal_never_in_a_host_failure() {
    let cases = [
        ("spin", "out-of-fuel"),
        ("huge", "ended"),
        ("bloat", "out-of-memory"),
        ("unknown", "no node"),
        ("invalid", "cannot be a parent"),
        ("every", "names 4 node(s); the generation has 2 slot(s)"),
        ("fail", "this selector declines"),
    ];
    for (op, expected) in cases {
        let answer = ask(op, 2);
        let why = answer.parents.expect_err(op);
        assert!(why.contains(expected), "{op}: {why}");
    }
    // Whatever it answers, a selector never gets more than its own fuel.
    assert!(ask("spin", 2).fuel <= selector::SELECTOR_FUEL);
}

#[test]
fn answers_are_held_to_the_archive() {
    let nodes = archive("first");
    let id = |i: u8| format!("\"{}\"", ContentHash::of(&[i]).to_hex());
    assert!(selector::check_answer(&format!("[{}]", id(1)), &nodes, 1).is_ok());
    assert!(selector::check_answer(&format!("[{}]", id(2)), &nodes, 1).unwrap_err().contains("cannot be a parent"));
    assert!(selector::check_answer("[\"not a hash\"]", &nodes, 1).unwrap_err().contains("not a node id"));
    assert!(selector::check_answer("{\"parents\": []}", &nodes, 1).unwrap_err().contains("not a list"));
    assert!(selector::check_answer("[]", &nodes, 1).unwrap_err().contains("0 node(s)"));
    // The archive a selector sees marks which nodes can be parents.
    let shown: serde_json::Value = serde_json::from_str(&selector::selector_archive(&nodes)).unwrap();
    let valid: Vec<bool> = shown["nodes"].as_array().unwrap().iter().map(|n| n["valid"].as_bool().unwrap()).collect();
    assert_eq!(valid, [true, true, false, true]);
}

fn run(home: &std::path::Path, config: &RunConfig, id: &str) -> Vec<Event> {
    run_config(home, config, id);
    RunLog::read(&home.join(format!("runs/{id}/log.jsonl"))).unwrap()
}

/// A logged parent choice: generation, selector, parents, and why it fell back.
type Choice = (u32, Option<ContentHash>, Vec<ContentHash>, Option<String>);

fn selections(events: &[Event]) -> Vec<Choice> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Selection { generation, selector, parents, fallback } => {
                Some((*generation, *selector, parents.clone(), fallback.clone()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn the_initial_hyperagents_selector_chooses_a_runs_parents_and_the_audit_holds_it_to_them() {
    let home = tempfile::tempdir().unwrap();
    let config = RunConfig { generations: 2, selection: Selection::Agent, ..small_config() };
    let events = run(home.path(), &config, "agent");
    let chosen = selections(&events);
    assert_eq!(chosen.iter().map(|c| c.0).collect::<Vec<_>>(), [1, 2]);
    for (generation, selector, parents, fallback) in &chosen {
        assert_eq!(fallback, &None, "generation {generation}");
        assert!(selector.is_some());
        assert_eq!(parents.len(), 2);
    }
    // Every node's parent is the one its generation's selector chose for its slot.
    for event in &events {
        if let Event::Node { generation, slot, parent: Some(parent), .. } = event {
            let (_, _, parents, _) = chosen.iter().find(|c| c.0 == *generation).unwrap();
            assert_eq!(parents[*slot as usize], *parent);
        }
    }
    let archive = hyperagent::archive::Archive::open(home.path().join("archive")).unwrap();
    let problems = hyperagent::audit::check_parent_choices(&archive, &config, &events).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    // A log whose selection names a node that could not be a parent then is caught.
    let mut forged = events.clone();
    for event in forged.iter_mut() {
        if let Event::Selection { generation: 1, parents, .. } = event {
            parents[0] = ContentHash::of(b"nowhere");
        }
    }
    let problems = hyperagent::audit::check_parent_choices(&archive, &config, &forged).unwrap();
    assert!(problems.iter().any(|p| p.contains("could not be a parent")), "{problems:?}");

    let status = hyperagent_cli(home.path(), &["status", "agent"]);
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(shown.contains("2 chosen by a selector, 0 by the fallback rule"), "{shown}");
}

#[test]
fn a_run_whose_selector_declines_falls_back_every_generation_and_says_why() {
    let home = tempfile::tempdir().unwrap();
    let probe = world().paths.guest_agents().join("probe");
    let config = RunConfig {
        generations: 1,
        children_per_generation: 3,
        selection: Selection::Agent,
        selection_fallback: Some(Selection::Best),
        initial_agent: Some(probe),
        ..small_config()
    };
    let events = run(home.path(), &config, "declined");
    let chosen = selections(&events);
    assert_eq!(chosen.len(), 1);
    let (_, selector, parents, fallback) = &chosen[0];
    assert!(selector.is_some(), "the probe exports a selector");
    assert!(fallback.as_deref().unwrap().contains("declines to choose three parents"), "{fallback:?}");
    let archive = hyperagent::archive::Archive::open(home.path().join("archive")).unwrap();
    let problems = hyperagent::audit::check_parent_choices(&archive, &config, &events).unwrap();
    assert!(problems.is_empty(), "the fallback rule re-derives: {problems:?}");
    assert_eq!(parents.len(), 3);
}
