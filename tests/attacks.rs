//! Hostile guests: each attack must fail with the expected outcome, and the host must carry on.

mod common;

use common::*;
use hyperagent::sandbox::{CallLimits, Fuel, Grants, Outcome};
use serde_json::json;
use std::time::Duration;

fn limits() -> CallLimits {
    CallLimits {
        fuel: Fuel(2_000_000_000),
        memory_bytes: 64 << 20,
        deadline: Duration::from_secs(30),
        ..CallLimits::default()
    }
}

fn host_still_works() {
    let report = run_probe(json!({"op": "echo", "value": "still here"}), &limits(), &Grants::default());
    assert_eq!(report.output.as_deref(), Some("\"still here\""));
}

#[test]
fn deep_recursion_is_stopped_on_either_stack_and_the_host_carries_on() {
    // Frames with locals in linear memory exhaust the guest's own stack region first: the guest
    // faults inside its sandbox.
    let heavy = run_probe(json!({"op": "recurse", "depth": 100_000_000u64}), &limits(), &Grants::default());
    match &heavy.outcome {
        Outcome::Trap { message } => {
            assert!(message.starts_with("wasm trap: out of bounds memory access"), "{message}")
        }
        other => panic!("expected a memory fault, got {other}"),
    }
    // Frames that live on the engine's stack only hit wasmtime's stack limit.
    let light = run_probe(json!({"op": "recurse-light", "depth": 100_000_000u64}), &limits(), &Grants::default());
    assert_eq!(light.outcome, Outcome::StackOverflow, "{}", light.outcome);
    host_still_works();
    let ok = run_probe(json!({"op": "recurse", "depth": 100}), &limits(), &Grants::default());
    assert_eq!(ok.outcome, Outcome::Ok);
}

#[test]
fn threads_and_processes_cannot_be_created() {
    let thread = run_probe(json!({"op": "thread"}), &limits(), &Grants::default());
    assert!(output_json(&thread)["err"].is_string(), "a thread was spawned: {:?}", thread.output);
    let process = run_probe(json!({"op": "process"}), &limits(), &Grants::default());
    assert!(output_json(&process)["err"].is_string(), "a process was spawned: {:?}", process.output);
    host_still_works();
}
