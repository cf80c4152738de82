//! `llm-chat`: a conversation turn that may offer the model tools. The guest's request is checked
//! against the host's bounds (its tools here, the rest with every completion) before any gateway
//! sees it, converted to the host's own terms, and the answer converted back.

use super::bindings::hyperagent::agent::host::{
    self, ChatRequest as WitRequest, ChatResponse as WitResponse, ChatRole, LlmError,
};
use super::host::{ChatMessage, ChatRequest, ChatResponse, ToolCall, ToolDefinition};

/// Most tools one request may offer.
pub const MAX_TOOLS: usize = 64;
/// Largest JSON schema of one tool, in bytes.
pub const MAX_TOOL_SCHEMA_BYTES: usize = 16 << 10;
/// Longest tool description, in bytes.
pub const MAX_TOOL_DESCRIPTION_BYTES: usize = 4 << 10;

/// Checks the tools a guest offers: names as every provider accepts them, unique; schemas that
/// are JSON objects within their size.
pub fn check_tools(tools: &[host::ToolDefinition]) -> Result<(), LlmError> {
    let refuse = |why: String| Err(LlmError::InvalidRequest(why));
    if tools.len() > MAX_TOOLS {
        return refuse(format!("the request offers {} tools; the limit is {MAX_TOOLS}", tools.len()));
    }
    let mut names = std::collections::BTreeSet::new();
    for tool in tools {
        let name_ok = (1..=64).contains(&tool.name.len())
            && tool.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !name_ok {
            return refuse(format!(
                "tool name {:?} is not 1 to 64 characters of a-z A-Z 0-9 _ -",
                tool.name.chars().take(80).collect::<String>()
            ));
        }
        if !names.insert(tool.name.as_str()) {
            return refuse(format!("tool `{}` is offered twice", tool.name));
        }
        if tool.description.len() > MAX_TOOL_DESCRIPTION_BYTES {
            return refuse(format!(
                "tool `{}`: its description holds {} bytes; the limit is {MAX_TOOL_DESCRIPTION_BYTES}",
                tool.name,
                tool.description.len()
            ));
        }
        if tool.parameters.len() > MAX_TOOL_SCHEMA_BYTES {
            return refuse(format!(
                "tool `{}`: its schema holds {} bytes; the limit is {MAX_TOOL_SCHEMA_BYTES}",
                tool.name,
                tool.parameters.len()
            ));
        }
        match serde_json::from_str::<serde_json::Value>(&tool.parameters) {
            Ok(serde_json::Value::Object(_)) => {}
            _ => return refuse(format!("tool `{}`: its parameters are not a JSON object (a JSON schema)", tool.name)),
        }
    }
    Ok(())
}

fn role_name(role: ChatRole) -> &'static str {
    match role {
        ChatRole::System => "system",
        ChatRole::User => "user",
        ChatRole::Assistant => "assistant",
        ChatRole::Tool => "tool",
    }
}

fn call_to_host(call: host::ToolCall) -> ToolCall {
    ToolCall { id: call.id, name: call.name, arguments: call.arguments }
}

/// The guest's request in the host's terms.
pub fn to_host(request: WitRequest) -> ChatRequest {
    ChatRequest {
        messages: request
            .messages
            .into_iter()
            .map(|m| ChatMessage {
                role: role_name(m.role).to_owned(),
                content: m.content,
                tool_calls: m.tool_calls.into_iter().map(call_to_host).collect(),
                tool_call_id: m.tool_call_id,
            })
            .collect(),
        tools: request
            .tools
            .into_iter()
            .map(|t| ToolDefinition { name: t.name, description: t.description, parameters: t.parameters })
            .collect(),
        model_hint: request.model_hint,
        max_output_tokens: request.max_output_tokens,
        temperature_milli: request.temperature_milli,
    }
}

/// The host's answer in the guest's terms.
pub fn to_guest(response: ChatResponse) -> WitResponse {
    WitResponse {
        content: response.content,
        tool_calls: response
            .tool_calls
            .into_iter()
            .map(|c| host::ToolCall { id: c.id, name: c.name, arguments: c.arguments })
            .collect(),
        tool_calls_dropped: response.tool_calls_dropped,
        finish_reason: response.finish_reason.unwrap_or_default(),
        model: response.model,
        input_tokens: response.input_tokens,
        output_tokens: response.output_tokens,
    }
}
