//! What the LLM did, for the terminal: a run's usage in one line, a node's conversation turn by
//! turn.

use super::terminal::{self, outln};
use hyperagent::archive::Archive;
use hyperagent::evolution::log::Event;
use hyperagent::hash::ContentHash;

/// What the run's LLM exchanges came to (nothing when it made none): answered or not, tokens,
/// and the latencies this host saw.
pub(super) fn print_llm_usage(archive: &Archive, events: &[Event]) {
    let mut latencies = Vec::new();
    let (mut answered, mut unanswered, mut tokens_in, mut tokens_out, mut unreadable) = (0, 0, 0u64, 0u64, 0);
    let (mut cut, mut tool_calls) = (0, 0);
    for event in events {
        let Event::LlmExchange { record, wall_ms, .. } = event else { continue };
        latencies.push(*wall_ms);
        let exchange = archive
            .get_blob(record)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<hyperagent::llm::Exchange>(&bytes).ok());
        match exchange.and_then(|e| e.response) {
            Some(response) => {
                answered += 1;
                tokens_in += u64::from(response.input_tokens);
                tokens_out += u64::from(response.output_tokens);
                // OpenAI-compatible servers say `length`, Anthropic `max_tokens`.
                cut += usize::from(matches!(response.finish_reason.as_deref(), Some("length" | "max_tokens")));
                tool_calls += response.tool_calls.len();
            }
            None if archive.get_blob(record).is_ok() => unanswered += 1,
            None => unreadable += 1,
        }
    }
    if latencies.is_empty() {
        return;
    }
    latencies.sort_unstable();
    let median = latencies[latencies.len() / 2];
    let unreadable = if unreadable > 0 { format!(", {unreadable} record(s) unreadable") } else { String::new() };
    let cut = if cut > 0 { format!(" ({cut} cut at the output limit)") } else { String::new() };
    let tool_calls = if tool_calls > 0 { format!(", {tool_calls} tool call(s)") } else { String::new() };
    outln!(
        "LLM: {} exchange(s), {answered} answered{cut}{tool_calls}, {unanswered} without an answer{unreadable}; {tokens_in} tokens in, \
         {tokens_out} out; latency median {median} ms, max {} ms (each node's conversation: `hyperagent show`)",
        latencies.len(),
        latencies[latencies.len() - 1]
    );
}

/// A node's LLM exchanges in order. A conversation that goes on (each request repeating the one
/// before and its answer) is printed once: each exchange shows only its new turns.
pub(super) fn print_conversation(archive: &Archive, records: &[ContentHash]) -> anyhow::Result<()> {
    outln!("LLM conversation ({} exchange(s)):", records.len());
    let mut printed: Vec<hyperagent::sandbox::ChatMessage> = Vec::new();
    for record in records {
        let exchange: hyperagent::llm::Exchange = serde_json::from_slice(&archive.get_blob(record)?)?;
        let model = exchange.response.as_ref().map_or("-", |r| r.model.as_str());
        outln!("  exchange {} ({}, model {model})", record.short(), exchange.backend);
        let messages = &exchange.request.messages;
        let continues =
            !printed.is_empty() && messages.len() > printed.len() && messages[..printed.len()] == printed[..];
        let new = if continues { &messages[printed.len()..] } else { &messages[..] };
        for message in new {
            print_turn(message);
        }
        printed = messages.clone();
        match (&exchange.response, &exchange.failure) {
            (Some(response), _) => {
                let reason = response.finish_reason.as_deref().unwrap_or("not recorded");
                outln!(
                    "  [answer, {} in / {} out tokens, finish reason {reason}]",
                    response.input_tokens,
                    response.output_tokens
                );
                let answer = hyperagent::sandbox::ChatMessage {
                    role: "assistant".into(),
                    content: response.content.clone(),
                    tool_calls: response.tool_calls.clone(),
                    tool_call_id: None,
                };
                print_body(&answer);
                if response.tool_calls_dropped > 0 {
                    outln!("    ({} further tool call(s) dropped by the host)", response.tool_calls_dropped);
                }
                printed.push(answer);
            }
            (None, Some(hyperagent::llm::record::Failure::CallEnded)) => {
                outln!("  [no answer: the call reached its deadline while this request was in flight]")
            }
            (None, Some(hyperagent::llm::record::Failure::Backend { message })) => {
                outln!("  [no answer: the backend failed: {}]", terminal::line(message))
            }
            (None, None) => outln!("  [no answer]"),
        }
    }
    Ok(())
}

/// One turn of a request: its role (a tool result names its call) and its body.
fn print_turn(message: &hyperagent::sandbox::ChatMessage) {
    match &message.tool_call_id {
        Some(id) => outln!("  [{} {}]", message.role, terminal::line(id)),
        None => outln!("  [{}]", message.role),
    }
    print_body(message);
}

/// A turn's text and the tools it called.
fn print_body(message: &hyperagent::sandbox::ChatMessage) {
    if !message.content.is_empty() {
        println!("{}", terminal::block(&message.content, "    "));
    }
    for call in &message.tool_calls {
        outln!(
            "    -> {} {} ({})",
            terminal::line(&call.name),
            terminal::line(&call.arguments),
            terminal::line(&call.id)
        );
    }
}
