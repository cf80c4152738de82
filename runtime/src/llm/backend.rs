//! One configured backend: HTTP with retries, a per-backend concurrency limit, and budgets checked
//! before every call.

use super::wire::Provider;
use crate::sandbox::{ChatFailure, ChatRequest, ChatResponse};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::Duration;

/// The `[llm]` section of a run's configuration. The key itself never appears here: only the name
/// of the environment variable that holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmConfig {
    pub provider: Provider,
    pub base_url: String,
    pub model: String,
    /// Environment variable holding the API key (empty or absent for local servers).
    pub api_key_env: Option<String>,
    pub timeout_ms: u64,
    /// Retries after the first attempt, on 429, 5xx, timeouts and connection errors.
    pub max_retries: u32,
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// Requests in flight at once.
    pub concurrency: usize,
    pub budget: LlmBudget,
    /// Prices in US dollars per million tokens, for the cost budget.
    pub price_input_per_million: f64,
    pub price_output_per_million: f64,
    /// The most output tokens this backend gives one answer; requests asking for more are
    /// lowered to it (a server that refuses larger requests outright then still answers).
    pub max_output_tokens: Option<u32>,
    /// The backend's context window in tokens: a request's output is lowered so that it fits
    /// beside its input, estimated as one token per 3 bytes (an over-estimate for English text
    /// and code, so that the sum stays inside the window).
    pub context_tokens: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmBudget {
    pub max_calls: u64,
    pub max_input_tokens: u64,
    pub max_output_tokens: u64,
    pub max_cost_usd: f64,
}

impl LlmConfig {
    /// The longest one completion can take with this configuration: every attempt running to its
    /// timeout, and the longest backoff between them.
    pub fn worst_completion(&self) -> std::time::Duration {
        let attempts = u64::from(self.max_retries) + 1;
        let waiting = self.timeout_ms.saturating_mul(attempts);
        let backing_off = self.max_backoff_ms.saturating_mul(u64::from(self.max_retries));
        std::time::Duration::from_millis(waiting.saturating_add(backing_off))
    }
}

impl Default for LlmBudget {
    fn default() -> Self {
        LlmBudget { max_calls: 200, max_input_tokens: 2_000_000, max_output_tokens: 400_000, max_cost_usd: 5.0 }
    }
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            provider: Provider::OpenAi,
            base_url: "https://api.openai.com/v1".into(),
            model: "gpt-4o-mini".into(),
            api_key_env: Some("OPENAI_API_KEY".into()),
            timeout_ms: 120_000,
            max_retries: 4,
            initial_backoff_ms: 500,
            max_backoff_ms: 30_000,
            concurrency: 2,
            budget: LlmBudget::default(),
            price_input_per_million: 0.0,
            price_output_per_million: 0.0,
            max_output_tokens: None,
            context_tokens: None,
        }
    }
}

/// What has been spent so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Spent {
    pub calls: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
}

pub struct Backend {
    pub config: LlmConfig,
    client: reqwest::Client,
    api_key: Option<String>,
    permits: tokio::sync::Semaphore,
    spent: Mutex<Spent>,
    exhausted: Mutex<Option<String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("the environment variable {0} (the LLM API key) is not set")]
    MissingKey(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

impl Backend {
    pub fn new(config: LlmConfig) -> Result<Backend, BackendError> {
        // reqwest is built without a default TLS crypto provider; install ring once.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // No variable (or an empty name) means no key: local servers such as Ollama need none.
        let api_key = match config.api_key_env.as_deref().filter(|n| !n.is_empty()) {
            Some(name) => Some(std::env::var(name).map_err(|_| BackendError::MissingKey(name.to_owned()))?),
            None => None,
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .build()
            .map_err(|e| BackendError::Client(e.to_string()))?;
        let permits = tokio::sync::Semaphore::new(config.concurrency.max(1));
        Ok(Backend {
            config,
            client,
            api_key,
            permits,
            spent: Mutex::new(Spent::default()),
            exhausted: Mutex::new(None),
        })
    }

    pub fn spent(&self) -> Spent {
        self.spent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Why the budget is spent, once it is.
    pub fn exhausted(&self) -> Option<String> {
        self.exhausted.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Why the budget allows no further call, if it does not.
    fn exhaustion(&self, spent: &Spent) -> Option<String> {
        let budget = &self.config.budget;
        if spent.calls >= budget.max_calls {
            Some(format!("all {} calls of the run's LLM budget are spent", budget.max_calls))
        } else if spent.input_tokens >= budget.max_input_tokens {
            Some(format!("the run's {} input tokens are spent", budget.max_input_tokens))
        } else if spent.output_tokens >= budget.max_output_tokens {
            Some(format!("the run's {} output tokens are spent", budget.max_output_tokens))
        } else if spent.cost_usd >= budget.max_cost_usd {
            Some(format!("the run's ${:.2} LLM budget is spent", budget.max_cost_usd))
        } else {
            None
        }
    }

    /// Takes one call from the budget, checked and counted under one lock so that concurrent
    /// requests cannot both take the last call; returns the output tokens the budget has left.
    fn reserve(&self) -> Result<u64, ChatFailure> {
        let mut spent = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(reason) = self.exhaustion(&spent) {
            *self.exhausted.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.clone());
            return Err(ChatFailure::BudgetExhausted(reason));
        }
        spent.calls += 1;
        Ok(self.config.budget.max_output_tokens.saturating_sub(spent.output_tokens))
    }

    /// Sends one request, retrying transient failures with exponential backoff and jitter.
    pub async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ChatFailure> {
        // Taken once the request holds a permit: the budget may run out while it waits.
        let _permit =
            self.permits.acquire().await.map_err(|_| ChatFailure::BackendFailed("the backend is shut down".into()))?;
        let remaining_output = self.reserve()?;
        let mut request = request.clone();
        request.max_output_tokens = self.output_allowance(&request, remaining_output);
        let body = self.config.provider.body(&self.config.model, &request).to_string();
        let url = self.config.provider.url(&self.config.base_url);
        let attempts = self.config.max_retries + 1;
        let mut last_error = String::new();
        for attempt in 0..attempts {
            let mut builder = self.client.post(&url).header("content-type", "application/json").body(body.clone());
            builder = match (self.config.provider, &self.api_key) {
                (Provider::OpenAi, Some(key)) => builder.bearer_auth(key),
                (Provider::Anthropic, Some(key)) => builder.header("x-api-key", key),
                (_, None) => builder,
            };
            if self.config.provider == Provider::Anthropic {
                builder = builder.header("anthropic-version", "2023-06-01");
            }
            let mut wait = backoff(self.config.initial_backoff_ms, self.config.max_backoff_ms, attempt);
            match builder.send().await {
                Ok(response) => {
                    let status = response.status();
                    let retry_after = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok());
                    let bytes = match read_bounded(response).await {
                        Ok(bytes) => bytes,
                        // An oversized answer is not transient: fail at once, clearly.
                        Err(why) => return Err(ChatFailure::BackendFailed(format!("{url}: {why}"))),
                    };
                    if status.is_success() {
                        return match self.config.provider.parse(&bytes) {
                            Ok(answer) => {
                                self.account(&answer);
                                Ok(answer)
                            }
                            // A malformed success is not transient: fail at once, clearly.
                            Err(why) => Err(ChatFailure::BackendFailed(format!("{url}: {why}"))),
                        };
                    }
                    // 300 characters of the body say what went wrong; the rest is not converted.
                    let snippet: String =
                        String::from_utf8_lossy(&bytes[..bytes.len().min(1200)]).chars().take(300).collect();
                    last_error = format!("HTTP {status}: {snippet}");
                    let transient = status.as_u16() == 429 || status.is_server_error();
                    if !transient {
                        return Err(ChatFailure::BackendFailed(format!("{url}: {last_error}")));
                    }
                    if let Some(seconds) = retry_after {
                        wait = Duration::from_secs(seconds).min(Duration::from_millis(self.config.max_backoff_ms));
                    }
                }
                Err(e) if e.is_timeout() => last_error = format!("no answer within {} ms", self.config.timeout_ms),
                Err(e) => last_error = format!("request failed: {e}"),
            }
            if attempt + 1 < attempts {
                tokio::time::sleep(wait).await;
            }
        }
        Err(ChatFailure::BackendFailed(format!("{url}: gave up after {attempts} attempts; last: {last_error}")))
    }

    /// The output tokens a request may ask for: its own figure, lowered to what the run's budget
    /// has left and to the backend's limits; at least 1.
    fn output_allowance(&self, request: &ChatRequest, budget_left: u64) -> u32 {
        let mut allowed = u64::from(request.max_output_tokens).min(budget_left);
        if let Some(cap) = self.config.max_output_tokens {
            allowed = allowed.min(u64::from(cap));
        }
        if let Some(window) = self.config.context_tokens {
            let input_bytes = request.bytes();
            let input_estimate = (input_bytes as u64).div_ceil(3);
            allowed = allowed.min(u64::from(window).saturating_sub(input_estimate));
        }
        allowed.clamp(1, u64::from(u32::MAX)) as u32
    }

    /// Counts an exchange another host made for this run (a cluster worker's) as if this backend
    /// had made it: one call, and its tokens when it was answered. Once the counts reach the
    /// budget, [`Backend::exhausted`] says so.
    pub fn charge(&self, exchange: &super::Exchange) {
        self.spent.lock().unwrap_or_else(|p| p.into_inner()).calls += 1;
        if let Some(response) = &exchange.response {
            self.account(response);
        }
        if let Some(reason) = self.exhaustion(&self.spent()) {
            *self.exhausted.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
        }
    }

    /// What the budget has left.
    pub fn remaining(&self) -> LlmBudget {
        let (budget, spent) = (&self.config.budget, self.spent());
        LlmBudget {
            max_calls: budget.max_calls.saturating_sub(spent.calls),
            max_input_tokens: budget.max_input_tokens.saturating_sub(spent.input_tokens),
            max_output_tokens: budget.max_output_tokens.saturating_sub(spent.output_tokens),
            max_cost_usd: (budget.max_cost_usd - spent.cost_usd).max(0.0),
        }
    }

    fn account(&self, answer: &ChatResponse) {
        let mut spent = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        spent.input_tokens += u64::from(answer.input_tokens);
        spent.output_tokens += u64::from(answer.output_tokens);
        spent.cost_usd += f64::from(answer.input_tokens) * self.config.price_input_per_million / 1e6
            + f64::from(answer.output_tokens) * self.config.price_output_per_million / 1e6;
    }
}

/// Largest response body read from a backend; a completion is text, far smaller.
pub const MAX_RESPONSE_BYTES: usize = 8 << 20;

/// Reads a response body, refusing one larger than [`MAX_RESPONSE_BYTES`] without buffering it.
async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let too_large = || format!("the response is larger than {MAX_RESPONSE_BYTES} bytes");
    if response.content_length().is_some_and(|n| n > MAX_RESPONSE_BYTES as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| format!("reading the response failed: {e}"))? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Exponential backoff with "equal jitter": half the step fixed, half random.
fn backoff(initial_ms: u64, max_ms: u64, attempt: u32) -> Duration {
    let step = initial_ms.saturating_mul(1u64 << attempt.min(20)).min(max_ms);
    // Jitter only spreads retries out; it never reaches anything that is recorded or hashed.
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos() as u64)
            ^ std::process::id() as u64;
    let mixed = nanos.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 11;
    Duration::from_millis(step / 2 + mixed % (step / 2 + 1))
}
