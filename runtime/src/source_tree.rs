//! Source trees: the files of a hyperagent, in memory, with validated relative paths.
//!
//! Reading a directory into a [`SourceTree`] is where the host first touches guest-written files,
//! so it enforces the structural rules every later step relies on: regular files only (no
//! symlinks, devices or sockets), UTF-8 paths of a restricted alphabet, and bounds on the number
//! and size of files.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Bounds on a tree read from disk.
#[derive(Debug, Clone, Copy)]
pub struct TreeLimits {
    pub max_files: usize,
    pub max_file_bytes: u64,
    pub max_total_bytes: u64,
    pub max_depth: usize,
}

impl Default for TreeLimits {
    fn default() -> Self {
        TreeLimits { max_files: 512, max_file_bytes: 512 * 1024, max_total_bytes: 8 * 1024 * 1024, max_depth: 12 }
    }
}

/// A relative path inside a tree: `/`-separated, no empty, `.` or `..` components, only
/// `[A-Za-z0-9._+-]` in names. Anything a path like this names stays inside its root.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RelPath(String);

pub const MAX_PATH_BYTES: usize = 512;
const MAX_COMPONENT_BYTES: usize = 128;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{path}` is not an allowed relative path: {reason}")]
pub struct BadPath {
    pub path: String,
    pub reason: &'static str,
}

impl RelPath {
    pub fn new(path: &str) -> Result<RelPath, BadPath> {
        let bad = |reason| Err(BadPath { path: path.chars().take(200).collect(), reason });
        if path.is_empty() {
            return bad("it is empty");
        }
        if path.len() > MAX_PATH_BYTES {
            return bad("it is too long");
        }
        if path.starts_with('/') {
            return bad("it is absolute");
        }
        for component in path.split('/') {
            match component {
                "" => return bad("it has an empty component"),
                "." | ".." => return bad("it has a `.` or `..` component"),
                _ if component.len() > MAX_COMPONENT_BYTES => return bad("a component is too long"),
                _ => {}
            }
            let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+');
            if !component.chars().all(allowed) {
                return bad("it has a character outside [A-Za-z0-9._+-]");
            }
        }
        Ok(RelPath(path.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn depth(&self) -> usize {
        self.0.split('/').count()
    }

    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    pub fn extension(&self) -> Option<&str> {
        let name = self.file_name();
        name.rfind('.').filter(|i| *i > 0).map(|i| &name[i + 1..])
    }

    /// The path under `root`. Safe by construction: no component can climb out.
    pub fn under(&self, root: &Path) -> PathBuf {
        self.0.split('/').fold(root.to_path_buf(), |acc, c| acc.join(c))
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// Whether a file is executable. Trees hold nothing else than regular files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileMode {
    Regular,
    Executable,
}

impl FileMode {
    pub fn octal(self) -> &'static str {
        match self {
            FileMode::Regular => "100644",
            FileMode::Executable => "100755",
        }
    }

    pub fn from_octal(text: &str) -> Option<FileMode> {
        match text {
            "100644" => Some(FileMode::Regular),
            "100755" => Some(FileMode::Executable),
            _ => None,
        }
    }

    pub fn unix_permissions(self) -> u32 {
        match self {
            FileMode::Regular => 0o644,
            FileMode::Executable => 0o755,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    pub mode: FileMode,
    pub bytes: Vec<u8>,
}

/// The files of a tree, sorted by path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceTree {
    pub files: BTreeMap<RelPath, TreeFile>,
}

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("`{0}` is a symbolic link; source trees may hold regular files only")]
    Symlink(String),
    #[error("`{0}` is not a regular file or directory; source trees may hold regular files only")]
    SpecialFile(String),
    #[error("a file name under `{0}` is not valid UTF-8")]
    NonUtf8Name(String),
    #[error(transparent)]
    BadPath(#[from] BadPath),
    #[error("`{path}` is {bytes} bytes; the limit per file is {limit}")]
    FileTooLarge { path: String, bytes: u64, limit: u64 },
    #[error("the tree holds more than {0} files")]
    TooManyFiles(usize),
    #[error("the tree holds more than {0} bytes")]
    TooLarge(u64),
    #[error("`{0}` is nested deeper than {1} directories")]
    TooDeep(String, usize),
    #[error("cannot read `{path}`: {source}")]
    Io { path: String, source: io::Error },
}

impl SourceTree {
    /// Reads every file under `root`, enforcing `limits`. Symlinks are refused, never followed.
    pub fn read_dir(root: &Path, limits: &TreeLimits) -> Result<SourceTree, TreeError> {
        let mut tree = SourceTree::default();
        let mut total = 0u64;
        read_into(root, "", 0, limits, &mut tree, &mut total)?;
        Ok(tree)
    }

    pub fn insert(&mut self, path: &str, bytes: impl Into<Vec<u8>>) -> Result<(), BadPath> {
        let path = RelPath::new(path)?;
        self.files.insert(path, TreeFile { mode: FileMode::Regular, bytes: bytes.into() });
        Ok(())
    }

    pub fn get(&self, path: &str) -> Option<&TreeFile> {
        RelPath::new(path).ok().and_then(|p| self.files.get(&p))
    }

    pub fn total_bytes(&self) -> u64 {
        self.files.values().map(|f| f.bytes.len() as u64).sum()
    }

    /// Writes the tree into `dir`, which must be empty or absent. Files are created with
    /// `create_new`, so an existing entry (a planted symlink, say) is an error, never followed.
    pub fn write_to(&self, dir: &Path) -> io::Result<()> {
        ensure_empty_dir(dir)?;
        for (path, file) in &self.files {
            write_new_file(&path.under(dir), &file.bytes, file.mode)?;
        }
        Ok(())
    }
}

/// Creates `dir` if needed and checks that it is an empty real directory.
pub fn ensure_empty_dir(dir: &Path) -> io::Result<()> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_symlink() || !meta.is_dir() => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a directory", dir.display()),
        )),
        Ok(_) => {
            if fs::read_dir(dir)?.next().is_some() {
                Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} is not empty", dir.display())))
            } else {
                Ok(())
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir_all(dir),
        Err(e) => Err(e),
    }
}

/// Creates a new file (and its missing parent directories) without following any existing entry.
pub fn write_new_file(path: &Path, bytes: &[u8], mode: FileMode) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(mode.unix_permissions()).open(path)?;
    file.write_all(bytes)?;
    file.set_permissions(fs::Permissions::from_mode(mode.unix_permissions()))
}

fn read_into(
    dir: &Path,
    prefix: &str,
    depth: usize,
    limits: &TreeLimits,
    tree: &mut SourceTree,
    total: &mut u64,
) -> Result<(), TreeError> {
    let io_err = |path: &Path| {
        let path = path.display().to_string();
        move |source| TreeError::Io { path, source }
    };
    let mut entries: Vec<fs::DirEntry> =
        fs::read_dir(dir).map_err(io_err(dir))?.collect::<Result<_, _>>().map_err(io_err(dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| TreeError::NonUtf8Name(if prefix.is_empty() { ".".into() } else { prefix.into() }))?;
        let relative = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        let meta = fs::symlink_metadata(entry.path()).map_err(io_err(&entry.path()))?;
        let kind = meta.file_type();
        if kind.is_symlink() {
            return Err(TreeError::Symlink(relative));
        }
        if kind.is_dir() {
            if depth + 1 >= limits.max_depth {
                return Err(TreeError::TooDeep(relative, limits.max_depth));
            }
            RelPath::new(&relative)?;
            read_into(&entry.path(), &relative, depth + 1, limits, tree, total)?;
            continue;
        }
        if !kind.is_file() {
            return Err(TreeError::SpecialFile(relative));
        }
        let path = RelPath::new(&relative)?;
        if meta.len() > limits.max_file_bytes {
            return Err(TreeError::FileTooLarge { path: relative, bytes: meta.len(), limit: limits.max_file_bytes });
        }
        if tree.files.len() >= limits.max_files {
            return Err(TreeError::TooManyFiles(limits.max_files));
        }
        // Read at most one byte past the limit, in case the file grew since `stat`.
        let bytes = read_bounded(&entry.path(), limits.max_file_bytes).map_err(io_err(&entry.path()))?;
        if bytes.len() as u64 > limits.max_file_bytes {
            return Err(TreeError::FileTooLarge {
                path: relative,
                bytes: bytes.len() as u64,
                limit: limits.max_file_bytes,
            });
        }
        *total += bytes.len() as u64;
        if *total > limits.max_total_bytes {
            return Err(TreeError::TooLarge(limits.max_total_bytes));
        }
        let mode = if meta.permissions().mode() & 0o111 != 0 { FileMode::Executable } else { FileMode::Regular };
        tree.files.insert(path, TreeFile { mode, bytes });
    }
    Ok(())
}

fn read_bounded(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    fs::File::open(path)?.take(limit + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rel_path_rules() {
        for good in ["src/lib.rs", "NOTES.md", "a/b/c-d_e+f.txt", ".hidden"] {
            assert!(RelPath::new(good).is_ok(), "{good}");
        }
        for bad in ["", "/etc/passwd", "../x", "a/../b", "a//b", "a/./b", "a b", "a\\b", "é", "a\nb"] {
            assert!(RelPath::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn read_refuses_symlinks_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("src")).unwrap();
        fs::write(dir.path().join("src/lib.rs"), "fn f() {}").unwrap();
        let tree = SourceTree::read_dir(dir.path(), &TreeLimits::default()).unwrap();
        assert_eq!(tree.files.len(), 1);
        let copy = tempfile::tempdir().unwrap();
        tree.write_to(&copy.path().join("out")).unwrap();
        assert_eq!(SourceTree::read_dir(&copy.path().join("out"), &TreeLimits::default()).unwrap(), tree);

        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("src/evil.rs")).unwrap();
        let err = SourceTree::read_dir(dir.path(), &TreeLimits::default()).unwrap_err();
        assert!(matches!(err, TreeError::Symlink(ref p) if p == "src/evil.rs"), "{err}");
    }

    #[test]
    fn read_enforces_size_limits() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("big.txt"), vec![b'a'; 2000]).unwrap();
        let limits = TreeLimits { max_file_bytes: 1000, ..TreeLimits::default() };
        assert!(matches!(SourceTree::read_dir(dir.path(), &limits), Err(TreeError::FileTooLarge { .. })));
        let limits = TreeLimits { max_files: 0, ..TreeLimits::default() };
        assert!(matches!(SourceTree::read_dir(dir.path(), &limits), Err(TreeError::TooManyFiles(0))));
        fs::write(dir.path().join("second.txt"), vec![b'b'; 2000]).unwrap();
        let limits = TreeLimits { max_total_bytes: 3000, ..TreeLimits::default() };
        assert!(matches!(SourceTree::read_dir(dir.path(), &limits), Err(TreeError::TooLarge(3000))));
        fs::create_dir_all(dir.path().join("a/b/c")).unwrap();
        let limits = TreeLimits { max_depth: 3, ..TreeLimits::default() };
        assert!(matches!(SourceTree::read_dir(dir.path(), &limits), Err(TreeError::TooDeep(_, 3))));
    }
}
