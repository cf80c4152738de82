//! What the evidence costs per generation: appending chained log lines, then writing and signing
//! the run object of a default-sized run (31 generations × 2 children: 61 node events, their
//! LLM-free logs, the test events). Prints medians over repeated rounds.
//!
//! Run with `cargo bench --bench evidence`.

use hyperagent::archive::Archive;
use hyperagent::evolution::log::{Event, RunLog};
use hyperagent::hash::ContentHash;
use hyperagent::run_object::{RunObject, sign, write_head};
use std::time::{Duration, Instant};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// A log like the default run's: a start, 61 nodes in 31 generations, tests and the end.
fn write_log(log: &mut RunLog) {
    let config = hyperagent::evolution::config::RunConfig::default();
    let started = Event::Started {
        schema: hyperagent::evolution::log::LOG_SCHEMA.into(),
        config_hash: config.hash(),
        config: Box::new(config),
        provenance: serde_json::json!({"host_version": "x"}),
    };
    log.append(&started).unwrap();
    let mut parent = None;
    for generation in 0..31u32 {
        for slot in 0..if generation == 0 { 1 } else { 2 } {
            let node = ContentHash::of(format!("{generation}/{slot}").as_bytes());
            let event = Event::Node {
                generation,
                slot,
                node,
                parent,
                score: Some(0.95 + f64::from(generation) / 1000.0),
                status: "evaluated".into(),
            };
            log.append(&event).unwrap();
            parent = Some(node);
        }
        log.append(&Event::Generation { generation }).unwrap();
    }
}

fn main() {
    let key = ed25519_dalek::SigningKey::from_bytes(&[3u8; 32]);
    let (mut appends, mut seals) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::open(dir.path().join("archive")).unwrap();
        let run_dir = dir.path().join("runs/bench");
        std::fs::create_dir_all(&run_dir).unwrap();
        let mut log = RunLog::open(&run_dir.join("log.jsonl")).unwrap();
        let started = Instant::now();
        write_log(&mut log);
        let lines = log.contents().events.len();
        appends.push(started.elapsed() / lines as u32);
        // One seal, as the loop makes after every generation: the run object of the log as kept
        // in memory, stored, signed, and the head pointed at it.
        let started = Instant::now();
        let contents = log.contents();
        let object = RunObject::from_log("bench", contents, contents.events.len()).unwrap();
        let id = archive.put_run_object(&object).unwrap();
        let _ = sign(&key, &id);
        write_head(&run_dir, &id, Some(&key)).unwrap();
        seals.push(started.elapsed());
    }
    println!("chained log append (canonical JSON + blake3 + fsync), per line: {:?}", median(appends));
    println!("seal of a 94-line log (run object, store, sign, head): {:?}", median(seals));
}
