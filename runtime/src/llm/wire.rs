//! The two wire formats: OpenAI-compatible chat completions (OpenAI, vLLM, Ollama, llama.cpp
//! server, OpenRouter, ...) and Anthropic Messages.

use crate::sandbox::host::MAX_TOOL_CALLS_PER_ANSWER;
use crate::sandbox::{ChatMessage, ChatRequest, ChatResponse, ToolCall};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    /// `POST {base_url}/chat/completions`, bearer key.
    OpenAi,
    /// `POST {base_url}/v1/messages`, `x-api-key`.
    Anthropic,
}

impl Provider {
    pub fn url(self, base_url: &str) -> String {
        let base = base_url.trim_end_matches('/');
        match self {
            Provider::OpenAi => format!("{base}/chat/completions"),
            Provider::Anthropic => format!("{base}/v1/messages"),
        }
    }

    /// The request body for `model`. Requests without tools give the bodies they always did.
    pub fn body(self, model: &str, request: &ChatRequest) -> Value {
        let temperature = request.temperature_milli.map(|t| f64::from(t) / 1000.0);
        let mut body = match self {
            Provider::OpenAi => {
                let messages: Vec<Value> = request.messages.iter().map(openai_message).collect();
                let mut body = json!({"model": model, "messages": messages, "max_tokens": request.max_output_tokens});
                if !request.tools.is_empty() {
                    let tools: Vec<Value> = request
                        .tools
                        .iter()
                        .map(|t| {
                            json!({"type": "function", "function":
                                {"name": t.name, "description": t.description, "parameters": schema(&t.parameters)}})
                        })
                        .collect();
                    body["tools"] = json!(tools);
                    // OpenAI's default, said outright: some compatible servers (llama-cpp-python's
                    // function-calling formats) let the model call tools only when asked so.
                    body["tool_choice"] = json!("auto");
                }
                body
            }
            Provider::Anthropic => {
                // Anthropic takes the system prompt apart from the turns.
                let system: Vec<&str> =
                    request.messages.iter().filter(|m| m.role == "system").map(|m| m.content.as_str()).collect();
                let messages = anthropic_messages(&request.messages);
                let mut body = json!({"model": model, "messages": messages, "max_tokens": request.max_output_tokens});
                if !system.is_empty() {
                    body["system"] = json!(system.join("\n\n"));
                }
                if !request.tools.is_empty() {
                    let tools: Vec<Value> = request
                        .tools
                        .iter()
                        .map(|t| json!({"name": t.name, "description": t.description, "input_schema": schema(&t.parameters)}))
                        .collect();
                    body["tools"] = json!(tools);
                }
                body
            }
        };
        if let Some(t) = temperature {
            body["temperature"] = json!(t);
        }
        body
    }

    /// Parses a successful response body.
    pub fn parse(self, body: &[u8]) -> Result<ChatResponse, String> {
        let value: Value = serde_json::from_slice(body).map_err(|e| format!("malformed JSON in the response: {e}"))?;
        let number = |v: &Value| v.as_u64().map(|n| n.min(u64::from(u32::MAX)) as u32);
        let (content, calls, finish_reason, usage) = match self {
            Provider::OpenAi => {
                let choice = &value["choices"][0];
                let message = &choice["message"];
                let calls: Vec<ToolCall> = message["tool_calls"]
                    .as_array()
                    .map(|calls| calls.iter().enumerate().map(|(i, c)| openai_call(i, c)).collect())
                    .unwrap_or_default();
                let content = match message["content"].as_str() {
                    Some(text) => text.to_owned(),
                    // A turn that only calls tools has no text.
                    None if !calls.is_empty() => String::new(),
                    None => return Err("the response has no choices[0].message.content".into()),
                };
                let usage = (number(&value["usage"]["prompt_tokens"]), number(&value["usage"]["completion_tokens"]));
                (content, calls, choice["finish_reason"].as_str().map(str::to_owned), usage)
            }
            Provider::Anthropic => {
                let blocks = value["content"].as_array().ok_or("the response has no content array")?;
                if blocks.is_empty() {
                    return Err("the response's content array is empty".into());
                }
                let content: String = blocks.iter().filter_map(|b| b["text"].as_str()).collect();
                let calls: Vec<ToolCall> = blocks
                    .iter()
                    .filter(|b| b["type"] == "tool_use")
                    .enumerate()
                    .map(|(i, b)| ToolCall {
                        id: b["id"].as_str().map_or_else(|| format!("call_{i}"), str::to_owned),
                        name: b["name"].as_str().unwrap_or("").to_owned(),
                        arguments: b["input"].to_string(),
                    })
                    .collect();
                let usage = (number(&value["usage"]["input_tokens"]), number(&value["usage"]["output_tokens"]));
                (content, calls, value["stop_reason"].as_str().map(str::to_owned), usage)
            }
        };
        let dropped = calls.len().saturating_sub(MAX_TOOL_CALLS_PER_ANSWER);
        Ok(ChatResponse {
            content,
            model: value["model"].as_str().unwrap_or("").to_owned(),
            input_tokens: usage.0.unwrap_or(0),
            output_tokens: usage.1.unwrap_or(0),
            tool_calls: calls.into_iter().take(MAX_TOOL_CALLS_PER_ANSWER).collect(),
            tool_calls_dropped: u32::try_from(dropped).unwrap_or(u32::MAX),
            finish_reason,
        })
    }
}

/// A tool's schema as sent: the guest's text, which the host checked is a JSON object.
fn schema(parameters: &str) -> Value {
    serde_json::from_str(parameters).unwrap_or_else(|_| json!({"type": "object"}))
}

/// One turn in OpenAI's format.
fn openai_message(m: &ChatMessage) -> Value {
    if m.role == "tool" {
        return json!({"role": "tool", "tool_call_id": m.tool_call_id.clone().unwrap_or_default(), "content": m.content});
    }
    if m.tool_calls.is_empty() {
        return json!({"role": m.role, "content": m.content});
    }
    let calls: Vec<Value> = m
        .tool_calls
        .iter()
        .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
        .collect();
    // An empty string, not null, when the turn only calls tools: OpenAI takes either, and
    // llama-cpp-python's server refuses null.
    json!({"role": m.role, "content": m.content, "tool_calls": calls})
}

/// A tool call of an OpenAI answer; a missing id is named by its place.
fn openai_call(index: usize, call: &Value) -> ToolCall {
    let arguments = match &call["function"]["arguments"] {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        // Some servers send the arguments as an object rather than as text.
        other => other.to_string(),
    };
    ToolCall {
        id: call["id"].as_str().map_or_else(|| format!("call_{index}"), str::to_owned),
        name: call["function"]["name"].as_str().unwrap_or("").to_owned(),
        arguments,
    }
}

/// The turns in Anthropic's format: tool calls become `tool_use` blocks, and consecutive tool
/// results one user turn of `tool_result` blocks, as the format demands.
fn anthropic_messages(messages: &[ChatMessage]) -> Vec<Value> {
    let mut turns: Vec<Value> = Vec::new();
    for m in messages.iter().filter(|m| m.role != "system") {
        if m.role == "tool" {
            let block = json!({"type": "tool_result", "tool_use_id": m.tool_call_id.clone().unwrap_or_default(),
                               "content": m.content});
            match turns.last_mut() {
                Some(last) if last["role"] == "user" && last["content"].is_array() => {
                    last["content"].as_array_mut().expect("an array").push(block);
                }
                _ => turns.push(json!({"role": "user", "content": [block]})),
            }
        } else if m.tool_calls.is_empty() {
            turns.push(json!({"role": m.role, "content": m.content}));
        } else {
            let mut blocks = Vec::new();
            if !m.content.is_empty() {
                blocks.push(json!({"type": "text", "text": m.content}));
            }
            for call in &m.tool_calls {
                // Anthropic takes the input as an object; arguments that are not one go as `{}`.
                let input = match serde_json::from_str::<Value>(&call.arguments) {
                    Ok(object @ Value::Object(_)) => object,
                    _ => json!({}),
                };
                blocks.push(json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input}));
            }
            turns.push(json!({"role": m.role, "content": blocks}));
        }
    }
    turns
}
