//! Records and replay.
//!
//! Every exchange is stored in the archive as canonical JSON: the call that made it, the blake3 of
//! the canonical request, its sequence number among identical requests of that call, the request,
//! the response, the backend and model. Latency is a fact of the host, not of the exchange, so it
//! is reported beside the record (in the run log), never inside it. Replay answers each request
//! from the record with the same (call, request hash, sequence number) and never touches the
//! network; a request that was not recorded fails with a message naming it.

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
    pub response: ChatResponse,
    pub backend: String,
}

/// The hash that names a request: blake3 of its canonical JSON (RFC 8785).
pub fn request_hash(request: &ChatRequest) -> ContentHash {
    ContentHash::of(&crate::canonical::to_vec(request))
}

/// Recorded exchanges by (call, request hash, sequence number), and where the recorded run's LLM
/// budget ran out, if it did.
#[derive(Debug, Default)]
pub struct ReplayIndex {
    /// Each record's hash and its response, read and checked once when the index is built.
    entries: HashMap<(String, ContentHash, u32), (ContentHash, ChatResponse)>,
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
            entries.insert((exchange.call, exchange.request_hash, exchange.seq), (*hash, exchange.response));
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
}

impl CallGateway {
    pub fn new(source: Source, archive: Archive, call: String) -> CallGateway {
        CallGateway { source, archive, call, state: Mutex::new(CallState::default()) }
    }

    /// The records this call made, in order, with their latency in milliseconds (0 on replay).
    pub fn records(&self) -> Vec<(ContentHash, u64)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).records.clone()
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
                let Some((record, response)) = index.entries.get(&(self.call.clone(), hash, seq)) else {
                    if let Some((_, reason)) = &index.budget_stop {
                        return Err(ChatFailure::BudgetExhausted(reason.clone()));
                    }
                    return Err(ChatFailure::BackendFailed(format!(
                        "replay: no recorded answer for request {hash} (occurrence {seq}) of {}; the run being replayed never sent it",
                        self.call
                    )));
                };
                self.state.lock().unwrap_or_else(|p| p.into_inner()).records.push((*record, 0));
                Ok(response.clone())
            }
            Source::Live(backend) => {
                let started = Instant::now();
                let response = backend.complete(&request).await?;
                let latency = started.elapsed().as_millis() as u64;
                let exchange = Exchange {
                    schema: EXCHANGE_SCHEMA.into(),
                    call: self.call.clone(),
                    request_hash: hash,
                    seq,
                    request,
                    response: response.clone(),
                    backend: format!("{:?} {}", backend.config.provider, backend.config.base_url),
                };
                let record = self
                    .archive
                    .put_blob(&crate::canonical::to_vec(&exchange))
                    .map_err(|e| ChatFailure::BackendFailed(format!("cannot record the exchange: {e}")))?;
                self.state.lock().unwrap_or_else(|p| p.into_inner()).records.push((record, latency));
                Ok(response)
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
