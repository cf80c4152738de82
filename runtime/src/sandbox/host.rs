//! The per-call store state and the host side of the `hyperagent:agent/host` import.

use super::bindings::hyperagent::agent::host::{self, CallEnvironment, LlmError, LlmRequest, LlmResponse, LogLevel};
use super::bindings::hyperagent::agent::types::{self, Budget};
use super::guarded_fs::{FsGuard, GuardedFs};
use super::limits::{CallLimits, MemoryLimiter};
use super::meter::IoMeter;
use super::report::LogLine;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::filesystem::WasiFilesystemView;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// One chat message, in the host's own terms (independent of the generated bindings).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

/// A completion request as the host's gateway sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    pub model_hint: Option<String>,
    pub max_output_tokens: u32,
    pub temperature_milli: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChatResponse {
    pub content: String,
    pub model: String,
    pub input_tokens: u32,
    pub output_tokens: u32,
}

/// Why the gateway did not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatFailure {
    BudgetExhausted(String),
    InvalidRequest(String),
    BackendFailed(String),
    /// Replay only: in the recorded run the call ended (at its deadline) while this request was
    /// in flight. The call ends here the same way, instead of racing a clock again.
    CallEnded,
}

/// The trap that ends a replayed call where the recorded call ended, reported as its deadline.
#[derive(Debug)]
pub struct RecordedDeadline;

impl std::fmt::Display for RecordedDeadline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the recorded call reached its deadline while this LLM request was in flight")
    }
}

impl std::error::Error for RecordedDeadline {}

/// The seam where LLM backends plug in. The sandbox meters calls; the gateway talks to models,
/// records exchanges and enforces token and cost budgets.
pub trait LlmGateway: Send + Sync {
    fn complete<'a>(
        &'a self,
        request: ChatRequest,
    ) -> Pin<Box<dyn Future<Output = Result<ChatResponse, ChatFailure>> + Send + 'a>>;
}

/// Largest request (sum of message bytes) passed on to a gateway.
pub const MAX_LLM_REQUEST_BYTES: usize = 1 << 20;
/// Most messages in one completion request.
pub const MAX_LLM_MESSAGES: usize = 256;
/// Highest sampling temperature a guest may ask for, in thousandths (the providers' own maximum).
pub const MAX_TEMPERATURE_MILLI: u32 = 2000;

/// wasmtime-wasi's own state: its context and the resource table.
pub struct WasiParts {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
}

impl WasiView for WasiParts {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

pub struct CallState {
    pub(super) parts: WasiParts,
    pub(super) fs_guard: FsGuard,
    pub(super) meter: Arc<IoMeter>,
    pub(super) stdout: super::capture::BoundedCapture,
    pub(super) stderr: super::capture::BoundedCapture,
    pub(super) limiter: MemoryLimiter,
    pub(super) limits: CallLimits,
    pub(super) llm: Option<Arc<dyn LlmGateway>>,
    pub(super) logs: Vec<LogLine>,
    pub(super) logs_dropped: u64,
    pub(super) import_calls: u64,
    pub(super) llm_calls: u32,
}

impl CallState {
    /// Counts an import call and traps once the per-call allowance is spent, so that a guest
    /// cannot keep the host busy with cheap calls.
    fn count_import(&mut self) -> wasmtime::Result<()> {
        self.import_calls += 1;
        if self.import_calls > self.limits.import_calls {
            return Err(wasmtime::format_err!(
                "too many host calls: the limit per call is {}",
                self.limits.import_calls
            ));
        }
        Ok(())
    }

    fn budget(&self) -> Budget {
        Budget {
            fuel: self.limits.fuel.0,
            memory_bytes: self.limits.memory_bytes,
            llm_calls: if self.llm.is_some() { self.limits.llm_calls.saturating_sub(self.llm_calls) } else { 0 },
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.parts.ctx()
    }
}

/// The guest's file system as the linker reaches it: wasmtime-wasi's, behind the host's guard.
pub(super) fn guarded_fs(state: &mut CallState) -> GuardedFs<'_> {
    GuardedFs { inner: state.parts.filesystem(), guard: &mut state.fs_guard }
}

impl types::Host for CallState {}

/// Cuts a string to at most `max` bytes on a character boundary.
pub fn truncate_utf8(text: &mut String, max: usize) -> bool {
    if text.len() <= max {
        return false;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    true
}

impl host::Host for CallState {
    async fn log(&mut self, level: LogLevel, mut message: String) -> wasmtime::Result<()> {
        self.count_import()?;
        self.meter.moved(message.len() as u64).map_err(|stop| wasmtime::format_err!("{stop}"))?;
        if self.logs.len() >= self.limits.log_lines {
            self.logs_dropped += 1;
            return Ok(());
        }
        if truncate_utf8(&mut message, self.limits.log_line_bytes) {
            message.push_str(" [cut]");
        }
        let level = match level {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        };
        self.logs.push(LogLine { level: level.to_owned(), message });
        Ok(())
    }

    async fn llm_complete(&mut self, request: LlmRequest) -> wasmtime::Result<Result<LlmResponse, LlmError>> {
        self.count_import()?;
        let Some(gateway) = self.llm.clone() else {
            return Ok(Err(LlmError::NotConfigured));
        };
        if self.llm_calls >= self.limits.llm_calls {
            return Ok(Err(LlmError::BudgetExhausted(format!(
                "this call may make {} completion(s)",
                self.limits.llm_calls
            ))));
        }
        if request.messages.len() > MAX_LLM_MESSAGES {
            return Ok(Err(LlmError::InvalidRequest(format!(
                "the request holds {} messages; the limit is {MAX_LLM_MESSAGES}",
                request.messages.len()
            ))));
        }
        let size: usize = request.messages.iter().map(|m| m.content.len()).sum::<usize>()
            + request.model_hint.as_ref().map_or(0, String::len);
        if size > MAX_LLM_REQUEST_BYTES {
            return Ok(Err(LlmError::InvalidRequest(format!(
                "the messages and model hint hold {size} bytes; the limit is {MAX_LLM_REQUEST_BYTES}"
            ))));
        }
        if request.max_output_tokens == 0 {
            return Ok(Err(LlmError::InvalidRequest("max-output-tokens must be at least 1".into())));
        }
        if let Some(t) = request.temperature_milli.filter(|t| *t > MAX_TEMPERATURE_MILLI) {
            return Ok(Err(LlmError::InvalidRequest(format!(
                "temperature-milli is {t}; the limit is {MAX_TEMPERATURE_MILLI} (a temperature of 2.0)"
            ))));
        }
        self.meter.moved(size as u64).map_err(|stop| wasmtime::format_err!("{stop}"))?;
        self.llm_calls += 1;
        let chat = ChatRequest {
            messages: request
                .messages
                .into_iter()
                .map(|m| ChatMessage {
                    role: match m.role {
                        host::Role::System => "system",
                        host::Role::User => "user",
                        host::Role::Assistant => "assistant",
                    }
                    .to_owned(),
                    content: m.content,
                })
                .collect(),
            model_hint: request.model_hint,
            max_output_tokens: request.max_output_tokens,
            temperature_milli: request.temperature_milli,
        };
        Ok(match gateway.complete(chat).await {
            Ok(r) => {
                self.meter.moved(r.content.len() as u64).map_err(|stop| wasmtime::format_err!("{stop}"))?;
                Ok(LlmResponse {
                    content: r.content,
                    model: r.model,
                    input_tokens: r.input_tokens,
                    output_tokens: r.output_tokens,
                })
            }
            Err(ChatFailure::BudgetExhausted(why)) => Err(LlmError::BudgetExhausted(why)),
            Err(ChatFailure::InvalidRequest(why)) => Err(LlmError::InvalidRequest(why)),
            Err(ChatFailure::BackendFailed(why)) => Err(LlmError::BackendFailed(why)),
            // The request's bytes stay owed, as live: there the cancelled host call unwinds
            // through the same return, which charges them.
            Err(ChatFailure::CallEnded) => return Err(wasmtime::Error::new(RecordedDeadline)),
        })
    }

    async fn environment(&mut self) -> wasmtime::Result<CallEnvironment> {
        self.count_import()?;
        Ok(CallEnvironment {
            host_version: crate::HOST_VERSION.to_owned(),
            contract_version: super::imports::CONTRACT_VERSION.to_owned(),
            llm_available: self.llm.is_some(),
            budget: self.budget(),
        })
    }
}
