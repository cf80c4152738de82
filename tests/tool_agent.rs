//! The initial hyperagent's LLM meta agent as a model in a loop of tool calls, against a scripted
//! OpenAI-compatible server on loopback that answers with tool calls: it lists and views files,
//! sends malformed, unknown and escaping calls (each answered with an error it can act on), makes
//! an edit that does not compile, sees it in the host's build check, fixes it, tries it on a
//! training task (and is refused a validation task) and finishes. The child holds the edit, every turn is recorded, and the
//! run replays with the server stopped.

mod common;

use common::http::{Reply, Server};
use common::*;
use hyperagent::evolution::config::RunConfig;
use serde_json::{Value, json};
use std::path::Path;

/// An answer of tool calls in `provider`'s format.
fn tool_calls(provider: &str, calls: &[(&str, &str, String)]) -> Value {
    if provider == "anthropic" {
        let blocks: Vec<Value> = calls
            .iter()
            .map(|(id, name, args)| {
                let input: Value = serde_json::from_str(args).unwrap_or(Value::String(args.clone()));
                json!({"type": "tool_use", "id": id, "name": name, "input": input})
            })
            .collect();
        return json!({"model": "scripted", "stop_reason": "tool_use", "content": blocks,
                      "usage": {"input_tokens": 50, "output_tokens": 20}});
    }
    let calls: Vec<Value> = calls
        .iter()
        .map(|(id, name, args)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}}))
        .collect();
    json!({"model": "scripted", "choices": [{"index": 0, "message": {"role": "assistant", "content": null,
           "tool_calls": calls}, "finish_reason": "tool_calls"}], "usage": {"prompt_tokens": 50, "completion_tokens": 20}})
}

/// Answers in `provider`'s format by how far the conversation has come (the number of assistant
/// turns it holds).
fn tool_using_server(provider: &'static str) -> Server {
    Server::start(move |_, request| {
        let body = request.json();
        let messages = body["messages"].as_array().cloned().unwrap_or_default();
        let turns = messages.iter().filter(|m| m["role"] == "assistant").count();
        // Anthropic takes the system prompt apart: the task is the first turn.
        let task = messages.iter().find(|m| m["role"] == "user").and_then(|m| m["content"].as_str()).unwrap_or("");
        let tool_calls = |calls: &[(&str, &str, String)]| tool_calls(provider, calls);
        let reply = match turns {
            0 => tool_calls(&[
                ("c1", "list", "{}".into()),
                ("c2", "view", json!({"path": "src/priority.rs"}).to_string()),
            ]),
            1 => tool_calls(&[
                ("c3", "str_replace", "{not json".into()),
                ("c4", "bash", json!({"cmd": "cat /etc/passwd"}).to_string()),
                ("c5", "create", json!({"path": "../outside.rs", "content": "x"}).to_string()),
            ]),
            2 | 3 => {
                let line = task.lines().find(|l| l.starts_with("pub const WASTE_WEIGHT")).expect("the source is sent");
                let value: f64 = line.split('=').nth(1).unwrap().split(';').next().unwrap().trim().parse().unwrap();
                let broken = "pub const WASTE_WEIGHT: f64 = ; // evolve 0.1..4.0";
                let args = if turns == 2 {
                    // First an edit that does not compile...
                    json!({"path": "src/priority.rs", "old_str": line, "new_str": broken})
                } else {
                    // ...which the check shows, so the model fixes it.
                    let fixed = format!("pub const WASTE_WEIGHT: f64 = {:?}; // evolve 0.1..4.0", value + 0.5);
                    json!({"path": "src/priority.rs", "old_str": broken, "new_str": fixed})
                };
                if turns == 2 {
                    tool_calls(&[("c6", "str_replace", args.to_string()), ("c7", "check_build", "{}".into())])
                } else {
                    // The fixed source is tried on a training task the prompt names, and on the
                    // validation task of the same number, which the host does not reach.
                    let hint = task.lines().find_map(|l| l.strip_prefix("Training tasks for try_task: bin_packing: "));
                    let train = hint.expect("the prompt names training tasks").split(',').next().unwrap().trim();
                    let train = train.trim_end_matches('.');
                    let validation = train.replace("train", "validation");
                    tool_calls(&[
                        ("c6", "str_replace", args.to_string()),
                        ("c7", "check_build", "{}".into()),
                        ("c9", "try_task", json!({"domain": "bin_packing", "task_id": train}).to_string()),
                        ("c10", "try_task", json!({"domain": "bin_packing", "task_id": validation}).to_string()),
                    ])
                }
            }
            _ => tool_calls(&[("c8", "finish", json!({"summary": "weigh the waste more, by tools"}).to_string())]),
        };
        Reply::json(200, reply)
    })
}

fn config(home: &Path, server: &Server, provider: &str) -> std::path::PathBuf {
    let config = RunConfig { generations: 1, children_per_generation: 1, meta_llm_calls: 6, ..small_config() };
    let toml = format!(
        "{}\n[llm]\nprovider = \"{provider}\"\nbase_url = \"{}\"\nmodel = \"scripted\"\napi_key_env = \"\"\n",
        toml::to_string(&config).unwrap(),
        server.base_url
    );
    let path = home.join("tools.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

fn nodes(home: &Path, run: &str) -> Vec<(u32, u32, hyperagent::hash::ContentHash)> {
    node_events(&home.join("runs").join(run).join("log.jsonl"))
}

#[test]
fn a_meta_agent_conversation_with_tools_edits_its_source_and_replays_offline() {
    let home = tempfile::tempdir().unwrap();
    let server = tool_using_server("open-ai");
    let path = config(home.path(), &server, "open-ai");
    let path_text = path.to_string_lossy().into_owned();
    let live = hyperagent_cli(home.path(), &["run", "--config", &path_text, "--run-id", "live"]);
    assert!(live.status.success(), "{}", String::from_utf8_lossy(&live.stderr));
    assert_eq!(server.count(), 5, "five turns: look, err, break, fix, finish");

    // Each mistake came back to the model as an error it can act on.
    let third = server.requests.lock().unwrap()[2].json();
    let results: Vec<String> = third["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect();
    assert!(results[0].contains("src/priority.rs") && results[0].contains("src/meta.rs"), "list: {}", results[0]);
    assert!(results[1].contains("pub fn priority("), "view: {}", results[1]);
    assert!(results[2].contains("not valid JSON"), "{}", results[2]);
    assert!(results[3].contains("there is no tool `bash`"), "{}", results[3]);
    assert!(results[4].contains("not a plain relative path"), "{}", results[4]);
    // The build check failed on the broken edit and passed on the fixed one.
    let results_of = |n: usize| -> Vec<String> {
        let body = server.requests.lock().unwrap()[n].json();
        let messages = body["messages"].as_array().unwrap().clone();
        messages.iter().filter(|m| m["role"] == "tool").map(|m| m["content"].as_str().unwrap().to_owned()).collect()
    };
    let failed = results_of(3).last().unwrap().clone();
    assert!(failed.starts_with("status: failed") && failed.contains("error"), "{failed}");
    let last = results_of(4);
    let [built, tried, refused] = &last[last.len() - 3..] else { unreachable!() };
    assert!(built.starts_with("status: built"), "{built}");
    // The trial ran the fixed task agent on the training task and scored it on the host.
    assert!(tried.starts_with("outcome: ok; score: 0.") && tried.contains("feedback: {"), "{tried}");
    assert!(refused.contains("is not a training task of bin_packing"), "{refused}");

    let archive = hyperagent::archive::Archive::open(home.path().join("archive")).unwrap();
    let child = nodes(home.path(), "live")[1].2;
    let node = archive.get_node(&child).unwrap();
    assert_eq!(node.metadata["meta"]["summary"], "LLM edit of src/priority.rs: weigh the waste more, by tools");
    assert_eq!(node.metadata["llm"].as_array().unwrap().len(), 5, "every turn is recorded");
    let logs: Vec<&str> =
        node.metadata["meta"]["logs"].as_array().unwrap().iter().filter_map(|l| l["message"].as_str()).collect();
    assert!(
        logs.iter().any(|l| l.contains("conversation ended (Finished) after 5 turn(s), 12 tool call(s)")),
        "{logs:?}"
    );
    // The call's report names every use of the host's tools, in order.
    let tools: Vec<(String, String)> = node.metadata["meta"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["tool"].as_str().unwrap().to_owned(), t["result"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(tools.len(), 4, "{tools:?}");
    assert_eq!((tools[0].0.as_str(), tools[0].1.as_str()), ("check-build", "failed"));
    assert_eq!((tools[1].0.as_str(), tools[1].1.as_str()), ("check-build", "built"));
    assert!(tools[2].0 == "try-task" && tools[2].1.starts_with("ok score 0."), "{tools:?}");
    assert!(node.metadata["meta"]["tools"][2]["fuel"].as_u64().unwrap() > 0);
    assert!(tools[3].1.starts_with("error: ") && tools[3].1.contains("not a training task"), "{tools:?}");
    let tree = archive.get_tree(&node.tree).unwrap();
    let priority = String::from_utf8_lossy(&tree.get("src/priority.rs").unwrap().bytes).into_owned();
    let before = String::from_utf8_lossy(&guest_source("initial").get("src/priority.rs").unwrap().bytes).into_owned();
    assert_ne!(priority, before);
    assert!(priority.contains("WASTE_WEIGHT: f64 = ") && tree.get("outside.rs").is_none());
    assert_ne!(node.metadata["status"], "build-failed", "{:?}", node.metadata);

    // Replayed with the server stopped: the same nodes, no request sent.
    server.stop();
    let replay = hyperagent_cli(
        home.path(),
        &["run", "--config", &path_text, "--run-id", "again", "--llm", "replay", "--replay-from", "live"],
    );
    assert!(replay.status.success(), "{}", String::from_utf8_lossy(&replay.stderr));
    assert_eq!(server.count(), 5);
    assert_eq!(nodes(home.path(), "again"), nodes(home.path(), "live"));
    // The audit makes the meta call again, build checks included, from the recorded answers.
    let audit = hyperagent_cli(home.path(), &["replay", "--run", "live"]);
    let said = String::from_utf8_lossy(&audit.stdout);
    assert!(audit.status.success(), "{said}{}", String::from_utf8_lossy(&audit.stderr));
    assert_eq!(said.matches("meta call made again").count(), 1, "{said}");
    // Both verifiers accept an archive whose nodes record tool uses (ARCHIVE.md's `meta.tools`).
    let verify = hyperagent_cli(home.path(), &["verify"]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/verify_archive.py");
    let python = std::process::Command::new("python3").arg(script).arg(home.path()).output().unwrap();
    assert!(
        python.status.success(),
        "{}{}",
        String::from_utf8_lossy(&python.stdout),
        String::from_utf8_lossy(&python.stderr)
    );
    let status = hyperagent_cli(home.path(), &["status", "live"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("LLM: 5 exchange(s), 5 answered, 12 tool call(s)"), "{text}");

    // `show` prints the conversation once, turn by turn, with the tools called.
    let show = hyperagent_cli(home.path(), &["show", &child.to_hex()[..12]]);
    let text = String::from_utf8_lossy(&show.stdout);
    assert_eq!(text.matches("[system]").count(), 1, "{text}");
    assert_eq!(text.matches("[tool c").count(), 11, "{text}");
    assert!(text.contains("-> str_replace {not json (c3)") && text.contains("finish reason tool_calls"), "{text}");
    assert!(text.contains("host tools used (4):") && text.contains("  try-task bin_packing train/"), "{text}");
}

#[test]
fn the_same_conversation_in_anthropics_format_makes_the_same_edit() {
    let home = tempfile::tempdir().unwrap();
    let server = tool_using_server("anthropic");
    let path = config(home.path(), &server, "anthropic");
    let path_text = path.to_string_lossy().into_owned();
    let live = hyperagent_cli(home.path(), &["run", "--config", &path_text, "--run-id", "live"]);
    assert!(live.status.success(), "{}", String::from_utf8_lossy(&live.stderr));
    assert_eq!(server.count(), 5);
    // The tool results went back as one user turn of `tool_result` blocks.
    let second = server.requests.lock().unwrap()[1].json();
    let results = second["messages"][2]["content"].as_array().unwrap();
    assert_eq!((results.len(), results[1]["type"].as_str()), (2, Some("tool_result")));
    assert!(results[1]["content"].as_str().unwrap().contains("pub fn priority("));
    let archive = hyperagent::archive::Archive::open(home.path().join("archive")).unwrap();
    let node = archive.get_node(&nodes(home.path(), "live")[1].2).unwrap();
    assert_eq!(node.metadata["meta"]["summary"], "LLM edit of src/priority.rs: weigh the waste more, by tools");
    server.stop();
    let replay = hyperagent_cli(
        home.path(),
        &["run", "--config", &path_text, "--run-id", "again", "--llm", "replay", "--replay-from", "live"],
    );
    assert!(replay.status.success(), "{}", String::from_utf8_lossy(&replay.stderr));
    assert_eq!(nodes(home.path(), "again"), nodes(home.path(), "live"));
}
