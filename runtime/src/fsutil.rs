//! File-system helpers the host relies on for durability.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` so that a crash leaves either the old file or the whole new one:
/// write a temporary file in the same directory, fsync it, rename it over the target, fsync the
/// directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let temp = dir.join(format!(".{name}.tmp-{}-{}", std::process::id(), TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)));
    let result = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Flushes a directory's entries (new names, renames) to disk.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The blake3 of a data file, or of a data directory: every regular file under it, by relative
/// path in byte order, each path with its file's blake3 (symbolic links are not followed).
pub fn digest_path(path: &Path) -> io::Result<crate::hash::ContentHash> {
    let meta = fs::symlink_metadata(path)?;
    if !meta.is_dir() {
        return Ok(crate::hash::ContentHash::of(&fs::read(path)?));
    }
    let mut files = Vec::new();
    collect_files(path, "", &mut files)?;
    files.sort();
    let mut hasher = blake3::Hasher::new_derive_key("hyperagent data directory digest v1");
    for (relative, digest) in files {
        hasher.update(relative.as_bytes());
        hasher.update(&[0]);
        hasher.update(digest.as_bytes());
    }
    Ok(crate::hash::ContentHash::from_blake3(hasher.finalize()))
}

fn collect_files(dir: &Path, prefix: &str, out: &mut Vec<(String, crate::hash::ContentHash)>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let relative = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect_files(&entry.path(), &relative, out)?;
        } else if kind.is_file() {
            out.push((relative, crate::hash::ContentHash::of(&fs::read(entry.path())?)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn atomic_write_replaces_whole_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("f.txt");
        super::write_atomic(&path, b"one").unwrap();
        super::write_atomic(&path, b"two!").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two!");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_directory_digest_follows_its_files_and_their_paths_only() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for dir in [a.path(), b.path()] {
            std::fs::create_dir_all(dir.join("x/src")).unwrap();
            std::fs::write(dir.join("x/src/lib.rs"), "fn f() {}").unwrap();
            std::fs::write(dir.join("x/Cargo.toml"), "[package]").unwrap();
        }
        let digest = |dir: &std::path::Path| super::digest_path(dir).unwrap();
        assert_eq!(digest(a.path()), digest(b.path()));
        std::fs::write(b.path().join("x/src/lib.rs"), "fn g() {}").unwrap();
        assert_ne!(digest(a.path()), digest(b.path()));
        std::fs::write(b.path().join("x/src/lib.rs"), "fn f() {}").unwrap();
        std::fs::rename(b.path().join("x/src/lib.rs"), b.path().join("x/src/main.rs")).unwrap();
        assert_ne!(digest(a.path()), digest(b.path()));
        // A file's digest is its blake3, as before directories were digested.
        let file = a.path().join("x/Cargo.toml");
        assert_eq!(digest(&file), crate::hash::ContentHash::of(b"[package]"));
    }
}
