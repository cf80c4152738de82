//! `hyperagent build`, `call`, `verify` and `demo`: a guest component built, called and checked by
//! hand.

use super::GuestFailure;
use super::terminal::{self, errln, outln};
use super::{new_sandbox, open_archive, ready_compiler};
use anyhow::{Context, Result, bail};
use hyperagent::compiler::BuildOutcome;
use hyperagent::hash::ContentHash;
use hyperagent::sandbox::{CallInput, CallLimits, CallReport, Fuel, Grants, MetaInput, Preopen, TaskInput};
use hyperagent::settings::Paths;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub fn build(paths: &Paths, dir: &Path, json: bool, timeout_secs: u64) -> Result<Result<(), GuestFailure>> {
    let archive = open_archive(paths)?;
    let compiler = ready_compiler(paths, Duration::from_secs(timeout_secs))?;
    let outcome = compiler.build_dir(dir, &archive)?;
    // Every archived component and tree belongs to a node, so that `verify` finds no orphans.
    let node = match &outcome {
        BuildOutcome::Built { tree, component, .. } => hyperagent::archive::Node::new(*tree, Some(*component), None)
            .with("origin", "build")
            .with("status", "built"),
        BuildOutcome::Rejected { tree, .. } => {
            hyperagent::archive::Node::new(*tree, None, None).with("origin", "build").with("status", "rejected")
        }
        BuildOutcome::Failed { tree, .. } => {
            hyperagent::archive::Node::new(*tree, None, None).with("origin", "build").with("status", "build-failed")
        }
    };
    archive.put_node(&node)?;
    if json {
        println!("{}", terminal::json(&outcome_json(&outcome))?);
    } else {
        print_outcome(&outcome);
    }
    Ok(if outcome.component().is_some() { Ok(()) } else { Err(GuestFailure) })
}

fn outcome_json(outcome: &BuildOutcome) -> serde_json::Value {
    match outcome {
        BuildOutcome::Built { tree, component, cached, duration, warnings } => serde_json::json!({
            "status": "built", "tree": tree, "component": component, "cached": cached,
            "duration_ms": duration.as_millis() as u64, "warnings": warnings,
        }),
        BuildOutcome::Rejected { tree, violations } => serde_json::json!({
            "status": "rejected", "tree": tree,
            "violations": violations.iter().map(|v| serde_json::json!({"code": v.code(), "message": v.to_string()})).collect::<Vec<_>>(),
        }),
        BuildOutcome::Failed { tree, diagnostics, duration } => serde_json::json!({
            "status": "failed", "tree": tree, "diagnostics": diagnostics, "duration_ms": duration.as_millis() as u64,
        }),
    }
}

fn print_outcome(outcome: &BuildOutcome) {
    match outcome {
        BuildOutcome::Built { tree, component, cached, duration, .. } => {
            outln!("{component}");
            errln!(
                "built tree {} in {:.2} s{}",
                tree.short(),
                duration.as_secs_f64(),
                if *cached { " (cached)" } else { "" }
            );
        }
        BuildOutcome::Rejected { violations, .. } => {
            errln!("refused by the source policy ({} violation(s)):", violations.len());
            for violation in violations {
                errln!("  [{}] {violation}", violation.code());
            }
        }
        BuildOutcome::Failed { diagnostics, .. } => {
            errln!("the build failed:");
            eprintln!("{}", terminal::block(diagnostics, "  "));
        }
    }
}

/// Loads a component from a .wasm path or an archive hash.
fn component_bytes(paths: &Paths, component: &str) -> Result<Vec<u8>> {
    let path = Path::new(component);
    if path.exists() {
        return std::fs::read(path).with_context(|| format!("cannot read {}", path.display()));
    }
    let Ok(hash) = component.parse::<ContentHash>() else {
        bail!("`{component}` is neither a file nor a component hash (64 hex digits)");
    };
    Ok(open_archive(paths)?.get_blob(&hash)?)
}

pub async fn call(
    paths: &Paths,
    component: &str,
    input: &CallInput,
    limits: &CallLimits,
    grants: &Grants,
    json: bool,
) -> Result<Result<(), GuestFailure>> {
    let wasm = component_bytes(paths, component)?;
    let sandbox = new_sandbox(paths)?;
    let loaded = sandbox.load(&wasm)?;
    let report = sandbox.call(&loaded, input, limits, grants).await?;
    if json {
        println!("{}", terminal::json(&report)?);
    } else {
        print_report(&report);
    }
    Ok(if report.outcome.is_ok() { Ok(()) } else { Err(GuestFailure) })
}

fn print_report(report: &CallReport) {
    outln!("outcome:  {}", report.outcome);
    if let Some(output) = &report.output {
        outln!("output:   {output}");
    }
    outln!("fuel:     {} of {}", report.fuel_consumed, report.fuel_budget);
    outln!("memory:   peak {} KiB of {} KiB", report.peak_memory_bytes / 1024, report.memory_limit_bytes / 1024);
    outln!("time:     {:.3} ms (wall clock, not reproducible)", report.wall_time_us as f64 / 1000.0);
    for (name, captured) in [("stdout", &report.stdout), ("stderr", &report.stderr)] {
        if captured.total_bytes > 0 {
            let cut =
                if captured.truncated { format!(", cut to {} bytes", captured.text.len()) } else { String::new() };
            outln!("{name}:   {} bytes{cut}", captured.total_bytes);
            for line in captured.text.lines().take(20) {
                outln!("  | {line}");
            }
        }
    }
    for line in &report.logs {
        outln!("log {}: {}", line.level, line.message);
    }
    if report.logs_dropped > 0 {
        outln!("({} log lines dropped)", report.logs_dropped);
    }
}

pub fn verify(paths: &Paths, json: bool, key: Option<&Path>) -> Result<Result<(), GuestFailure>> {
    if !paths.archive().join("FORMAT").is_file() {
        bail!("no archive at {}", paths.archive().display());
    }
    let archive = open_archive(paths)?;
    let mut report = archive.verify()?;
    let runs = super::evidence::check_runs(paths, &archive, key)?;
    report.problems.extend(runs.problems.iter().cloned().map(hyperagent::archive::Problem::Run));
    if json {
        println!(
            "{}",
            terminal::json(&serde_json::json!({
                "objects_checked": report.objects_checked,
                "nodes_checked": report.nodes_checked,
                "stray_temp_files": report.stray_temp_files,
                "runs_checked": runs.runs_checked,
                "notes": runs.notes,
                "problems": report.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            }))?
        );
    } else {
        for problem in &report.problems {
            outln!("{problem}");
        }
        for note in &runs.notes {
            outln!("note: {note}");
        }
        outln!(
            "{} objects, {} nodes and {} runs checked: {}",
            report.objects_checked,
            report.nodes_checked,
            runs.runs_checked,
            if report.is_clean() { "no problems".to_owned() } else { format!("{} problem(s)", report.problems.len()) }
        );
    }
    Ok(if report.is_clean() { Ok(()) } else { Err(GuestFailure) })
}

pub async fn demo(paths: &Paths) -> Result<Result<(), GuestFailure>> {
    use hyperagent::archive::Node;
    let archive = open_archive(paths)?;
    let compiler = ready_compiler(paths, Duration::from_secs(600))?;
    let sandbox = new_sandbox(paths)?;
    let source = paths.guest_agents().join("initial");
    outln!("building the sample hyperagent from {} (the first build compiles its dependencies)", source.display());
    let parent = compiler.build_dir(&source, &archive)?;
    let Some(parent_component) = parent.component() else {
        print_outcome(&parent);
        return Ok(Err(GuestFailure));
    };
    let BuildOutcome::Built { tree: parent_tree, duration, .. } = &parent else { unreachable!() };
    outln!("  component {} ({:.2} s)", parent_component.short(), duration.as_secs_f64());
    let parent_node = archive.put_node(&Node::new(*parent_tree, Some(parent_component), None).with("generation", 0))?;

    // The first training task of the registry's first domain.
    let domain = hyperagent::domains::open(
        hyperagent::domains::names()[0],
        &serde_json::Value::Null,
        &paths.default_data_dir(),
        &hyperagent::domains::HostServices::none(),
    )
    .map_err(anyhow::Error::msg)?;
    let (train, _) = domain.splits(1, 2)?;
    let sample = train.tasks.first().context("the domain has no training task")?;
    let task = CallInput::Task(TaskInput {
        domain: domain.name().into(),
        task_id: sample.id.clone(),
        payload: sample.payload.clone(),
    });
    let limits = CallLimits { fuel: Fuel(5_000_000_000), ..CallLimits::default() };
    let parent_report = sandbox
        .call(&*sandbox.load(&archive.get_blob(&parent_component)?)?, &task, &limits, &Grants::default())
        .await?;
    outln!("parent task ({} {}): {}", domain.name(), sample.id, scored(domain.as_ref(), sample, &parent_report).await);

    let scratch = tempfile_dir(&paths.home, "demo-repo")?;
    archive.materialise(parent_tree, &scratch)?;
    let meta =
        CallInput::Meta(MetaInput { iterations_left: 0, repo_dir: "/repo".into(), history_dir: "/history".into() });
    let grants = Grants {
        seed: 7,
        preopens: vec![Preopen { host: scratch.clone(), guest: "/repo".into(), writable: true }],
        ..Grants::default()
    };
    let meta_report =
        sandbox.call(&*sandbox.load(&archive.get_blob(&parent_component)?)?, &meta, &limits, &grants).await?;
    outln!("parent meta: {}: {}", meta_report.outcome, meta_report.output.as_deref().unwrap_or("-"));
    if !meta_report.outcome.is_ok() {
        return Ok(Err(GuestFailure));
    }
    let child = compiler.build_dir(&scratch, &archive)?;
    hyperagent::tree_walk::remove_tree(&scratch)?;
    let Some(child_component) = child.component() else {
        print_outcome(&child);
        return Ok(Err(GuestFailure));
    };
    let BuildOutcome::Built { tree: child_tree, duration, .. } = &child else { unreachable!() };
    outln!("child built: component {} ({:.2} s)", child_component.short(), duration.as_secs_f64());
    let child_report =
        sandbox.call(&*sandbox.load(&archive.get_blob(&child_component)?)?, &task, &limits, &Grants::default()).await?;
    outln!("child task:  {}", scored(domain.as_ref(), sample, &child_report).await);
    let child_node = archive.put_node(
        &Node::new(*child_tree, Some(child_component), Some(parent_node)).with("generation", 1).with(
            "meta",
            serde_json::from_str::<serde_json::Value>(meta_report.output.as_deref().unwrap_or("null"))
                .unwrap_or_default(),
        ),
    )?;
    outln!(
        "archive: {} (parent node {}, child node {})",
        paths.archive().display(),
        parent_node.short(),
        child_node.short()
    );
    Ok(Ok(()))
}

/// A call's outcome with the domain's score of its answer.
async fn scored(
    domain: &dyn hyperagent_domains::Domain,
    task: &hyperagent_domains::Task,
    report: &CallReport,
) -> String {
    let score = match &report.output {
        Some(answer) if report.outcome.is_ok() => domain.score(task, answer).await,
        _ => hyperagent_domains::TaskScore::invalid(report.outcome.to_string()),
    };
    format!("score {:.5} {}, {}, {} fuel", score.score, score.details, report.outcome, report.fuel_consumed)
}

/// A fresh, empty scratch directory under the host's home.
fn tempfile_dir(home: &Path, name: &str) -> Result<PathBuf> {
    let dir = home.join("scratch").join(format!("{name}-{}", std::process::id()));
    hyperagent::tree_walk::remove_tree(&dir)?;
    std::fs::create_dir_all(dir.parent().expect("has a parent"))?;
    Ok(dir)
}
