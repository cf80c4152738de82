//! Prints the judgement domains' host baselines on their test sets for a few split seeds:
//! `cargo run --release -p hyperagent-domains --example judgement_baselines [train_tasks]`.
//! Reads the data directory `HYPERAGENT_DATA_DIR`, else `../shared/data` beside the checkout.

use serde_json::json;

fn main() {
    let train: Option<usize> = std::env::args().nth(1).and_then(|a| a.parse().ok());
    let data_dir = std::env::var_os("HYPERAGENT_DATA_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data").into());
    for name in ["paper_review", "imo_grading"] {
        let settings = match train {
            Some(n) if name == "paper_review" => json!({"train_tasks": n, "validation_tasks": 214, "test_tasks": 214}),
            _ => serde_json::Value::Null,
        };
        let domain = hyperagent_domains::domain::open(name, &settings, &data_dir).expect("opens");
        for seed in 0..3u64 {
            if let Err(e) = domain.splits(seed, seed + 100) {
                eprintln!("{e}");
                std::process::exit(1);
            }
            let test = domain.test_sets(&data_dir).expect("test set").sets.remove(0);
            let mut line = format!("{name} seed {seed}:");
            for baseline in domain.baselines() {
                let scores: Vec<_> = test.tasks.iter().map(|t| domain.baseline(baseline, t).expect("scores")).collect();
                let report = domain.report(&test.tasks, &scores);
                line.push_str(&format!(" {baseline} {:.3}", report.value));
                for figure in &report.figures {
                    line.push_str(&format!(" ({} {:.3})", figure.metric, figure.value));
                }
            }
            println!("{line}");
        }
    }
}
