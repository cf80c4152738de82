//! Completions through the host's LLM gateway. The host meters, records and may replay every
//! exchange; with no LLM configured every call returns [`LlmError::NotConfigured`].

use crate::bindings::hyperagent::agent::host;
pub use crate::bindings::hyperagent::agent::host::{
    ChatMessage, ChatRequest, ChatResponse, ChatRole, LlmError, LlmRequest, LlmResponse, Message, Role, ToolCall,
    ToolDefinition,
};

/// Whether the host will answer completions in this call.
pub fn available() -> bool {
    host::environment().llm_available
}

/// Sends a full request.
pub fn complete(request: &LlmRequest) -> Result<LlmResponse, LlmError> {
    host::llm_complete(request)
}

/// Sends one turn of a conversation that may offer tools; the answer may call them.
pub fn chat(request: &ChatRequest) -> Result<ChatResponse, LlmError> {
    host::llm_chat(request)
}

impl ChatMessage {
    /// A turn of plain text.
    pub fn text(role: ChatRole, content: impl Into<String>) -> ChatMessage {
        ChatMessage { role, content: content.into(), tool_calls: Vec::new(), tool_call_id: None }
    }

    /// A tool's result, answering the call `id`.
    pub fn tool_result(id: &str, content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role: ChatRole::Tool,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: Some(id.to_owned()),
        }
    }
}

/// Asks one question with a system prompt, at temperature 0.
pub fn ask(system: &str, user: &str, max_output_tokens: u32) -> Result<String, LlmError> {
    let request = LlmRequest {
        messages: vec![
            Message { role: Role::System, content: system.to_owned() },
            Message { role: Role::User, content: user.to_owned() },
        ],
        model_hint: None,
        max_output_tokens,
        temperature_milli: Some(0),
    };
    complete(&request).map(|response| response.content)
}

/// A sentence describing why a completion failed, for logs and notes.
pub fn describe(error: &LlmError) -> String {
    match error {
        LlmError::NotConfigured => "no LLM is configured on this host".to_owned(),
        LlmError::BudgetExhausted(why) => format!("LLM budget exhausted: {why}"),
        LlmError::InvalidRequest(why) => format!("LLM request refused: {why}"),
        LlmError::BackendFailed(why) => format!("LLM backend failed: {why}"),
    }
}
