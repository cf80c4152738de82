//! The engine that runs reward components: deterministic (NaN canonicalisation, deterministic
//! relaxed SIMD), fuel-metered, epoch-interruptible, and synchronous, since a reward is called
//! from inside a rollout's loop on the optimiser's threads. A reward gets WASI with nothing in
//! it: no directories, no environment, no network, virtual clocks, fixed randomness.

use crate::hash::ContentHash;
use crate::sandbox::imports;
use crate::sandbox::limits::MemoryLimiter;
use hyperagent_robotics::api::{MAX_TERMS, Step};
use hyperagent_robotics::reward::{FailureKind, RewardFailure, RewardRollout, RewardSource};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

mod bindings {
    wasmtime::component::bindgen!({ world: "reward", path: "../robotics/wit" });
}

use bindings::{Observation, RewardPre, StepInput};

/// What one rollout's reward may use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RewardLimits {
    /// Fuel for all the reward's calls in one rollout (instantiation included).
    pub fuel_per_rollout: u64,
    /// Cap on the reward's linear memory, bytes.
    pub memory_bytes: u64,
    /// Wall-clock backstop per rollout; fuel is the budget, this only catches what fuel cannot.
    pub deadline: Duration,
}

impl Default for RewardLimits {
    /// 100 million fuel per rollout (a weighted-terms reward uses about 1% of it over 250 steps),
    /// 64 MiB, 10 s.
    fn default() -> Self {
        RewardLimits { fuel_per_rollout: 100_000_000, memory_bytes: 64 << 20, deadline: Duration::from_secs(10) }
    }
}

/// Longest failure message kept, bytes.
const MAX_MESSAGE_BYTES: usize = 2048;
/// Epoch tick of the deadline.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Components kept compiled, by hash.
const MAX_CACHED_COMPONENTS: usize = 64;

struct RewardState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
}

impl WasiView for RewardState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Compiles and instantiates reward components.
pub struct RewardEngine {
    engine: Engine,
    linker: Arc<Linker<RewardState>>,
    compiled: Mutex<HashMap<ContentHash, Component>>,
}

impl RewardEngine {
    pub fn new() -> Result<RewardEngine, String> {
        let engine =
            crate::sandbox::virtual_env::bare_engine(EPOCH_TICK).map_err(|e| format!("the reward engine: {e}"))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| format!("cannot link WASI: {e:#}"))?;
        Ok(RewardEngine { engine, linker: Arc::new(linker), compiled: Mutex::new(HashMap::new()) })
    }

    /// Checks and compiles a reward component and reads its term names (in a first instance,
    /// under the same limits as a rollout).
    pub fn load(&self, wasm: &[u8], limits: RewardLimits) -> Result<WasmReward, RewardFailure> {
        let start = |message: String| RewardFailure::new(FailureKind::Start, bounded(message));
        let component = self.component(wasm).map_err(start)?;
        let names = imports::import_names(&self.engine, &component);
        imports::check(&names).map_err(|e| start(e.to_string()))?;
        let pre = self.linker.instantiate_pre(&component).map_err(|e| start(format!("{e:#}")))?;
        let pre = RewardPre::new(pre).map_err(|e| start(format!("not a reward component: {e:#}")))?;
        let mut reward = WasmReward { engine: self.engine.clone(), pre, limits, terms: Vec::new() };
        let (mut store, instance) = reward.instantiate()?;
        let terms = instance.call_terms(&mut store).map_err(|e| classify(&e, &store))?;
        if terms.is_empty() || terms.len() > MAX_TERMS {
            return Err(start(format!("the reward has {} terms; it needs 1 to {MAX_TERMS}", terms.len())));
        }
        reward.terms = terms.into_iter().map(|t| bounded(t.chars().take(64).collect())).collect();
        Ok(reward)
    }

    fn component(&self, wasm: &[u8]) -> Result<Component, String> {
        let hash = ContentHash::of(wasm);
        let mut compiled = self.compiled.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(component) = compiled.get(&hash) {
            return Ok(component.clone());
        }
        let component = Component::new(&self.engine, wasm).map_err(|e| format!("not a valid component: {e:#}"))?;
        if compiled.len() >= MAX_CACHED_COMPONENTS {
            compiled.clear();
        }
        compiled.insert(hash, component.clone());
        Ok(component)
    }
}

/// A loaded reward component: starts one fresh instance per rollout.
pub struct WasmReward {
    engine: Engine,
    pre: RewardPre<RewardState>,
    limits: RewardLimits,
    terms: Vec<String>,
}

impl WasmReward {
    fn instantiate(&self) -> Result<(Store<RewardState>, bindings::Reward), RewardFailure> {
        let wasi = crate::sandbox::virtual_env::bare_wasi().build();
        let state = RewardState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(self.limits.memory_bytes as usize),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.set_fuel(self.limits.fuel_per_rollout).expect("fuel is enabled on the reward engine");
        let ticks = self.limits.deadline.as_millis() as u64 / EPOCH_TICK.as_millis() as u64 + 1;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        let instance = self.pre.instantiate(&mut store).map_err(|e| classify(&e, &store))?;
        Ok((store, instance))
    }

    /// Fuel a rollout may use.
    pub fn limits(&self) -> RewardLimits {
        self.limits
    }
}

impl RewardSource for WasmReward {
    fn term_names(&self) -> Vec<String> {
        self.terms.clone()
    }

    fn start(&self) -> Result<Box<dyn RewardRollout + '_>, RewardFailure> {
        let (store, instance) = self.instantiate()?;
        Ok(Box::new(WasmRollout { store, instance, terms: self.terms.len() }))
    }
}

struct WasmRollout {
    store: Store<RewardState>,
    instance: bindings::Reward,
    terms: usize,
}

impl WasmRollout {
    /// Fuel left in this rollout.
    fn fuel_left(&self) -> u64 {
        self.store.get_fuel().unwrap_or(0)
    }
}

impl RewardRollout for WasmRollout {
    fn step(&mut self, step: &Step, terms: &mut [f64]) -> Result<(), RewardFailure> {
        let input = step_input(step);
        let values = self.instance.call_step(&mut self.store, &input).map_err(|e| classify(&e, &self.store))?;
        if values.len() != self.terms {
            let message = format!("{} values for {} terms (fuel left {})", values.len(), self.terms, self.fuel_left());
            return Err(RewardFailure::new(FailureKind::BadOutput, message));
        }
        terms.copy_from_slice(&values);
        Ok(())
    }
}

fn step_input(step: &Step) -> StepInput {
    let o = &step.observation;
    let triple = |v: [f64; 3]| (v[0], v[1], v[2]);
    StepInput {
        observation: Observation {
            base_position: triple(o.base_position),
            base_linear_velocity: triple(o.base_linear_velocity),
            base_angular_velocity: triple(o.base_angular_velocity),
            projected_gravity: triple(o.projected_gravity),
            roll: o.roll,
            pitch: o.pitch,
            joint_positions: o.joint_positions.to_vec(),
            joint_velocities: o.joint_velocities.to_vec(),
            foot_contacts: o.foot_contacts.to_vec(),
            foot_heights: o.foot_heights.to_vec(),
        },
        action: step.action.to_vec(),
        previous_action: step.previous_action.to_vec(),
        forward_speed: step.command.forward_speed,
        step: step.step,
        dt: step.dt,
    }
}

/// What a failed call means for the rollout.
fn classify(error: &wasmtime::Error, store: &Store<RewardState>) -> RewardFailure {
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => {
            return RewardFailure::new(FailureKind::OutOfFuel, "the rollout's fuel ran out");
        }
        Some(Trap::Interrupt) => return RewardFailure::new(FailureKind::Deadline, "the rollout's deadline passed"),
        _ => {}
    }
    let limiter = &store.data().limiter;
    if let Some(requested) = limiter.denied_bytes {
        let message = format!("asked for {requested} bytes of memory; the cap is {}", limiter.cap_bytes);
        return RewardFailure::new(FailureKind::OutOfMemory, message);
    }
    RewardFailure::new(FailureKind::Trap, bounded(format!("{:#}", error)))
}

fn bounded(mut text: String) -> String {
    if text.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}
