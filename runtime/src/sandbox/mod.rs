//! The sandbox: runs a hyperagent component's exports under fuel, memory and time limits, with
//! nothing granted but what the caller lists.
//!
//! One [`Sandbox`] owns one wasmtime engine set up for determinism (NaN canonicalisation,
//! deterministic relaxed SIMD, no threads, no component-model concurrency), fuel metering, epoch
//! interruption and the pooling allocator. Every call gets a fresh store: its own WASI context
//! with no environment, no arguments, no network, captured stdio, virtual clocks and seeded
//! randomness, and only the preopened directories in its [`Grants`].

mod artifacts;
pub mod capture;
pub mod chat;
pub mod guarded_fs;
pub mod host;
pub mod imports;
pub mod limits;
pub mod meter;
pub mod quota;
pub mod report;
pub mod virtual_env;

pub use capture::Captured;
pub use host::{
    BuildCheck, ChatFailure, ChatMessage, ChatRequest, ChatResponse, LlmGateway, TaskTools, TaskTrial, TestRun,
    ToolCall, ToolDefinition, Workbench,
};
pub use limits::{CallLimits, Fuel};
pub use report::{CallReport, LogLine, Outcome, ToolUse};

use crate::hash::ContentHash;
use artifacts::ArtifactCache;
use capture::BoundedCapture;
use host::{CallState, WasiParts, truncate_utf8};
use limits::MemoryLimiter;
use meter::{IoMeter, MeterStop};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use virtual_env::{SeededRng, VirtualMonotonicClock, VirtualWallClock};
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{CallHook, Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        world: "hyperagent-core",
        path: "../agent-sdk/wit",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}

/// The optional parent selector, looked up apart so that components without one load as before.
mod selector_bindings {
    wasmtime::component::bindgen!({
        world: "parent-selector",
        path: "../agent-sdk/wit",
        exports: { default: async },
    });
}

use bindings::HyperagentCorePre;
use bindings::hyperagent::agent::types::{AgentError, Budget, MetaRequest, TaskRequest};
use selector_bindings::ParentSelectorPre;

/// Settings of the engine, fixed for the life of a [`Sandbox`]. They are part of what a recorded
/// fuel figure depends on.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Largest memory cap a call may ask for; the pooling allocator reserves slots of this size.
    pub max_memory_bytes: u64,
    /// Calls that may run at once (pooling allocator slots).
    pub max_concurrent_calls: u32,
    /// Wasm stack limit, in bytes.
    pub max_wasm_stack: usize,
    /// Epoch tick; the wall-clock deadline is enforced at this granularity.
    pub epoch_tick: Duration,
    /// Fuel metering. Only benchmarks turn it off, to measure what it costs: without it a call
    /// has no fuel budget, and the deadline is enforced only by epochs.
    pub fuel_metering: bool,
    /// Epoch checks in guest code: the wall-clock deadline interrupts a running guest at the next
    /// loop header or call. Without them the deadline is enforced at the fuel yield points (every
    /// few milliseconds of guest compute) by the async timeout, which costs nothing in the loop.
    pub epoch_interruption: bool,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            max_memory_bytes: 1 << 30,
            max_concurrent_calls: 32,
            max_wasm_stack: 1 << 20,
            epoch_tick: Duration::from_millis(10),
            fuel_metering: true,
            epoch_interruption: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot set up the wasmtime engine: {0}")]
    Engine(String),
    #[error("not a WebAssembly component (a core module or other bytes); build hyperagents for wasm32-wasip2")]
    NotAComponent,
    #[error("cannot compile the component: {0}")]
    Compile(String),
    #[error(transparent)]
    ForbiddenImports(#[from] imports::ForbiddenImports),
    #[error("the component does not implement the hyperagent world: {0}")]
    WrongWorld(String),
    #[error("the memory cap of {asked} bytes is above the sandbox's maximum of {max} bytes")]
    MemoryCapTooLarge { asked: u64, max: u64 },
    #[error("cannot grant {host} as {guest}: {reason}")]
    Preopen { host: PathBuf, guest: String, reason: String },
    #[error("artifact cache at {path}: {reason}")]
    Cache { path: PathBuf, reason: String },
}

/// A compiled component, checked and ready to instantiate.
pub struct LoadedComponent {
    pub hash: ContentHash,
    pub imports: Vec<String>,
    pre: HyperagentCorePre<CallState>,
    /// Present when the component exports `select`.
    selector: Option<ParentSelectorPre<CallState>>,
}

impl LoadedComponent {
    pub fn has_selector(&self) -> bool {
        self.selector.is_some()
    }
}

/// A directory the guest may see.
#[derive(Debug, Clone)]
pub struct Preopen {
    pub host: PathBuf,
    pub guest: String,
    pub writable: bool,
}

/// What a call is given beyond its input: its seed, its directories and its LLM.
#[derive(Clone, Default)]
pub struct Grants {
    pub seed: u64,
    pub preopens: Vec<Preopen>,
    pub llm: Option<Arc<dyn LlmGateway>>,
    /// The tools over `/repo` a meta call may use; none for task calls.
    pub workbench: Option<Arc<dyn Workbench>>,
    /// The tools a task call's domain offers it (coding's `run-tests`); none for meta calls.
    pub task_tools: Option<Arc<dyn TaskTools>>,
}

/// The input of a `task` call.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TaskInput {
    pub domain: String,
    pub task_id: String,
    /// JSON text.
    pub payload: String,
}

/// The input of a `select` call: the archive as JSON, and how many parents to choose.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SelectInput {
    pub archive: String,
    pub count: u32,
}

/// The input of a `meta` call. The budget is filled in from the call's limits.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct MetaInput {
    pub iterations_left: u32,
    pub repo_dir: String,
    pub history_dir: String,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "export", rename_all = "kebab-case")]
pub enum CallInput {
    Task(TaskInput),
    Meta(MetaInput),
    Select(SelectInput),
}

/// The fuel cost table the engine uses: wasmtime's default (most operators 1, control flow 0, bulk
/// memory operations per byte). Recorded with results, since fuel figures depend on it.
pub const FUEL_COST_TABLE: &str = "wasmtime 48 default operator costs";

/// Longest meta summary and rationale kept, in bytes.
const MAX_SUMMARY_BYTES: usize = 1024;
const MAX_RATIONALE_BYTES: usize = 16 * 1024;
/// Longest trap message kept, in bytes.
const MAX_TRAP_MESSAGE_BYTES: usize = 4096;
/// Fuel between yields to the async executor, so one long call cannot starve the others.
const FUEL_YIELD_INTERVAL: u64 = 10_000_000;

pub struct Sandbox {
    engine: Engine,
    linker: Linker<CallState>,
    settings: EngineSettings,
    artifacts: ArtifactCache,
    loaded: Mutex<HashMap<ContentHash, Arc<LoadedComponent>>>,
}

impl Sandbox {
    /// Creates the engine and starts its epoch ticker. Compiled artifacts are cached in
    /// `artifact_dir` when given.
    pub fn new(settings: EngineSettings, artifact_dir: Option<PathBuf>) -> Result<Sandbox, SandboxError> {
        let engine_err = |e: wasmtime::Error| SandboxError::Engine(format!("{e:#}"));
        // Threads and shared memories are not compiled into this host at all (wasmtime's
        // `threads` feature is off), which is stronger than turning them off here.
        let mut config = Config::new();
        config
            .consume_fuel(settings.fuel_metering)
            .epoch_interruption(settings.epoch_interruption)
            .cranelift_nan_canonicalization(true)
            .relaxed_simd_deterministic(true)
            .concurrency_support(false)
            .max_wasm_stack(settings.max_wasm_stack);
        let mut pool = PoolingAllocationConfig::default();
        let slots = settings.max_concurrent_calls;
        pool.total_component_instances(slots)
            .total_core_instances(slots * 8)
            .total_memories(slots * 4)
            .total_tables(slots * 8)
            .total_stacks(slots)
            .max_memory_size(settings.max_memory_bytes as usize);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(engine_err)?;
        spawn_epoch_ticker(&engine, settings.epoch_tick);

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(engine_err)?;
        // The file system goes through the host's guard: the definitions above are replaced.
        linker.allow_shadowing(true);
        {
            use wasmtime_wasi::p2::bindings::filesystem::{preopens, types};
            types::add_to_linker::<_, guarded_fs::GuardedFsData>(&mut linker, host::guarded_fs).map_err(engine_err)?;
            preopens::add_to_linker::<_, guarded_fs::GuardedFsData>(&mut linker, host::guarded_fs)
                .map_err(engine_err)?;
        }
        linker.allow_shadowing(false);
        bindings::HyperagentCore::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state).map_err(engine_err)?;
        let artifacts = ArtifactCache::new(&engine, artifact_dir);
        Ok(Sandbox { engine, linker, settings, artifacts, loaded: Mutex::new(HashMap::new()) })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// Hex of the engine's compatibility hash: equal values mean compiled artifacts and fuel
    /// figures carry over.
    pub fn engine_fingerprint(&self) -> ContentHash {
        self.artifacts.engine_fingerprint()
    }

    /// Checks and compiles (or loads the cached artifact of) a component.
    pub fn load(&self, wasm: &[u8]) -> Result<Arc<LoadedComponent>, SandboxError> {
        let hash = ContentHash::of(wasm);
        if let Some(loaded) = self.loaded.lock().unwrap_or_else(|p| p.into_inner()).get(&hash) {
            return Ok(loaded.clone());
        }
        if !is_component(wasm) {
            return Err(SandboxError::NotAComponent);
        }
        let component = self.artifacts.component(&self.engine, &hash, wasm)?;
        let imports = imports::import_names(&self.engine, &component);
        imports::check(&imports)?;
        let instance_pre =
            self.linker.instantiate_pre(&component).map_err(|e| SandboxError::WrongWorld(format!("{e:#}")))?;
        let selector = ParentSelectorPre::new(instance_pre.clone()).ok();
        let pre = HyperagentCorePre::new(instance_pre).map_err(|e| SandboxError::WrongWorld(format!("{e:#}")))?;
        let loaded = Arc::new(LoadedComponent { hash, imports, pre, selector });
        self.loaded.lock().unwrap_or_else(|p| p.into_inner()).insert(hash, loaded.clone());
        Ok(loaded)
    }

    /// Runs one export in a fresh store. Errors are setup failures (a bad grant, a cap above the
    /// engine's maximum); everything the guest does ends in a [`CallReport`].
    pub async fn call(
        &self,
        component: &LoadedComponent,
        input: &CallInput,
        limits: &CallLimits,
        grants: &Grants,
    ) -> Result<CallReport, SandboxError> {
        if limits.memory_bytes > self.settings.max_memory_bytes {
            return Err(SandboxError::MemoryCapTooLarge {
                asked: limits.memory_bytes,
                max: self.settings.max_memory_bytes,
            });
        }
        let writable: Vec<PathBuf> = grants.preopens.iter().filter(|p| p.writable).map(|p| p.host.clone()).collect();
        let held = match quota::measure(writable.clone()).await {
            Ok(held) => held,
            Err(reason) => return Ok(CallReport::refused(Outcome::FileLimit { reason }, limits)),
        };
        let meter = Arc::new(IoMeter::new(limits.host_io_bytes, limits.disk_bytes, held));
        let mut store = self.new_store(limits, grants, &meter)?;
        let started = Instant::now();
        let budget = Budget {
            fuel: limits.fuel.0,
            memory_bytes: limits.memory_bytes,
            llm_calls: if grants.llm.is_some() { limits.llm_calls } else { 0 },
        };
        // The epoch deadline interrupts guest code; the timeout also covers a host call that
        // blocks (an LLM request, say), which epochs cannot interrupt.
        let backstop =
            if self.settings.epoch_interruption { limits.deadline + Duration::from_secs(1) } else { limits.deadline };
        let export =
            tokio::time::timeout(backstop, run_export(&mut store, component, input, grants.seed, budget, limits));
        let ended = export.await;
        // The directories are measured once more, which also checks their shape.
        let after = if writable.is_empty() { Ok(0) } else { quota::measure(writable).await };
        let wall_time_us = started.elapsed().as_micros() as u64;

        let fuel_left = if self.settings.fuel_metering { store.get_fuel().unwrap_or(0) } else { limits.fuel.0 };
        let state = store.data();
        let (outcome, output) = match (meter.stopped(), ended) {
            (Some(stop), _) => (stop_outcome(stop), None),
            (None, Err(_elapsed)) => (Outcome::Deadline, None),
            (None, Ok(Ok((outcome, output)))) => (outcome, output),
            (None, Ok(Err(error))) => (classify_trap(&error, &state.limiter), None),
        };
        let (outcome, output) = match after {
            _ if meter.stopped().is_some() => (outcome, output),
            Err(reason) => (Outcome::FileLimit { reason }, None),
            Ok(used) if used > limits.disk_bytes => {
                (Outcome::DiskQuota { used_bytes: used, limit_bytes: limits.disk_bytes }, None)
            }
            Ok(_) => (outcome, output),
        };
        let (stdout, stderr) = (state.stdout.captured(), state.stderr.captured());
        Ok(CallReport {
            outcome,
            output,
            fuel_budget: limits.fuel.0,
            fuel_consumed: limits.fuel.0.saturating_sub(fuel_left),
            peak_memory_bytes: state.limiter.peak_bytes as u64,
            memory_limit_bytes: limits.memory_bytes,
            stdout,
            stderr,
            logs: state.logs.clone(),
            logs_dropped: state.logs_dropped,
            import_calls: state.import_calls,
            llm_calls: state.llm_calls,
            tools: state.tools.clone(),
            wall_time_us,
        })
    }
}

impl Sandbox {
    /// A fresh store for one call: WASI with nothing but the grants, the limits, and the call hook
    /// that charges fuel for the bytes host calls moved.
    fn new_store(
        &self,
        limits: &CallLimits,
        grants: &Grants,
        meter: &Arc<IoMeter>,
    ) -> Result<Store<CallState>, SandboxError> {
        let stdout = BoundedCapture::metered(limits.stdout_bytes, meter.clone());
        let stderr = BoundedCapture::metered(limits.stderr_bytes, meter.clone());
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .wall_clock(VirtualWallClock::default())
            .monotonic_clock(VirtualMonotonicClock::default())
            .secure_random(SeededRng::new(grants.seed, "random"))
            .insecure_random(SeededRng::new(grants.seed, "insecure"))
            .insecure_random_seed(SeededRng::seed_u128(grants.seed))
            .max_random_size(1 << 20)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        for preopen in &grants.preopens {
            let perms = if preopen.writable { FsPerms::ReadWrite } else { FsPerms::ReadOnly };
            wasi.preopened_dir(&preopen.host, &preopen.guest, perms).map_err(|e| SandboxError::Preopen {
                host: preopen.host.clone(),
                guest: preopen.guest.clone(),
                reason: format!("{e:#}"),
            })?;
        }
        let state = CallState {
            parts: WasiParts { wasi: wasi.build(), table: ResourceTable::new() },
            fs_guard: guarded_fs::FsGuard::new(meter.clone()),
            meter: meter.clone(),
            stdout,
            stderr,
            limiter: MemoryLimiter::new(limits.memory_bytes as usize),
            limits: limits.clone(),
            llm: grants.llm.clone(),
            workbench: grants.workbench.clone(),
            task_tools: grants.task_tools.clone(),
            logs: Vec::new(),
            logs_dropped: 0,
            import_calls: 0,
            llm_calls: 0,
            tools: Vec::new(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.set_hostcall_fuel(limits.hostcall_bytes);
        if self.settings.fuel_metering {
            // A fresh store's fuel and yield interval cannot fail to set on an engine with fuel
            // enabled; treat failure as a host bug.
            store.set_fuel(limits.fuel.0).expect("fuel is enabled on this engine");
            store.fuel_async_yield_interval(Some(FUEL_YIELD_INTERVAL)).expect("fuel is enabled on this engine");
            store.call_hook(charge_moved_bytes);
        }
        if self.settings.epoch_interruption {
            let tick_ms = self.settings.epoch_tick.as_millis().max(1) as u64;
            store.set_epoch_deadline(limits.deadline.as_millis() as u64 / tick_ms + 1);
            store.epoch_deadline_trap();
        }
        Ok(store)
    }
}

/// Charges the fuel owed for bytes moved when a host call returns to the guest; a guest that
/// cannot pay runs out of fuel there.
fn charge_moved_bytes(mut store: wasmtime::StoreContextMut<'_, CallState>, hook: CallHook) -> wasmtime::Result<()> {
    if !matches!(hook, CallHook::ReturningFromHost) {
        return Ok(());
    }
    let debt = store.data().meter.take_fuel_debt();
    if debt == 0 {
        return Ok(());
    }
    let fuel = store.get_fuel()?;
    store.set_fuel(fuel.saturating_sub(debt))?;
    if debt > fuel {
        return Err(Trap::OutOfFuel.into());
    }
    Ok(())
}

fn stop_outcome(stop: MeterStop) -> Outcome {
    match stop {
        MeterStop::HostBytes { moved, limit } => Outcome::HostIo { moved_bytes: moved, limit_bytes: limit },
        MeterStop::Disk { used, limit } => Outcome::DiskQuota { used_bytes: used, limit_bytes: limit },
        MeterStop::Files { reason } => Outcome::FileLimit { reason },
    }
}

/// Instantiates and calls the export; maps the guest's answer to an outcome and bounded output.
async fn run_export(
    store: &mut Store<CallState>,
    component: &LoadedComponent,
    input: &CallInput,
    seed: u64,
    budget: Budget,
    limits: &CallLimits,
) -> wasmtime::Result<(Outcome, Option<String>)> {
    if let CallInput::Select(select) = input {
        return run_select(store, component, select, seed, limits).await;
    }
    let agent = component.pre.instantiate_async(&mut *store).await?;
    let answer = match input {
        CallInput::Select(_) => unreachable!("handled above"),
        CallInput::Task(task) => {
            let request = TaskRequest {
                domain: task.domain.clone(),
                task_id: task.task_id.clone(),
                payload: task.payload.clone(),
            };
            agent.call_task(&mut *store, &request).await?
        }
        CallInput::Meta(meta) => {
            let request = MetaRequest {
                iterations_left: meta.iterations_left,
                seed,
                budget,
                repo_dir: meta.repo_dir.clone(),
                history_dir: meta.history_dir.clone(),
            };
            agent.call_meta(&mut *store, &request).await?.map(|mut report| {
                truncate_utf8(&mut report.summary, MAX_SUMMARY_BYTES);
                truncate_utf8(&mut report.rationale, MAX_RATIONALE_BYTES);
                serde_json::json!({"summary": report.summary, "rationale": report.rationale}).to_string()
            })
        }
    };
    Ok(match answer {
        Ok(output) if output.len() > limits.output_bytes => (
            Outcome::InvalidOutput {
                reason: format!("the output is {} bytes; the limit is {}", output.len(), limits.output_bytes),
            },
            None,
        ),
        Ok(output) => match hyperagent_domains::json::parse_strict(&output) {
            Ok(_) => (Outcome::Ok, Some(output)),
            Err(e) => (Outcome::InvalidOutput { reason: format!("the output is refused: {e}") }, None),
        },
        Err(AgentError::InvalidRequest(mut message)) => {
            truncate_utf8(&mut message, MAX_TRAP_MESSAGE_BYTES);
            (Outcome::GuestError { error: "invalid-request".into(), message }, None)
        }
        Err(AgentError::Failed(mut message)) => {
            truncate_utf8(&mut message, MAX_TRAP_MESSAGE_BYTES);
            (Outcome::GuestError { error: "failed".into(), message }, None)
        }
    })
}

/// Instantiates the component as a parent selector and asks it; the answer is the JSON array of
/// the ids it returned (checked against the archive by the caller, never here).
async fn run_select(
    store: &mut Store<CallState>,
    component: &LoadedComponent,
    select: &SelectInput,
    seed: u64,
    limits: &CallLimits,
) -> wasmtime::Result<(Outcome, Option<String>)> {
    use selector_bindings::hyperagent::agent::types::SelectRequest;
    let Some(pre) = &component.selector else {
        let message = "the component exports no parent selector (`select`)".to_owned();
        return Ok((Outcome::GuestError { error: "invalid-request".into(), message }, None));
    };
    let selector = pre.instantiate_async(&mut *store).await?;
    let request = SelectRequest { archive: select.archive.clone(), count: select.count, seed };
    let answer = selector.call_select(&mut *store, &request).await?;
    Ok(match answer {
        Ok(ids) => {
            let output = serde_json::to_string(&ids).expect("strings serialise");
            if output.len() > limits.output_bytes {
                let reason = format!("the output is {} bytes; the limit is {}", output.len(), limits.output_bytes);
                (Outcome::InvalidOutput { reason }, None)
            } else {
                (Outcome::Ok, Some(output))
            }
        }
        Err(mut message) => {
            truncate_utf8(&mut message, MAX_TRAP_MESSAGE_BYTES);
            (Outcome::GuestError { error: "failed".into(), message }, None)
        }
    })
}

fn classify_trap(error: &wasmtime::Error, limiter: &MemoryLimiter) -> Outcome {
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => return Outcome::OutOfFuel,
        Some(Trap::Interrupt) => return Outcome::Deadline,
        Some(Trap::StackOverflow) => return Outcome::StackOverflow,
        _ => {}
    }
    if error.downcast_ref::<host::RecordedDeadline>().is_some() {
        return Outcome::Deadline;
    }
    if let Some(requested) = limiter.denied_bytes {
        return Outcome::OutOfMemory { requested_bytes: requested as u64, limit_bytes: limiter.cap_bytes as u64 };
    }
    // The cause first (a wasm backtrace can be long and would push it past the bound), then as
    // much of the context as fits.
    let mut message = error.root_cause().to_string();
    let context = format!("{error:#}");
    if context != message {
        message = format!("{message}\n{context}");
    }
    truncate_utf8(&mut message, MAX_TRAP_MESSAGE_BYTES);
    Outcome::Trap { message }
}

/// A component starts with the preamble `\0asm` then layer 1 (version 0x0d, layer 0x01); a core
/// module has version 1, layer 0.
fn is_component(wasm: &[u8]) -> bool {
    wasm.len() >= 8 && wasm[..4] == *b"\0asm" && wasm[6..8] == [0x01, 0x00]
}

/// Advances the engine's epoch every `tick` until the engine is dropped (every engine of the host
/// that runs guest code: the sandbox's, the reward engine's, the test runner's).
pub fn spawn_epoch_ticker(engine: &Engine, tick: Duration) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("hyperagent-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(tick);
            }
        })
        .expect("spawning the epoch thread");
}
