//! The two wire formats: OpenAI-compatible chat completions (OpenAI, vLLM, Ollama, llama.cpp
//! server, OpenRouter, ...) and Anthropic Messages.

use crate::sandbox::{ChatRequest, ChatResponse};
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

    /// The request body for `model`.
    pub fn body(self, model: &str, request: &ChatRequest) -> Value {
        let temperature = request.temperature_milli.map(|t| f64::from(t) / 1000.0);
        match self {
            Provider::OpenAi => {
                let messages: Vec<Value> =
                    request.messages.iter().map(|m| json!({"role": m.role, "content": m.content})).collect();
                let mut body = json!({"model": model, "messages": messages, "max_tokens": request.max_output_tokens});
                if let Some(t) = temperature {
                    body["temperature"] = json!(t);
                }
                body
            }
            Provider::Anthropic => {
                // Anthropic takes the system prompt apart from the turns.
                let system: Vec<&str> =
                    request.messages.iter().filter(|m| m.role == "system").map(|m| m.content.as_str()).collect();
                let messages: Vec<Value> = request
                    .messages
                    .iter()
                    .filter(|m| m.role != "system")
                    .map(|m| json!({"role": m.role, "content": m.content}))
                    .collect();
                let mut body = json!({"model": model, "messages": messages, "max_tokens": request.max_output_tokens});
                if !system.is_empty() {
                    body["system"] = json!(system.join("\n\n"));
                }
                if let Some(t) = temperature {
                    body["temperature"] = json!(t);
                }
                body
            }
        }
    }

    /// Parses a successful response body.
    pub fn parse(self, body: &[u8]) -> Result<ChatResponse, String> {
        let value: Value = serde_json::from_slice(body).map_err(|e| format!("malformed JSON in the response: {e}"))?;
        let number = |v: &Value| v.as_u64().map(|n| n.min(u64::from(u32::MAX)) as u32);
        match self {
            Provider::OpenAi => {
                let content = value["choices"][0]["message"]["content"]
                    .as_str()
                    .ok_or("the response has no choices[0].message.content")?;
                Ok(ChatResponse {
                    content: content.to_owned(),
                    model: value["model"].as_str().unwrap_or("").to_owned(),
                    input_tokens: number(&value["usage"]["prompt_tokens"]).unwrap_or(0),
                    output_tokens: number(&value["usage"]["completion_tokens"]).unwrap_or(0),
                })
            }
            Provider::Anthropic => {
                let blocks = value["content"].as_array().ok_or("the response has no content array")?;
                let content: String = blocks.iter().filter_map(|b| b["text"].as_str()).collect();
                if blocks.is_empty() {
                    return Err("the response's content array is empty".into());
                }
                Ok(ChatResponse {
                    content,
                    model: value["model"].as_str().unwrap_or("").to_owned(),
                    input_tokens: number(&value["usage"]["input_tokens"]).unwrap_or(0),
                    output_tokens: number(&value["usage"]["output_tokens"]).unwrap_or(0),
                })
            }
        }
    }
}
