//! The per-call store state and the host side of the `hyperagent:agent/host` import.

use super::bindings::hyperagent::agent::host::{self, CallEnvironment, LlmError, LlmRequest, LlmResponse, LogLevel};
use super::bindings::hyperagent::agent::types::{self, Budget};
use super::bindings::hyperagent::agent::{task_tools, workbench};
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

/// One chat message, in the host's own terms (independent of the generated bindings). The tool
/// fields are left out of the canonical JSON when empty, so that requests without tools hash as
/// they always did and old records still replay.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant`, or `tool` (a tool's result).
    pub role: String,
    pub content: String,
    /// An assistant turn's tool calls.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// A `tool` turn: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    /// A plain text turn.
    pub fn text(role: &str, content: impl Into<String>) -> ChatMessage {
        ChatMessage { role: role.to_owned(), content: content.into(), ..ChatMessage::default() }
    }
}

/// A tool the model may call: its name, what it does, and its parameters as a JSON schema (the
/// guest's text, checked to be a JSON object).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ToolDefinition {
    pub name: String,
    pub description: String,
    pub parameters: String,
}

/// One call of a tool by the model. `arguments` is the model's text, which should be a JSON
/// object and may not be.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

impl ChatMessage {
    /// Bytes of every string the turn holds.
    pub fn bytes(&self) -> usize {
        self.content.len()
            + self.tool_call_id.as_ref().map_or(0, String::len)
            + self.tool_calls.iter().map(ToolCall::bytes).sum::<usize>()
    }
}

impl ToolCall {
    pub fn bytes(&self) -> usize {
        self.id.len() + self.name.len() + self.arguments.len()
    }
}

impl ChatRequest {
    /// Bytes of every string the request holds: what the host meters and bounds.
    pub fn bytes(&self) -> usize {
        self.messages.iter().map(ChatMessage::bytes).sum::<usize>()
            + self.tools.iter().map(|t| t.name.len() + t.description.len() + t.parameters.len()).sum::<usize>()
            + self.model_hint.as_ref().map_or(0, String::len)
    }
}

impl ChatResponse {
    /// Bytes of the answer's text and tool calls.
    pub fn bytes(&self) -> usize {
        self.content.len() + self.tool_calls.iter().map(ToolCall::bytes).sum::<usize>()
    }
}

/// A completion request as the host's gateway sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    /// Tools the model may call; none for a plain completion.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolDefinition>,
    pub model_hint: Option<String>,
    pub max_output_tokens: u32,
    pub temperature_milli: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ChatResponse {
    pub content: String,
    pub model: String,
    pub input_tokens: u32,
    pub output_tokens: u32,
    /// The tools the model called, at most [`MAX_TOOL_CALLS_PER_ANSWER`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// Tool calls beyond [`MAX_TOOL_CALLS_PER_ANSWER`], dropped by the host.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tool_calls_dropped: u32,
    /// Why the model stopped, as the backend said it (`stop`, `length`, `tool_calls`,
    /// `end_turn`, `max_tokens`, `tool_use`...); absent in records older than the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Most tool calls of one answer passed on to the guest; the rest are dropped and counted.
pub const MAX_TOOL_CALLS_PER_ANSWER: usize = 64;

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

/// What a workbench's `check-build` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildCheck {
    /// `built`, `rejected` or `failed`.
    pub status: String,
    pub diagnostics: String,
    pub cached: bool,
}

/// What a workbench's `try-task` found: one training task run by the source as it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskTrial {
    pub outcome: String,
    pub score: f64,
    pub invalid: Option<String>,
    /// The domain's feedback, as JSON text.
    pub feedback: String,
    pub answer: Option<String>,
    pub fuel: u64,
    pub cached_build: bool,
}

/// The seam where the host's tools over `/repo` plug in for meta calls: the evolution loop builds
/// the meta agent's source with its own compiler and runs its task agent on training tasks.
pub trait Workbench: Send + Sync {
    fn check_build<'a>(&'a self) -> Pin<Box<dyn Future<Output = Result<BuildCheck, String>> + Send + 'a>>;
    fn try_task<'a>(
        &'a self,
        domain: &'a str,
        task_id: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<TaskTrial, String>> + Send + 'a>>;
}

/// What running a task agent's own tests gave (`run-tests`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRun {
    pub built: bool,
    pub passed: u32,
    pub failed: u32,
    pub output: String,
}

/// The seam where a domain's tools for task calls plug in (coding: run the agent's own tests).
pub trait TaskTools: Send + Sync {
    fn run_tests(
        &self,
        files: Vec<(String, String)>,
        tests: String,
    ) -> Pin<Box<dyn Future<Output = Result<TestRun, String>> + Send + '_>>;
}

/// Largest solution files plus tests a `run-tests` accepts, in bytes.
pub const MAX_RUN_TESTS_INPUT_BYTES: usize = 768 << 10;

/// Largest diagnostics a `check-build` hands the guest.
pub const MAX_CHECK_DIAGNOSTICS_BYTES: usize = 16 << 10;
/// Largest answer and feedback a `try-task` hands the guest, each.
pub const MAX_TRIAL_TEXT_BYTES: usize = 4 << 10;
/// Longest domain or task id a `try-task` accepts.
pub const MAX_TRIAL_NAME_BYTES: usize = 256;

/// Largest request (every string it holds, in bytes) passed on to a gateway.
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
    pub(super) workbench: Option<Arc<dyn Workbench>>,
    pub(super) task_tools: Option<Arc<dyn TaskTools>>,
    pub(super) logs: Vec<LogLine>,
    pub(super) logs_dropped: u64,
    pub(super) import_calls: u64,
    pub(super) llm_calls: u32,
    pub(super) tools: Vec<super::ToolUse>,
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

    /// Checks a completion request against the call's LLM allowance and the host's bounds, then
    /// charges its bytes and counts it. The outer error traps the call (its I/O allowance is
    /// spent); the inner one is the guest's refusal.
    fn admit(&mut self, request: &ChatRequest) -> wasmtime::Result<Result<Arc<dyn LlmGateway>, LlmError>> {
        let Some(gateway) = self.llm.clone() else {
            return Ok(Err(LlmError::NotConfigured));
        };
        let refuse = |why: String| Ok(Err(LlmError::InvalidRequest(why)));
        if self.llm_calls >= self.limits.llm_calls {
            let why = format!("this call may make {} completion(s)", self.limits.llm_calls);
            return Ok(Err(LlmError::BudgetExhausted(why)));
        }
        let (messages, bytes) = (request.messages.len(), request.bytes());
        if messages > MAX_LLM_MESSAGES {
            return refuse(format!("the request holds {messages} messages; the limit is {MAX_LLM_MESSAGES}"));
        }
        if bytes > MAX_LLM_REQUEST_BYTES {
            return refuse(format!("the request holds {bytes} bytes; the limit is {MAX_LLM_REQUEST_BYTES}"));
        }
        if request.max_output_tokens == 0 {
            return refuse("max-output-tokens must be at least 1".into());
        }
        if let Some(t) = request.temperature_milli.filter(|t| *t > MAX_TEMPERATURE_MILLI) {
            return refuse(format!(
                "temperature-milli is {t}; the limit is {MAX_TEMPERATURE_MILLI} (a temperature of 2.0)"
            ));
        }
        self.meter.moved(bytes as u64).map_err(|stop| wasmtime::format_err!("{stop}"))?;
        self.llm_calls += 1;
        Ok(Ok(gateway))
    }

    /// Sends an admitted request and charges the answer's bytes.
    async fn ask(
        &mut self,
        gateway: Arc<dyn LlmGateway>,
        chat: ChatRequest,
    ) -> wasmtime::Result<Result<ChatResponse, LlmError>> {
        Ok(match gateway.complete(chat).await {
            Ok(r) => {
                self.meter.moved(r.bytes() as u64).map_err(|stop| wasmtime::format_err!("{stop}"))?;
                Ok(r)
            }
            Err(ChatFailure::BudgetExhausted(why)) => Err(LlmError::BudgetExhausted(why)),
            Err(ChatFailure::InvalidRequest(why)) => Err(LlmError::InvalidRequest(why)),
            Err(ChatFailure::BackendFailed(why)) => Err(LlmError::BackendFailed(why)),
            // The request's bytes stay owed, as live: there the cancelled host call unwinds
            // through the same return, which charges them.
            Err(ChatFailure::CallEnded) => return Err(wasmtime::Error::new(RecordedDeadline)),
        })
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

impl workbench::Host for CallState {
    async fn check_build(&mut self) -> wasmtime::Result<Result<workbench::BuildCheck, String>> {
        self.count_import()?;
        let Some(bench) = self.workbench.clone() else {
            return Ok(Err("check-build is offered to meta calls only".to_owned()));
        };
        let answer = bench.check_build().await;
        let result = match &answer {
            Ok(check) => format!("{}{}", check.status, if check.cached { " (cached)" } else { "" }),
            Err(why) => format!("error: {why}"),
        };
        self.tools.push(super::ToolUse { tool: "check-build".into(), target: None, result, fuel: 0 });
        Ok(match answer {
            Ok(check) => {
                let mut diagnostics = check.diagnostics;
                if truncate_utf8(&mut diagnostics, MAX_CHECK_DIAGNOSTICS_BYTES) {
                    diagnostics.push_str("\n[cut at 16 KiB]");
                }
                self.meter.moved(diagnostics.len() as u64).map_err(|stop| wasmtime::format_err!("{stop}"))?;
                Ok(workbench::BuildCheck { status: check.status, diagnostics, cached: check.cached })
            }
            Err(why) => Err(why),
        })
    }

    async fn try_task(
        &mut self,
        domain: String,
        task_id: String,
    ) -> wasmtime::Result<Result<workbench::TaskTrial, String>> {
        self.count_import()?;
        self.meter.moved((domain.len() + task_id.len()) as u64).map_err(|stop| wasmtime::format_err!("{stop}"))?;
        let Some(bench) = self.workbench.clone() else {
            return Ok(Err("try-task is offered to meta calls only".to_owned()));
        };
        if domain.len() > MAX_TRIAL_NAME_BYTES || task_id.len() > MAX_TRIAL_NAME_BYTES {
            return Ok(Err(format!("a domain or task id is at most {MAX_TRIAL_NAME_BYTES} bytes")));
        }
        let answer = bench.try_task(&domain, &task_id).await;
        let mut target = format!("{domain} {task_id}");
        truncate_utf8(&mut target, 200);
        let (result, fuel) = match &answer {
            Ok(trial) => (format!("{} score {}", trial.outcome, trial.score), trial.fuel),
            Err(why) => (format!("error: {why}"), 0),
        };
        self.tools.push(super::ToolUse { tool: "try-task".into(), target: Some(target), result, fuel });
        Ok(match answer {
            Ok(trial) => {
                let cut = |mut text: String| {
                    if truncate_utf8(&mut text, MAX_TRIAL_TEXT_BYTES) {
                        text.push_str(" [cut at 4 KiB]");
                    }
                    text
                };
                let trial = workbench::TaskTrial {
                    outcome: trial.outcome,
                    score: trial.score,
                    invalid: trial.invalid.map(cut),
                    feedback: cut(trial.feedback),
                    answer: trial.answer.map(cut),
                    fuel: trial.fuel,
                    cached_build: trial.cached_build,
                };
                let moved = trial.feedback.len()
                    + trial.answer.as_ref().map_or(0, String::len)
                    + trial.invalid.as_ref().map_or(0, String::len);
                self.meter.moved(moved as u64).map_err(|stop| wasmtime::format_err!("{stop}"))?;
                Ok(trial)
            }
            Err(why) => Err(why),
        })
    }
}

impl task_tools::Host for CallState {
    async fn run_tests(
        &mut self,
        files: Vec<(String, String)>,
        tests: String,
    ) -> wasmtime::Result<Result<task_tools::TestRun, String>> {
        self.count_import()?;
        let size = files.iter().map(|(p, t)| p.len() + t.len()).sum::<usize>() + tests.len();
        self.meter.moved(size as u64).map_err(|stop| wasmtime::format_err!("{stop}"))?;
        let Some(tools) = self.task_tools.clone() else {
            return Ok(Err("run-tests is offered to the task calls of domains that have it (coding) only".to_owned()));
        };
        if size > MAX_RUN_TESTS_INPUT_BYTES {
            return Ok(Err(format!("the files and tests hold {size} bytes; at most {MAX_RUN_TESTS_INPUT_BYTES}")));
        }
        let answer = tools.run_tests(files, tests).await;
        let result = match &answer {
            Ok(run) if run.built => format!("{} passed, {} failed", run.passed, run.failed),
            Ok(_) => "did not build".to_owned(),
            Err(why) => format!("error: {why}"),
        };
        self.tools.push(super::ToolUse { tool: "run-tests".into(), target: None, result, fuel: 0 });
        Ok(match answer {
            Ok(run) => {
                let mut output = run.output;
                if truncate_utf8(&mut output, MAX_TRIAL_TEXT_BYTES) {
                    output.push_str(" [cut at 4 KiB]");
                }
                self.meter.moved(output.len() as u64).map_err(|stop| wasmtime::format_err!("{stop}"))?;
                Ok(task_tools::TestRun { built: run.built, passed: run.passed, failed: run.failed, output })
            }
            Err(why) => Err(why),
        })
    }
}

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
        let chat = ChatRequest {
            messages: request
                .messages
                .into_iter()
                .map(|m| {
                    let role = match m.role {
                        host::Role::System => "system",
                        host::Role::User => "user",
                        host::Role::Assistant => "assistant",
                    };
                    ChatMessage::text(role, m.content)
                })
                .collect(),
            tools: Vec::new(),
            model_hint: request.model_hint,
            max_output_tokens: request.max_output_tokens,
            temperature_milli: request.temperature_milli,
        };
        let gateway = match self.admit(&chat)? {
            Ok(gateway) => gateway,
            Err(refused) => return Ok(Err(refused)),
        };
        Ok(self.ask(gateway, chat).await?.map(|r| LlmResponse {
            content: r.content,
            model: r.model,
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
        }))
    }

    async fn llm_chat(&mut self, request: host::ChatRequest) -> wasmtime::Result<Result<host::ChatResponse, LlmError>> {
        self.count_import()?;
        if let Err(refused) = super::chat::check_tools(&request.tools) {
            return Ok(Err(refused));
        }
        let chat = super::chat::to_host(request);
        let gateway = match self.admit(&chat)? {
            Ok(gateway) => gateway,
            Err(refused) => return Ok(Err(refused)),
        };
        Ok(self.ask(gateway, chat).await?.map(super::chat::to_guest))
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
