//! The content-addressed archive: every hyperagent variant, its source, its component and its
//! records, named by blake3 and written atomically.
//!
//! Layout under the archive root:
//!
//! ```text
//! FORMAT                    "hyperagent-archive 1"
//! objects/<2 hex>/<62 hex>  every object (file blobs, tree manifests, nodes, components), named
//!                           by the blake3 of its bytes
//! nodes/<64 hex>            an empty marker per node, so nodes can be listed without parsing
//! ```
//!
//! Identical content is stored once. Objects are never modified in place; `verify` re-hashes them
//! all. Reading a blob re-checks its hash, so tampered content is never handed out.

pub mod bundle;
pub mod manifest;
pub mod node;

use crate::fsutil::write_atomic;
use crate::hash::ContentHash;
use crate::source_tree::{RelPath, SourceTree, TreeFile, ensure_empty_dir, write_new_file};
use manifest::{ManifestEntry, ManifestError};
pub use node::Node;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

const FORMAT_LINE: &str = "hyperagent-archive 1\n";

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("archive I/O on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} is not a hyperagent archive of a format this host reads (FORMAT says {found:?})")]
    UnknownFormat { path: PathBuf, found: String },
    #[error("object {0} is not in the archive")]
    Missing(ContentHash),
    #[error("object {hash} is corrupt: its content hashes to {actual}")]
    Corrupt { hash: ContentHash, actual: ContentHash },
    #[error("tree {hash}: {source}")]
    BadManifest { hash: ContentHash, source: ManifestError },
    #[error("node {hash}: {reason}")]
    BadNode { hash: ContentHash, reason: String },
    #[error("cannot materialise into {path}: {source}")]
    Materialise { path: PathBuf, source: io::Error },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io { path: path.to_path_buf(), source }
}

#[derive(Debug, Clone)]
pub struct Archive {
    root: PathBuf,
}

impl Archive {
    /// Opens the archive at `root`, creating it if the directory is absent or empty.
    pub fn open(root: impl Into<PathBuf>) -> Result<Archive, ArchiveError> {
        let root = root.into();
        fs::create_dir_all(root.join("objects")).map_err(io_error(&root))?;
        fs::create_dir_all(root.join("nodes")).map_err(io_error(&root))?;
        fs::create_dir_all(root.join("runs")).map_err(io_error(&root))?;
        let format = root.join("FORMAT");
        match fs::read_to_string(&format) {
            Ok(found) if found == FORMAT_LINE => {}
            Ok(found) => return Err(ArchiveError::UnknownFormat { path: root, found }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                write_atomic(&format, FORMAT_LINE.as_bytes()).map_err(io_error(&format))?
            }
            Err(e) => return Err(ArchiveError::Io { path: format, source: e }),
        }
        Ok(Archive { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where an object lives (whether or not it exists).
    pub fn object_path(&self, hash: &ContentHash) -> PathBuf {
        let hex = hash.to_hex();
        self.root.join("objects").join(&hex[..2]).join(&hex[2..])
    }

    pub fn contains(&self, hash: &ContentHash) -> bool {
        self.object_path(hash).is_file()
    }

    /// Stores bytes and returns their hash; content already present is not written again.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<ContentHash, ArchiveError> {
        let hash = ContentHash::of(bytes);
        let path = self.object_path(&hash);
        if !path.is_file() {
            write_atomic(&path, bytes).map_err(io_error(&path))?;
        }
        Ok(hash)
    }

    /// Reads an object and checks that its content still has its name.
    pub fn get_blob(&self, hash: &ContentHash) -> Result<Vec<u8>, ArchiveError> {
        let path = self.object_path(hash);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ArchiveError::Missing(*hash)),
            Err(e) => return Err(ArchiveError::Io { path, source: e }),
        };
        let actual = ContentHash::of(&bytes);
        if actual != *hash {
            return Err(ArchiveError::Corrupt { hash: *hash, actual });
        }
        Ok(bytes)
    }

    /// The hash a tree would have in the archive, without storing anything.
    pub fn tree_hash(tree: &SourceTree) -> ContentHash {
        ContentHash::of(&manifest::render(&manifest_entries(tree)))
    }

    /// Stores every file of a tree and its manifest; returns the tree's hash.
    pub fn put_tree(&self, tree: &SourceTree) -> Result<ContentHash, ArchiveError> {
        for file in tree.files.values() {
            self.put_blob(&file.bytes)?;
        }
        self.put_blob(&manifest::render(&manifest_entries(tree)))
    }

    pub fn get_tree(&self, hash: &ContentHash) -> Result<SourceTree, ArchiveError> {
        let entries = self.get_manifest(hash)?;
        let mut tree = SourceTree::default();
        for entry in entries {
            let bytes = self.get_blob(&entry.blob)?;
            tree.files.insert(entry.path, TreeFile { mode: entry.mode, bytes });
        }
        Ok(tree)
    }

    pub fn get_manifest(&self, hash: &ContentHash) -> Result<Vec<ManifestEntry>, ArchiveError> {
        let bytes = self.get_blob(hash)?;
        manifest::parse(&bytes).map_err(|source| ArchiveError::BadManifest { hash: *hash, source })
    }

    /// Writes a tree's files into `dir`, which must be empty or absent. Every path comes from a
    /// validated manifest, and files are created without following existing entries, so nothing
    /// is ever written outside `dir`.
    pub fn materialise(&self, hash: &ContentHash, dir: &Path) -> Result<(), ArchiveError> {
        // Parse and fetch everything first: a bad manifest or blob writes nothing.
        let tree = self.get_tree(hash)?;
        let fail = |source| ArchiveError::Materialise { path: dir.to_path_buf(), source };
        ensure_empty_dir(dir).map_err(fail)?;
        for (path, file) in &tree.files {
            write_new_file(&path.under(dir), &file.bytes, file.mode).map_err(fail)?;
        }
        Ok(())
    }

    /// Stores a node and its marker; returns the node's id.
    pub fn put_node(&self, node: &Node) -> Result<ContentHash, ArchiveError> {
        let id = self.put_blob(&node.canonical_json())?;
        let marker = self.root.join("nodes").join(id.to_hex());
        if !marker.is_file() {
            write_atomic(&marker, b"").map_err(io_error(&marker))?;
        }
        Ok(id)
    }

    pub fn get_node(&self, id: &ContentHash) -> Result<Node, ArchiveError> {
        let bytes = self.get_blob(id)?;
        Node::parse(&bytes).map_err(|reason| ArchiveError::BadNode { hash: *id, reason })
    }

    /// Stores a run object (see [`crate::run_object`]) and its marker; returns its hash.
    pub fn put_run_object(&self, object: &crate::run_object::RunObject) -> Result<ContentHash, ArchiveError> {
        let id = self.put_blob(&object.canonical_json())?;
        let marker = self.root.join("runs").join(id.to_hex());
        if !marker.is_file() {
            write_atomic(&marker, b"").map_err(io_error(&marker))?;
        }
        Ok(id)
    }

    pub fn get_run_object(&self, id: &ContentHash) -> Result<crate::run_object::RunObject, ArchiveError> {
        let bytes = self.get_blob(id)?;
        crate::run_object::RunObject::parse(&bytes).map_err(|reason| ArchiveError::BadNode { hash: *id, reason })
    }

    /// Every run object's hash, sorted.
    pub fn run_object_ids(&self) -> Result<Vec<ContentHash>, ArchiveError> {
        self.markers("runs")
    }

    /// Every node id, sorted.
    pub fn node_ids(&self) -> Result<Vec<ContentHash>, ArchiveError> {
        self.markers("nodes")
    }

    /// The hashes named by the marker files in `kind` (`nodes`, `runs`), sorted.
    fn markers(&self, kind: &str) -> Result<Vec<ContentHash>, ArchiveError> {
        let dir = self.root.join(kind);
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let mut ids = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_error(&dir))? {
            let entry = entry.map_err(io_error(&dir))?;
            if let Some(id) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
                ids.push(id);
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Every object reachable from `roots`: a node leads to its tree (and the tree to its file
    /// blobs), its component, its parent, and the objects its metadata names by schema (the
    /// evaluation report and the LLM exchanges it lists, the meta agent's component, the
    /// provenance). Only those fields are followed: text a guest wrote (an account, a log line, a
    /// file) may look like a hash, but never makes an object part of a node's closure. Roots that
    /// are not nodes (LLM exchanges named by a run log) are included as they are. Missing or
    /// unreadable objects are skipped; `verify` reports them.
    pub fn closure(&self, roots: &[ContentHash]) -> Result<std::collections::BTreeSet<ContentHash>, ArchiveError> {
        let nodes: std::collections::BTreeSet<ContentHash> = self.node_ids()?.into_iter().collect();
        let runs: std::collections::BTreeSet<ContentHash> = self.run_object_ids()?.into_iter().collect();
        let mut seen = std::collections::BTreeSet::new();
        let kind_of = |h: &ContentHash| {
            if nodes.contains(h) {
                Reference::Node
            } else if runs.contains(h) {
                Reference::Run
            } else {
                Reference::Leaf
            }
        };
        let mut queue: Vec<(ContentHash, Reference)> = roots.iter().map(|h| (*h, kind_of(h))).collect();
        while let Some((hash, kind)) = queue.pop() {
            if !self.contains(&hash) || !seen.insert(hash) {
                continue;
            }
            match kind {
                Reference::Node => {
                    if let Ok(node) = self.get_node(&hash) {
                        queue.extend(node_references(&node));
                    }
                }
                Reference::Tree => {
                    if let Ok(entries) = self.get_manifest(&hash) {
                        queue.extend(entries.iter().map(|e| (e.blob, Reference::Leaf)));
                    }
                }
                Reference::Report => {
                    if let Ok(bytes) = self.get_blob(&hash)
                        && let Ok(records) = serde_json::from_slice::<Vec<serde_json::Value>>(&bytes)
                    {
                        for record in &records {
                            queue.extend(hashes(record.get("llm")).map(|h| (h, Reference::Leaf)));
                        }
                    }
                }
                Reference::Run => {
                    if let Ok(object) = self.get_run_object(&hash) {
                        queue.extend(object.nodes.iter().map(|h| (*h, Reference::Node)));
                    }
                }
                Reference::Leaf => {}
            }
        }
        Ok(seen)
    }

    /// Re-hashes every object and checks every node's references.
    pub fn verify(&self) -> Result<VerifyReport, ArchiveError> {
        let mut report = VerifyReport::default();
        let mut all_objects = Vec::new();
        let objects = self.root.join("objects");
        let mut shards: Vec<_> = fs::read_dir(&objects)
            .map_err(io_error(&objects))?
            .collect::<Result<_, _>>()
            .map_err(io_error(&objects))?;
        shards.sort_by_key(|e| e.file_name());
        for shard in shards {
            let shard_name = shard.file_name().to_string_lossy().into_owned();
            let mut files: Vec<_> = fs::read_dir(shard.path())
                .map_err(io_error(&shard.path()))?
                .collect::<Result<_, _>>()
                .map_err(io_error(&shard.path()))?;
            files.sort_by_key(|e| e.file_name());
            for file in files {
                let file_name = file.file_name().to_string_lossy().into_owned();
                if file_name.starts_with('.') && file_name.contains(".tmp-") {
                    // Left by a write that crashed before its rename: never part of the archive.
                    report.stray_temp_files += 1;
                    continue;
                }
                let name = format!("{shard_name}{file_name}");
                let Ok(expected) = name.parse::<ContentHash>() else {
                    report.problems.push(Problem::Unexpected { path: file.path() });
                    continue;
                };
                let bytes = fs::read(file.path()).map_err(io_error(&file.path()))?;
                report.objects_checked += 1;
                all_objects.push(expected);
                let actual = ContentHash::of(&bytes);
                if actual != expected {
                    report.problems.push(Problem::Tampered { object: expected, actual });
                }
            }
        }
        let node_ids = self.node_ids()?;
        for id in &node_ids {
            report.nodes_checked += 1;
            self.check_node(id, &mut report.problems);
        }
        let run_ids = self.run_object_ids()?;
        for id in &run_ids {
            match self.get_run_object(id) {
                Ok(object) => {
                    for node in object.nodes.iter().filter(|n| !node_ids.contains(n)) {
                        report.problems.push(Problem::Missing { object: *node, needed_by: format!("run object {id}") });
                    }
                }
                Err(ArchiveError::Missing(_)) => {
                    report.problems.push(Problem::Missing { object: *id, needed_by: "run marker".into() })
                }
                Err(ArchiveError::BadNode { reason, .. }) => {
                    report.problems.push(Problem::Malformed { object: *id, reason })
                }
                Err(_) => {}
            }
        }
        // Objects nothing refers to: left by an interrupted run or a build outside any node.
        let roots: Vec<ContentHash> = node_ids.iter().chain(&run_ids).copied().collect();
        let reachable = self.closure(&roots)?;
        for object in all_objects {
            if !reachable.contains(&object) {
                report.problems.push(Problem::Orphaned { object });
            }
        }
        Ok(report)
    }

    fn check_node(&self, id: &ContentHash, problems: &mut Vec<Problem>) {
        let node = match self.get_node(id) {
            Ok(node) => node,
            Err(ArchiveError::Missing(_)) => {
                problems.push(Problem::Missing { object: *id, needed_by: "node marker".into() });
                return;
            }
            // A corrupt object is already reported by the re-hash pass.
            Err(ArchiveError::Corrupt { .. }) => return,
            Err(e) => {
                problems.push(Problem::Malformed { object: *id, reason: e.to_string() });
                return;
            }
        };
        let needed_by = format!("node {}", id.short());
        match self.get_manifest(&node.tree) {
            Ok(entries) => {
                for entry in entries {
                    if !self.contains(&entry.blob) {
                        problems.push(Problem::Missing {
                            object: entry.blob,
                            needed_by: format!("{needed_by}, file {}", entry.path),
                        });
                    }
                }
            }
            Err(ArchiveError::Missing(h)) => {
                problems.push(Problem::Missing { object: h, needed_by: format!("{needed_by} (tree)") })
            }
            Err(ArchiveError::Corrupt { .. }) => {}
            Err(e) => problems.push(Problem::Malformed { object: node.tree, reason: e.to_string() }),
        }
        // Everything else the node names: component, parent, report, exchanges, provenance.
        for (hash, kind) in node_references(&node).into_iter().skip(1) {
            if !self.contains(&hash) {
                problems.push(Problem::Missing { object: hash, needed_by: format!("{needed_by} ({kind:?})") });
            }
        }
    }
}

fn manifest_entries(tree: &SourceTree) -> Vec<ManifestEntry> {
    // BTreeMap order over RelPath is byte order of the path strings, which the manifest requires.
    tree.files
        .iter()
        .map(|(path, file): (&RelPath, &TreeFile)| ManifestEntry {
            mode: file.mode,
            blob: ContentHash::of(&file.bytes),
            path: path.clone(),
        })
        .collect()
}

/// What `verify` found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    pub objects_checked: usize,
    pub nodes_checked: usize,
    pub stray_temp_files: usize,
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// An object whose content no longer hashes to its name.
    Tampered { object: ContentHash, actual: ContentHash },
    /// An object something refers to but the store lacks.
    Missing { object: ContentHash, needed_by: String },
    /// An object that exists but cannot be parsed as what refers to it.
    Malformed { object: ContentHash, reason: String },
    /// A file in the object store whose name is not a hash.
    Unexpected { path: PathBuf },
    /// An object no node refers to, directly or through its tree, reports or records.
    Orphaned { object: ContentHash },
    /// A run's log, head or signature does not hold (see `audit::verify_run`).
    Run(String),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Tampered { object, actual } => write!(f, "tampered: object {object} now hashes to {actual}"),
            Problem::Missing { object, needed_by } => write!(f, "missing: object {object}, needed by {needed_by}"),
            Problem::Malformed { object, reason } => write!(f, "malformed: object {object}: {reason}"),
            Problem::Unexpected { path } => write!(f, "unexpected file in the object store: {}", path.display()),
            Problem::Orphaned { object } => write!(f, "orphaned: object {object} is referred to by no node"),
            Problem::Run(problem) => write!(f, "run: {problem}"),
        }
    }
}

/// Pushes every string in `value` that is a content hash.
/// What an object named by a reference is, so that the closure knows what to follow inside it.
#[derive(Debug, Clone, Copy)]
enum Reference {
    Node,
    /// A run object: it names the run's nodes.
    Run,
    Tree,
    /// An evaluation report: its records name LLM exchanges.
    Report,
    /// Anything that names nothing further (file blobs, components, exchanges, provenance).
    Leaf,
}

/// The objects a node names, by the node schema (see ARCHIVE.md); the tree comes first.
fn node_references(node: &Node) -> Vec<(ContentHash, Reference)> {
    let meta = &node.metadata;
    let mut references = vec![(node.tree, Reference::Tree)];
    references.extend(node.component.map(|h| (h, Reference::Leaf)));
    references.extend(node.parent.map(|h| (h, Reference::Node)));
    let at = |key: &str, field: &str| meta.get(key).and_then(|v| v.get(field));
    references.extend(hashes(at("evaluation", "report")).map(|h| (h, Reference::Report)));
    references.extend(hashes(at("meta", "component")).map(|h| (h, Reference::Leaf)));
    references.extend(hashes(meta.get("llm")).map(|h| (h, Reference::Leaf)));
    references.extend(hashes(meta.get("provenance")).map(|h| (h, Reference::Leaf)));
    references
}

/// The hashes in a field that holds one hash or an array of them.
fn hashes(value: Option<&serde_json::Value>) -> impl Iterator<Item = ContentHash> + '_ {
    let items: Vec<&serde_json::Value> = match value {
        Some(serde_json::Value::Array(items)) => items.iter().collect(),
        Some(other) => vec![other],
        None => Vec::new(),
    };
    items.into_iter().filter_map(|v| v.as_str()?.parse().ok())
}
