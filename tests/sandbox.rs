//! The sandbox's limits and isolation, each hit by the real probe guest in real wasmtime.

mod common;

use common::*;
use hyperagent::sandbox::{CallLimits, Fuel, Grants, Outcome, Preopen};
use serde_json::json;
use std::time::Duration;

fn limits() -> CallLimits {
    CallLimits {
        fuel: Fuel(200_000_000),
        memory_bytes: 64 << 20,
        deadline: Duration::from_secs(30),
        ..CallLimits::default()
    }
}

#[test]
fn infinite_loop_runs_out_of_fuel_identically_every_time() {
    let limits = CallLimits { fuel: Fuel(50_000_000), ..limits() };
    let reports: Vec<_> = (0..3).map(|_| run_probe(json!({"op": "spin"}), &limits, &Grants::default())).collect();
    for report in &reports {
        assert_eq!(report.outcome, Outcome::OutOfFuel);
        assert_eq!(report.fuel_consumed, 50_000_000);
    }
    // The same call with more fuel consumes exactly the new budget: fuel is the only stop.
    let more = run_probe(json!({"op": "spin"}), &CallLimits { fuel: Fuel(60_000_000), ..limits }, &Grants::default());
    assert_eq!((more.outcome, more.fuel_consumed), (Outcome::OutOfFuel, 60_000_000));
}

#[test]
fn fuel_is_deterministic_for_completed_calls() {
    let fuel: Vec<u64> = (0..3)
        .map(|_| {
            let report = run_probe(json!({"op": "kernel", "items": 2000, "rounds": 2}), &limits(), &Grants::default());
            assert_eq!(report.outcome, Outcome::Ok);
            report.fuel_consumed
        })
        .collect();
    assert!(fuel[0] > 1_000_000, "{fuel:?}");
    assert_eq!(fuel[0], fuel[1]);
    assert_eq!(fuel[1], fuel[2]);
}

#[test]
fn memory_bomb_ends_out_of_memory_and_the_host_carries_on() {
    let report = run_probe(json!({"op": "alloc-forever"}), &limits(), &Grants::default());
    match report.outcome {
        Outcome::OutOfMemory { requested_bytes, limit_bytes } => {
            assert_eq!(limit_bytes, 64 << 20);
            assert!(requested_bytes > 64 << 20);
        }
        other => panic!("expected out-of-memory, got {other}"),
    }
    assert!(report.peak_memory_bytes <= 64 << 20);
    // The host is unaffected: the next call in the same sandbox works, and so does a big but
    // allowed allocation.
    let ok = run_probe(json!({"op": "alloc", "mib": 16}), &limits(), &Grants::default());
    assert_eq!(ok.outcome, Outcome::Ok);
    assert!(ok.peak_memory_bytes >= 16 << 20);
    let too_big = run_probe(json!({"op": "alloc", "mib": 100}), &limits(), &Grants::default());
    assert!(matches!(too_big.outcome, Outcome::OutOfMemory { .. }), "{}", too_big.outcome);
}

#[test]
fn memory_cap_above_the_engine_maximum_is_refused() {
    let limits = CallLimits { memory_bytes: 1 << 40, ..limits() };
    let probe = probe();
    let result = block_on(world().sandbox.call(&probe, &task(json!({"op": "echo"})), &limits, &Grants::default()));
    assert!(result.is_err());
}

#[test]
fn files_outside_the_grants_are_unreachable() {
    for path in ["/etc/passwd", "/etc", "/", "../etc/passwd", "/proc/self/environ", "."] {
        let report = run_probe(json!({"op": "read", "path": path}), &limits(), &Grants::default());
        assert!(output_json(&report)["err"].is_string(), "{path}: {:?}", report.output);
        let listed = run_probe(json!({"op": "list", "path": path}), &limits(), &Grants::default());
        assert!(output_json(&listed)["err"].is_string(), "{path}: {:?}", listed.output);
    }
}

#[test]
fn granted_directories_are_exactly_what_they_say() {
    let granted = tempfile::tempdir().unwrap();
    std::fs::write(granted.path().join("hello.txt"), "hello").unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), granted.path().join("link.txt")).unwrap();
    let read_only = Grants {
        preopens: vec![Preopen { host: granted.path().into(), guest: "/data".into(), writable: false }],
        ..Grants::default()
    };

    let ok = run_probe(json!({"op": "read", "path": "/data/hello.txt"}), &limits(), &read_only);
    assert_eq!(output_json(&ok)["ok"], "hello");
    let escape = format!("/data/../{}/secret.txt", outside.path().file_name().unwrap().to_str().unwrap());
    for path in [escape.as_str(), "/data/link.txt", "/data/../../etc/passwd"] {
        let report = run_probe(json!({"op": "read", "path": path}), &limits(), &read_only);
        assert!(output_json(&report)["err"].is_string(), "{path} was readable: {:?}", report.output);
    }
    let write = run_probe(json!({"op": "write", "path": "/data/new.txt", "text": "x"}), &limits(), &read_only);
    assert!(output_json(&write)["err"].is_string());
    assert!(!granted.path().join("new.txt").exists());

    let writable = Grants {
        preopens: vec![Preopen { host: granted.path().into(), guest: "/data".into(), writable: true }],
        ..Grants::default()
    };
    let write = run_probe(json!({"op": "write", "path": "/data/new.txt", "text": "x"}), &limits(), &writable);
    assert_eq!(output_json(&write)["ok"], true);
    assert_eq!(std::fs::read_to_string(granted.path().join("new.txt")).unwrap(), "x");
    assert_eq!(std::fs::read_to_string(outside.path().join("secret.txt")).unwrap(), "secret");
}

#[test]
fn environment_and_arguments_are_empty() {
    // SAFETY: tests in this binary do not read this variable concurrently; the point is that a
    // host variable is set and still invisible to the guest.
    unsafe { std::env::set_var("HYPERAGENT_TEST_SECRET", "s3cret") };
    let report = run_probe(json!({"op": "env"}), &limits(), &Grants::default());
    let out = output_json(&report);
    assert_eq!(out["vars"], json!([]));
    assert_eq!(out["args"], json!([]));
    assert!(!report.output.unwrap().contains("s3cret"));
}

#[test]
fn clocks_and_randomness_repeat_for_a_seed() {
    let grants = Grants { seed: 42, ..Grants::default() };
    let first = output_json(&run_probe(json!({"op": "clock"}), &limits(), &grants));
    for _ in 0..2 {
        assert_eq!(output_json(&run_probe(json!({"op": "clock"}), &limits(), &grants)), first);
    }
    // The virtual wall clock starts at 2000-01-01 and time moves only when read.
    let wall: u128 = first["wall_nanos"].as_str().unwrap().parse().unwrap();
    assert_eq!(wall / 1_000_000_000, 946_684_800);
    assert_eq!(first["elapsed_nanos"], "1000000");
    let other_seed =
        output_json(&run_probe(json!({"op": "clock"}), &limits(), &Grants { seed: 43, ..Grants::default() }));
    assert_ne!(other_seed["hash"], first["hash"]);
}

#[test]
fn oversized_stdout_is_cut_and_counted() {
    let limits = CallLimits { stdout_bytes: 10_000, ..limits() };
    let report = run_probe(json!({"op": "print", "bytes": 5_000_000}), &limits, &Grants::default());
    assert_eq!(report.outcome, Outcome::Ok);
    assert_eq!(report.stdout.text.len(), 10_000);
    assert_eq!(report.stdout.total_bytes, 5_000_000);
    assert!(report.stdout.truncated);
    assert_eq!(report.stderr.text, "done printing\n");
}

#[test]
fn wall_clock_deadline_stops_a_call_with_fuel_to_spare() {
    let limits = CallLimits { fuel: Fuel(u64::MAX / 2), deadline: Duration::from_millis(300), ..limits() };
    let started = std::time::Instant::now();
    let report = run_probe(json!({"op": "spin"}), &limits, &Grants::default());
    assert_eq!(report.outcome, Outcome::Deadline);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn log_lines_beyond_the_limit_are_dropped_and_counted() {
    let limits = CallLimits { log_lines: 100, ..limits() };
    let report = run_probe(json!({"op": "log", "count": 250}), &limits, &Grants::default());
    assert_eq!(report.outcome, Outcome::Ok);
    assert_eq!(report.logs.len(), 100);
    assert_eq!(report.logs_dropped, 150);
    assert_eq!(report.logs[0].message, "line 0");
}

#[test]
fn too_many_host_calls_trap() {
    let limits = CallLimits { import_calls: 50, ..limits() };
    let report = run_probe(json!({"op": "log", "count": 1000}), &limits, &Grants::default());
    match &report.outcome {
        Outcome::Trap { message } => assert!(message.contains("too many host calls"), "{message}"),
        other => panic!("expected a trap, got {other}"),
    }
}

#[test]
fn outputs_are_bounded_and_must_be_json() {
    let limits = CallLimits { output_bytes: 1000, ..limits() };
    let big = run_probe(json!({"op": "output", "bytes": 5000}), &limits, &Grants::default());
    assert!(matches!(&big.outcome, Outcome::InvalidOutput { reason } if reason.contains("limit")), "{}", big.outcome);
    assert_eq!(big.output, None);
    let not_json = run_probe(json!({"op": "raw", "text": "{not json"}), &limits, &Grants::default());
    assert!(
        matches!(&not_json.outcome, Outcome::InvalidOutput { reason } if reason.contains("not JSON")),
        "{}",
        not_json.outcome
    );
}

#[test]
fn guest_errors_panics_and_missing_llm_are_reported() {
    let failed = run_probe(json!({"op": "fail"}), &limits(), &Grants::default());
    assert_eq!(failed.outcome, Outcome::GuestError { error: "failed".into(), message: "asked to fail".into() });
    let panicked = run_probe(json!({"op": "panic"}), &limits(), &Grants::default());
    assert!(matches!(panicked.outcome, Outcome::Trap { .. }), "{}", panicked.outcome);
    assert!(panicked.stderr.text.contains("asked to panic"), "{}", panicked.stderr.text);
    let llm = run_probe(json!({"op": "llm"}), &limits(), &Grants::default());
    assert!(output_json(&llm)["err"].as_str().unwrap().contains("no LLM"));
    let env = output_json(&run_probe(json!({"op": "environment"}), &limits(), &Grants::default()));
    assert_eq!(env["llm"], false);
    assert_eq!(env["contract"], "0.1.2");
}

#[test]
fn core_modules_and_garbage_are_not_components() {
    let core_module = b"\0asm\x01\0\0\0";
    assert!(world().sandbox.load(core_module).is_err());
    assert!(world().sandbox.load(b"definitely not wasm").is_err());
}

#[test]
fn bytes_handed_to_the_host_in_one_call_are_bounded() {
    let limits = CallLimits { hostcall_bytes: 1 << 20, ..limits() };
    let small = run_probe(json!({"op": "log-big", "bytes": 1000}), &limits, &Grants::default());
    assert_eq!(small.outcome, Outcome::Ok);
    let big = run_probe(json!({"op": "log-big", "bytes": 8 << 20}), &limits, &Grants::default());
    assert!(matches!(big.outcome, Outcome::Trap { .. }), "{}", big.outcome);
    assert!(big.logs.is_empty());
    // Within the hostcall bound, a long line is kept but cut to the per-line limit.
    let line = run_probe(json!({"op": "log-big", "bytes": 100_000}), &limits, &Grants::default());
    assert_eq!(line.logs[0].message.len(), limits.log_line_bytes + " [cut]".len());
}

#[test]
fn a_tampered_precompiled_artifact_is_never_loaded() {
    use hyperagent::sandbox::{EngineSettings, Sandbox};
    let wasm = world().archive.get_blob(&probe().hash).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let first = Sandbox::new(EngineSettings::default(), Some(cache.path().into())).unwrap();
    first.load(&wasm).unwrap();
    let artifact = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .expect("an artifact was written");
    let original = std::fs::read(&artifact).unwrap();
    let mut tampered = original.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0xff;
    std::fs::write(&artifact, &tampered).unwrap();
    // A new sandbox finds the artifact's hash does not match the host's sidecar, recompiles, and
    // replaces it; the component still runs correctly.
    let second = Sandbox::new(EngineSettings::default(), Some(cache.path().into())).unwrap();
    let loaded = second.load(&wasm).unwrap();
    assert_eq!(std::fs::read(&artifact).unwrap(), original, "the artifact was rebuilt from the wasm");
    let report =
        block_on(second.call(&loaded, &task(json!({"op": "echo", "value": 3})), &limits(), &Grants::default()))
            .unwrap();
    assert_eq!(report.output.as_deref(), Some("3"));
}

#[test]
fn a_meta_account_is_cut_to_its_bounds() {
    use hyperagent::sandbox::{CallInput, MetaInput};
    let repo = tempfile::tempdir().unwrap();
    std::fs::write(repo.path().join("BIG_ACCOUNT"), "yes").unwrap();
    let grants = Grants {
        preopens: vec![Preopen { host: repo.path().into(), guest: "/repo".into(), writable: true }],
        ..Grants::default()
    };
    let input =
        CallInput::Meta(MetaInput { iterations_left: 0, repo_dir: "/repo".into(), history_dir: "/history".into() });
    let report = block_on(world().sandbox.call(&probe(), &input, &limits(), &grants)).unwrap();
    assert_eq!(report.outcome, Outcome::Ok);
    let account = output_json(&report);
    assert_eq!(account["summary"].as_str().unwrap().len(), 1024);
    assert_eq!(account["rationale"].as_str().unwrap().len(), 16 * 1024);
}
