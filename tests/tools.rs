//! Tool calling through the gateway: both wire formats against real HTTP servers on loopback, a
//! guest conversation through `llm-chat` recorded and replayed with the server stopped, and the
//! host's bounds on what a guest offers and what a model answers.

mod common;

use common::http::{Reply, Server};
use common::*;
use hyperagent::llm::wire::Provider;
use hyperagent::llm::{Backend, CallGateway, LlmConfig, ReplayIndex, Source};
use hyperagent::sandbox::{
    CallInput, CallLimits, CallReport, ChatMessage, ChatRequest, Grants, TaskInput, ToolCall, ToolDefinition,
};
use serde_json::{Value, json};
use std::sync::Arc;

fn backend(provider: Provider, server: &Server, tweak: impl FnOnce(&mut LlmConfig)) -> Backend {
    let mut config = LlmConfig {
        provider,
        base_url: server.base_url.clone(),
        model: "test-model".into(),
        api_key_env: None,
        timeout_ms: 2000,
        max_retries: 0,
        ..LlmConfig::default()
    };
    tweak(&mut config);
    Backend::new(config).expect("backend")
}

fn view_tool() -> ToolDefinition {
    ToolDefinition {
        name: "view".into(),
        description: "Shows a file with line numbers".into(),
        parameters: r#"{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}"#.into(),
    }
}

/// A conversation one tool round in: the user asked, the model called `view`, the tool answered.
fn one_round_in() -> ChatRequest {
    ChatRequest {
        messages: vec![
            ChatMessage::text("system", "You edit code."),
            ChatMessage::text("user", "Look at src/lib.rs"),
            ChatMessage {
                role: "assistant".into(),
                content: String::new(),
                tool_calls: vec![ToolCall {
                    id: "call_1".into(),
                    name: "view".into(),
                    arguments: r#"{"path":"src/lib.rs"}"#.into(),
                }],
                tool_call_id: None,
            },
            ChatMessage { tool_call_id: Some("call_1".into()), ..ChatMessage::text("tool", "1\tfn main() {}") },
        ],
        tools: vec![view_tool()],
        max_output_tokens: 64,
        ..ChatRequest::default()
    }
}

fn openai_calls(calls: &[(&str, &str, &str)]) -> Value {
    let calls: Vec<Value> = calls
        .iter()
        .map(|(id, name, args)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}}))
        .collect();
    json!({"model": "m", "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": calls},
           "finish_reason": "tool_calls"}], "usage": {"prompt_tokens": 10, "completion_tokens": 5}})
}

#[test]
fn openai_tools_go_out_as_functions_and_tool_calls_come_back() {
    let server =
        Server::start(|_, _| Reply::json(200, openai_calls(&[("call_2", "view", r#"{"path":"Cargo.toml"}"#)])));
    let answer = block_on(backend(Provider::OpenAi, &server, |_| ()).complete(&one_round_in())).unwrap();
    assert_eq!(
        answer.tool_calls,
        vec![ToolCall { id: "call_2".into(), name: "view".into(), arguments: r#"{"path":"Cargo.toml"}"#.into() }]
    );
    assert_eq!((answer.content.as_str(), answer.finish_reason.as_deref()), ("", Some("tool_calls")));
    let body = server.requests.lock().unwrap()[0].json();
    assert_eq!((body["tools"][0]["type"].as_str(), body["tool_choice"].as_str()), (Some("function"), Some("auto")));
    assert_eq!(body["tools"][0]["function"]["name"], "view");
    assert_eq!(body["tools"][0]["function"]["parameters"]["required"][0], "path");
    let assistant = &body["messages"][2];
    assert_eq!((assistant["content"].clone(), assistant["tool_calls"][0]["id"].clone()), (json!(""), json!("call_1")));
    assert_eq!(assistant["tool_calls"][0]["function"]["arguments"], r#"{"path":"src/lib.rs"}"#);
    assert_eq!(body["messages"][3], json!({"role": "tool", "tool_call_id": "call_1", "content": "1\tfn main() {}"}));
}

#[test]
fn anthropic_tools_go_out_as_tool_use_and_results_as_one_user_turn() {
    let reply = json!({"model": "claude-test", "stop_reason": "tool_use",
        "content": [{"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "toolu_1", "name": "view", "input": {"path": "a.rs"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "view", "input": {"path": "b.rs"}}],
        "usage": {"input_tokens": 20, "output_tokens": 7}});
    let server = Server::start(move |_, _| Reply::json(200, reply.clone()));
    let mut request = one_round_in();
    // Two results in a row: Anthropic wants them in one user turn.
    request.messages[2].tool_calls.push(ToolCall {
        id: "call_b".into(),
        name: "view".into(),
        arguments: "not json".into(),
    });
    request.messages.push(ChatMessage { tool_call_id: Some("call_b".into()), ..ChatMessage::text("tool", "2") });
    let answer = block_on(backend(Provider::Anthropic, &server, |_| ()).complete(&request)).unwrap();
    assert_eq!(answer.content, "Let me look.");
    let calls: Vec<(&str, &str)> = answer.tool_calls.iter().map(|c| (c.id.as_str(), c.arguments.as_str())).collect();
    assert_eq!(calls, vec![("toolu_1", r#"{"path":"a.rs"}"#), ("toolu_2", r#"{"path":"b.rs"}"#)]);
    assert_eq!(answer.finish_reason.as_deref(), Some("tool_use"));
    let body = server.requests.lock().unwrap()[0].json();
    assert_eq!(body["system"], "You edit code.");
    assert_eq!(body["tools"][0]["input_schema"]["type"], "object");
    let turns = body["messages"].as_array().unwrap();
    assert_eq!(turns.len(), 3, "user, assistant, one user turn of results: {body}");
    assert_eq!(
        turns[1]["content"][0],
        json!({"type": "tool_use", "id": "call_1", "name": "view", "input": {"path": "src/lib.rs"}})
    );
    // Arguments that are not a JSON object go as an empty input.
    assert_eq!(turns[1]["content"][1]["input"], json!({}));
    let results: Vec<&Value> = turns[2]["content"].as_array().unwrap().iter().map(|b| &b["tool_use_id"]).collect();
    assert_eq!(results, vec![&json!("call_1"), &json!("call_b")]);
}

#[test]
fn a_thousand_tool_calls_in_one_answer_are_cut_to_the_limit_and_counted() {
    let calls: Vec<(String, String, String)> =
        (0..1000).map(|i| (format!("c{i}"), "view".to_owned(), "{}".to_owned())).collect();
    let refs: Vec<(&str, &str, &str)> = calls.iter().map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str())).collect();
    let reply = openai_calls(&refs);
    let server = Server::start(move |_, _| Reply::json(200, reply.clone()));
    let answer = block_on(backend(Provider::OpenAi, &server, |_| ()).complete(&one_round_in())).unwrap();
    let limit = hyperagent::sandbox::host::MAX_TOOL_CALLS_PER_ANSWER;
    assert_eq!((answer.tool_calls.len(), answer.tool_calls_dropped as usize), (limit, 1000 - limit));
    assert_eq!(answer.tool_calls[limit - 1].id, format!("c{}", limit - 1));
}

#[test]
fn the_backends_output_and_context_limits_lower_what_is_asked() {
    let server = Server::start(|_, _| Reply::json(200, common::http::openai_reply("ok")));
    let mut request = one_round_in();
    request.max_output_tokens = 4096;
    block_on(backend(Provider::OpenAi, &server, |c| c.max_output_tokens = Some(512)).complete(&request)).unwrap();
    // 3,000 bytes of input are estimated at 1,000 tokens: a 1,500-token window leaves at most 500.
    request.messages[1].content = "x".repeat(3000);
    let windowed = backend(Provider::OpenAi, &server, |c| c.context_tokens = Some(1500));
    block_on(windowed.complete(&request)).unwrap();
    let sent: Vec<u64> =
        server.requests.lock().unwrap().iter().map(|r| r.json()["max_tokens"].as_u64().unwrap()).collect();
    assert_eq!(sent[0], 512);
    assert!(sent[1] < 500 && sent[1] > 400, "{sent:?}");
}

/// The probe's `chat` op, run as a task in the sandbox with `gateway`.
fn chat_call(gateway: Arc<CallGateway>, payload: Value) -> CallReport {
    let grants = Grants { llm: Some(gateway), ..Default::default() };
    let input = CallInput::Task(TaskInput { domain: "test".into(), task_id: "x".into(), payload: payload.to_string() });
    block_on(world().sandbox.call(&probe(), &input, &CallLimits { llm_calls: 4, ..Default::default() }, &grants))
        .unwrap()
}

/// A guest's two-turn conversation: a tool call, then an answer that depends on the tool's result.
fn conversation(result: &str) -> Value {
    json!({"op": "chat", "tools": [{"name": "view", "description": "Shows a file", "parameters": {"type": "object"}}],
           "messages": [{"role": "user", "content": "What is in lib.rs?"},
                        {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "name": "view", "arguments": "{}"}]},
                        {"role": "tool", "tool_call_id": "c1", "content": result}]})
}

#[test]
fn a_guest_conversation_with_tools_is_recorded_and_replays_with_the_server_stopped() {
    // The model answers from the tool's result, so different results give different answers.
    let server = Server::start(|_, request| {
        let body = request.json();
        let result = body["messages"][2]["content"].as_str().unwrap_or("").to_owned();
        Reply::json(200, common::http::openai_reply(&format!("the file holds {result}")))
    });
    let live = Arc::new(CallGateway::new(
        Source::Live(Arc::new(backend(Provider::OpenAi, &server, |_| ()))),
        world().archive.clone(),
        "meta g0001-s00".into(),
    ));
    let first = chat_call(live.clone(), conversation("fn a()"));
    assert_eq!(output_json(&first)["ok"]["content"], "the file holds fn a()", "{:?}", first.output);
    assert_eq!(output_json(&first)["ok"]["finish_reason"], "stop");
    let records: Vec<_> = live.records().into_iter().map(|(r, _)| r).collect();
    let exchange: hyperagent::llm::Exchange =
        serde_json::from_slice(&world().archive.get_blob(&records[0]).unwrap()).unwrap();
    assert_eq!(exchange.request.tools[0].name, "view");
    assert_eq!(exchange.request.messages[1].tool_calls[0].id, "c1");
    assert_eq!(exchange.response.unwrap().finish_reason.as_deref(), Some("stop"));
    server.stop();

    let index = Arc::new(ReplayIndex::from_records(&world().archive, &records).unwrap());
    let replay = Arc::new(CallGateway::new(Source::Replay(index), world().archive.clone(), "meta g0001-s00".into()));
    let again = chat_call(replay.clone(), conversation("fn a()"));
    assert_eq!(again.output, first.output);
    assert_eq!(again.fuel_consumed, first.fuel_consumed);
    // Another tool result is another request, which the recorded run never sent.
    let other = chat_call(replay, conversation("fn b()"));
    assert!(output_json(&other)["err"].as_str().unwrap().contains("no recorded answer"), "{:?}", other.output);
}

#[test]
fn tools_a_guest_offers_are_bounded_before_any_backend_sees_them() {
    let server = Server::start(|_, _| Reply::json(200, common::http::openai_reply("fine")));
    let gateway = Arc::new(CallGateway::new(
        Source::Live(Arc::new(backend(Provider::OpenAi, &server, |_| ()))),
        world().archive.clone(),
        "task tools".into(),
    ));
    let offer = |tools: Value| {
        let payload = json!({"op": "chat", "tools": tools, "messages": [{"role": "user", "content": "hi"}]});
        output_json(&chat_call(gateway.clone(), payload))
    };
    let tool = |name: &str| json!({"name": name, "description": "", "parameters": {"type": "object"}});
    let many: Vec<Value> = (0..65).map(|i| tool(&format!("t{i}"))).collect();
    let cases = [
        (json!(many), "offers 65 tools; the limit is 64"),
        (json!([tool("has space")]), "is not 1 to 64 characters"),
        (json!([tool("twice"), tool("twice")]), "offered twice"),
        (json!([{"name": "t", "description": "", "parameters_text": "[1, 2]"}]), "not a JSON object"),
        (json!([{"name": "t", "description": "", "parameters_text": "x".repeat(20_000)}]), "the limit is 16384"),
        (json!([{"name": "t", "description": "d".repeat(5000), "parameters": {}}]), "description holds 5000 bytes"),
    ];
    for (tools, expected) in cases {
        let answer = offer(tools);
        assert!(answer["err"].as_str().unwrap_or("").contains(expected), "{expected}: {answer}");
    }
    assert_eq!(server.count(), 0);
    assert_eq!(offer(json!([tool("view")]))["ok"]["content"], "fine");
}

/// The source of a hyperagent built against contract 0.1.0 (the text of that version, kept as a
/// fixture): its task reports the contract the host speaks and asks for a completion.
fn contract_0_1_0_agent() -> hyperagent::source_tree::SourceTree {
    let mut tree = guest_source("probe");
    let wit = include_str!("fixtures/hyperagent-0.1.0.wit");
    let lib = format!(
        r####"
agent_sdk::__private::wit_bindgen::generate!({{
    inline: r###"{wit}"###,
    world: "hyperagent-core",
    runtime_path: "agent_sdk::__private::wit_bindgen::rt",
}});
use hyperagent::agent::host;
struct Old;
impl Guest for Old {{
    fn task(_request: TaskRequest) -> Result<String, AgentError> {{
        host::log(host::LogLevel::Info, "built against 0.1.0");
        let request = host::LlmRequest {{
            messages: vec![host::Message {{ role: host::Role::User, content: "hi".into() }}],
            model_hint: None,
            max_output_tokens: 8,
            temperature_milli: None,
        }};
        let llm = match host::llm_complete(&request) {{
            Err(host::LlmError::NotConfigured) => "not configured",
            _ => "answered",
        }};
        Ok(format!("{{{{\"contract\": \"{{}}\", \"llm\": \"{{llm}}\"}}}}", host::environment().contract_version))
    }}
    fn meta(_request: MetaRequest) -> Result<MetaReport, AgentError> {{
        Err(AgentError::Failed("no meta agent".into()))
    }}
}}
export!(Old);
"####
    );
    tree.insert("src/lib.rs", lib).unwrap();
    tree
}

#[test]
fn a_component_built_against_contract_0_1_0_still_runs() {
    let component = build(&contract_0_1_0_agent());
    let loaded = load(&component);
    assert!(loaded.imports.iter().any(|i| i == "hyperagent:agent/host@0.1.0"), "{:?}", loaded.imports);
    let input = CallInput::Task(TaskInput { domain: "test".into(), task_id: "x".into(), payload: "{}".into() });
    let report = block_on(world().sandbox.call(&loaded, &input, &CallLimits::default(), &Grants::default())).unwrap();
    assert_eq!(output_json(&report), json!({"contract": "0.1.2", "llm": "not configured"}), "{report:?}");
    assert_eq!(report.logs[0].message, "built against 0.1.0");
}

#[test]
fn build_checks_are_for_meta_calls_only_and_bounded_per_call() {
    use hyperagent::evolution::workbench::{MAX_CHECKS_PER_CALL, RepoWorkbench};
    use hyperagent::sandbox::Workbench;
    // A task call is offered no workbench.
    let task = run_probe(json!({"op": "check-build"}), &CallLimits::default(), &Grants::default());
    assert!(output_json(&task)["err"].as_str().unwrap().contains("meta calls only"), "{:?}", task.output);

    // Checks of one tree: one build, the rest answered from memory, then none at all.
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    guest_source("probe").write_to(&repo).unwrap();
    let compiler = bench_compiler();
    let bench = RepoWorkbench::new(repo.clone(), compiler, dir.path().join("scratch"), None).unwrap();
    let first = block_on(bench.check_build()).unwrap();
    assert_eq!((first.status.as_str(), first.cached), ("built", false));
    for _ in 1..MAX_CHECKS_PER_CALL {
        assert!(block_on(bench.check_build()).unwrap().cached);
    }
    let spent = block_on(bench.check_build()).unwrap_err();
    assert!(spent.contains("8 build checks are spent"), "{spent}");

    // A source the policy refuses is reported as such, with the rule it broke.
    std::fs::write(repo.join("build.rs"), "fn main() {}").unwrap();
    let fresh = RepoWorkbench::new(repo, bench_compiler(), dir.path().join("scratch"), None).unwrap();
    let refused = block_on(fresh.check_build()).unwrap();
    assert_eq!(refused.status, "rejected");
    assert!(refused.diagnostics.contains("build scripts are not allowed"), "{}", refused.diagnostics);
}

#[test]
fn a_build_checks_diagnostics_reach_the_guest_cut_at_16_kib() {
    use hyperagent::evolution::workbench::RepoWorkbench;
    // A source with a thousand errors: the compiler's diagnostics run far past 16 KiB.
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let mut tree = guest_source("probe");
    let errors: String = (0..1000).map(|i| format!("fn broken_{i}() -> u32 {{ \"not a number\" }}\n")).collect();
    let lib = format!("{}\n{errors}", lib_rs(&tree));
    tree.insert("src/lib.rs", lib).unwrap();
    tree.write_to(&repo).unwrap();
    let compiler = bench_compiler();
    let bench = RepoWorkbench::new(repo, compiler, dir.path().join("scratch"), None).unwrap();
    let grants = Grants { workbench: Some(Arc::new(bench)), ..Default::default() };
    let report = run_probe(json!({"op": "check-build"}), &CallLimits::default(), &grants);
    let said = output_json(&report)["ok"].as_str().unwrap().to_owned();
    assert!(
        said.starts_with("status: failed") && said.ends_with("[cut at 16 KiB]"),
        "{}",
        &said[..200.min(said.len())]
    );
    assert!(said.len() <= hyperagent::sandbox::host::MAX_CHECK_DIAGNOSTICS_BYTES + 100, "{}", said.len());
}

/// A domain made here: each task is a probe op, and any answer scores 1 with its length as
/// feedback. Its training split is what `try-task` may reach.
struct OpsDomain;

impl hyperagent_domains::Domain for OpsDomain {
    fn name(&self) -> &'static str {
        "ops"
    }

    fn splits(
        &self,
        _: u64,
        _: u64,
    ) -> Result<(hyperagent_domains::Split, hyperagent_domains::Split), hyperagent_domains::DataError> {
        unreachable!("the workbench is handed the training tasks")
    }

    fn test_sets(&self, _: &std::path::Path) -> Result<hyperagent_domains::TestSets, hyperagent_domains::DataError> {
        Ok(hyperagent_domains::TestSets { sets: Vec::new(), notice: None })
    }

    fn score<'a>(
        &'a self,
        _: &'a hyperagent_domains::Task,
        answer: &'a str,
    ) -> hyperagent_domains::domain::ScoreFuture<'a> {
        Box::pin(async move {
            hyperagent_domains::TaskScore { score: 1.0, invalid: None, details: json!({"length": answer.len()}) }
        })
    }
}

#[test]
fn try_task_runs_training_tasks_only_within_its_count_and_fuel() {
    use hyperagent::evolution::workbench::{MAX_TRIALS_PER_CALL, RepoWorkbench, TRIAL_FUEL_TASKS, TrialDomain, Trials};
    use hyperagent::sandbox::{EngineSettings, Sandbox, Workbench};
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    guest_source("probe").write_to(&repo).unwrap();
    let compiler = bench_compiler();
    let task = |id: &str, op: Value| hyperagent_domains::Task { id: id.into(), payload: op.to_string() };
    let tasks = vec![
        task("train/echo", json!({"op": "echo", "value": "hello"})),
        task("train/spin", json!({"op": "spin"})),
        task("train/big", json!({"op": "echo", "value": "y".repeat(10_000)})),
    ];
    let task_fuel = 200_000_000;
    let trials = Trials {
        sandbox: Arc::new(Sandbox::new(EngineSettings::default(), None).unwrap()),
        domains: Arc::new(vec![TrialDomain { domain: Arc::new(OpsDomain), tasks }]),
        task_fuel,
        memory_mib: 64,
    };
    let bench = Arc::new(RepoWorkbench::new(repo, compiler, dir.path().join("scratch"), Some(trials)).unwrap());

    // A training task is built, run and scored on the host; the build is then reused.
    let echo = block_on(bench.try_task("ops", "train/echo")).unwrap();
    assert_eq!((echo.outcome.as_str(), echo.score, echo.cached_build), ("ok", 1.0, false));
    assert_eq!((echo.answer.as_deref(), echo.feedback.as_str()), (Some("\"hello\""), r#"{"length":7}"#));
    assert!(echo.fuel > 0 && echo.fuel < task_fuel);
    // Tasks outside the training split, and unknown domains, are refused with the reason.
    let refused = block_on(bench.try_task("ops", "validation/echo")).unwrap_err();
    assert!(refused.contains("not a training task of ops"), "{refused}");
    let unknown = block_on(bench.try_task("bin_packing", "train/train_00")).unwrap_err();
    assert!(unknown.contains("no domain `bin_packing`; its domains are ops"), "{unknown}");

    // Through the guest: the answer handed over is cut at 4 KiB, and the use is in the report.
    let grants = Grants { workbench: Some(bench.clone()), ..Default::default() };
    let report =
        run_probe(json!({"op": "try-task", "domain": "ops", "task": "train/big"}), &CallLimits::default(), &grants);
    let said = output_json(&report)["ok"].clone();
    assert_eq!(said["cached_build"], true, "{said}");
    let answer = said["answer"].as_str().unwrap();
    assert!(answer.ends_with("[cut at 4 KiB]") && answer.len() < 4200, "{}", answer.len());
    assert_eq!(report.tools.len(), 1);
    assert_eq!((report.tools[0].tool.as_str(), report.tools[0].result.as_str()), ("try-task", "ok score 1"));
    assert_eq!(report.tools[0].target.as_deref(), Some("ops train/big"));
    // Names past 256 bytes are refused before any lookup.
    let long = run_probe(
        json!({"op": "try-task", "domain": "o".repeat(300), "task": "train/echo"}),
        &CallLimits::default(),
        &grants,
    );
    assert!(output_json(&long)["err"].as_str().unwrap().contains("at most 256 bytes"), "{:?}", output_json(&long));

    // A task that spins runs out of its task fuel; the call's fuel for trials (TRIAL_FUEL_TASKS
    // task budgets) is then spent before its count.
    let mut spins = 0;
    let spent = loop {
        match block_on(bench.try_task("ops", "train/spin")) {
            Ok(trial) => {
                assert_eq!(trial.outcome, "out-of-fuel");
                spins += 1;
            }
            Err(why) => break why,
        }
    };
    // The echo and big trials took a little of the budget, so the last spin ran short of a full
    // task budget and used up the rest.
    assert_eq!(spins as u64, TRIAL_FUEL_TASKS);
    assert!(spent.contains(&format!("trial fuel ({}) is spent", task_fuel * TRIAL_FUEL_TASKS)), "{spent}");

    // With a budget that does not run out, the count ends the trials.
    let trials = Trials {
        sandbox: Arc::new(Sandbox::new(EngineSettings::default(), None).unwrap()),
        domains: Arc::new(vec![TrialDomain {
            domain: Arc::new(OpsDomain),
            tasks: vec![task("train/echo", json!({"op": "echo", "value": 1}))],
        }]),
        task_fuel,
        memory_mib: 64,
    };
    let counted =
        RepoWorkbench::new(dir.path().join("repo"), bench_compiler(), dir.path().join("scratch2"), Some(trials))
            .unwrap();
    for _ in 0..MAX_TRIALS_PER_CALL {
        assert_eq!(block_on(counted.try_task("ops", "train/echo")).unwrap().outcome, "ok");
    }
    let spent = block_on(counted.try_task("ops", "train/echo")).unwrap_err();
    assert!(spent.contains("8 task trials are spent"), "{spent}");
    // Without trials (a bare workbench), the tool says it is not offered.
    let bare =
        RepoWorkbench::new(dir.path().join("repo"), bench_compiler(), dir.path().join("scratch3"), None).unwrap();
    assert!(block_on(bare.try_task("ops", "train/echo")).unwrap_err().contains("not offered"));
}

fn bench_compiler() -> Arc<hyperagent::compiler::GuestCompiler> {
    Arc::new(
        hyperagent::compiler::GuestCompiler::new(world().paths.compiler_settings(std::time::Duration::from_secs(600)))
            .unwrap(),
    )
}

#[test]
fn run_tests_is_refused_where_no_domain_offers_it_and_bounded_where_one_does() {
    // A task call of a domain without the tool (and any meta call) is told so.
    let report =
        run_probe(json!({"op": "run-tests", "lib": "", "tests": ""}), &CallLimits::default(), &Grants::default());
    let said = output_json(&report)["err"].as_str().unwrap().to_owned();
    assert!(said.contains("offered to the task calls of domains that have it"), "{said}");
    assert!(report.tools.is_empty());

    // Where a domain offers it, an input over the bound is refused before the domain sees it.
    struct Counting(std::sync::atomic::AtomicU32);
    impl hyperagent::sandbox::TaskTools for Counting {
        fn run_tests(
            &self,
            _: Vec<(String, String)>,
            _: String,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<hyperagent::sandbox::TestRun, String>> + Send + '_>,
        > {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Box::pin(async {
                Ok(hyperagent::sandbox::TestRun { built: true, passed: 2, failed: 1, output: "x".repeat(10_000) })
            })
        }
    }
    let tools = Arc::new(Counting(Default::default()));
    let grants = Grants { task_tools: Some(tools.clone()), ..Default::default() };
    let big = "t".repeat(hyperagent::sandbox::host::MAX_RUN_TESTS_INPUT_BYTES + 1);
    let report = run_probe(json!({"op": "run-tests", "lib": "", "tests": big}), &CallLimits::default(), &grants);
    assert!(output_json(&report)["err"].as_str().unwrap().contains("at most"), "{:?}", output_json(&report));
    assert_eq!(tools.0.load(std::sync::atomic::Ordering::Relaxed), 0);
    // Its answer reaches the guest cut at 4 KiB, and the use is in the call's report.
    let report =
        run_probe(json!({"op": "run-tests", "lib": "", "tests": "#[test] fn t() {}"}), &CallLimits::default(), &grants);
    let said = output_json(&report)["ok"].as_str().unwrap().to_owned();
    assert!(
        said.starts_with("2 passed, 1 failed") && said.ends_with("[cut at 4 KiB]") && said.len() < 4200,
        "{}",
        said.len()
    );
    assert_eq!((report.tools[0].tool.as_str(), report.tools[0].result.as_str()), ("run-tests", "2 passed, 1 failed"));
}
