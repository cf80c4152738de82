//! The hyperagent's own source, as the meta agent sees it under `/repo`.
//!
//! What is left in the directory when `meta` returns becomes the child's source. The host decides
//! what is allowed (only `src/**/*.rs` and small plain-text notes may change); these helpers keep
//! an agent from producing paths the host would reject anyway.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// A view of the source tree rooted at a directory.
#[derive(Debug, Clone)]
pub struct Repo {
    root: PathBuf,
}

impl Repo {
    pub fn open(root: impl Into<PathBuf>) -> Repo {
        Repo { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every regular file, as sorted `/`-separated paths relative to the root.
    pub fn files(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        walk(&self.root, "", &mut out)?;
        out.sort();
        Ok(out)
    }

    pub fn read(&self, path: &str) -> io::Result<String> {
        fs::read_to_string(self.resolve(path)?)
    }

    /// Writes a file, creating parent directories. Writes go to a temporary file first and are
    /// renamed into place, so a trap in the middle never leaves a half-written source file.
    pub fn write(&self, path: &str, contents: &str) -> io::Result<()> {
        let target = self.resolve(path)?;
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        let temp = target.with_extension("hyperagent-tmp");
        fs::write(&temp, contents)?;
        fs::rename(&temp, &target)
    }

    pub fn remove(&self, path: &str) -> io::Result<()> {
        fs::remove_file(self.resolve(path)?)
    }

    /// Maps a relative path into the tree, refusing absolute paths and `..`.
    fn resolve(&self, path: &str) -> io::Result<PathBuf> {
        check_path(path)?;
        Ok(self.root.join(path))
    }
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let relative = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&entry.path(), &relative, out)?;
        } else if kind.is_file() {
            out.push(relative);
        }
    }
    Ok(())
}

/// Refuses any path but a plain relative one inside the repository (no `..`, `.`, or root).
pub fn check_path(path: &str) -> io::Result<()> {
    let clean = !path.is_empty() && Path::new(path).components().all(|c| matches!(c, Component::Normal(_)));
    if clean {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{path}` is not a plain relative path inside the repository"),
        ))
    }
}
