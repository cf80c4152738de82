//! What the report of a large run costs: an archive of 1,000 nodes (500 generations × 2 children,
//! each child an edit of its parent's source, the initial hyperagent's tree to start with; one in
//! ten a failed build, one in five stopped by the staged gate), its run log, then the page read
//! from both and written. Prints the median time over repeated rounds and the page's size.
//!
//! Run with `cargo bench --bench report`.

use hyperagent::archive::Archive;
use hyperagent::evolution::evaluate::{DomainEvaluation, Evaluation, SplitScore};
use hyperagent::evolution::log::{Event, LOG_SCHEMA, RunLog};
use hyperagent::evolution::records::{BuildRecord, MetaRecord, NodeMetadata, Status};
use hyperagent::hash::ContentHash;
use hyperagent::report::{DetailCache, RunReport};
use hyperagent::source_tree::{SourceTree, TreeLimits};
use std::time::{Duration, Instant};

const GENERATIONS: u32 = 500;
const CHILDREN: u32 = 2;
const ROUNDS: usize = 5;

/// A deterministic stream of numbers (SplitMix64), so that every round sees the same archive.
struct Numbers(u64);

impl Numbers {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn split(mean: f64) -> SplitScore {
    SplitScore { mean, tasks: 10, invalid: 0 }
}

/// The metadata of a child: evaluated, staged-only or a failed build.
fn metadata(generation: u32, slot: u32, score: f64, kind: u64, provenance: ContentHash) -> NodeMetadata {
    let passed = !kind.is_multiple_of(5);
    let evaluation = Evaluation {
        domains: vec![DomainEvaluation {
            domain: "synthetic".into(),
            staged: split(score),
            train: passed.then(|| split(score)),
            validation: passed.then(|| split(score)),
            score,
        }],
        passed_gate: passed,
        score,
        fuel: 1_000_000 + kind,
        report: ContentHash::of(b"report"),
        exchanges: Vec::new(),
    };
    let failed = kind % 10 == 3;
    NodeMetadata {
        generation,
        slot,
        status: if failed {
            Status::BuildFailed
        } else if passed {
            Status::Evaluated
        } else {
            Status::StagedOnly
        },
        score: (!failed).then_some(score),
        evaluation: (!failed).then_some(evaluation),
        meta: MetaRecord {
            summary: format!("ops: perturb+swap; constant {kind} changed; screened 41 candidates"),
            rationale: None,
            outcome: Some(hyperagent::sandbox::Outcome::Ok),
            fuel: Some(100_000_000 + kind),
            logs: Vec::new(),
            component: None,
            tools: Vec::new(),
        },
        build: Some(if failed {
            BuildRecord::Failed { diagnostics: "error[E0308]: mismatched types".into() }
        } else {
            BuildRecord::Built { load_error: None }
        }),
        llm: Vec::new(),
        provenance,
    }
}

/// Builds the archive and log; returns the log's path.
fn build_run(home: &std::path::Path) -> std::path::PathBuf {
    let archive = Archive::open(home.join("archive")).unwrap();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-agents/initial");
    let initial = SourceTree::read_dir(&source, &TreeLimits::default()).unwrap();
    let provenance = archive.put_blob(b"{}").unwrap();
    let component = Some(archive.put_blob(b"\0asm component stand-in").unwrap());
    let log_path = home.join("log.jsonl");
    let mut log = RunLog::open(&log_path).unwrap();
    let config = hyperagent::evolution::config::RunConfig {
        generations: GENERATIONS,
        children_per_generation: CHILDREN,
        ..Default::default()
    };
    log.append(&Event::Started {
        schema: LOG_SCHEMA.into(),
        config_hash: config.hash(),
        config: Box::new(config),
        provenance: serde_json::json!({"host_version": "bench"}),
    })
    .unwrap();
    let mut numbers = Numbers(7);
    // (id, tree, score) of every node so far.
    let mut nodes: Vec<(ContentHash, SourceTree, f64)> = Vec::new();
    let root_meta = NodeMetadata { build: None, ..metadata(0, 0, 0.93, 1, provenance) };
    let root_meta =
        NodeMetadata { meta: MetaRecord { summary: "initial".into(), ..root_meta.meta.clone() }, ..root_meta };
    let root = archive.put_node(&root_meta.into_node(archive.put_tree(&initial).unwrap(), component, None)).unwrap();
    log.append(&Event::Node {
        generation: 0,
        slot: 0,
        node: root,
        parent: None,
        score: Some(0.93),
        status: "evaluated".into(),
    })
    .unwrap();
    nodes.push((root, initial, 0.93));
    for generation in 1..=GENERATIONS {
        let count = nodes.len() as u64;
        for slot in 0..CHILDREN {
            let kind = numbers.next();
            // Parents mostly recent, as a selection rule that favours the best tends to choose.
            let back = (kind % 64).min(count - 1) as usize;
            let (parent, parent_tree, parent_score) = nodes[nodes.len() - 1 - back].clone();
            let mut tree = parent_tree.clone();
            let file = tree.files.keys().find(|p| p.as_str().ends_with(".rs")).unwrap().as_str().to_owned();
            let text = String::from_utf8_lossy(&tree.get(&file).unwrap().bytes).into_owned();
            tree.insert(&file, format!("{text}\npub const TUNED_{generation}_{slot}: f64 = {};\n", kind % 1000))
                .unwrap();
            let score = (parent_score + ((kind % 200) as f64 - 100.0) / 20_000.0).clamp(0.0, 1.0);
            let meta = metadata(generation, slot, score, kind, provenance);
            let (status, logged) = (meta.status.label().to_owned(), meta.score);
            let built = if meta.status == Status::BuildFailed { None } else { component };
            let id = archive.put_node(&meta.into_node(archive.put_tree(&tree).unwrap(), built, Some(parent))).unwrap();
            log.append(&Event::Node { generation, slot, node: id, parent: Some(parent), score: logged, status })
                .unwrap();
            nodes.push((id, tree, score));
        }
        log.append(&Event::Generation { generation }).unwrap();
    }
    log_path
}

fn main() {
    let home = tempfile::tempdir().unwrap();
    let made = Instant::now();
    let log = build_run(home.path());
    eprintln!("made an archive of {} nodes in {:.1} s", 1 + GENERATIONS * CHILDREN, made.elapsed().as_secs_f64());
    let archive = Archive::open(home.path().join("archive")).unwrap();
    let mut samples: Vec<Duration> = Vec::new();
    let mut size = 0;
    for round in 0..ROUNDS {
        let out = home.path().join(format!("report-{round}"));
        let started = Instant::now();
        let report = RunReport::load(&archive, "bench", &log, &mut DetailCache::default()).unwrap();
        let page = hyperagent::report::write(&out, &[report]).unwrap();
        samples.push(started.elapsed());
        size = std::fs::metadata(page).unwrap().len();
    }
    samples.sort();
    println!(
        "report of a {}-node run (read the log and archive, write the page): median {:.0} ms over {ROUNDS} rounds; page {} KiB",
        1 + GENERATIONS * CHILDREN,
        samples[ROUNDS / 2].as_secs_f64() * 1000.0,
        size / 1024
    );
}
