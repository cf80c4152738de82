//! The tests' working directory. Some exercises' tests read the crate's `Cargo.toml`, and some
//! write files and read them back (grep), so each test run gets a fresh writable directory that
//! holds the exercise's `Cargo.toml` alone, never the tests or the solution. WASI has no disk
//! quota, so the runner measures the directory at every epoch tick and ends a run that holds more
//! than its limit (see [`Usage`]); a single write is bounded by the run's memory cap besides.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

/// 2000-01-01: the times of the files a run starts with, the same for every run.
const FIXED_TIME_SECS: u64 = 946_684_800;
/// Deepest directory measured; anything deeper counts as over the limit.
const MAX_DEPTH: usize = 16;

/// A directory removed when dropped.
#[derive(Debug)]
pub struct WorkDir(PathBuf);

impl WorkDir {
    /// A new empty directory under the system's temporary directory.
    fn create(label: &str) -> io::Result<WorkDir> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = WorkDir(std::env::temp_dir().join(format!("hyperagent-{label}-{}-{n}", std::process::id())));
        crate::tree_walk::remove_tree(dir.path())?;
        fs::create_dir_all(dir.path())?;
        Ok(dir)
    }

    /// A directory holding `files` (name → contents), with fixed times.
    pub fn with_files(label: &str, files: &[(&str, &[u8])]) -> io::Result<WorkDir> {
        let dir = WorkDir::create(label)?;
        for (name, contents) in files {
            let path = dir.path().join(name);
            fs::write(&path, contents)?;
            fs::File::options().write(true).open(&path)?.set_modified(fixed_time())?;
        }
        fs::File::open(dir.path())?.set_modified(fixed_time())?;
        Ok(dir)
    }

    /// A fresh copy of `template`'s regular files (not its subdirectories), with fixed times.
    pub fn copy_of(template: &Path) -> io::Result<WorkDir> {
        let mut files = Vec::new();
        for entry in fs::read_dir(template)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                files.push((entry.file_name().to_string_lossy().into_owned(), fs::read(entry.path())?));
            }
        }
        let named: Vec<(&str, &[u8])> = files.iter().map(|(n, c)| (n.as_str(), c.as_slice())).collect();
        WorkDir::with_files("test-run", &named)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = crate::tree_walk::remove_tree(&self.0);
    }
}

fn fixed_time() -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_secs(FIXED_TIME_SECS)
}

/// What a directory holds: bytes of its files and entries, counted without following links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub bytes: u64,
    pub entries: u64,
}

impl Usage {
    /// Measures `dir`, stopping as soon as it holds more than `max_entries` (a guest that made a
    /// great many files is not walked in full at every tick); a directory deeper than
    /// [`MAX_DEPTH`] or unreadable counts as `u64::MAX`.
    pub fn of(dir: &Path, max_entries: u64) -> Usage {
        let mut usage = Usage::default();
        if add(dir, 0, max_entries, &mut usage).is_err() {
            usage = Usage { bytes: u64::MAX, entries: u64::MAX };
        }
        usage
    }
}

fn add(dir: &Path, depth: usize, max_entries: u64, usage: &mut Usage) -> io::Result<()> {
    if depth > MAX_DEPTH {
        return Err(io::Error::other("too deep"));
    }
    for entry in fs::read_dir(dir)? {
        if usage.entries > max_entries {
            return Ok(());
        }
        let entry = entry?;
        let meta = entry.metadata()?;
        usage.entries += 1;
        usage.bytes = usage.bytes.saturating_add(meta.len());
        if meta.is_dir() {
            add(&entry.path(), depth + 1, max_entries, usage)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_holds_the_templates_files_and_is_measured() {
        let template = WorkDir::with_files("template", &[("Cargo.toml", b"[package]\n")]).unwrap();
        let copy = WorkDir::copy_of(template.path()).unwrap();
        assert_eq!(fs::read(copy.path().join("Cargo.toml")).unwrap(), b"[package]\n");
        fs::create_dir(copy.path().join("d")).unwrap();
        fs::write(copy.path().join("d/f"), [0u8; 100]).unwrap();
        let usage = Usage::of(copy.path(), 100);
        assert_eq!(usage.entries, 3);
        // The walk stops once past the limit.
        assert_eq!(Usage::of(copy.path(), 1).entries, 2);
        assert!(usage.bytes >= 110, "{usage:?}");
        let path = copy.path().to_owned();
        drop(copy);
        assert!(!path.exists());
    }
}
