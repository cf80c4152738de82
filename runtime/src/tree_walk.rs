//! Walking and removing directory trees a guest wrote, whatever their shape.
//!
//! A guest controls the shape of its writable directories, so the host's walks neither recurse
//! (a deep nest would overflow the stack) nor build full paths (past 4 KiB they fail with
//! ENAMETOOLONG) nor hold a descriptor per level (a deep nest would exhaust the process's
//! descriptors). Each walk opens every directory relative to its parent, keeps one directory open
//! at a time, climbs back with `..`, and remembers only names. Any error ends the walk with that
//! error: a measurement that cannot see everything fails rather than under-counts.

use rustix::fd::OwnedFd;
use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};
use std::ffi::{CString, OsStr};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// What one entry (file, directory, link) counts besides its contents and name: a block.
pub const ENTRY_BYTES: u64 = 4096;
/// What an entry's record in its parent directory counts besides the name (ext4 needs 8 bytes
/// and rounding, plus index blocks in large directories: about 24 measured here).
pub const NAME_RECORD_BYTES: u64 = 64;

/// What an entry named with `name_len` bytes counts besides its contents.
pub fn entry_bytes(name_len: usize) -> u64 {
    ENTRY_BYTES + NAME_RECORD_BYTES + name_len as u64
}

/// The bytes a tree holds: contents plus [`entry_bytes`] per entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub bytes: u64,
    pub entries: u64,
    pub deepest: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error("cannot read the directory tree: {0}")]
    Io(#[from] io::Error),
    #[error("directories are nested deeper than {0} levels")]
    TooDeep(usize),
}

fn open_dir_at(parent: &OwnedFd, name: &OsStr) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(rustix::fs::openat(parent, name, flags, Mode::empty())?)
}

fn open_root(root: &Path) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    Ok(rustix::fs::open(root, flags, Mode::empty())?)
}

/// One directory's entries, split into subdirectory names and the rest (with their sizes).
struct Listing {
    subdirs: Vec<CString>,
    others: Vec<(CString, u64)>,
}

fn list(dir: &OwnedFd) -> io::Result<Listing> {
    let mut listing = Listing { subdirs: Vec::new(), others: Vec::new() };
    for entry in Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        // The entry's own type, never a link's target.
        let stat = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
        if FileType::from_raw_mode(stat.st_mode) == FileType::Directory {
            listing.subdirs.push(name.to_owned());
        } else {
            listing.others.push((name.to_owned(), stat.st_size.max(0) as u64));
        }
    }
    Ok(listing)
}

/// A directory on the way down: its name in its parent, and the subdirectories still to visit.
struct Frame {
    name: Option<CString>,
    pending: Vec<CString>,
}

/// Visits every directory under `root` (root first), one open descriptor at a time. `visit` gets
/// the directory's descriptor and listing and may remove its non-directory entries. `leave` runs
/// on a directory's parent once the directory and everything below it were visited.
fn walk(
    root: &Path,
    max_depth: usize,
    mut visit: impl FnMut(&OwnedFd, &Listing, usize) -> io::Result<()>,
    mut leave: impl FnMut(&OwnedFd, &CString) -> io::Result<()>,
) -> Result<(), WalkError> {
    let mut dir = open_root(root)?;
    let listing = list(&dir)?;
    visit(&dir, &listing, 0)?;
    let mut frames = vec![Frame { name: None, pending: listing.subdirs }];
    loop {
        let depth = frames.len();
        let top = frames.last_mut().expect("the root frame is popped last");
        if let Some(sub) = top.pending.pop() {
            if depth > max_depth {
                return Err(WalkError::TooDeep(max_depth));
            }
            dir = open_dir_at(&dir, OsStr::from_bytes(sub.as_bytes()))?;
            let listing = list(&dir)?;
            visit(&dir, &listing, depth)?;
            frames.push(Frame { name: Some(sub), pending: listing.subdirs });
            continue;
        }
        let Some(name) = frames.pop().and_then(|frame| frame.name) else { return Ok(()) };
        dir = open_dir_at(&dir, OsStr::new(".."))?;
        leave(&dir, &name)?;
    }
}

/// What `root` holds, to at most `max_depth` levels of directories below it.
pub fn usage(root: &Path, max_depth: usize) -> Result<Usage, WalkError> {
    let mut usage = Usage { bytes: 0, entries: 0, deepest: 0 };
    walk(
        root,
        max_depth,
        |_, listing, depth| {
            let names = listing.subdirs.iter().chain(listing.others.iter().map(|(name, _)| name));
            usage.entries += (listing.subdirs.len() + listing.others.len()) as u64;
            usage.bytes += names.map(|name| entry_bytes(name.as_bytes().len())).sum::<u64>();
            usage.bytes += listing.others.iter().map(|(_, size)| size).sum::<u64>();
            usage.deepest = usage.deepest.max(depth);
            Ok(())
        },
        |_, _| Ok(()),
    )?;
    Ok(usage)
}

/// Removes `root` and everything under it, however deep, and checks that it is gone.
pub fn remove_tree(root: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(root) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
        Ok(meta) if !meta.is_dir() => return std::fs::remove_file(root),
        Ok(_) => {}
    }
    let removed = walk(
        root,
        usize::MAX,
        |dir, listing, _| {
            for (name, _) in &listing.others {
                rustix::fs::unlinkat(dir, name.as_c_str(), AtFlags::empty())?;
            }
            Ok(())
        },
        |parent, name| Ok(rustix::fs::unlinkat(parent, name.as_c_str(), AtFlags::REMOVEDIR)?),
    );
    removed.map_err(|e| match e {
        WalkError::Io(e) => e,
        other => io::Error::other(other.to_string()),
    })?;
    std::fs::remove_dir(root)?;
    match std::fs::symlink_metadata(root) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        _ => Err(io::Error::other(format!("{} is still there after removing it", root.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A nest `depth` levels deep built with relative paths, as a guest would.
    fn nest(root: &Path, depth: usize) {
        let mut dir = open_root(root).unwrap();
        for _ in 0..depth {
            rustix::fs::mkdirat(&dir, "d", Mode::from_raw_mode(0o755)).unwrap();
            dir = open_dir_at(&dir, OsStr::new("d")).unwrap();
        }
        let file = rustix::fs::openat(&dir, "f", OFlags::CREATE | OFlags::WRONLY, Mode::from_raw_mode(0o644)).unwrap();
        rustix::io::write(&file, b"12345").unwrap();
    }

    #[test]
    fn counts_contents_and_entries() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("a/b")).unwrap();
        std::fs::write(root.path().join("a/b/f"), b"0123456789").unwrap();
        std::fs::write(root.path().join("g"), b"").unwrap();
        let usage = usage(root.path(), 8).unwrap();
        assert_eq!(usage, Usage { bytes: 4 * (ENTRY_BYTES + NAME_RECORD_BYTES + 1) + 10, entries: 4, deepest: 2 });
    }

    #[test]
    fn a_nest_deeper_than_the_bound_fails_the_measurement() {
        let root = tempfile::tempdir().unwrap();
        nest(root.path(), 40);
        assert!(matches!(usage(root.path(), 32), Err(WalkError::TooDeep(32))));
        assert_eq!(usage(root.path(), 64).unwrap().deepest, 40);
    }

    #[test]
    fn removes_a_nest_far_past_path_max_without_recursion() {
        let root = tempfile::tempdir().unwrap();
        let victim = root.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        // 2,100 levels: 4.2 KB of path, more than PATH_MAX.
        nest(&victim, 2100);
        remove_tree(&victim).unwrap();
        assert!(!victim.exists());
        remove_tree(&victim).unwrap();
    }
}
