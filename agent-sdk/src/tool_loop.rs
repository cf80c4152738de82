//! A model in a loop of tool calls over the hyperagent's own source: it lists, views and edits
//! files in `/repo` until it calls `finish`, answers without calling a tool, or runs out of turns.
//! The conversation is kept within a byte budget by dropping the oldest tool results (and saying
//! so in their place); every turn is logged to the call's report.

use crate::file_tools::{self, Effect};
use crate::llm::{self, ChatMessage, ChatRequest, ChatRole, ToolCall, ToolDefinition};
use crate::log;
use crate::repo::Repo;
use serde_json::{Value, json};

/// How long and how large a conversation may grow.
#[derive(Debug, Clone)]
pub struct LoopSettings {
    /// Completions at most (each answer is one turn, whatever number of tools it calls).
    pub max_turns: u32,
    /// Tokens asked for per answer.
    pub max_output_tokens: u32,
    /// Bytes of conversation sent at most; older tool results are dropped to stay within it.
    pub transcript_bytes: usize,
    pub temperature_milli: Option<u32>,
}

impl Default for LoopSettings {
    fn default() -> Self {
        LoopSettings { max_turns: 40, max_output_tokens: 2048, transcript_bytes: 96 << 10, temperature_milli: Some(0) }
    }
}

/// How a conversation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The model called `finish`.
    Finished,
    /// The model answered without calling a tool.
    Answered,
    /// `max_turns` answers were spent.
    TurnsSpent,
    /// Even with every old tool result dropped, the conversation was over its budget.
    TranscriptFull,
    /// A completion failed (no LLM, budget spent, backend failure): the reason.
    LlmFailed(String),
}

/// What a conversation did.
#[derive(Debug, Clone)]
pub struct LoopOutcome {
    pub ending: Ending,
    /// The summary given to `finish`, or else the last answer's first line.
    pub summary: String,
    /// The text of the last answer.
    pub final_text: String,
    pub turns: u32,
    pub tool_calls: u32,
    /// Files written, in the order first written.
    pub written: Vec<String>,
    /// Tool results dropped to keep the conversation within its budget.
    pub dropped_results: u32,
}

const DROPPED: &str = "[dropped to keep the conversation within its budget: an earlier tool result]";

/// The tools offered: the file tools, `check_build`, `try_task` and `finish`.
pub fn definitions() -> Vec<ToolDefinition> {
    let mut tools = file_tools::definitions();
    tools.push(ToolDefinition {
        name: "check_build".into(),
        description: "Builds the repository as the host will build your child (the source policy, then the Rust \
                      compiler) and returns built, rejected or failed with the diagnostics."
            .into(),
        parameters: json!({"type": "object", "properties": {}}).to_string(),
    });
    tools.push(ToolDefinition {
        name: "try_task".into(),
        description: "Builds the repository and runs its task agent on one training task; returns the outcome, \
                      the score (higher is better), the domain's feedback and the answer."
            .into(),
        parameters: json!({"type": "object", "properties": {
            "domain": {"type": "string", "description": "The task's domain, e.g. bin_packing"},
            "task_id": {"type": "string", "description": "A training task id, e.g. train/0000"}},
            "required": ["domain", "task_id"]})
        .to_string(),
    });
    tools.push(ToolDefinition {
        name: "finish".into(),
        description: "Ends the work: call it once the repository holds your change.".into(),
        parameters: json!({"type": "object", "properties": {"summary": {"type": "string",
            "description": "One line saying what you changed and why"}}, "required": ["summary"]})
        .to_string(),
    });
    tools
}

/// Runs the conversation: `system` and `task` open it; the model works on `repo`.
pub fn run(repo: &Repo, system: &str, task: &str, settings: &LoopSettings) -> LoopOutcome {
    let tools = definitions();
    let mut transcript = vec![ChatMessage::text(ChatRole::System, system), ChatMessage::text(ChatRole::User, task)];
    let mut outcome = LoopOutcome {
        ending: Ending::TurnsSpent,
        summary: String::new(),
        final_text: String::new(),
        turns: 0,
        tool_calls: 0,
        written: Vec::new(),
        dropped_results: 0,
    };
    while outcome.turns < settings.max_turns {
        let dropped_before = outcome.dropped_results;
        let fits = fit(&mut transcript, settings.transcript_bytes, &mut outcome.dropped_results);
        if outcome.dropped_results > dropped_before {
            log::info(format!(
                "dropped {} old tool result(s) to keep the conversation within {} bytes",
                outcome.dropped_results - dropped_before,
                settings.transcript_bytes
            ));
        }
        if !fits {
            outcome.ending = Ending::TranscriptFull;
            break;
        }
        let request = ChatRequest {
            messages: transcript.clone(),
            tools: tools.clone(),
            model_hint: None,
            max_output_tokens: settings.max_output_tokens,
            temperature_milli: settings.temperature_milli,
        };
        let answer = match llm::chat(&request) {
            Ok(answer) => answer,
            Err(e) => {
                outcome.ending = Ending::LlmFailed(llm::describe(&e));
                break;
            }
        };
        outcome.turns += 1;
        outcome.final_text = answer.content.clone();
        log::info(format!(
            "turn {}: {} tool call(s), finish reason {:?}, {} tokens out",
            outcome.turns,
            answer.tool_calls.len(),
            answer.finish_reason,
            answer.output_tokens
        ));
        transcript.push(ChatMessage {
            role: ChatRole::Assistant,
            content: answer.content.clone(),
            tool_calls: answer.tool_calls.clone(),
            tool_call_id: None,
        });
        if answer.tool_calls.is_empty() {
            outcome.ending = Ending::Answered;
            break;
        }
        let mut finished = None;
        for call in &answer.tool_calls {
            outcome.tool_calls += 1;
            let (result, summary) = perform(repo, call, &mut outcome.written);
            finished = finished.or(summary);
            transcript.push(ChatMessage::tool_result(&call.id, result));
        }
        if answer.tool_calls_dropped > 0
            && let Some(last) = transcript.last_mut()
        {
            last.content.push_str(&format!(
                "\n[note: {} further tool call(s) in your answer were dropped: at most 64 per answer]",
                answer.tool_calls_dropped
            ));
        }
        if let Some(summary) = finished {
            outcome.summary = summary;
            outcome.ending = Ending::Finished;
            break;
        }
    }
    if outcome.summary.is_empty() {
        outcome.summary = outcome.final_text.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_owned();
    }
    outcome.summary = outcome.summary.chars().take(200).collect();
    log::info(format!(
        "conversation ended ({:?}) after {} turn(s), {} tool call(s); wrote {:?}",
        outcome.ending, outcome.turns, outcome.tool_calls, outcome.written
    ));
    outcome
}

/// Runs one tool call; returns its result for the model and, for `finish`, the summary.
fn perform(repo: &Repo, call: &ToolCall, written: &mut Vec<String>) -> (String, Option<String>) {
    let arguments: Value = match serde_json::from_str(&call.arguments) {
        Ok(object @ Value::Object(_)) => object,
        Ok(_) | Err(_) if call.arguments.trim().is_empty() => json!({}),
        Ok(other) => {
            return (format!("error: the arguments must be a JSON object, not {other}"), None);
        }
        Err(e) => return (format!("error: the arguments are not valid JSON ({e}); send one JSON object"), None),
    };
    let (result, summary) = if call.name == "finish" {
        let summary = arguments["summary"].as_str().unwrap_or("").trim().to_owned();
        ("finished".to_owned(), Some(if summary.is_empty() { "no summary given".to_owned() } else { summary }))
    } else if call.name == "check_build" {
        let result = match crate::workbench::check_build() {
            Ok(check) => crate::workbench::describe(&check),
            Err(why) => format!("error: {why}"),
        };
        (result, None)
    } else if call.name == "try_task" {
        let text = |key: &str| arguments[key].as_str().unwrap_or("").to_owned();
        let result = match crate::workbench::try_task(&text("domain"), &text("task_id")) {
            Ok(trial) => crate::workbench::describe_trial(&trial),
            Err(why) => format!("error: {why}"),
        };
        (result, None)
    } else if file_tools::is_file_tool(&call.name) {
        let (result, effect) = file_tools::run(repo, &call.name, &arguments);
        if let Effect::Wrote(path) = effect
            && !written.contains(&path)
        {
            written.push(path);
        }
        (result, None)
    } else {
        let names: Vec<String> = definitions().into_iter().map(|t| t.name).collect();
        let shown: String = call.name.chars().take(64).collect();
        (format!("error: there is no tool `{shown}`; the tools are {}", names.join(", ")), None)
    };
    let first_line: String = result.lines().next().unwrap_or("").chars().take(160).collect();
    log::info(format!("  {} {} -> {first_line}", call.name, call.arguments.chars().take(160).collect::<String>()));
    (result, summary)
}

fn bytes(message: &ChatMessage) -> usize {
    message.content.len()
        + message.tool_calls.iter().map(|c| c.arguments.len() + c.name.len() + c.id.len()).sum::<usize>()
}

/// Drops the oldest tool results until the transcript fits `budget`; false when it cannot.
fn fit(transcript: &mut [ChatMessage], budget: usize, dropped: &mut u32) -> bool {
    let mut total: usize = transcript.iter().map(bytes).sum();
    for message in transcript.iter_mut() {
        if total <= budget {
            break;
        }
        if message.role == ChatRole::Tool && message.content != DROPPED {
            total = total - message.content.len() + DROPPED.len();
            message.content = DROPPED.to_owned();
            *dropped += 1;
        }
    }
    total <= budget
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_tool_results_are_dropped_first_and_only_as_many_as_needed() {
        let result = |id: &str, text: &str| ChatMessage::tool_result(id, text);
        let mut transcript = vec![
            ChatMessage::text(ChatRole::User, "task"),
            result("a", &"a".repeat(1000)),
            result("b", &"b".repeat(1000)),
            result("c", &"c".repeat(1000)),
        ];
        let mut dropped = 0;
        assert!(fit(&mut transcript, 2500, &mut dropped));
        assert_eq!(dropped, 1);
        assert_eq!(transcript[1].content, DROPPED);
        assert_eq!(transcript[2].content.len(), 1000, "the newer results stay");
        // Nothing left to drop: the conversation cannot fit.
        assert!(!fit(&mut transcript, 100, &mut dropped));
        assert_eq!(dropped, 3);
    }
}
