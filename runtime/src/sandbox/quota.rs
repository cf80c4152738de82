//! Measuring a call's writable directories. The quota itself is enforced where the writes happen
//! (see [`super::meter`] and [`super::guarded_fs`]); the host measures the directories before a
//! call, to know what they already hold, and after it, as a second check that also sees their
//! shape. A tree that cannot be measured in full (too deep, unreadable) fails the call: a quota
//! that cannot measure fails closed.

use super::guarded_fs::MAX_NESTING;
use crate::tree_walk;
use std::path::PathBuf;

/// Bytes held under `dirs` (contents plus [`tree_walk::ENTRY_BYTES`] per entry), or why they
/// cannot be measured.
pub fn usage(dirs: &[PathBuf]) -> Result<u64, String> {
    let mut used = 0u64;
    for dir in dirs {
        let usage = tree_walk::usage(dir, MAX_NESTING).map_err(|e| e.to_string())?;
        used = used.saturating_add(usage.bytes);
    }
    Ok(used)
}

/// [`usage`] on a blocking thread, off the async executor.
pub async fn measure(dirs: Vec<PathBuf>) -> Result<u64, String> {
    tokio::task::spawn_blocking(move || usage(&dirs))
        .await
        .unwrap_or_else(|e| Err(format!("the measurement did not finish: {e}")))
}
