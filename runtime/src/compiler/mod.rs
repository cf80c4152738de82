//! The guest compiler: turns a hyperagent's source tree into a WebAssembly component.
//!
//! 1. The tree is checked against the [`policy`]; a refused tree is never handed to cargo.
//! 2. The build is looked up by its key (tree hash, toolchain, build template, SDK sources); a hit
//!    returns the archived component without running cargo.
//! 3. Otherwise the tree is written into a build slot with the host's own `Cargo.toml` (named
//!    after the tree hash, so two trees never share an artifact) and `Cargo.lock`, and cargo
//!    builds it offline and locked, in release mode, with a fixed environment, a timeout that
//!    kills the whole process group, and a persistent target directory shared by all builds,
//!    inside the [`confinement`] jail (Landlock, network and mount namespaces, rlimits). In the
//!    jail's mount namespace the build sees every directory at a fixed path under `/tmp`
//!    ([`confinement::FixedView`]), so its environment, `file!()` and its diagnostics name no host
//!    path and are the same on every host.
//! 4. The component goes into the archive; diagnostics handed back are bounded and redacted.
//!
//! The guest build directory (`target_dir`) holds `vendor/`, the template's dependencies unpacked
//! by the host (read-only to builds), and `target/`, cargo's target directory with the build
//! slots and cargo's private home (the only place a build may write).

mod cargo;
pub mod confinement;
pub mod diagnostics;
pub mod exercise;
pub mod policy;
pub mod toolchain;

use crate::archive::{Archive, ArchiveError};
use crate::fsutil::write_atomic;
use crate::hash::ContentHash;
use crate::source_tree::{RelPath, SourceTree, TreeLimits};
use cargo::{BuildLayout, run_with_timeout};
use confinement::{ConfinementError, ConfinementSettings, FixedView, Jail, JailPaths};
use policy::{SourcePolicy, Violation};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
pub use toolchain::{GUEST_TARGET, Toolchain, ToolchainError};

/// Name of the package in the build template; replaced by a per-tree name in every build.
const TEMPLATE_PACKAGE: &str = "hyperagent-guest-0000000000000000";
/// The SDK path as the template writes it; replaced by the absolute path of the SDK.
const TEMPLATE_SDK_PATH: &str = "path = \"../../agent-sdk\"";
/// Code generation flags of every guest build. 128-bit SIMD lets loops vectorise as they do
/// natively; wasmtime runs it deterministically (NaNs canonicalised, relaxed SIMD deterministic).
/// Part of the build key: changing them rebuilds everything.
const GUEST_CODEGEN_FLAGS: &str = "-Ctarget-feature=+simd128";
/// Largest compiler output read from cargo, in bytes (the rest is discarded).
const MAX_CARGO_OUTPUT_BYTES: usize = 1 << 20;

/// Where the compiler finds what it needs and keeps what it makes.
#[derive(Debug, Clone)]
pub struct CompilerSettings {
    /// The agent-sdk crate every hyperagent depends on.
    pub sdk_dir: PathBuf,
    /// The build template: a `Cargo.toml` and `Cargo.lock` (see `guest-agents/build-template`).
    pub template_dir: PathBuf,
    /// The crates coding exercises may depend on: a `Cargo.toml` and `Cargo.lock` (see
    /// `guest-agents/exercise-deps`), vendored beside the template's on first use.
    pub exercise_deps_dir: PathBuf,
    /// Persistent guest build directory shared by all guest builds (vendored dependencies and
    /// cargo's target directory).
    pub target_dir: PathBuf,
    /// Build-key → component index.
    pub cache_dir: PathBuf,
    /// Wall-clock limit on one cargo run.
    pub timeout: Duration,
    pub tree_limits: TreeLimits,
    pub confinement: ConfinementSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error(transparent)]
    Toolchain(#[from] ToolchainError),
    #[error("cannot read the build template in {path}: {reason}")]
    Template { path: PathBuf, reason: String },
    #[error("build I/O on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("cannot fetch the guest dependencies pinned in the build template (is crates.io reachable?): {0}")]
    Fetch(String),
    #[error("cannot vendor the guest dependencies: {0}")]
    Vendor(String),
    #[error("cargo could not be started: {0}")]
    Spawn(std::io::Error),
    #[error(transparent)]
    Confinement(#[from] ConfinementError),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> CompileError + '_ {
    move |source| CompileError::Io { path: path.to_path_buf(), source }
}

/// The result of building one tree.
#[derive(Debug, Clone)]
pub enum BuildOutcome {
    /// The component is in the archive under `component`.
    Built { tree: ContentHash, component: ContentHash, cached: bool, duration: Duration, warnings: String },
    /// The source policy refused the tree; cargo never ran.
    Rejected { tree: ContentHash, violations: Vec<Violation> },
    /// cargo ran and failed (or timed out); `diagnostics` is bounded and redacted.
    Failed { tree: ContentHash, diagnostics: String, duration: Duration },
}

impl BuildOutcome {
    pub fn component(&self) -> Option<ContentHash> {
        match self {
            BuildOutcome::Built { component, .. } => Some(*component),
            _ => None,
        }
    }
}

pub struct GuestCompiler {
    settings: CompilerSettings,
    toolchain: Toolchain,
    jail: Jail,
    policy: SourcePolicy,
    template_manifest: String,
    template_lock: String,
    /// Hash of everything besides the tree that decides the build's output.
    environment_key: ContentHash,
    sdk_version: String,
}

impl GuestCompiler {
    pub fn new(settings: CompilerSettings) -> Result<GuestCompiler, CompileError> {
        let toolchain = Toolchain::discover()?;
        let jail = Jail::detect(&settings.confinement)?;
        if jail.is_unconfined() {
            eprintln!(
                "WARNING: guest source will be built WITHOUT a file-system jail: this kernel has no Landlock \
                 and unconfined builds were allowed explicitly. A hostile guest tree that gets past the \
                 source policy can read and write whatever this user can."
            );
        }
        let read = |name: &str| {
            let path = settings.template_dir.join(name);
            fs::read_to_string(&path).map_err(|e| CompileError::Template { path, reason: e.to_string() })
        };
        let template_manifest = read("Cargo.toml")?;
        let template_lock = read("Cargo.lock")?;
        for (needle, file) in [(TEMPLATE_PACKAGE, "Cargo.toml"), (TEMPLATE_SDK_PATH, "Cargo.toml")] {
            if !template_manifest.contains(needle) {
                return Err(CompileError::Template {
                    path: settings.template_dir.join(file),
                    reason: format!("it does not contain `{needle}`"),
                });
            }
        }
        let policy = SourcePolicy::from_template(&template_manifest)
            .map_err(|reason| CompileError::Template { path: settings.template_dir.join("Cargo.toml"), reason })?;
        // v3: builds see fixed paths and a fixed environment in the jail's view (what `env!` and
        // `file!()` give a tree that gets past the policy); without the view they see the host's.
        let mut key = blake3::Hasher::new_derive_key("hyperagent guest build environment v3");
        key.update(if jail.has_fixed_view() { "fixed view" } else { "host paths" }.as_bytes());
        key.update(toolchain.rustc_version.as_bytes());
        key.update(GUEST_CODEGEN_FLAGS.as_bytes());
        key.update(template_manifest.as_bytes());
        key.update(template_lock.as_bytes());
        // The SDK's manifest, sources and WIT decide the build; anything else in its directory
        // (a target/ of a local build, say) does not.
        let sdk_limits =
            TreeLimits { max_files: 1024, max_total_bytes: 16 << 20, max_file_bytes: 4 << 20, max_depth: 16 };
        for part in ["Cargo.toml", "src", "wit"] {
            let path = settings.sdk_dir.join(part);
            let sdk_err = |reason: String| CompileError::Template { path: path.clone(), reason };
            if part == "Cargo.toml" {
                key.update(&fs::read(&path).map_err(|e| sdk_err(e.to_string()))?);
                continue;
            }
            let tree = SourceTree::read_dir(&path, &sdk_limits).map_err(|e| sdk_err(e.to_string()))?;
            for (file, contents) in &tree.files {
                key.update(part.as_bytes());
                key.update(file.as_str().as_bytes());
                key.update(&[0]);
                key.update(ContentHash::of(&contents.bytes).as_bytes());
            }
        }
        let environment_key = ContentHash::from_blake3(key.finalize());
        let sdk_version = fs::read_to_string(settings.sdk_dir.join("Cargo.toml"))
            .ok()
            .and_then(|text| text.parse::<toml::Table>().ok())
            .and_then(|t| t.get("package")?.get("version")?.as_str().map(str::to_owned))
            .unwrap_or_default();
        Ok(GuestCompiler {
            settings,
            toolchain,
            jail,
            policy,
            template_manifest,
            template_lock,
            environment_key,
            sdk_version,
        })
    }

    /// Downloads the dependencies pinned by the build template into cargo's registry cache and
    /// unpacks them into the build directory's `vendor/`, where jailed builds read them offline.
    /// The template is the host's own, so this is the one cargo run allowed to use the network
    /// (and to run unjailed); when everything is there already it does nothing.
    pub fn fetch_dependencies(&self) -> Result<(), CompileError> {
        let _lock = self.lock_build_dir()?;
        self.vendor_dependencies()
    }

    /// One build at a time per build directory: cargo would serialise anyway, and this keeps slot
    /// cleanup and vendoring from racing another process.
    fn lock_build_dir(&self) -> Result<fs::File, CompileError> {
        let root = &self.settings.target_dir;
        fs::create_dir_all(root).map_err(io_error(root))?;
        let lock_path = root.join("hyperagent-build.lock");
        let lock = fs::File::create(&lock_path).map_err(io_error(&lock_path))?;
        lock.lock().map_err(io_error(&lock_path))?;
        Ok(lock)
    }

    /// Fetches and vendors the template's dependencies, holding the build directory's lock.
    fn vendor_dependencies(&self) -> Result<(), CompileError> {
        self.vendor_manifest(&self.settings.template_dir, &self.vendor_dir())
    }

    /// Fetches the dependencies the lock file in `manifest_dir` pins and unpacks them into
    /// `vendor` (nothing when it is there already), holding the build directory's lock.
    fn vendor_manifest(&self, manifest_dir: &Path, vendor: &Path) -> Result<(), CompileError> {
        if vendor.is_dir() {
            return Ok(());
        }
        let cargo = |args: &[&str]| {
            Command::new(&self.toolchain.cargo)
                .args(args)
                .arg("--manifest-path")
                .arg(manifest_dir.join("Cargo.toml"))
                .env("RUSTC", &self.toolchain.rustc)
                .env("CARGO_HOME", &self.toolchain.cargo_home)
                .stdin(Stdio::null())
                .output()
                .map_err(CompileError::Spawn)
        };
        let fetched = cargo(&["fetch", "--locked", "--color", "never"])?;
        if !fetched.status.success() {
            return Err(CompileError::Fetch(String::from_utf8_lossy(&fetched.stderr).trim().to_owned()));
        }
        // Unpacked beside its final place, then renamed: a crash leaves no half-vendored directory.
        let partial = vendor.with_extension("partial");
        if partial.exists() {
            fs::remove_dir_all(&partial).map_err(io_error(&partial))?;
        }
        fs::create_dir_all(vendor.parent().expect("vendor has a parent")).map_err(io_error(vendor))?;
        let partial_arg = partial.to_string_lossy().into_owned();
        let vendored =
            cargo(&["vendor", "--offline", "--locked", "--versioned-dirs", "--color", "never", &partial_arg])?;
        if !vendored.status.success() {
            return Err(CompileError::Vendor(String::from_utf8_lossy(&vendored.stderr).trim().to_owned()));
        }
        fs::rename(&partial, vendor).map_err(io_error(vendor))?;
        Ok(())
    }

    /// The template's dependencies, unpacked; named after the lock file, so a new lock vendors anew.
    fn vendor_dir(&self) -> PathBuf {
        vendor_dir_for(&self.settings.target_dir, &self.template_lock)
    }

    /// cargo's target directory, inside the build directory: the only place a build writes.
    fn cargo_target_dir(&self) -> PathBuf {
        self.settings.target_dir.join("target")
    }

    /// What confines a build on this host, in words (for logs and provenance).
    pub fn confinement(&self) -> String {
        self.jail.describe()
    }

    pub fn toolchain(&self) -> &Toolchain {
        &self.toolchain
    }

    pub fn policy(&self) -> &SourcePolicy {
        &self.policy
    }

    /// The host's cache directory (build index, reward builds).
    pub fn cache_dir(&self) -> &Path {
        &self.settings.cache_dir
    }

    pub fn tree_limits(&self) -> &TreeLimits {
        &self.settings.tree_limits
    }

    /// The build template's manifest: the `Cargo.toml` of every tree the host assembles itself.
    pub fn template_manifest(&self) -> &str {
        &self.template_manifest
    }

    /// The agent-sdk version guests are built against.
    pub fn sdk_version(&self) -> &str {
        &self.sdk_version
    }

    /// Builds a tree with cargo even when the build index knows it (for audits).
    pub fn rebuild(&self, tree: &SourceTree, archive: &Archive) -> Result<BuildOutcome, CompileError> {
        self.build_tree(tree, archive, false)
    }

    /// Hash of the toolchain, template and SDK: equal keys and equal trees give equal builds.
    pub fn environment_key(&self) -> ContentHash {
        self.environment_key
    }

    /// Reads a directory as a tree and builds it.
    pub fn build_dir(&self, dir: &Path, archive: &Archive) -> Result<BuildOutcome, CompileError> {
        match SourceTree::read_dir(dir, &self.settings.tree_limits) {
            Ok(tree) => self.build(&tree, archive),
            Err(crate::source_tree::TreeError::Io { path, source }) => {
                Err(CompileError::Io { path: path.into(), source })
            }
            Err(e) => {
                use crate::source_tree::TreeError;
                let violation = match e {
                    TreeError::Symlink(path) => Violation::Symlink { path },
                    TreeError::FileTooLarge { path, bytes, limit } => {
                        Violation::FileTooLarge { path, bytes: bytes as usize, limit: limit as usize }
                    }
                    TreeError::NonUtf8Name(path) => Violation::NotUtf8 { path },
                    other => Violation::BadTree { reason: other.to_string() },
                };
                // The tree could not be read whole, so it has no hash; the empty tree stands in.
                let empty = archive.put_tree(&SourceTree::default())?;
                Ok(BuildOutcome::Rejected { tree: empty, violations: vec![violation] })
            }
        }
    }

    /// Checks, then builds (or finds the cached build of) a tree; the tree and the component are
    /// stored in `archive`.
    pub fn build(&self, tree: &SourceTree, archive: &Archive) -> Result<BuildOutcome, CompileError> {
        self.build_tree(tree, archive, true)
    }

    fn build_tree(&self, tree: &SourceTree, archive: &Archive, use_index: bool) -> Result<BuildOutcome, CompileError> {
        let tree_hash = archive.put_tree(tree)?;
        let violations = self.policy.check(tree);
        if !violations.is_empty() {
            return Ok(BuildOutcome::Rejected { tree: tree_hash, violations });
        }
        let started = Instant::now();
        let index_path = self.index_path(&tree_hash);
        if use_index
            && let Ok(text) = fs::read_to_string(&index_path)
            && let Ok(component) = text.trim().parse::<ContentHash>()
            && archive.contains(&component)
        {
            return Ok(BuildOutcome::Built {
                tree: tree_hash,
                component,
                cached: true,
                duration: started.elapsed(),
                warnings: String::new(),
            });
        }
        let outcome = self.run_cargo(tree, &tree_hash, archive, started)?;
        if let BuildOutcome::Built { component, .. } = &outcome {
            write_atomic(&index_path, component.to_hex().as_bytes()).map_err(io_error(&index_path))?;
        }
        Ok(outcome)
    }

    fn index_path(&self, tree: &ContentHash) -> PathBuf {
        let mut key = blake3::Hasher::new_derive_key("hyperagent guest build key v1");
        key.update(self.environment_key.as_bytes());
        key.update(tree.as_bytes());
        self.settings.cache_dir.join("builds").join(key.finalize().to_hex().as_str())
    }
}

/// Where the dependencies a lock file pins are unpacked: named after the lock's hash.
fn vendor_dir_for(target_dir: &Path, lock: &str) -> PathBuf {
    let lock = ContentHash::of(lock.as_bytes()).to_hex();
    target_dir.join("vendor").join(&lock[..16])
}

fn remove_matching(dir: &Path, prefixes: &[&str]) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if prefixes.iter().any(|p| name.starts_with(p)) {
            let path = entry.path();
            let _ = if path.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
        }
    }
}
