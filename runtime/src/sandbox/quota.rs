//! The disk quota of a call's writable preopens. WASI has no quota of its own, and a guest can
//! write far more than its fuel suggests (one small buffer, written again and again), so the host
//! measures the writable directories while the call runs and once more when it ends. Every entry
//! counts [`ENTRY_BYTES`] besides its contents, so a million empty files fill the quota too.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// What one directory entry costs against the quota, whatever its size.
pub const ENTRY_BYTES: u64 = 512;
/// How often a running call's directories are measured.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Bytes held under `dirs` (contents plus [`ENTRY_BYTES`] per entry), counting no further once
/// past `stop_after`. Symbolic links are counted, never followed.
pub fn usage(dirs: &[PathBuf], stop_after: u64) -> u64 {
    let mut used = 0;
    for dir in dirs {
        add_usage(dir, &mut used, stop_after);
    }
    used
}

fn add_usage(dir: &Path, used: &mut u64, stop_after: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        if *used > stop_after {
            return;
        }
        // `DirEntry::metadata` does not follow symbolic links.
        let Ok(meta) = entry.metadata() else { continue };
        *used += ENTRY_BYTES;
        if meta.is_dir() {
            add_usage(&entry.path(), used, stop_after);
        } else {
            *used += meta.len();
        }
    }
}

/// [`usage`] on a blocking thread, off the async executor.
pub async fn measure(dirs: Vec<PathBuf>, stop_after: u64) -> u64 {
    tokio::task::spawn_blocking(move || usage(&dirs, stop_after)).await.unwrap_or(0)
}

/// Resolves, with the usage found, once `dirs` hold more than `limit` bytes; never otherwise.
pub async fn exceeded(dirs: Vec<PathBuf>, limit: u64) -> u64 {
    loop {
        tokio::time::sleep(POLL_INTERVAL).await;
        let used = measure(dirs.clone(), limit).await;
        if used > limit {
            return used;
        }
    }
}
