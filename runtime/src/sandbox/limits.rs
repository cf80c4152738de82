//! Per-call limits and the resource limiter that enforces the memory side of them.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Deterministic compute units. One unit is roughly one WebAssembly instruction (wasmtime's
/// default cost table); the cost table is pinned by the wasmtime version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fuel(pub u64);

/// Everything one call may spend. Every field is a hard bound with a test that hits it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallLimits {
    /// Fuel budget; running out ends the call with `out-of-fuel`, deterministically.
    pub fuel: Fuel,
    /// Cap on each linear memory, in bytes.
    pub memory_bytes: u64,
    /// Wall-clock backstop; not deterministic, so a call that hits it is reported as such.
    #[serde(with = "duration_ms")]
    pub deadline: Duration,
    /// Bytes of stdout and of stderr kept (the rest is counted and dropped).
    pub stdout_bytes: usize,
    pub stderr_bytes: usize,
    /// Largest result (task JSON, meta report) the host accepts.
    pub output_bytes: usize,
    /// Log lines kept per call, and bytes kept per line.
    pub log_lines: usize,
    pub log_line_bytes: usize,
    /// Completions the guest may request in this call.
    pub llm_calls: u32,
    /// Calls into host imports (log, llm-complete, environment) before the call is trapped.
    pub import_calls: u64,
    /// Bytes the guest may hand to the host in one import call or result (wasmtime hostcall fuel).
    pub hostcall_bytes: usize,
    /// Bytes the call's writable preopens may hold: what they held when the call started, plus
    /// every byte written and 4 KiB per entry created during it (nothing is refunded), charged
    /// before each write; checked again by measuring the directories when the call ends.
    #[serde(default = "default_disk_bytes")]
    pub disk_bytes: u64,
    /// Bytes the guest may move through host calls in all (log lines, LLM requests and answers,
    /// stdout and stderr, file reads and writes). Each byte also costs fuel.
    #[serde(default = "default_host_io_bytes")]
    pub host_io_bytes: u64,
}

/// The slowest rate a loaded core burns fuel at, by a wide margin: a tight loop burns about 8·10⁸
/// units a second on one core of this project's 2-core machines with other jobs beside it.
pub const SLOWEST_FUEL_PER_SECOND: u64 = 100_000_000;

/// A wall-clock deadline that the fuel, not the machine's load, reaches first: 60 s, or the time
/// `fuel` takes at [`SLOWEST_FUEL_PER_SECOND`] when that is longer. A deadline is the one limit
/// whose outcome is not reproducible, so it must sit past what the fuel buys.
pub fn deadline_past_fuel(fuel: u64) -> Duration {
    Duration::from_secs(60).max(Duration::from_secs(fuel.div_ceil(SLOWEST_FUEL_PER_SECOND)))
}

/// Default of [`CallLimits::disk_bytes`]: 64 MiB.
pub const DEFAULT_DISK_BYTES: u64 = 64 << 20;
/// Default of [`CallLimits::host_io_bytes`]: 256 MiB.
pub const DEFAULT_HOST_IO_BYTES: u64 = 256 << 20;

fn default_disk_bytes() -> u64 {
    DEFAULT_DISK_BYTES
}

fn default_host_io_bytes() -> u64 {
    DEFAULT_HOST_IO_BYTES
}

impl Default for CallLimits {
    fn default() -> Self {
        CallLimits {
            fuel: Fuel(5_000_000_000),
            memory_bytes: 256 << 20,
            deadline: Duration::from_secs(60),
            stdout_bytes: 64 << 10,
            stderr_bytes: 64 << 10,
            output_bytes: 4 << 20,
            log_lines: 1000,
            log_line_bytes: 4096,
            llm_calls: 0,
            import_calls: 100_000,
            hostcall_bytes: 16 << 20,
            disk_bytes: DEFAULT_DISK_BYTES,
            host_io_bytes: DEFAULT_HOST_IO_BYTES,
        }
    }
}

mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// Tracks and caps the memory a store uses. A denied growth is remembered, so that the trap the
/// guest then hits (Rust aborts with `unreachable` on allocation failure) is reported as
/// out-of-memory rather than as an anonymous trap.
pub struct MemoryLimiter {
    pub cap_bytes: usize,
    pub peak_bytes: usize,
    pub denied_bytes: Option<usize>,
}

/// Caps on the number of instances, tables, memories and table elements in one store: a
/// hyperagent component needs a handful of each.
const MAX_INSTANCES: usize = 32;
const MAX_TABLES: usize = 32;
const MAX_MEMORIES: usize = 8;
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl MemoryLimiter {
    pub fn new(cap_bytes: usize) -> MemoryLimiter {
        MemoryLimiter { cap_bytes, peak_bytes: 0, denied_bytes: None }
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.cap_bytes {
            self.denied_bytes = Some(desired);
            return Ok(false);
        }
        self.peak_bytes = self.peak_bytes.max(desired);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_deadline_sits_past_what_the_fuel_buys() {
        assert_eq!(super::deadline_past_fuel(5_000_000_000), Duration::from_secs(60));
        assert_eq!(super::deadline_past_fuel(20_000_000_000), Duration::from_secs(200));
        assert_eq!(super::deadline_past_fuel(u64::MAX), Duration::from_secs(u64::MAX.div_ceil(100_000_000)));
    }

    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn memory_growth_is_capped_and_the_denial_remembered() {
        let mut limiter = MemoryLimiter::new(1 << 20);
        assert!(limiter.memory_growing(0, 64 << 10, None).unwrap());
        assert!(limiter.memory_growing(64 << 10, 1 << 20, None).unwrap());
        assert_eq!((limiter.peak_bytes, limiter.denied_bytes), (1 << 20, None));
        assert!(!limiter.memory_growing(1 << 20, (1 << 20) + 65536, None).unwrap());
        assert_eq!(limiter.denied_bytes, Some((1 << 20) + 65536));
        assert_eq!(limiter.peak_bytes, 1 << 20, "a denied growth does not count as used");
    }

    #[test]
    fn tables_and_instance_counts_are_capped() {
        let mut limiter = MemoryLimiter::new(1 << 20);
        assert!(limiter.table_growing(0, MAX_TABLE_ELEMENTS, None).unwrap());
        assert!(!limiter.table_growing(0, MAX_TABLE_ELEMENTS + 1, None).unwrap());
        assert_eq!(
            (limiter.instances(), limiter.tables(), limiter.memories()),
            (MAX_INSTANCES, MAX_TABLES, MAX_MEMORIES)
        );
    }
}
