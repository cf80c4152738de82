//! The LLM backends against real HTTP servers on loopback that speak each provider's format.

mod common;

use common::http::{Reply, Server, anthropic_reply, openai_reply};
use common::*;
use hyperagent::llm::wire::Provider;
use hyperagent::llm::{Backend, LlmConfig};
use hyperagent::sandbox::{ChatFailure, ChatMessage, ChatRequest};
use serde_json::json;
use std::time::Duration;

fn config(provider: Provider, server: &Server) -> LlmConfig {
    LlmConfig {
        provider,
        base_url: server.base_url.clone(),
        model: "test-model".into(),
        api_key_env: Some("HYPERAGENT_TEST_LLM_KEY".into()),
        timeout_ms: 2000,
        max_retries: 2,
        initial_backoff_ms: 10,
        max_backoff_ms: 50,
        ..LlmConfig::default()
    }
}

fn backend(config: LlmConfig) -> Backend {
    // SAFETY: every test in this binary sets the same value; nothing reads it concurrently with a
    // different expectation.
    unsafe { std::env::set_var("HYPERAGENT_TEST_LLM_KEY", "sk-test") };
    Backend::new(config).expect("backend")
}

fn request() -> ChatRequest {
    ChatRequest {
        messages: vec![ChatMessage::text("system", "be brief"), ChatMessage::text("user", "hello")],
        max_output_tokens: 64,
        temperature_milli: Some(0),
        ..ChatRequest::default()
    }
}

#[test]
fn openai_success() {
    let server = Server::start(|_, _| Reply::json(200, openai_reply("hi there")));
    let answer = block_on(backend(config(Provider::OpenAi, &server)).complete(&request())).unwrap();
    assert_eq!((answer.content.as_str(), answer.input_tokens, answer.output_tokens), ("hi there", 100, 40));
    let sent = server.requests.lock().unwrap()[0].clone();
    assert_eq!(sent.path, "/chat/completions");
    assert_eq!(sent.header("authorization"), Some("Bearer sk-test"));
    let body = sent.json();
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["messages"][0], json!({"role": "system", "content": "be brief"}));
    assert_eq!(body["max_tokens"], 64);
}

#[test]
fn anthropic_success() {
    let server = Server::start(|_, _| Reply::json(200, anthropic_reply("bonjour")));
    let answer = block_on(backend(config(Provider::Anthropic, &server)).complete(&request())).unwrap();
    assert_eq!((answer.content.as_str(), answer.input_tokens, answer.output_tokens), ("bonjour", 90, 30));
    let sent = server.requests.lock().unwrap()[0].clone();
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some("sk-test"));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    let body = sent.json();
    assert_eq!(body["system"], "be brief");
    assert_eq!(body["messages"], json!([{"role": "user", "content": "hello"}]));
}

#[test]
fn rate_limited_then_success_honours_retry_after() {
    let server = Server::start(|n, _| {
        if n == 0 {
            Reply {
                headers: vec![("retry-after".into(), "1".into())],
                ..Reply::json(429, json!({"error": "slow down"}))
            }
        } else {
            Reply::json(200, openai_reply("ok"))
        }
    });
    // Retry-After (1 s) is capped by max_backoff (here 50 ms... raised so the wait is visible).
    let config = LlmConfig { max_backoff_ms: 5_000, ..config(Provider::OpenAi, &server) };
    let started = std::time::Instant::now();
    let answer = block_on(backend(config).complete(&request())).unwrap();
    assert_eq!(answer.content, "ok");
    assert_eq!(server.count(), 2);
    assert!(started.elapsed() >= Duration::from_millis(950), "Retry-After was not honoured: {:?}", started.elapsed());
}

#[test]
fn server_errors_until_give_up() {
    let server = Server::start(|_, _| Reply::json(503, json!({"error": "overloaded"})));
    let error = block_on(backend(config(Provider::OpenAi, &server)).complete(&request())).unwrap_err();
    let ChatFailure::BackendFailed(message) = error else { panic!("{error:?}") };
    assert!(message.contains("gave up after 3 attempts") && message.contains("503"), "{message}");
    assert_eq!(server.count(), 3);
}

#[test]
fn timeouts_are_retried_then_reported() {
    let server =
        Server::start(|_, _| Reply { delay: Duration::from_millis(800), ..Reply::json(200, openai_reply("late")) });
    let config = LlmConfig { timeout_ms: 200, max_retries: 1, ..config(Provider::OpenAi, &server) };
    let error = block_on(backend(config).complete(&request())).unwrap_err();
    let ChatFailure::BackendFailed(message) = error else { panic!("{error:?}") };
    assert!(message.contains("no answer within 200 ms"), "{message}");
    assert_eq!(server.count(), 2);
}

#[test]
fn malformed_json_is_a_clear_error() {
    let server = Server::start(|_, _| Reply { body: "{not json".into(), ..Reply::json(200, json!(null)) });
    let error = block_on(backend(config(Provider::Anthropic, &server)).complete(&request())).unwrap_err();
    let ChatFailure::BackendFailed(message) = error else { panic!("{error:?}") };
    assert!(message.contains("malformed JSON"), "{message}");
    assert_eq!(server.count(), 1, "a malformed success is not retried");
}

#[test]
fn budgets_stop_calls_before_they_are_sent() {
    let server = Server::start(|_, _| Reply::json(200, openai_reply("fine")));
    let mut config = config(Provider::OpenAi, &server);
    config.budget.max_calls = 2;
    let backend = backend(config);
    block_on(backend.complete(&request())).unwrap();
    block_on(backend.complete(&request())).unwrap();
    let error = block_on(backend.complete(&request())).unwrap_err();
    assert!(matches!(&error, ChatFailure::BudgetExhausted(why) if why.contains("2 calls")), "{error:?}");
    assert_eq!(server.count(), 2, "the third request never reached the network");
    assert!(backend.exhausted().is_some());

    let server = Server::start(|_, _| Reply::json(200, openai_reply("fine")));
    let mut config = self::config(Provider::OpenAi, &server);
    config.budget.max_cost_usd = 0.0001;
    config.price_input_per_million = 1.0;
    config.price_output_per_million = 2.0;
    let backend = self::backend(config);
    // 100 input + 40 output tokens cost $0.00018: the first call spends the budget.
    block_on(backend.complete(&request())).unwrap();
    assert!(matches!(block_on(backend.complete(&request())), Err(ChatFailure::BudgetExhausted(_))));
    assert!((backend.spent().cost_usd - 0.00018).abs() < 1e-12);
}

#[test]
fn concurrent_requests_cannot_both_take_the_last_call() {
    let server = Server::start(|_, _| {
        std::thread::sleep(Duration::from_millis(150));
        Reply::json(200, openai_reply("fine"))
    });
    let mut config = LlmConfig { concurrency: 8, ..config(Provider::OpenAi, &server) };
    config.budget.max_calls = 1;
    let backend = std::sync::Arc::new(backend(config));
    // Eight requests on a multi-threaded runtime, all holding permits at once: the budget's check
    // and count must be one step, or two of them could take the one call.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
    let results: Vec<_> = runtime.block_on(async {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let backend = backend.clone();
                tokio::spawn(async move { backend.complete(&request()).await })
            })
            .collect();
        futures::future::join_all(tasks).await.into_iter().map(|r| r.unwrap()).collect()
    });
    let answered = results.iter().filter(|r| r.is_ok()).count();
    let refused = results.iter().filter(|r| matches!(r, Err(ChatFailure::BudgetExhausted(_)))).count();
    assert_eq!((answered, refused, server.count()), (1, 7, 1), "one call in the budget, one request sent");
}

#[test]
fn a_missing_key_is_reported_by_name() {
    let config = LlmConfig { api_key_env: Some("HYPERAGENT_SURELY_UNSET_KEY".into()), ..LlmConfig::default() };
    let error = Backend::new(config).err().expect("the key is not set");
    assert!(error.to_string().contains("HYPERAGENT_SURELY_UNSET_KEY"));
}

#[test]
fn a_task_call_reaches_the_llm_through_a_recording_gateway() {
    use hyperagent::llm::{CallGateway, Exchange, Source};
    use hyperagent::sandbox::{CallInput, CallLimits, Grants, TaskInput};
    let server = Server::start(|_, _| Reply::json(200, openai_reply("from the model")));
    let backend = std::sync::Arc::new(backend(config(Provider::OpenAi, &server)));
    let gateway =
        std::sync::Arc::new(CallGateway::new(Source::Live(backend), world().archive.clone(), "task test x".into()));
    let grants = Grants { llm: Some(gateway.clone()), ..Default::default() };
    let input = CallInput::Task(TaskInput {
        domain: "test".into(),
        task_id: "x".into(),
        payload: json!({"op": "llm"}).to_string(),
    });
    let report =
        block_on(world().sandbox.call(&probe(), &input, &CallLimits { llm_calls: 1, ..Default::default() }, &grants))
            .unwrap();
    assert_eq!(output_json(&report)["ok"], "from the model");
    assert_eq!(report.llm_calls, 1);
    let records = gateway.records();
    assert_eq!(records.len(), 1);
    let exchange: Exchange = serde_json::from_slice(&world().archive.get_blob(&records[0].0).unwrap()).unwrap();
    assert_eq!(
        (exchange.call.as_str(), exchange.seq, exchange.response.as_ref().map(|r| r.content.as_str())),
        ("task test x", 0, Some("from the model"))
    );
    assert_eq!(exchange.request.messages[1].content, "hello");
    // Over the call's allowance the guest is told why, and nothing reaches the network.
    let none =
        block_on(world().sandbox.call(&probe(), &input, &CallLimits { llm_calls: 0, ..Default::default() }, &grants))
            .unwrap();
    assert!(output_json(&none)["err"].as_str().unwrap().contains("budget exhausted"), "{:?}", none.output);
    assert_eq!(server.count(), 1);
}

#[test]
fn replay_answers_only_what_was_recorded_and_names_what_was_not() {
    use hyperagent::llm::{CallGateway, ReplayIndex, Source};
    use hyperagent::sandbox::LlmGateway;
    let server = Server::start(|n, _| Reply::json(200, openai_reply(&format!("answer {n}"))));
    let live = CallGateway::new(
        Source::Live(std::sync::Arc::new(backend(config(Provider::OpenAi, &server)))),
        world().archive.clone(),
        "meta g0001-s00".into(),
    );
    // The same request twice: two records, told apart by their sequence numbers.
    let first = block_on(live.complete(request())).unwrap();
    let second = block_on(live.complete(request())).unwrap();
    assert_eq!((first.content.as_str(), second.content.as_str()), ("answer 0", "answer 1"));
    let records: Vec<_> = live.records().into_iter().map(|(r, _)| r).collect();
    server.stop();

    let index = std::sync::Arc::new(ReplayIndex::from_records(&world().archive, &records).unwrap());
    let replay = CallGateway::new(Source::Replay(index.clone()), world().archive.clone(), "meta g0001-s00".into());
    assert_eq!(block_on(replay.complete(request())).unwrap().content, "answer 0");
    assert_eq!(block_on(replay.complete(request())).unwrap().content, "answer 1");
    let third = block_on(replay.complete(request())).unwrap_err();
    let ChatFailure::BackendFailed(message) = third else { panic!("{third:?}") };
    let hash = hyperagent::llm::record::request_hash(&request());
    assert!(message.contains(&hash.to_hex()) && message.contains("occurrence 2"), "{message}");
    // Another call's identical request was never recorded for that call.
    let other = CallGateway::new(Source::Replay(index), world().archive.clone(), "meta g0002-s00".into());
    assert!(block_on(other.complete(request())).is_err());
    assert_eq!(server.count(), 2);
}

#[test]
fn oversized_responses_are_refused_without_being_buffered() {
    let huge = "x".repeat(hyperagent::llm::backend::MAX_RESPONSE_BYTES + 1);
    let server = Server::start(move |_, _| Reply::json(200, openai_reply(&huge)));
    let error = block_on(backend(config(Provider::OpenAi, &server)).complete(&request())).unwrap_err();
    let ChatFailure::BackendFailed(message) = error else { panic!("{error:?}") };
    assert!(message.contains("larger than"), "{message}");
    assert_eq!(server.count(), 1, "not retried");
}

#[test]
fn the_concurrency_limit_holds_requests_back() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (in_flight, most) = (std::sync::Arc::new(AtomicUsize::new(0)), std::sync::Arc::new(AtomicUsize::new(0)));
    let (now, peak) = (in_flight.clone(), most.clone());
    let server = Server::start(move |_, _| {
        let current = now.fetch_add(1, Ordering::SeqCst) + 1;
        peak.fetch_max(current, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(150));
        now.fetch_sub(1, Ordering::SeqCst);
        Reply::json(200, openai_reply("ok"))
    });
    let backend = backend(LlmConfig { concurrency: 1, ..config(Provider::OpenAi, &server) });
    let both = async { futures::future::join(backend.complete(&request()), backend.complete(&request())).await };
    let (a, b) = block_on(both);
    assert!(a.is_ok() && b.is_ok());
    assert_eq!((server.count(), most.load(Ordering::SeqCst)), (2, 1), "never two requests at once");
}

#[test]
fn guest_requests_are_bounded_before_any_backend_sees_them() {
    use hyperagent::llm::{CallGateway, Source};
    use hyperagent::sandbox::{CallInput, CallLimits, Grants, TaskInput};
    let server = Server::start(|_, _| Reply::json(200, openai_reply("fine")));
    let backend = std::sync::Arc::new(backend(config(Provider::OpenAi, &server)));
    let gateway =
        std::sync::Arc::new(CallGateway::new(Source::Live(backend), world().archive.clone(), "task bounds".into()));
    let grants = Grants { llm: Some(gateway), ..Default::default() };
    let limits = CallLimits { llm_calls: 10, ..Default::default() };
    let call = |payload: serde_json::Value| {
        let input =
            CallInput::Task(TaskInput { domain: "test".into(), task_id: "x".into(), payload: payload.to_string() });
        output_json(&block_on(world().sandbox.call(&probe(), &input, &limits, &grants)).unwrap())
    };
    let big = call(json!({"op": "llm", "bytes": hyperagent::sandbox::host::MAX_LLM_REQUEST_BYTES + 1}));
    assert!(big["err"].as_str().unwrap().contains("the limit is 1048576"), "{big}");
    let many = call(json!({"op": "llm-many", "messages": hyperagent::sandbox::host::MAX_LLM_MESSAGES + 1}));
    assert!(many["err"].as_str().unwrap().contains("messages; the limit is 256"), "{many}");
    let hot = call(json!({"op": "llm-many", "messages": 1, "temperature_milli": 4_000_000}));
    assert!(hot["err"].as_str().unwrap().contains("the limit is 2000"), "{hot}");
    let mute = call(json!({"op": "llm-many", "messages": 1, "max_output_tokens": 0}));
    assert!(mute["err"].as_str().unwrap().contains("at least 1"), "{mute}");
    assert_eq!(server.count(), 0);
    assert_eq!(call(json!({"op": "llm-many", "messages": 3}))["ok"], "fine");
}
