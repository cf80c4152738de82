//! The per-call meter of host work that fuel alone does not see: bytes a guest moves through host
//! calls (log lines, LLM requests and answers, stdout and stderr, file reads and writes), and the
//! disk its writable directories take.
//!
//! Copying is host work, not guest instructions, so a guest that hands the host 16 MiB per call
//! spends almost no fuel while the host copies gigabytes. The meter turns every byte moved into
//! [`FUEL_PER_HOST_BYTE`] fuel (charged by the store's call hook when the host call returns) and
//! caps the total per call, so such a guest ends the same deterministic way on every machine.
//!
//! The disk side is enforced where the writes happen: every byte written, every entry created, is
//! charged before it reaches the file system, and nothing is refunded (a deleted file that is
//! still open keeps its blocks). So the writable directories can never hold more than the quota,
//! whatever the guest does, and the call that tries ends with the same outcome on every machine.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Fuel charged per byte a host call moves.
pub const FUEL_PER_HOST_BYTE: u64 = 1;

/// The first limit a call ran into, if any. Kept so that the trap the guest then sees is reported
/// as what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeterStop {
    /// More bytes moved through host calls than the call's budget.
    HostBytes { moved: u64, limit: u64 },
    /// A write or a new entry would take the writable directories past the disk quota.
    Disk { used: u64, limit: u64 },
    /// A rule about files was broken (open descriptors, nesting, an unmeasurable tree).
    Files { reason: String },
}

impl std::fmt::Display for MeterStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MeterStop::HostBytes { moved, limit } => {
                write!(f, "host calls moved {moved} bytes; the limit per call is {limit}")
            }
            MeterStop::Disk { used, limit } => write!(f, "disk quota: {used} bytes needed, limit {limit}"),
            MeterStop::Files { reason } => f.write_str(reason),
        }
    }
}

pub struct IoMeter {
    moved: AtomicU64,
    moved_limit: u64,
    fuel_debt: AtomicU64,
    disk_used: AtomicU64,
    disk_limit: u64,
    stop: Mutex<Option<MeterStop>>,
}

impl IoMeter {
    /// A meter for one call: `moved_limit` bytes through host calls, `disk_limit` bytes in the
    /// writable directories, of which `disk_used` are already taken when the call starts.
    pub fn new(moved_limit: u64, disk_limit: u64, disk_used: u64) -> IoMeter {
        IoMeter {
            moved: AtomicU64::new(0),
            moved_limit,
            fuel_debt: AtomicU64::new(0),
            disk_used: AtomicU64::new(disk_used),
            disk_limit,
            stop: Mutex::new(None),
        }
    }

    /// Counts `bytes` moved by a host call; fails once the call's budget is spent.
    pub fn moved(&self, bytes: u64) -> Result<(), MeterStop> {
        self.fuel_debt.fetch_add(bytes.saturating_mul(FUEL_PER_HOST_BYTE), Ordering::Relaxed);
        let moved = self.moved.fetch_add(bytes, Ordering::Relaxed).saturating_add(bytes);
        if moved > self.moved_limit {
            return Err(self.stop_with(MeterStop::HostBytes { moved, limit: self.moved_limit }));
        }
        Ok(())
    }

    /// Charges `bytes` of disk before they are written; fails, writing nothing, past the quota.
    pub fn charge_disk(&self, bytes: u64) -> Result<(), MeterStop> {
        let used = self.disk_used.fetch_add(bytes, Ordering::Relaxed).saturating_add(bytes);
        if used > self.disk_limit {
            return Err(self.stop_with(MeterStop::Disk { used, limit: self.disk_limit }));
        }
        Ok(())
    }

    /// Records a broken file rule and returns it.
    pub fn files(&self, reason: String) -> MeterStop {
        self.stop_with(MeterStop::Files { reason })
    }

    /// Fuel owed for bytes moved since the last call; the debt is cleared.
    pub fn take_fuel_debt(&self) -> u64 {
        self.fuel_debt.swap(0, Ordering::Relaxed)
    }

    pub fn moved_bytes(&self) -> u64 {
        self.moved.load(Ordering::Relaxed)
    }

    pub fn disk_used(&self) -> u64 {
        self.disk_used.load(Ordering::Relaxed)
    }

    pub fn disk_limit(&self) -> u64 {
        self.disk_limit
    }

    /// The first limit the call ran into.
    pub fn stopped(&self) -> Option<MeterStop> {
        self.stop.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn stop_with(&self, stop: MeterStop) -> MeterStop {
        let mut first = self.stop.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert_with(|| stop.clone());
        stop
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moved_bytes_owe_fuel_and_stop_past_the_budget() {
        let meter = IoMeter::new(100, 0, 0);
        meter.moved(60).unwrap();
        assert_eq!(meter.take_fuel_debt(), 60 * FUEL_PER_HOST_BYTE);
        assert_eq!(meter.take_fuel_debt(), 0);
        assert_eq!(meter.moved(41), Err(MeterStop::HostBytes { moved: 101, limit: 100 }));
        assert_eq!(meter.stopped(), Some(MeterStop::HostBytes { moved: 101, limit: 100 }));
    }

    #[test]
    fn disk_charges_start_from_what_is_held_and_the_first_stop_is_kept() {
        let meter = IoMeter::new(u64::MAX, 1000, 900);
        meter.charge_disk(100).unwrap();
        assert_eq!(meter.charge_disk(1), Err(MeterStop::Disk { used: 1001, limit: 1000 }));
        let _ = meter.files("later".into());
        assert_eq!(meter.stopped(), Some(MeterStop::Disk { used: 1001, limit: 1000 }));
    }
}
