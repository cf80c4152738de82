//! Program search without an LLM: the meta agent's bin-packing path.
//!
//! 1. Weigh the operators by the strategy (`strategy.rs`) and the credit `/history` gives them.
//! 2. Parse `src/priority.rs` (`program.rs`) and pick a crossover partner: another node's program,
//!    as that node's meta report printed it.
//! 3. Apply one or more typed edits (`operators.rs`), keep the program under the size limit, and
//!    make sure the child differs from its parent. When `/history` shows training instances,
//!    screen a number of such candidates on a few of them (`screen.rs`), each edited from the
//!    parent or from the best so far, and keep the best.
//! 4. Write the file back, maybe rewrite one of the strategy's own settings, and report the
//!    operators used (`ops: …`, which later children read as credit) and the program.

use crate::meta::{self, TASK_FILE};
use crate::operators::{self, Operator, Tools};
use crate::program::{self, Program};
use crate::screen::{self, Screen, Verdict};
use crate::strategy::{self, STRATEGY_FILE};
use agent_sdk::history::History;
use agent_sdk::repo::Repo;
use agent_sdk::rng::Rng;
use agent_sdk::serde_json::Value;
use agent_sdk::{AgentError, MetaReport, MetaRequest, log};
use syn::Expr;

/// Attempts at one edit before giving up on it (an operator may have nothing to work on).
const MAX_ATTEMPTS_PER_EDIT: usize = 8;
/// Rounds of edits before the agent accepts that it cannot change the program.
const MAX_ROUNDS: usize = 6;
/// Where a meta report's rationale holds the program, for other nodes' crossover.
const PROGRAM_START: &str = "program:\n```rust\n";
const PROGRAM_END: &str = "```";
/// Largest partner file read from `/history` (a node's file is capped by the host, too).
const MAX_PARTNER_BYTES: usize = 128 * 1024;

fn failed(e: impl std::fmt::Display) -> AgentError {
    AgentError::Failed(e.to_string())
}

pub fn improve(
    request: &MetaRequest,
    repo: &Repo,
    history: &History,
    lineage: &[(String, Option<f64>)],
) -> Result<MetaReport, AgentError> {
    improve_within(request, repo, history, lineage, 1.0)
}

/// [`improve`], screening within `share` of the fuel it would otherwise take (a meta call that
/// also trains judgement models leaves the rest to them).
pub fn improve_within(
    request: &MetaRequest,
    repo: &Repo,
    history: &History,
    lineage: &[(String, Option<f64>)],
    share: f64,
) -> Result<MetaReport, AgentError> {
    let mut rng = Rng::derive(request.seed, "program-search");
    let nodes = read_nodes(history);
    let scored: Vec<(String, bool)> = nodes.iter().map(|n| (n.summary.clone(), n.scored)).collect();
    let credit = strategy::credit(lineage, &scored);
    let weights: Vec<f64> = Operator::ALL.iter().zip(&credit).map(|(op, c)| strategy::weight(*op, c)).collect();

    let source = repo.read(TASK_FILE).map_err(|e| failed(format!("cannot read {TASK_FILE}: {e}")))?;
    let mut program = Program::parse(&source).map_err(|e| failed(format!("{TASK_FILE}: {e}")))?;
    let before = program.body_expr().ok_or_else(|| failed("no priority body"))?;
    let partner = choose_partner(history, &nodes, &mut rng);
    let variables = program.parameters();
    let offered: Vec<String> =
        variables.iter().filter(|v| strategy::VARIABLES.contains(&v.as_str())).cloned().collect();
    let tools = Tools {
        variables: &offered,
        new_depth: strategy::NEW_DEPTH.round().clamp(1.0, 8.0) as usize,
        perturb_scale: strategy::PERTURB_SCALE,
        partner: partner.as_ref().map(|(_, body)| body),
    };

    let constants: Vec<(String, f64)> =
        meta::genes(repo, TASK_FILE).map(|g| g.iter().map(|g| g.name_value()).collect()).unwrap_or_default();
    let instances = screen::training_instances(history, strategy::SCREEN_INSTANCES.round().max(1.0) as usize, &mut rng);
    let fuel = request.budget.fuel as f64 * strategy::SCREEN_FUEL_SHARE.clamp(0.0, 0.6) * share.clamp(0.0, 1.0);
    let scope = crate::interpret::Scope { parameters: &variables, constants: &constants };
    let mut screen = Screen::new(instances, scope, fuel, strategy::RACE_MARGIN);
    let (body, mut used, screening) = if screen.instances() > 0 {
        screened(&before, &weights, &tools, &mut screen, &mut rng)
    } else {
        let (body, used) = edit(&before, &weights, &tools, &mut rng);
        (body, used, String::new())
    };
    program.set_body(body.clone());
    repo.write(TASK_FILE, &program.print()).map_err(|e| failed(format!("cannot write {TASK_FILE}: {e}")))?;
    let mut changes = Vec::new();
    if used.contains(&Operator::Gene) || used.is_empty() {
        used.retain(|op| *op != Operator::Gene);
        used.push(Operator::Gene);
        let genes = meta::genes(repo, TASK_FILE)?;
        changes.push(meta::render_change(&meta::mutate_one(repo, &genes, &meta::credit_genes(lineage), &mut rng)?));
    }
    if rng.chance(strategy::SELF_MUTATION_RATE) {
        let genes = meta::genes(repo, STRATEGY_FILE)?;
        changes.push(meta::render_change(&meta::mutate_one(repo, &genes, &meta::credit_genes(lineage), &mut rng)?));
    }
    let partner = partner.as_ref().map(|(id, _)| id.as_str());
    report(request, repo, &program, &body, (&used, &changes, &screening), partner, &weights)
}

/// Screens up to `SCREEN_CANDIDATES` edited programs and returns the best (the body, the operators
/// of its edits, and a note of what screening found). Each candidate edits the best so far with
/// probability `CLIMB`, otherwise the parent; a tie goes to the newer candidate, so the search
/// drifts across equal programs.
fn screened(
    before: &Expr,
    weights: &[f64],
    tools: &Tools,
    screen: &mut Screen,
    rng: &mut Rng,
) -> (Expr, Vec<Operator>, String) {
    // Screening compares trees: a constant of the file is left to the unscreened path.
    let mut weights = weights.to_vec();
    weights[Operator::ALL.iter().position(|op| *op == Operator::Gene).expect("listed")] = 0.0;
    let parent = screen.excess(before);
    let mut best: Option<(Expr, Vec<Operator>, f64)> = None;
    let candidates = strategy::SCREEN_CANDIDATES.round().clamp(1.0, 2000.0) as usize;
    let mut first = None;
    for _ in 0..candidates {
        let climb = best.as_ref().filter(|_| rng.chance(strategy::CLIMB));
        let (start, mut ops) = climb.map_or((before.clone(), Vec::new()), |(b, o, _)| (b.clone(), o.clone()));
        let (candidate, used) = edit(&start, &weights, tools, rng);
        for op in used {
            if !ops.contains(&op) {
                ops.push(op);
            }
        }
        first.get_or_insert_with(|| (candidate.clone(), ops.clone()));
        match screen.race(&candidate) {
            Verdict::Best(excess) => best = Some((candidate, ops, excess)),
            Verdict::Worse => {}
            Verdict::Unscreened if screen.exhausted => break,
            Verdict::Unscreened => {}
        }
    }
    let percent = |x: Option<f64>| x.map_or("-".to_owned(), |x| format!("{:.3}%", 100.0 * x));
    let note = format!(
        "screened {} ({} given up on) on {} training instances (about {:.0}M fuel): excess {} -> {}",
        screen.screened,
        screen.given_up,
        screen.instances(),
        screen.spent / 1e6,
        percent(parent),
        percent(best.as_ref().map(|b| b.2))
    );
    match best.or_else(|| first.map(|(b, o)| (b, o, f64::NAN))) {
        Some((body, ops, _)) if program::tokens(&body) != program::tokens(before) => (body, ops, note),
        _ => {
            let (body, used) = edit(before, &weights, tools, rng);
            (body, used, note)
        }
    }
}

/// Applies edits until the program differs from `before`: the new body and the operators used
/// (`Gene` stands for an edit the caller makes in the file).
fn edit(before: &Expr, weights: &[f64], tools: &Tools, rng: &mut Rng) -> (Expr, Vec<Operator>) {
    let max_edits = strategy::MAX_EDITS.round().clamp(1.0, 16.0) as usize;
    let max_nodes = strategy::MAX_NODES.round().clamp(4.0, 1000.0) as usize;
    for _ in 0..MAX_ROUNDS {
        let mut body = before.clone();
        let mut used = Vec::new();
        let mut edits = 1;
        while edits < max_edits && rng.chance(strategy::EXTRA_EDIT) {
            edits += 1;
        }
        for _ in 0..edits {
            if let Some(op) = one_edit(&mut body, weights, tools, rng) {
                used.push(op);
            }
        }
        // Over the limit: fold constants, then delete terms, a bounded number of times.
        let mut trims = 0;
        while program::size(&body) > max_nodes && trims < 64 {
            let op = if trims == 0 { Operator::Simplify } else { Operator::Delete };
            if operators::apply(op, &mut body, tools, rng).is_ok() && !used.contains(&op) {
                used.push(op);
            }
            trims += 1;
        }
        if used.contains(&Operator::Gene) || program::tokens(&body) != program::tokens(before) {
            return (body, used);
        }
    }
    // Nothing changed the tree: a constant of the file changes instead.
    (before.clone(), vec![Operator::Gene])
}

/// One edit by an operator drawn by weight; an operator with nothing to work on is set aside.
fn one_edit(body: &mut Expr, weights: &[f64], tools: &Tools, rng: &mut Rng) -> Option<Operator> {
    let mut weights = weights.to_vec();
    for _ in 0..MAX_ATTEMPTS_PER_EDIT {
        let index = draw(&weights, rng)?;
        let op = Operator::ALL[index];
        if op == Operator::Gene {
            return Some(op);
        }
        match operators::apply(op, body, tools, rng) {
            Ok(()) => return Some(op),
            Err(_) => weights[index] = 0.0,
        }
    }
    None
}

/// An index drawn in proportion to `weights`; none when they are all zero.
fn draw(weights: &[f64], rng: &mut Rng) -> Option<usize> {
    let total: f64 = weights.iter().filter(|w| w.is_finite() && **w > 0.0).sum();
    if total <= 0.0 {
        return None;
    }
    let mut pick = rng.unit() * total;
    for (index, w) in weights.iter().enumerate().filter(|(_, w)| w.is_finite() && **w > 0.0) {
        if pick < *w {
            return Some(index);
        }
        pick -= w;
    }
    weights.iter().rposition(|w| w.is_finite() && *w > 0.0)
}

/// One node of the run, as `/history/archive.json` lists it.
struct NodeSummary {
    id: String,
    summary: String,
    score: Option<f64>,
    scored: bool,
}

fn read_nodes(history: &History) -> Vec<NodeSummary> {
    let Ok(value) = history.read_json::<Value>("archive.json") else { return Vec::new() };
    let Some(nodes) = value["nodes"].as_array() else { return Vec::new() };
    nodes
        .iter()
        .map(|n| {
            let status = n["status"].as_str().unwrap_or("");
            NodeSummary {
                id: n["node"].as_str().unwrap_or("").to_owned(),
                summary: n["summary"].as_str().unwrap_or("").to_owned(),
                score: n["score"].as_f64(),
                scored: matches!(status, "evaluated" | "staged-only"),
            }
        })
        .collect()
}

/// Another node's program (id, body), not from this node's own lineage: the best-scored one with
/// probability `BEST_PARTNER`, otherwise a random scored one. None when no node printed one.
fn choose_partner(history: &History, nodes: &[NodeSummary], rng: &mut Rng) -> Option<(String, Expr)> {
    let own: Vec<String> = history.lineage_ids().unwrap_or_default();
    let mut candidates: Vec<&NodeSummary> =
        nodes.iter().filter(|n| n.score.is_some() && !n.id.is_empty() && !own.contains(&n.id)).collect();
    if candidates.is_empty() {
        return None;
    }
    candidates.sort_by(|a, b| b.score.partial_cmp(&a.score).unwrap_or(std::cmp::Ordering::Equal));
    let chosen = if rng.chance(strategy::BEST_PARTNER) { candidates[0] } else { *rng.pick(&candidates)? };
    let text = history.read_text(&format!("nodes/{}.json", chosen.id)).ok()?;
    if text.len() > MAX_PARTNER_BYTES {
        return None;
    }
    let entry: Value = agent_sdk::serde_json::from_str(&text).ok()?;
    let rationale = entry["account"]["rationale"].as_str()?;
    let start = rationale.find(PROGRAM_START)? + PROGRAM_START.len();
    let end = start + rationale[start..].find(PROGRAM_END)?;
    Some((chosen.id.clone(), program::body_of(&rationale[start..end])?))
}

/// The report: `ops: …` and the constants changed in the summary; the screening note, the
/// weights and the program in the rationale.
fn report(
    request: &MetaRequest,
    repo: &Repo,
    program: &Program,
    body: &Expr,
    (used, changes, screening): (&[Operator], &[String], &str),
    partner: Option<&str>,
    weights: &[f64],
) -> Result<MetaReport, AgentError> {
    let ops = used.iter().map(|op| op.name()).collect::<Vec<_>>().join("+");
    let mut summary = format!("ops: {ops}");
    for change in changes.iter().map(String::as_str).chain((!screening.is_empty()).then_some(screening)) {
        summary.push_str("; ");
        summary.push_str(change);
    }
    meta::append_note(repo, &format!("{summary} (seed {}, {} iterations left)", request.seed, request.iterations_left))
        .map_err(|e| failed(format!("cannot write NOTES.md: {e}")))?;
    log::info(&summary);
    let weights: Vec<String> =
        Operator::ALL.iter().zip(weights).map(|(op, w)| format!("{} {w:.3}", op.name())).collect();
    let rationale = format!(
        "program search: {} nodes, depth {}; crossover partner {}; operator weights {}\n{PROGRAM_START}{}{PROGRAM_END}\n",
        program::size(body),
        program::depth(body),
        partner.unwrap_or("none"),
        weights.join(", "),
        program.print_items(),
    );
    Ok(MetaReport { summary, rationale })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::tests::initial_source;

    fn weights() -> Vec<f64> {
        Operator::ALL.iter().map(|op| strategy::weight(*op, &strategy::Credit::default())).collect()
    }

    #[test]
    fn edits_always_change_the_program_and_keep_it_under_the_limit() {
        let program = Program::parse(&initial_source()).unwrap();
        let variables = program.parameters();
        let tools = Tools { variables: &variables, new_depth: 3, perturb_scale: 0.3, partner: None };
        let start = program.body_expr().unwrap();
        for seed in 0..40 {
            let mut rng = Rng::new(seed);
            let mut body = start.clone();
            for _ in 0..10 {
                let (next, used) = edit(&body, &weights(), &tools, &mut rng);
                assert!(!used.is_empty());
                if !used.contains(&Operator::Gene) {
                    assert_ne!(program::tokens(&next), program::tokens(&body), "seed {seed}: {used:?}");
                }
                assert!(program::size(&next) <= strategy::MAX_NODES as usize, "seed {seed}");
                body = next;
            }
        }
    }

    #[test]
    fn draw_follows_the_weights_and_skips_zeros() {
        let mut rng = Rng::new(7);
        let mut counts = [0usize; 3];
        for _ in 0..3000 {
            counts[draw(&[1.0, 0.0, 3.0], &mut rng).unwrap()] += 1;
        }
        assert_eq!(counts[1], 0);
        assert!((counts[2] as f64 / counts[0] as f64 - 3.0).abs() < 0.5, "{counts:?}");
        assert_eq!(draw(&[0.0, f64::NAN], &mut rng), None);
    }

    /// The cost of one meta call's program work, natively: parse the file, make one child's edits,
    /// print it (`cargo test --release -- --ignored --nocapture meta_call_cost`).
    #[test]
    #[ignore]
    fn meta_call_cost() {
        let source = initial_source();
        let program = Program::parse(&source).unwrap();
        let variables = program.parameters();
        let tools = Tools { variables: &variables, new_depth: 3, perturb_scale: 0.3, partner: None };
        // A grown program, as later generations edit.
        let mut rng = Rng::new(1);
        let mut body = program.body_expr().unwrap();
        for _ in 0..6 {
            body = edit(&body, &weights(), &tools, &mut rng).0;
        }
        let mut grown = Program::parse(&source).unwrap();
        grown.set_body(body);
        let text = grown.print();
        let rounds = 2000;
        let (mut parse, mut mutate, mut print) = (0u128, 0u128, 0u128);
        for _ in 0..rounds {
            let t = std::time::Instant::now();
            let mut p = Program::parse(&text).unwrap();
            parse += t.elapsed().as_nanos();
            let t = std::time::Instant::now();
            let (next, _) = edit(&p.body_expr().unwrap(), &weights(), &tools, &mut rng);
            mutate += t.elapsed().as_nanos();
            let t = std::time::Instant::now();
            p.set_body(next);
            std::hint::black_box(p.print());
            print += t.elapsed().as_nanos();
        }
        let us = |ns: u128| ns as f64 / rounds as f64 / 1000.0;
        println!(
            "program of {} nodes: parse {:.1} us, edit {:.1} us, print {:.1} us per call",
            program::size(&grown.body_expr().unwrap()),
            us(parse),
            us(mutate),
            us(print)
        );
    }

    /// Lineages of edited programs print as source that parses back to the same program, so a
    /// child's file is always Rust the next meta call can read (the jailed build compiles them:
    /// every child of the measured runs built).
    #[test]
    fn edited_programs_print_as_source_that_parses_back_unchanged() {
        let program = Program::parse(&initial_source()).unwrap();
        let variables = program.parameters();
        let tools = Tools { variables: &variables, new_depth: 3, perturb_scale: 0.3, partner: None };
        for seed in 0..20 {
            let mut rng = Rng::new(seed);
            let mut body = program.body_expr().unwrap();
            for generation in 0..8 {
                body = edit(&body, &weights(), &tools, &mut rng).0;
                let mut child = Program::parse(&initial_source()).unwrap();
                child.set_body(body.clone());
                let text = child.print();
                let again = Program::parse(&text).unwrap_or_else(|e| panic!("seed {seed} gen {generation}: {e}\n{text}"));
                assert_eq!(again.print(), text, "seed {seed} generation {generation}");
            }
        }
    }
}
