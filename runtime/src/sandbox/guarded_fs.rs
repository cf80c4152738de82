//! The guest's file system: wasmtime-wasi's `wasi:filesystem`, with the host's rules in front.
//!
//! Every descriptor call goes through [`GuardedFs`], which delegates to wasmtime-wasi after
//! - charging the call's disk quota for every byte written and every entry created, before the
//!   write happens (see [`super::meter`]), and wrapping file streams so that they do the same;
//! - bounding the descriptors a guest holds open ([`MAX_OPEN_DESCRIPTORS`]) and how deep it may
//!   nest directories ([`MAX_NESTING`]: checked where directories are made, directories never
//!   move deeper, no symbolic links), so that neither the host's descriptor table nor its walks
//!   of the tree can be exhausted;
//! - answering metadata with virtual, deterministic values: fixed timestamps, no host-specific
//!   directory sizes or link counts, directory entries in byte order, and metadata hashes derived
//!   from the path inside the grant rather than from host inode numbers.
//!
//! Bytes read and written count as bytes moved by host calls, too.

use super::meter::{IoMeter, MeterStop};
use super::virtual_env::VIRTUAL_EPOCH_SECS;
use bytes::Bytes;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use wasmtime::component::{HasData, Resource};
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemCtxView};
use wasmtime_wasi::p2::bindings::clocks::wall_clock::Datetime;
use wasmtime_wasi::p2::bindings::filesystem::types::{ErrorCode, HostDescriptor, HostDirectoryEntryStream};
use wasmtime_wasi::p2::bindings::filesystem::{preopens, types};
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, FsError, FsResult, InputStream, OutputStream, Pollable, ReaddirIterator,
    StreamError, StreamResult,
};

pub use crate::tree_walk::{ENTRY_BYTES, entry_bytes};
/// Most descriptors a call may hold open at once.
pub const MAX_OPEN_DESCRIPTORS: usize = 256;
/// Deepest directory nesting inside a writable grant (a source tree may nest 12 deep).
pub const MAX_NESTING: usize = 32;

/// The guard's own state for one call, beside wasmtime-wasi's.
pub struct FsGuard {
    meter: Arc<IoMeter>,
    /// Descriptors opened by the guest and not yet dropped.
    open: HashSet<u32>,
    /// Where each descriptor points: its grant and the path inside it.
    paths: HashMap<u32, (Arc<str>, Vec<String>)>,
    /// Directory listings, sorted, served in place of the host's order.
    listings: HashMap<u32, VecDeque<types::DirectoryEntry>>,
}

impl FsGuard {
    pub fn new(meter: Arc<IoMeter>) -> FsGuard {
        FsGuard { meter, open: HashSet::new(), paths: HashMap::new(), listings: HashMap::new() }
    }

    fn path_of(&self, rep: u32) -> (Arc<str>, Vec<String>) {
        self.paths.get(&rep).cloned().unwrap_or_else(|| (Arc::from(""), Vec::new()))
    }

    fn charge(&self, bytes: u64) -> FsResult<()> {
        self.meter.charge_disk(bytes).map_err(stop_call)
    }
}

/// Longest path a guest may name, in bytes: the host's own PATH_MAX. A longer one is refused
/// before the guard looks at it (it could not be opened anyway, and splitting it costs memory).
pub const MAX_PATH_BYTES: usize = 4096;

fn bounded(path: &str) -> FsResult<()> {
    if path.len() > MAX_PATH_BYTES {
        return Err(ErrorCode::NameTooLong.into());
    }
    Ok(())
}

/// `path` (relative, as the guest gave it) resolved against `base`; `..` never climbs above the
/// grant (wasmtime-wasi refuses such paths anyway).
fn joined(base: &[String], path: &str) -> Vec<String> {
    let mut parts = base.to_vec();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            name => parts.push(name.to_owned()),
        }
    }
    parts
}

/// Length of the name a path ends in (the entry it would create).
fn last_name(path: &str) -> usize {
    path.rsplit('/').find(|part| !part.is_empty()).map_or(0, str::len)
}

/// A limit hit: the guest's call ends here, and the meter says why.
fn stop_call(stop: MeterStop) -> FsError {
    FsError::trap(wasmtime::format_err!("{stop}"))
}

/// The instant every file's timestamps report.
fn virtual_time() -> Option<Datetime> {
    Some(Datetime { seconds: VIRTUAL_EPOCH_SECS, nanoseconds: 0 })
}

/// Host-specific metadata replaced by values that depend only on what the guest can see.
fn virtual_stat(mut stat: types::DescriptorStat) -> types::DescriptorStat {
    stat.data_access_timestamp = virtual_time();
    stat.data_modification_timestamp = virtual_time();
    stat.status_change_timestamp = virtual_time();
    if stat.type_ == types::DescriptorType::Directory {
        // Directory sizes and link counts differ between file systems.
        stat.size = 0;
        stat.link_count = 1;
    }
    stat
}

fn path_hash(grant: &str, parts: &[String]) -> types::MetadataHashValue {
    let mut hasher = blake3::Hasher::new();
    hasher.update(grant.as_bytes());
    for part in parts {
        hasher.update(b"/");
        hasher.update(part.as_bytes());
    }
    let bytes = hasher.finalize();
    let bytes = bytes.as_bytes();
    types::MetadataHashValue {
        lower: u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")),
        upper: u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")),
    }
}

/// The data wasmtime-wasi's generated bindings call into.
pub struct GuardedFs<'a> {
    pub inner: WasiFilesystemCtxView<'a>,
    pub guard: &'a mut FsGuard,
}

/// Marker for `add_to_linker`.
pub struct GuardedFsData;

impl HasData for GuardedFsData {
    type Data<'a> = GuardedFs<'a>;
}

impl GuardedFs<'_> {
    async fn size_of(&mut self, fd: &Resource<Descriptor>) -> FsResult<u64> {
        let fd = Resource::new_borrow(fd.rep());
        Ok(self.inner.stat(fd).await?.size)
    }

    fn is_writable_dir(&self, fd: &Resource<Descriptor>) -> FsResult<bool> {
        Ok(match self.inner.table.get(fd)? {
            Descriptor::Dir(dir) => !dir.perms.write_not_permitted(),
            // Not a directory: wasmtime-wasi refuses the operation itself.
            Descriptor::File(_) => false,
        })
    }

    /// Charges a new entry at `path`, unless something is already there.
    async fn charge_new_entry(
        &mut self,
        fd: &Resource<Descriptor>,
        path_flags: types::PathFlags,
        path: &str,
    ) -> FsResult<()> {
        let fd = Resource::new_borrow(fd.rep());
        match self.inner.stat_at(fd, path_flags, path.to_owned()).await {
            Ok(_) => Ok(()),
            Err(_) => self.guard.charge(entry_bytes(last_name(path))),
        }
    }

    fn check_nesting(&self, fd: &Resource<Descriptor>, path: &str) -> FsResult<()> {
        let (_, base) = self.guard.path_of(fd.rep());
        let depth = joined(&base, path).len();
        if depth > MAX_NESTING {
            return Err(stop_call(
                self.guard.meter.files(format!("directories nested {depth} deep; the limit is {MAX_NESTING}")),
            ));
        }
        Ok(())
    }
}

fn borrow(fd: &Resource<Descriptor>) -> Resource<Descriptor> {
    Resource::new_borrow(fd.rep())
}

impl types::Host for GuardedFs<'_> {
    fn convert_error_code(&mut self, err: FsError) -> wasmtime::Result<ErrorCode> {
        types::Host::convert_error_code(&mut self.inner, err)
    }

    fn filesystem_error_code(&mut self, err: Resource<wasmtime::Error>) -> wasmtime::Result<Option<ErrorCode>> {
        types::Host::filesystem_error_code(&mut self.inner, err)
    }
}

impl preopens::Host for GuardedFs<'_> {
    fn get_directories(&mut self) -> wasmtime::Result<Vec<(Resource<Descriptor>, String)>> {
        let directories = preopens::Host::get_directories(&mut self.inner)?;
        for (fd, name) in &directories {
            self.guard.paths.insert(fd.rep(), (Arc::from(name.as_str()), Vec::new()));
        }
        Ok(directories)
    }
}

impl HostDescriptor for GuardedFs<'_> {
    async fn advise(&mut self, fd: Resource<Descriptor>, offset: u64, len: u64, advice: types::Advice) -> FsResult<()> {
        self.inner.advise(fd, offset, len, advice).await
    }

    async fn sync_data(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        self.inner.sync_data(fd).await
    }

    async fn get_flags(&mut self, fd: Resource<Descriptor>) -> FsResult<types::DescriptorFlags> {
        self.inner.get_flags(fd).await
    }

    async fn get_type(&mut self, fd: Resource<Descriptor>) -> FsResult<types::DescriptorType> {
        self.inner.get_type(fd).await
    }

    async fn set_size(&mut self, fd: Resource<Descriptor>, size: u64) -> FsResult<()> {
        let now = self.size_of(&fd).await?;
        if size > now {
            self.guard.charge(size - now)?;
        }
        self.inner.set_size(fd, size).await
    }

    async fn set_times(
        &mut self,
        fd: Resource<Descriptor>,
        atim: types::NewTimestamp,
        mtim: types::NewTimestamp,
    ) -> FsResult<()> {
        self.inner.set_times(fd, atim, mtim).await
    }

    async fn read(&mut self, fd: Resource<Descriptor>, len: u64, offset: u64) -> FsResult<(Vec<u8>, bool)> {
        let (bytes, end) = self.inner.read(fd, len, offset).await?;
        self.guard.meter.moved(bytes.len() as u64).map_err(stop_call)?;
        Ok((bytes, end))
    }

    async fn write(&mut self, fd: Resource<Descriptor>, buf: Vec<u8>, offset: u64) -> FsResult<u64> {
        let len = buf.len() as u64;
        self.guard.meter.moved(len).map_err(stop_call)?;
        // A write past the end leaves a hole the file's size now covers: charged like data.
        let now = self.size_of(&fd).await?;
        self.guard.charge(len + offset.saturating_sub(now))?;
        self.inner.write(fd, buf, offset).await
    }

    async fn read_directory(&mut self, fd: Resource<Descriptor>) -> FsResult<Resource<ReaddirIterator>> {
        // Read the listing whole, in the host's order, and keep it sorted; the stream handed to
        // the guest is a second listing used only as a handle (its entries are never served).
        let listing = self.inner.read_directory(borrow(&fd)).await?;
        let listing: ReaddirIterator = self.inner.table.delete(listing)?;
        let mut entries = listing.into_iter().collect::<FsResult<Vec<_>>>()?;
        entries.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        let bytes: u64 = entries.iter().map(|e| e.name.len() as u64 + 8).sum();
        self.guard.meter.moved(bytes).map_err(stop_call)?;
        let handle = self.inner.read_directory(fd).await?;
        self.guard.listings.insert(handle.rep(), entries.into());
        Ok(handle)
    }

    async fn sync(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        self.inner.sync(fd).await
    }

    async fn create_directory_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()> {
        bounded(&path)?;
        if self.is_writable_dir(&fd)? {
            self.check_nesting(&fd, &path)?;
            self.guard.charge(entry_bytes(last_name(&path)))?;
        }
        self.inner.create_directory_at(fd, path).await
    }

    async fn stat(&mut self, fd: Resource<Descriptor>) -> FsResult<types::DescriptorStat> {
        Ok(virtual_stat(self.inner.stat(fd).await?))
    }

    async fn stat_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: types::PathFlags,
        path: String,
    ) -> FsResult<types::DescriptorStat> {
        Ok(virtual_stat(self.inner.stat_at(fd, path_flags, path).await?))
    }

    async fn set_times_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: types::PathFlags,
        path: String,
        atim: types::NewTimestamp,
        mtim: types::NewTimestamp,
    ) -> FsResult<()> {
        self.inner.set_times_at(fd, path_flags, path, atim, mtim).await
    }

    async fn link_at(
        &mut self,
        fd: Resource<Descriptor>,
        old_path_flags: types::PathFlags,
        old_path: String,
        new_descriptor: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        if self.is_writable_dir(&new_descriptor)? {
            self.guard.charge(entry_bytes(last_name(&new_path)))?;
        }
        self.inner.link_at(fd, old_path_flags, old_path, new_descriptor, new_path).await
    }

    async fn open_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: types::PathFlags,
        path: String,
        oflags: types::OpenFlags,
        flags: types::DescriptorFlags,
    ) -> FsResult<Resource<Descriptor>> {
        bounded(&path)?;
        if self.guard.open.len() >= MAX_OPEN_DESCRIPTORS {
            return Err(stop_call(
                self.guard.meter.files(format!("more than {MAX_OPEN_DESCRIPTORS} files and directories open at once")),
            ));
        }
        if oflags.contains(types::OpenFlags::CREATE) && self.is_writable_dir(&fd)? {
            self.check_nesting(&fd, &path)?;
            self.charge_new_entry(&fd, path_flags, &path).await?;
        }
        let (grant, base) = self.guard.path_of(fd.rep());
        let opened = self.inner.open_at(fd, path_flags, path.clone(), oflags, flags).await?;
        self.guard.open.insert(opened.rep());
        self.guard.paths.insert(opened.rep(), (grant, joined(&base, &path)));
        Ok(opened)
    }

    fn drop(&mut self, fd: Resource<Descriptor>) -> wasmtime::Result<()> {
        self.guard.open.remove(&fd.rep());
        self.guard.paths.remove(&fd.rep());
        HostDescriptor::drop(&mut self.inner, fd)
    }

    async fn readlink_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<String> {
        self.inner.readlink_at(fd, path).await
    }

    async fn remove_directory_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()> {
        self.inner.remove_directory_at(fd, path).await
    }

    async fn rename_at(
        &mut self,
        fd: Resource<Descriptor>,
        old_path: String,
        new_fd: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        bounded(&old_path)?;
        bounded(&new_path)?;
        // Nesting is bounded where directories are made; a directory moved deeper would carry
        // its whole subtree past that bound, so directories move only sideways or up.
        let (_, old_base) = self.guard.path_of(fd.rep());
        let (_, new_base) = self.guard.path_of(new_fd.rep());
        if joined(&new_base, &new_path).len() > joined(&old_base, &old_path).len() {
            let stat = self.inner.stat_at(borrow(&fd), types::PathFlags::empty(), old_path.clone()).await?;
            if stat.type_ == types::DescriptorType::Directory {
                return Err(ErrorCode::NotPermitted.into());
            }
        }
        self.inner.rename_at(fd, old_path, new_fd, new_path).await
    }

    async fn symlink_at(&mut self, _fd: Resource<Descriptor>, _src_path: String, _dest_path: String) -> FsResult<()> {
        // A link would let paths inside the grant be longer and deeper than they look, and the
        // source policy refuses trees that hold one: nothing is gained by making them.
        Err(ErrorCode::NotPermitted.into())
    }

    async fn unlink_file_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()> {
        self.inner.unlink_file_at(fd, path).await
    }

    fn read_via_stream(&mut self, fd: Resource<Descriptor>, offset: u64) -> FsResult<Resource<DynInputStream>> {
        let stream = self.inner.read_via_stream(fd, offset)?;
        let inner: DynInputStream = self.inner.table.delete(stream)?;
        let metered: DynInputStream = Box::new(MeteredInput { inner, meter: self.guard.meter.clone() });
        Ok(self.inner.table.push(metered)?)
    }

    fn write_via_stream(&mut self, fd: Resource<Descriptor>, offset: u64) -> FsResult<Resource<DynOutputStream>> {
        // A stream that starts past the end leaves a hole: charged when the stream is made.
        // (`size_of` is async; the table's file is read directly here.)
        let now = match self.inner.table.get(&fd)? {
            Descriptor::File(file) => file.file.metadata().map(|m| m.len()).unwrap_or(0),
            Descriptor::Dir(_) => 0,
        };
        self.guard.charge(offset.saturating_sub(now))?;
        let stream = self.inner.write_via_stream(fd, offset)?;
        self.metered_output(stream)
    }

    fn append_via_stream(&mut self, fd: Resource<Descriptor>) -> FsResult<Resource<DynOutputStream>> {
        let stream = self.inner.append_via_stream(fd)?;
        self.metered_output(stream)
    }

    async fn is_same_object(&mut self, a: Resource<Descriptor>, b: Resource<Descriptor>) -> wasmtime::Result<bool> {
        self.inner.is_same_object(a, b).await
    }

    async fn metadata_hash(&mut self, fd: Resource<Descriptor>) -> FsResult<types::MetadataHashValue> {
        self.inner.table.get(&fd)?;
        let (grant, parts) = self.guard.path_of(fd.rep());
        Ok(path_hash(&grant, &parts))
    }

    async fn metadata_hash_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: types::PathFlags,
        path: String,
    ) -> FsResult<types::MetadataHashValue> {
        bounded(&path)?;
        // The entry must exist, as for the host's own answer.
        self.inner.stat_at(borrow(&fd), path_flags, path.clone()).await?;
        let (grant, base) = self.guard.path_of(fd.rep());
        Ok(path_hash(&grant, &joined(&base, &path)))
    }
}

impl GuardedFs<'_> {
    fn metered_output(&mut self, stream: Resource<DynOutputStream>) -> FsResult<Resource<DynOutputStream>> {
        let inner: DynOutputStream = self.inner.table.delete(stream)?;
        let metered: DynOutputStream = Box::new(MeteredOutput { inner, meter: self.guard.meter.clone() });
        Ok(self.inner.table.push(metered)?)
    }
}

impl HostDirectoryEntryStream for GuardedFs<'_> {
    async fn read_directory_entry(
        &mut self,
        stream: Resource<ReaddirIterator>,
    ) -> FsResult<Option<types::DirectoryEntry>> {
        self.inner.table.get(&stream)?;
        Ok(self.guard.listings.get_mut(&stream.rep()).and_then(VecDeque::pop_front))
    }

    fn drop(&mut self, stream: Resource<ReaddirIterator>) -> wasmtime::Result<()> {
        self.guard.listings.remove(&stream.rep());
        HostDirectoryEntryStream::drop(&mut self.inner, stream)
    }
}

/// A file's output stream that charges the disk quota before each write.
struct MeteredOutput {
    inner: DynOutputStream,
    meter: Arc<IoMeter>,
}

fn stream_stop(stop: MeterStop) -> StreamError {
    StreamError::trap(&stop.to_string())
}

#[wasmtime_wasi::async_trait]
impl Pollable for MeteredOutput {
    async fn ready(&mut self) {
        self.inner.ready().await
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for MeteredOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let len = bytes.len() as u64;
        self.meter.moved(len).map_err(stream_stop)?;
        self.meter.charge_disk(len).map_err(stream_stop)?;
        self.inner.write(bytes)
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.inner.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.inner.check_write()
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await
    }
}

/// A file's input stream that counts the bytes it hands to the guest.
struct MeteredInput {
    inner: DynInputStream,
    meter: Arc<IoMeter>,
}

#[wasmtime_wasi::async_trait]
impl Pollable for MeteredInput {
    async fn ready(&mut self) {
        self.inner.ready().await
    }
}

#[wasmtime_wasi::async_trait]
impl InputStream for MeteredInput {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        let bytes = self.inner.read(size)?;
        self.meter.moved(bytes.len() as u64).map_err(stream_stop)?;
        Ok(bytes)
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_past_path_max_are_refused_before_they_are_split() {
        assert!(bounded(&"a/".repeat(MAX_PATH_BYTES / 2)).is_ok());
        let refused = bounded(&"a/".repeat(MAX_PATH_BYTES / 2 + 1)).unwrap_err();
        assert_eq!(refused.downcast().unwrap(), ErrorCode::NameTooLong);
    }

    #[test]
    fn paths_join_without_climbing_out() {
        let base = vec!["a".to_owned()];
        assert_eq!(joined(&base, "b/./c"), ["a", "b", "c"]);
        assert_eq!(joined(&base, "../../x"), ["x"]);
        assert_eq!(joined(&[], ""), Vec::<String>::new());
    }

    #[test]
    fn path_hashes_depend_on_grant_and_path_only() {
        let a = path_hash("/repo", &["src".into(), "lib.rs".into()]);
        assert_eq!((a.lower, a.upper), {
            let b = path_hash("/repo", &["src".into(), "lib.rs".into()]);
            (b.lower, b.upper)
        });
        let c = path_hash("/history", &["src".into(), "lib.rs".into()]);
        assert_ne!((a.lower, a.upper), (c.lower, c.upper));
    }
}
