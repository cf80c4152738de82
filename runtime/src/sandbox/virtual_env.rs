//! The sandbox's view of time and chance: virtual clocks and seeded randomness, so that a call is
//! a pure function of its component, input, seed and granted files.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

/// The instant every call's wall clock starts at: 2000-01-01T00:00:00Z.
pub const VIRTUAL_EPOCH_SECS: u64 = 946_684_800;

/// How far a virtual clock moves each time it is read. Time advances only when observed, so
/// guests that measure elapsed time see it move, and the same reads see the same values.
pub const CLOCK_STEP: Duration = Duration::from_millis(1);

#[derive(Default)]
pub struct VirtualWallClock {
    reads: AtomicU64,
}

impl HostWallClock for VirtualWallClock {
    fn resolution(&self) -> Duration {
        CLOCK_STEP
    }

    fn now(&self) -> Duration {
        let reads = self.reads.fetch_add(1, Ordering::Relaxed);
        Duration::from_secs(VIRTUAL_EPOCH_SECS) + CLOCK_STEP * reads as u32
    }
}

#[derive(Default)]
pub struct VirtualMonotonicClock {
    reads: AtomicU64,
}

impl HostMonotonicClock for VirtualMonotonicClock {
    fn resolution(&self) -> u64 {
        CLOCK_STEP.as_nanos() as u64
    }

    fn now(&self) -> u64 {
        self.reads.fetch_add(1, Ordering::Relaxed) * CLOCK_STEP.as_nanos() as u64
    }
}

/// A random stream derived from (seed, purpose) with blake3's extendable output: stable across
/// platforms and versions of everything but blake3 itself.
pub struct SeededRng {
    reader: blake3::OutputReader,
}

impl SeededRng {
    pub fn new(seed: u64, purpose: &str) -> SeededRng {
        let mut hasher = blake3::Hasher::new_derive_key("hyperagent sandbox randomness v1");
        hasher.update(&seed.to_le_bytes());
        hasher.update(purpose.as_bytes());
        SeededRng { reader: hasher.finalize_xof() }
    }

    /// A 128-bit value for `wasi:random/insecure-seed` (which seeds Rust's `HashMap`).
    pub fn seed_u128(seed: u64) -> u128 {
        let mut bytes = [0u8; 16];
        SeededRng::new(seed, "insecure-seed").reader.fill(&mut bytes);
        u128::from_le_bytes(bytes)
    }
}

impl rand_core::TryRng for SeededRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut bytes = [0u8; 4];
        self.reader.fill(&mut bytes);
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut bytes = [0u8; 8];
        self.reader.fill(&mut bytes);
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.reader.fill(dst);
        Ok(())
    }
}

/// An engine for guest code run outside the hyperagent world (reward components, exercise test
/// binaries): deterministic (NaNs canonicalised, relaxed SIMD deterministic), fuel-metered,
/// epoch-interruptible (its epoch ticks every `tick`), with a 1 MiB wasm stack.
pub fn bare_engine(tick: Duration) -> Result<wasmtime::Engine, String> {
    let mut config = wasmtime::Config::new();
    config
        .consume_fuel(true)
        .epoch_interruption(true)
        .cranelift_nan_canonicalization(true)
        .relaxed_simd_deterministic(true)
        .max_wasm_stack(1 << 20);
    let engine = wasmtime::Engine::new(&config).map_err(|e| format!("cannot set up an engine: {e:#}"))?;
    super::spawn_epoch_ticker(&engine, tick);
    Ok(engine)
}

/// WASI for such code with nothing granted yet: virtual clocks, randomness from seed 0, no
/// network; the caller adds arguments, pipes or a directory where it grants them.
pub fn bare_wasi() -> wasmtime_wasi::WasiCtxBuilder {
    let mut builder = wasmtime_wasi::WasiCtxBuilder::new();
    builder
        .wall_clock(VirtualWallClock::default())
        .monotonic_clock(VirtualMonotonicClock::default())
        .secure_random(SeededRng::new(0, "random"))
        .insecure_random(SeededRng::new(0, "insecure"))
        .insecure_random_seed(SeededRng::seed_u128(0))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    builder
}
