//! Records and replay.
//!
//! Every exchange is stored in the archive as canonical JSON: the call that made it, the blake3 of
//! the canonical request, its sequence number among identical requests of that call, the request,
//! the response, the backend and model. Latency is a fact of the host, not of the exchange, so it
//! is reported beside the record (in the run log), never inside it. Replay answers each request
//! from the record with the same (call, request hash, sequence number) and never touches the
//! network; a request that was not recorded fails with a message naming it.
//!
//! What ended a request without an answer is recorded too, so that a replay ends it the same way
//! instead of racing a clock again: the backend's failure after its retries (replayed as that
//! failure), or the call reaching its deadline while the request was in flight (replayed by
//! ending the call there, as its deadline).

use super::backend::Backend;
use crate::archive::Archive;
use crate::hash::ContentHash;
use crate::sandbox::{ChatFailure, ChatRequest, ChatResponse, LlmGateway};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub const EXCHANGE_SCHEMA: &str = "hyperagent.llm-exchange/2";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    pub schema: String,
    /// Which call made it, e.g. `meta g0003-s01`.
    pub call: String,
    pub request_hash: ContentHash,
    pub seq: u32,
    pub request: ChatRequest,
    /// The answer; absent when the request failed or the call ended first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<ChatResponse>,
    /// Why there is no answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    pub backend: String,
}

/// What ended a request without an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Failure {
    /// The backend failed after its retries.
    Backend { message: String },
    /// The call reached its deadline while the request was in flight.
    CallEnded,
}

/// A request within a call: the call, the request's hash, its sequence number.
type RequestKey = (String, ContentHash, u32);
/// What a recorded request got: its response, or what ended it without one.
type Answer = Result<ChatResponse, Failure>;

/// The hash that names a request: blake3 of its canonical JSON (RFC 8785).
pub fn request_hash(request: &ChatRequest) -> ContentHash {
    ContentHash::of(&crate::canonical::to_vec(request))
}

/// Recorded exchanges by (call, request hash, sequence number), and where the recorded run's LLM
/// budget ran out, if it did.
#[derive(Debug, Default)]
pub struct ReplayIndex {
    /// Each record's hash and its response, read and checked once when the index is built.
    entries: HashMap<RequestKey, (ContentHash, Answer)>,
    /// The generation after which the recorded run stopped, and why. Once the budget was spent
    /// every further request was refused, unrecorded: replay refuses it alike.
    budget_stop: Option<(u32, String)>,
}

impl ReplayIndex {
    /// Indexes the given exchange records (read from the archive).
    pub fn from_records(archive: &Archive, records: &[ContentHash]) -> Result<ReplayIndex, String> {
        let mut entries = HashMap::new();
        for hash in records {
            let bytes = archive.get_blob(hash).map_err(|e| e.to_string())?;
            let exchange: Exchange = serde_json::from_slice(&bytes).map_err(|e| format!("record {hash}: {e}"))?;
            let answer = match (exchange.response, exchange.failure) {
                (Some(response), None) => Ok(response),
                (None, Some(failure)) => Err(failure),
                _ => return Err(format!("record {hash}: it must hold a response or a failure, not both or neither")),
            };
            entries.insert((exchange.call, exchange.request_hash, exchange.seq), (*hash, answer));
        }
        Ok(ReplayIndex { entries, budget_stop: None })
    }

    /// Records that the replayed run stopped after `generation` because its budget was spent.
    pub fn with_budget_stop(mut self, generation: u32, reason: String) -> ReplayIndex {
        self.budget_stop = Some((generation, reason));
        self
    }

    /// Why the recorded run stopped after `generation`, if it stopped there.
    pub fn stopped_after(&self, generation: u32) -> Option<&str> {
        self.budget_stop.as_ref().filter(|(g, _)| *g == generation).map(|(_, reason)| reason.as_str())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Where answers come from.
#[derive(Clone)]
pub enum Source {
    Live(Arc<Backend>),
    Replay(Arc<ReplayIndex>),
}

/// The gateway one sandbox call sees: numbers identical requests, records every exchange in the
/// archive, and remembers which records it made (the node links them) and how long each took.
pub struct CallGateway {
    source: Source,
    archive: Archive,
    call: String,
    state: Mutex<CallState>,
}

#[derive(Default)]
struct CallState {
    seen: HashMap<ContentHash, u32>,
    records: Vec<(ContentHash, u64)>,
    /// A live request sent and not yet answered: if the call ends now, this is what was in flight.
    in_flight: Option<(ContentHash, u32, ChatRequest)>,
}

impl CallGateway {
    pub fn new(source: Source, archive: Archive, call: String) -> CallGateway {
        CallGateway { source, archive, call, state: Mutex::new(CallState::default()) }
    }

    /// The records this call made, in order, with their latency in milliseconds (0 on replay).
    pub fn records(&self) -> Vec<(ContentHash, u64)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).records.clone()
    }

    /// Called when the sandbox call has ended: a live request still in flight then (the call hit
    /// its deadline while waiting) is recorded as such, so that a replay ends the call there too.
    pub fn close(&self) -> Result<(), String> {
        let Source::Live(backend) = &self.source else { return Ok(()) };
        let pending = self.state.lock().unwrap_or_else(|p| p.into_inner()).in_flight.take();
        if let Some((hash, seq, request)) = pending {
            self.record(backend, hash, seq, request, Err(Failure::CallEnded), 0)?;
        }
        Ok(())
    }

    /// Stores one exchange and remembers its record.
    fn record(
        &self,
        backend: &Backend,
        request_hash: ContentHash,
        seq: u32,
        request: ChatRequest,
        answer: Result<ChatResponse, Failure>,
        latency: u64,
    ) -> Result<ContentHash, String> {
        let (response, failure) = match answer {
            Ok(response) => (Some(response), None),
            Err(failure) => (None, Some(failure)),
        };
        let exchange = Exchange {
            schema: EXCHANGE_SCHEMA.into(),
            call: self.call.clone(),
            request_hash,
            seq,
            request,
            response,
            failure,
            backend: format!("{:?} {}", backend.config.provider, backend.config.base_url),
        };
        let record = self
            .archive
            .put_blob(&crate::canonical::to_vec(&exchange))
            .map_err(|e| format!("cannot record the exchange: {e}"))?;
        self.state.lock().unwrap_or_else(|p| p.into_inner()).records.push((record, latency));
        Ok(record)
    }

    async fn answer(&self, request: ChatRequest) -> Result<ChatResponse, ChatFailure> {
        let hash = request_hash(&request);
        let seq = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let seq = state.seen.entry(hash).or_insert(0);
            let current = *seq;
            *seq += 1;
            current
        };
        match &self.source {
            Source::Replay(index) => {
                let Some((record, answer)) = index.entries.get(&(self.call.clone(), hash, seq)) else {
                    if let Some((_, reason)) = &index.budget_stop {
                        return Err(ChatFailure::BudgetExhausted(reason.clone()));
                    }
                    return Err(ChatFailure::BackendFailed(format!(
                        "replay: no recorded answer for request {hash} (occurrence {seq}) of {}; the run being replayed never sent it",
                        self.call
                    )));
                };
                self.state.lock().unwrap_or_else(|p| p.into_inner()).records.push((*record, 0));
                match answer {
                    Ok(response) => Ok(response.clone()),
                    Err(Failure::Backend { message }) => Err(ChatFailure::BackendFailed(message.clone())),
                    Err(Failure::CallEnded) => Err(ChatFailure::CallEnded),
                }
            }
            Source::Live(backend) => {
                self.state.lock().unwrap_or_else(|p| p.into_inner()).in_flight = Some((hash, seq, request.clone()));
                let started = Instant::now();
                let answer = backend.complete(&request).await;
                let latency = started.elapsed().as_millis() as u64;
                self.state.lock().unwrap_or_else(|p| p.into_inner()).in_flight = None;
                match answer {
                    Ok(response) => {
                        self.record(backend, hash, seq, request, Ok(response.clone()), latency)
                            .map_err(ChatFailure::BackendFailed)?;
                        Ok(response)
                    }
                    // A failure after the retries is part of what the guest saw: recorded, replayed.
                    Err(ChatFailure::BackendFailed(message)) => {
                        let failure = Failure::Backend { message: message.clone() };
                        self.record(backend, hash, seq, request, Err(failure), latency)
                            .map_err(ChatFailure::BackendFailed)?;
                        Err(ChatFailure::BackendFailed(message))
                    }
                    // Refused before anything was sent (budget, invalid request): the run log's
                    // budget stop, or the request itself, says so on replay.
                    Err(other) => Err(other),
                }
            }
        }
    }
}

impl LlmGateway for CallGateway {
    fn complete<'a>(
        &'a self,
        request: ChatRequest,
    ) -> Pin<Box<dyn Future<Output = Result<ChatResponse, ChatFailure>> + Send + 'a>> {
        Box::pin(self.answer(request))
    }
}
