//! The probe: a hyperagent built to be hostile or plain odd on request.
//!
//! `task` reads `{"op": ..., ...}` from its payload and does exactly that, so that one compiled
//! guest can exercise every limit of the sandbox. `meta` does the same with the op it finds in
//! `/repo/META_OP.json`, and reports the op's output as its summary.

use agent_sdk::serde_json::{Value, json};
use agent_sdk::{AgentError, Guest, MetaReport, MetaRequest, SelectRequest, TaskRequest, log};
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

struct Probe;

impl Guest for Probe {
    fn task(request: TaskRequest) -> Result<String, AgentError> {
        run_op(&request.payload)
    }

    fn meta(request: MetaRequest) -> Result<MetaReport, AgentError> {
        let repo = agent_sdk::repo::Repo::open(&request.repo_dir);
        if let Ok(op) = repo.read("META_OP.json") {
            let output = run_op(&op)?;
            return Ok(MetaReport { summary: output, rationale: String::new() });
        }
        // Append a line to the notes file so tests can see /repo is writable and /history readable.
        let history = agent_sdk::history::History::open(&request.history_dir);
        let entries = history.entries().unwrap_or_default();
        let mut notes = repo.read("NOTES.md").unwrap_or_default();
        notes.push_str(&format!("seed {} saw {} history entries\n", request.seed, entries.len()));
        repo.write("NOTES.md", &notes).map_err(|e| AgentError::Failed(format!("cannot write notes: {e}")))?;
        if repo.read("BIG_ACCOUNT").is_ok() {
            // An account far larger than the host keeps, to test its bounds.
            return Ok(MetaReport { summary: "s".repeat(100_000), rationale: "r".repeat(1_000_000) });
        }
        Ok(MetaReport { summary: "appended a line to NOTES.md".into(), rationale: entries.join(",") })
    }

    /// Chooses the first valid node for every slot, unless the oldest node's summary is a
    /// selector op (`{"select": ...}`), which tests use to play a hostile selector; asked for
    /// three parents it declines (so a run can be made to fall back every generation).
    fn select(request: SelectRequest) -> Result<Vec<String>, String> {
        let nodes = agent_sdk::select::nodes(&request)?;
        let archive: Value = agent_sdk::serde_json::from_str(&request.archive).unwrap_or(Value::Null);
        let op: Value = archive["nodes"][0]["summary"]
            .as_str()
            .and_then(|s| agent_sdk::serde_json::from_str(s).ok())
            .unwrap_or(Value::Null);
        let valid: Vec<String> = nodes.iter().filter(|n| n.valid).map(|n| n.node.clone()).collect();
        match op["select"].as_str().unwrap_or("") {
            "spin" => loop {
                std::hint::black_box(&valid);
            },
            "huge" => Ok(vec!["x".repeat(1 << 10); 1 << 16]),
            "bloat" => {
                // 128 MiB, every page touched: over the selector's memory cap.
                let block = vec![1u8; 128 << 20];
                Ok(vec![block.iter().step_by(4096).map(|b| u64::from(*b)).sum::<u64>().to_string()])
            }
            "unknown" => Ok(vec!["0".repeat(64); request.count as usize]),
            "invalid" => {
                let invalid = nodes.iter().find(|n| !n.valid).map(|n| n.node.clone()).unwrap_or_default();
                Ok(vec![invalid; request.count as usize])
            }
            "every" => Ok(nodes.iter().map(|n| n.node.clone()).collect()),
            "fail" => Err("this selector declines".into()),
            "last" => Ok(vec![valid.last().cloned().unwrap_or_default(); request.count as usize]),
            _ if request.count == 3 => Err("the probe declines to choose three parents".into()),
            _ => Ok(vec![valid.first().cloned().unwrap_or_default(); request.count as usize]),
        }
    }
}

/// Does what the JSON payload `{"op": ..., ...}` asks.
fn run_op(payload: &str) -> Result<String, AgentError> {
    let payload: Value = agent_sdk::serde_json::from_str(payload)
        .map_err(|e| AgentError::InvalidRequest(format!("payload is not JSON: {e}")))?;
    let op = payload["op"].as_str().unwrap_or("");
    let output = match op {
        "echo" => payload["value"].clone(),
        "spin" => spin(),
        "alloc" => {
            let mib = payload["mib"].as_u64().unwrap_or(0) as usize;
            // Touch every page so the memory is really used, and keep the sum observable.
            let block = vec![1u8; mib << 20];
            json!(block.iter().step_by(4096).map(|b| u64::from(*b)).sum::<u64>())
        }
        "alloc-forever" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![7u8; 1 << 20]);
            }
        }
        "read" => {
            let path = payload["path"].as_str().unwrap_or("");
            match std::fs::read_to_string(path) {
                Ok(text) => json!({"ok": text}),
                Err(e) => json!({"err": e.to_string()}),
            }
        }
        "write" => {
            let path = payload["path"].as_str().unwrap_or("");
            let text = payload["text"].as_str().unwrap_or("");
            match std::fs::write(path, text) {
                Ok(()) => json!({"ok": true}),
                Err(e) => json!({"err": e.to_string()}),
            }
        }
        "fill" => {
            // `mib` files of 1 MiB each, all from one buffer: little fuel, much disk.
            let dir = payload["dir"].as_str().unwrap_or("/repo");
            let block = vec![b'f'; 1 << 20];
            let mut written = 0u64;
            for i in 0..payload["mib"].as_u64().unwrap_or(0) {
                if let Err(e) = std::fs::write(format!("{dir}/fill{i}"), &block) {
                    return Ok(json!({"err": e.to_string(), "written_mib": written}).to_string());
                }
                written += 1;
            }
            json!({"ok": written})
        }
        "files" => {
            let dir = payload["dir"].as_str().unwrap_or("/repo");
            let mut made = 0u64;
            for i in 0..payload["count"].as_u64().unwrap_or(0) {
                if let Err(e) = std::fs::write(format!("{dir}/empty{i}"), b"") {
                    return Ok(json!({"err": e.to_string(), "made": made}).to_string());
                }
                made += 1;
            }
            json!({"ok": made})
        }
        "list" => {
            let path = payload["path"].as_str().unwrap_or("/");
            match std::fs::read_dir(path) {
                Ok(entries) => json!({"ok": entries
                        .filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect::<Vec<_>>()}),
                Err(e) => json!({"err": e.to_string()}),
            }
        }
        "env" => json!({
            "vars": std::env::vars().collect::<Vec<_>>(),
            "args": std::env::args().collect::<Vec<_>>(),
            "cwd": std::env::current_dir().map(|p| p.display().to_string()).ok(),
        }),
        "clock" => {
            let wall = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
            let start = Instant::now();
            let elapsed = start.elapsed().as_nanos();
            // RandomState is seeded from wasi:random/insecure-seed.
            let hash = RandomState::new().hash_one("probe");
            json!({"wall_nanos": wall.to_string(), "elapsed_nanos": elapsed.to_string(), "hash": hash.to_string()})
        }
        "print" => {
            let bytes = payload["bytes"].as_u64().unwrap_or(0) as usize;
            let line = "x".repeat(1023) + "\n";
            let mut left = bytes;
            while left > 0 {
                let n = left.min(line.len());
                print!("{}", &line[..n]);
                left -= n;
            }
            // Rust's stdout is line-buffered and an export call never exits, so flush.
            let _ = std::io::Write::flush(&mut std::io::stdout());
            eprintln!("done printing");
            json!(bytes)
        }
        "log" => {
            let count = payload["count"].as_u64().unwrap_or(0);
            for i in 0..count {
                log::info(format!("line {i}"));
            }
            json!(count)
        }
        "log-big" => {
            // One log line of the requested size: the host bounds what it copies out.
            let bytes = payload["bytes"].as_u64().unwrap_or(0) as usize;
            log::info("z".repeat(bytes));
            json!(bytes)
        }
        "say" => {
            // Text written everywhere the host shows it: a log line, stdout, stderr, the output.
            let text = payload["text"].as_str().unwrap_or("");
            log::info(text);
            println!("{text}");
            eprintln!("{text}");
            let _ = std::io::Write::flush(&mut std::io::stdout());
            json!(text)
        }
        "recurse" => json!(recurse(payload["depth"].as_u64().unwrap_or(1_000_000), 0)),
        "recurse-light" => json!(recurse_light(payload["depth"].as_u64().unwrap_or(1_000_000))),
        "thread" => match std::thread::Builder::new().spawn(|| 1) {
            Ok(handle) => json!({"ok": handle.join().unwrap_or(0)}),
            Err(e) => json!({"err": e.to_string()}),
        },
        "process" => match std::process::Command::new("/bin/sh").arg("-c").arg("id").output() {
            Ok(out) => json!({"ok": String::from_utf8_lossy(&out.stdout)}),
            Err(e) => json!({"err": e.to_string()}),
        },
        "kernel" => {
            let items = payload["items"].as_u64().unwrap_or(1000) as usize;
            let rounds = payload["rounds"].as_u64().unwrap_or(1) as usize;
            match payload["kernel"].as_str().unwrap_or("first-fit") {
                "priority-fit" => json!(agent_sdk::kernels::priority_fit_bins(items, rounds, 42)),
                _ => json!(agent_sdk::kernels::first_fit_bins(items, rounds, 42)),
            }
        }
        "output" => {
            // An output of the requested size, to test the host's bound on results.
            let bytes = payload["bytes"].as_u64().unwrap_or(0) as usize;
            return Ok(format!("\"{}\"", "y".repeat(bytes)));
        }
        "raw" => return Ok(payload["text"].as_str().unwrap_or("").to_owned()),
        "fail" => return Err(AgentError::Failed("asked to fail".into())),
        "panic" => panic!("asked to panic"),
        "llm" => match agent_sdk::llm::ask(
            "system",
            &payload["bytes"].as_u64().map_or("hello".to_owned(), |n| "h".repeat(n as usize)),
            16,
        ) {
            Ok(text) => json!({"ok": text}),
            Err(e) => json!({"err": agent_sdk::llm::describe(&e)}),
        },
        "llm-many" => {
            use agent_sdk::llm::{LlmRequest, Message, Role};
            let count = payload["messages"].as_u64().unwrap_or(1) as usize;
            let messages = (0..count).map(|_| Message { role: Role::User, content: "m".into() }).collect();
            let request = LlmRequest {
                messages,
                model_hint: None,
                max_output_tokens: payload["max_output_tokens"].as_u64().map_or(16, |n| n as u32),
                temperature_milli: payload["temperature_milli"].as_u64().map(|t| t as u32),
            };
            match agent_sdk::llm::complete(&request) {
                Ok(answer) => json!({"ok": answer.content}),
                Err(e) => json!({"err": agent_sdk::llm::describe(&e)}),
            }
        }
        "chat" => chat(&payload),
        "check-build" => match agent_sdk::workbench::check_build() {
            Ok(check) => json!({"ok": agent_sdk::workbench::describe(&check)}),
            Err(why) => json!({"err": why}),
        },
        "try-task" => match agent_sdk::workbench::try_task(
            payload["domain"].as_str().unwrap_or(""),
            payload["task"].as_str().unwrap_or(""),
        ) {
            Ok(trial) => json!({"ok": {"outcome": trial.outcome, "score": trial.score, "answer": trial.answer,
                "feedback": trial.feedback, "fuel": trial.fuel, "cached_build": trial.cached_build}}),
            Err(why) => json!({"err": why}),
        },
        "run-tests" => {
            let files = [("src/lib.rs".to_owned(), payload["lib"].as_str().unwrap_or("").to_owned())];
            match agent_sdk::task_tools::run_tests(&files, payload["tests"].as_str().unwrap_or("")) {
                Ok(run) => json!({"ok": agent_sdk::task_tools::describe(&run)}),
                Err(why) => json!({"err": why}),
            }
        }
        "environment" => {
            let env = agent_sdk::environment();
            json!({"host": env.host_version, "contract": env.contract_version,
                       "llm": env.llm_available, "fuel": env.budget.fuel})
        }
        other => match files_op(other, &payload) {
            Some(output) => output,
            None => return Err(AgentError::InvalidRequest(format!("unknown op `{other}`"))),
        },
    };
    Ok(output.to_string())
}

fn err(e: std::io::Error) -> Value {
    json!({"err": e.to_string()})
}

/// Ops that test the host's hold on the file system: quota, descriptors, nesting, metadata.
fn files_op(op: &str, payload: &Value) -> Option<Value> {
    let dir = payload["dir"].as_str().unwrap_or("/repo").to_owned();
    let count = payload["count"].as_u64().unwrap_or(0);
    let block = vec![b'q'; 1 << 20];
    let mib = payload["mib"].as_u64().unwrap_or(0);
    Some(match op {
        "nest" => {
            // One-letter directories, `count` deep, then `mib` MiB at the bottom.
            let mut path = dir;
            for level in 0..count {
                path.push_str("/d");
                if let Err(e) = std::fs::create_dir(&path) {
                    return Some(json!({"err": e.to_string(), "level": level}));
                }
            }
            let mut file = match std::fs::File::create(format!("{path}/bottom")) {
                Ok(file) => file,
                Err(e) => return Some(err(e)),
            };
            for _ in 0..mib {
                if let Err(e) = std::io::Write::write_all(&mut file, &block) {
                    return Some(err(e));
                }
            }
            json!({"ok": count})
        }
        "hold-open" => {
            // Opens `count` files and keeps them, then writes `mib` MiB through the first.
            let mut held = Vec::new();
            for i in 0..count {
                match std::fs::File::create(format!("{dir}/held{i}")) {
                    Ok(file) => held.push(file),
                    Err(e) => return Some(json!({"err": e.to_string(), "held": i})),
                }
            }
            for _ in 0..mib {
                if let Some(Err(e)) = held.first_mut().map(|f| std::io::Write::write_all(f, &block)) {
                    return Some(err(e));
                }
            }
            json!({"ok": held.len()})
        }
        "unlinked-grow" => {
            // A file deleted while open keeps its blocks until closed.
            let path = format!("{dir}/ghost");
            let mut file = match std::fs::File::create(&path) {
                Ok(file) => file,
                Err(e) => return Some(err(e)),
            };
            if let Err(e) = std::fs::remove_file(&path) {
                return Some(err(e));
            }
            for _ in 0..mib {
                if let Err(e) = std::io::Write::write_all(&mut file, &block) {
                    return Some(err(e));
                }
            }
            json!({"ok": mib})
        }
        "sparse" => match std::fs::File::create(format!("{dir}/sparse")).and_then(|f| f.set_len(mib << 20)) {
            Ok(()) => json!({"ok": mib}),
            Err(e) => err(e),
        },
        "dirs" => {
            for i in 0..count {
                if let Err(e) = std::fs::create_dir(format!("{dir}/dir{i}")) {
                    return Some(json!({"err": e.to_string(), "made": i}));
                }
            }
            json!({"ok": count})
        }
        "move-deeper" => {
            let moved = std::fs::create_dir_all(format!("{dir}/a/b"))
                .and_then(|()| std::fs::create_dir_all(format!("{dir}/x")))
                .and_then(|()| std::fs::rename(format!("{dir}/x"), format!("{dir}/a/b/x")));
            match moved {
                Ok(()) => json!({"ok": true}),
                Err(e) => err(e),
            }
        }
        // `soft_link` is the one stable way to make a link on WASI.
        #[allow(deprecated)]
        "symlink" => match std::fs::soft_link("lib.rs", format!("{dir}/link")) {
            Ok(()) => json!({"ok": true}),
            Err(e) => err(e),
        },
        "metadata" => {
            // Everything a guest can learn about a tree's files besides their contents.
            let mut seen = Vec::new();
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) => return Some(err(e)),
            };
            for entry in entries.flatten() {
                let Ok(meta) = entry.metadata() else { continue };
                let time = |t: std::io::Result<SystemTime>| {
                    t.ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_nanos().to_string())
                };
                seen.push(json!({
                    "name": entry.file_name().to_string_lossy(),
                    "len": meta.len(),
                    "dir": meta.is_dir(),
                    "modified": time(meta.modified()),
                    "accessed": time(meta.accessed()),
                    "created": time(meta.created()),
                }));
            }
            json!(seen)
        }
        "log-flood" => {
            // `count` log lines of `bytes` each: little guest work, much host copying.
            let line = "L".repeat(payload["bytes"].as_u64().unwrap_or(0) as usize);
            for _ in 0..count {
                log::info(&line);
            }
            json!(count)
        }
        _ => return None,
    })
}

/// Recursion the optimiser cannot turn into a loop (the frame holds a buffer it reads back).
#[inline(never)]
fn recurse(depth: u64, acc: u64) -> u64 {
    let frame = [depth as u8; 256];
    if depth == 0 {
        return acc;
    }
    let below = recurse(depth - 1, acc.wrapping_add(u64::from(std::hint::black_box(frame)[depth as usize % 256])));
    below.wrapping_add(u64::from(frame[0]))
}

/// Recursion whose frames live on the engine's stack only (nothing in linear memory).
#[inline(never)]
fn recurse_light(depth: u64) -> u64 {
    if depth == 0 { 0 } else { std::hint::black_box(recurse_light(depth - 1)).wrapping_add(depth) }
}

fn spin() -> Value {
    let mut x: u64 = 1;
    loop {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        if x == 0 {
            break;
        }
    }
    json!(x)
}

agent_sdk::export_hyperagent!(Probe);

/// One `llm-chat` turn from a JSON description: `messages` (`role`, `content`, optional
/// `tool_calls` of `id`/`name`/`arguments` and `tool_call_id`) and `tools` (`name`,
/// `description`, `parameters` as a JSON value, or `parameters_text` sent verbatim).
fn chat(payload: &Value) -> Value {
    use agent_sdk::llm::{ChatMessage, ChatRequest, ChatRole, ToolCall, ToolDefinition};
    let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
    let calls = |v: &Value| -> Vec<ToolCall> {
        v.as_array()
            .map(|calls| {
                calls
                    .iter()
                    .map(|c| ToolCall { id: text(&c["id"]), name: text(&c["name"]), arguments: text(&c["arguments"]) })
                    .collect()
            })
            .unwrap_or_default()
    };
    let messages = payload["messages"]
        .as_array()
        .map(|messages| {
            messages
                .iter()
                .map(|m| ChatMessage {
                    role: match m["role"].as_str() {
                        Some("system") => ChatRole::System,
                        Some("assistant") => ChatRole::Assistant,
                        Some("tool") => ChatRole::Tool,
                        _ => ChatRole::User,
                    },
                    content: text(&m["content"]),
                    tool_calls: calls(&m["tool_calls"]),
                    tool_call_id: m["tool_call_id"].as_str().map(str::to_owned),
                })
                .collect()
        })
        .unwrap_or_default();
    let tools = payload["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .map(|t| ToolDefinition {
                    name: text(&t["name"]),
                    description: text(&t["description"]),
                    parameters: t["parameters_text"]
                        .as_str()
                        .map_or_else(|| t["parameters"].to_string(), str::to_owned),
                })
                .collect()
        })
        .unwrap_or_default();
    let request = ChatRequest {
        messages,
        tools,
        model_hint: None,
        max_output_tokens: payload["max_output_tokens"].as_u64().map_or(64, |n| n as u32),
        temperature_milli: Some(0),
    };
    match agent_sdk::llm::chat(&request) {
        Ok(answer) => json!({"ok": {
            "content": answer.content,
            "finish_reason": answer.finish_reason,
            "dropped": answer.tool_calls_dropped,
            "calls": answer.tool_calls.iter().map(|c| json!({"id": c.id, "name": c.name, "arguments": c.arguments})).collect::<Vec<_>>(),
        }}),
        Err(e) => json!({"err": agent_sdk::llm::describe(&e)}),
    }
}
