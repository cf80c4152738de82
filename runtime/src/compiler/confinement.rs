//! The jail that cargo and rustc run in when they build guest source.
//!
//! The source policy keeps build-time code (build scripts, procedural macros, file-reading macros)
//! out of guest trees; the jail is the second wall, for the day a construct slips past the policy
//! or the compiler itself is made to misbehave. Applied in the child between fork and exec, in
//! this order (every step a plain system call, so it is safe in a forked child):
//!
//! 1. rlimits: CPU seconds, address space, file size, process count, no core files;
//! 2. a new network namespace (with a user namespace when the host is not root), so that no
//!    socket reaches any network, UDP included, and for cargo a new mount namespace with its
//!    [`FixedView`]: a private tmpfs over `/tmp` in which the toolchain, the dependencies, the SDK,
//!    the source and the target directory are bound at fixed paths, so that nothing the compiler
//!    can be made to report (`env!`, `file!()`, diagnostics) names a host path;
//! 3. Landlock: the build reads only the toolchain, the vendored dependencies, the agent SDK and
//!    the system's libraries, and writes only its own build directory; it can neither bind nor
//!    connect TCP ports, reach abstract Unix sockets outside the jail, nor signal processes
//!    outside it.
//!
//! Where the kernel has no Landlock, guest source is not built at all unless the user opts out
//! explicitly ([`ConfinementSettings::allow_unconfined`]); the opt-out is logged on every build.
//!
//! Bubblewrap is not used: Landlock forbids mounting, so bubblewrap cannot set up its namespaces
//! inside a Landlock domain, and the namespaces it would add are the ones step 2 creates directly
//! (mounting is done before Landlock is applied).

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, RestrictionStatus, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope, path_beneath_rules,
};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Landlock ABI whose rights the jail asks for (Linux 6.15); older kernels enforce what they
/// know, and the jail records the version it got.
const JAIL_ABI: ABI = ABI::V7;

/// Resource limits of one build process tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildLimits {
    /// CPU seconds per process (rustc is killed with SIGXCPU beyond it).
    pub cpu_seconds: u64,
    /// Address space per process, in bytes.
    pub address_space_bytes: u64,
    /// Largest file a build process may write, in bytes.
    pub file_bytes: u64,
    /// Processes (and threads) the build's user may run; not enforced for root.
    pub processes: u64,
}

impl Default for BuildLimits {
    fn default() -> Self {
        // A cold build of the guest dependencies runs in 2 GiB of address space; 4 GiB stops rustc
        // on a gigabyte static within seconds. No build writes a file near 256 MiB.
        BuildLimits { cpu_seconds: 600, address_space_bytes: 4 << 30, file_bytes: 256 << 20, processes: 4096 }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ConfinementSettings {
    pub limits: BuildLimits,
    /// Build guest source even where the kernel has no Landlock. Never the default.
    pub allow_unconfined: bool,
}

/// What the jail gets from this kernel, found once when the compiler starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jail {
    /// The kernel's Landlock ABI version; `None` when it has none (only with the opt-out).
    pub landlock_abi: Option<u32>,
    pub network: NetworkIsolation,
    pub limits: BuildLimits,
}

/// How a build is cut off from the network (and from the host's paths).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkIsolation {
    /// A new network namespace: no interface but a loopback that is down. Mount namespaces work
    /// too, so builds get their [`FixedView`].
    Namespace { with_user_namespace: bool },
    /// Namespaces are not permitted here; Landlock's TCP rules (and cargo's offline mode) remain.
    LandlockTcpOnly,
}

/// The directories a build may touch.
#[derive(Debug, Clone, Default)]
pub struct JailPaths {
    pub read: Vec<PathBuf>,
    pub read_write: Vec<PathBuf>,
}

/// Where a build's fixed view of the file system is mounted. Every path the compiler sees is
/// under it and the same on every host.
pub const VIEW_ROOT: &str = "/tmp";

/// Host directories a build sees at fixed paths under [`VIEW_ROOT`], in a mount namespace of its
/// own: a private tmpfs is mounted on `staging`, the directories are bound into it, and it is then
/// moved over [`VIEW_ROOT`] (assembled elsewhere first because the host directories may themselves
/// be under `/tmp`). The host's own `/tmp` is not visible to the build.
#[derive(Debug, Clone, Default)]
pub struct FixedView {
    /// An empty host directory that is no ancestor of a bound one.
    pub staging: PathBuf,
    /// (host directory, the absolute path under [`VIEW_ROOT`] it is seen at).
    pub binds: Vec<(PathBuf, PathBuf)>,
    /// The working directory the command starts in, under [`VIEW_ROOT`].
    pub cwd: PathBuf,
}

/// A [`FixedView`] as NUL-terminated strings, prepared in the parent so that the forked child
/// only makes system calls.
struct PreparedView {
    staging: CString,
    /// (host directory, its mount point inside the staging tmpfs).
    binds: Vec<(CString, CString)>,
    /// `None` when the tmpfs is mounted on the root directly.
    root: Option<CString>,
    cwd: CString,
}

fn c_path(path: &Path) -> Result<CString, ConfinementError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| ConfinementError::Setup(format!("{path:?} holds a NUL")))
}

impl PreparedView {
    fn new(view: &FixedView) -> Result<PreparedView, ConfinementError> {
        let mut binds = Vec::new();
        for (host, fixed) in &view.binds {
            let inside =
                fixed.strip_prefix(VIEW_ROOT).ok().filter(|p| p.components().count() == 1).ok_or_else(|| {
                    ConfinementError::Setup(format!(
                        "{} is not a directory directly under {VIEW_ROOT}",
                        fixed.display()
                    ))
                })?;
            binds.push((c_path(host)?, c_path(&view.staging.join(inside))?));
        }
        Ok(PreparedView {
            staging: c_path(&view.staging)?,
            binds,
            root: (view.staging != Path::new(VIEW_ROOT)).then(|| c_path(Path::new(VIEW_ROOT))).transpose()?,
            cwd: c_path(&view.cwd)?,
        })
    }

    /// Runs in the forked child, inside its new mount namespace, before Landlock (which forbids
    /// mounting): only mount, mkdir and chdir on prepared strings.
    fn enter(&self) -> std::io::Result<()> {
        let check = |result: libc::c_int| if result == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) };
        let none = std::ptr::null();
        // SAFETY: every pointer is null or a NUL-terminated string that lives as long as `self`.
        unsafe {
            // Nothing mounted here may propagate back to the host.
            check(libc::mount(none, c"/".as_ptr(), none, libc::MS_REC | libc::MS_PRIVATE, none.cast()))?;
            let options = c"size=64k,nr_inodes=64,mode=0755";
            let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
            check(libc::mount(
                c"tmpfs".as_ptr(),
                self.staging.as_ptr(),
                c"tmpfs".as_ptr(),
                flags,
                options.as_ptr().cast(),
            ))?;
            for (host, inside) in &self.binds {
                check(libc::mkdir(inside.as_ptr(), 0o755))?;
                check(libc::mount(host.as_ptr(), inside.as_ptr(), none, libc::MS_BIND | libc::MS_REC, none.cast()))?;
            }
            if let Some(root) = &self.root {
                check(libc::mount(self.staging.as_ptr(), root.as_ptr(), none, libc::MS_MOVE, none.cast()))?;
            }
            check(libc::chdir(self.cwd.as_ptr()))
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfinementError {
    #[error(
        "this kernel has no Landlock, so guest source cannot be built confined; refusing to build it. \
         Use a kernel with Landlock (Linux 5.13 or later, with `landlock` in the lsm= boot list), or \
         accept unconfined builds explicitly with --allow-unconfined-builds \
         (HYPERAGENT_ALLOW_UNCONFINED_BUILDS=1)"
    )]
    NoLandlock,
    #[error("cannot set up the build jail: {0}")]
    Setup(String),
}

/// The kernel's Landlock ABI version, or `None` when it has none.
pub fn kernel_landlock_abi() -> Option<u32> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a null attribute and size 0 this call only reports the ABI version.
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    (version > 0).then_some(version as u32)
}

impl Jail {
    /// Finds what this kernel offers. Refuses when there is no Landlock, unless opted out.
    pub fn detect(settings: &ConfinementSettings) -> Result<Jail, ConfinementError> {
        let network = if namespaces_work() {
            NetworkIsolation::Namespace { with_user_namespace: !is_root() }
        } else {
            NetworkIsolation::LandlockTcpOnly
        };
        Jail::plan(kernel_landlock_abi(), network, settings)
    }

    /// The decision of [`Jail::detect`], for a given kernel.
    pub fn plan(
        landlock_abi: Option<u32>,
        network: NetworkIsolation,
        settings: &ConfinementSettings,
    ) -> Result<Jail, ConfinementError> {
        if landlock_abi.is_none() && !settings.allow_unconfined {
            return Err(ConfinementError::NoLandlock);
        }
        Ok(Jail { landlock_abi, network, limits: settings.limits })
    }

    /// True when the file system is not confined (the user opted out on a kernel without Landlock).
    pub fn is_unconfined(&self) -> bool {
        self.landlock_abi.is_none()
    }

    /// One line for logs and provenance: what confines a build on this host.
    pub fn describe(&self) -> String {
        let files = match self.landlock_abi {
            Some(abi) => format!("landlock ABI {abi}"),
            None => "UNCONFINED file system (explicit opt-out; this kernel has no Landlock)".into(),
        };
        let network = match self.network {
            NetworkIsolation::Namespace { .. } => "network and mount namespaces (fixed paths)",
            NetworkIsolation::LandlockTcpOnly => {
                "no network or mount namespace (landlock TCP rules only; the compiler sees host paths)"
            }
        };
        let l = &self.limits;
        format!(
            "{files}, {network}, rlimits cpu {} s, address space {} MiB, file size {} MiB, processes {}",
            l.cpu_seconds,
            l.address_space_bytes >> 20,
            l.file_bytes >> 20,
            l.processes
        )
    }

    /// Whether builds get a [`FixedView`] on this host (mount namespaces work).
    pub fn has_fixed_view(&self) -> bool {
        matches!(self.network, NetworkIsolation::Namespace { .. })
    }

    /// Arranges for `command` to run jailed, reaching only `paths`. Call once per command.
    pub fn apply(&self, command: &mut Command, paths: &JailPaths) -> Result<(), ConfinementError> {
        self.apply_with_view(command, paths, None)
    }

    /// [`Jail::apply`], and the command sees `view` in a mount namespace of its own. Only where
    /// [`Jail::has_fixed_view`]; the command's own working directory is ignored for the view's.
    pub fn apply_with_view(
        &self,
        command: &mut Command,
        paths: &JailPaths,
        view: Option<&FixedView>,
    ) -> Result<(), ConfinementError> {
        if view.is_some() && !self.has_fixed_view() {
            return Err(ConfinementError::Setup("mount namespaces are not available on this host".into()));
        }
        // Built here, in the parent: opening the rule paths allocates, which a forked child of a
        // multi-threaded host must not do. The child only calls `landlock_restrict_self`.
        let mut ruleset = match self.landlock_abi {
            Some(_) => Some(ruleset(paths).map_err(|e| ConfinementError::Setup(e.to_string()))?),
            None => None,
        };
        let limits = rlimits(&self.limits);
        let user_namespace = match self.network {
            NetworkIsolation::Namespace { with_user_namespace: true } => Some(UserNamespaceMaps::of_current_user()),
            _ => None,
        };
        let network_namespace = matches!(self.network, NetworkIsolation::Namespace { .. });
        let view = view.map(PreparedView::new).transpose()?;
        let mut flags = libc::CLONE_NEWNET;
        if user_namespace.is_some() {
            flags |= libc::CLONE_NEWUSER;
        }
        if view.is_some() {
            flags |= libc::CLONE_NEWNS;
        }
        // SAFETY: the closure makes only async-signal-safe system calls (setrlimit, unshare,
        // open/write/close, mount/mkdir/chdir on prepared buffers, prctl, landlock_restrict_self)
        // and allocates nothing on its success path.
        unsafe {
            command.pre_exec(move || {
                for (resource, soft, hard) in limits {
                    let limit = libc::rlimit { rlim_cur: soft, rlim_max: hard };
                    if libc::setrlimit(resource, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if network_namespace {
                    if libc::unshare(flags) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    if let Some(maps) = &user_namespace {
                        maps.write()?;
                    }
                    if let Some(view) = &view {
                        view.enter()?;
                    }
                }
                if let Some(ruleset) = ruleset.take() {
                    let status = ruleset.restrict_self().map_err(|_| std::io::Error::from_raw_os_error(libc::EPERM))?;
                    if !landlock_enforced(&status) {
                        return Err(std::io::Error::from_raw_os_error(libc::EPERM));
                    }
                }
                Ok(())
            });
        }
        Ok(())
    }
}

fn landlock_enforced(status: &RestrictionStatus) -> bool {
    matches!(status.ruleset, RulesetStatus::FullyEnforced | RulesetStatus::PartiallyEnforced) && status.no_new_privs
}

/// Every file-system right is handled (so anything not granted is denied), all TCP binds and
/// connects are denied, and abstract Unix sockets and signals stay inside the jail.
fn ruleset(paths: &JailPaths) -> Result<landlock::RulesetCreated, landlock::RulesetError> {
    let read = AccessFs::from_read(JAIL_ABI);
    let all = AccessFs::from_all(JAIL_ABI);
    Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(all)?
        .handle_access(AccessNet::from_all(JAIL_ABI))?
        .scope(Scope::from_all(JAIL_ABI))?
        .create()?
        .add_rules(path_beneath_rules(&paths.read, read))?
        .add_rules(path_beneath_rules(&paths.read_write, all))
}

/// (resource, soft limit, hard limit). The CPU hard limit is a second above the soft one, so that
/// the compiler gets SIGXCPU (which names the cause) before the kernel's SIGKILL.
fn rlimits(limits: &BuildLimits) -> [(libc::__rlimit_resource_t, libc::rlim_t, libc::rlim_t); 5] {
    [
        (libc::RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds + 1),
        (libc::RLIMIT_AS, limits.address_space_bytes, limits.address_space_bytes),
        (libc::RLIMIT_FSIZE, limits.file_bytes, limits.file_bytes),
        (libc::RLIMIT_NPROC, limits.processes, limits.processes),
        (libc::RLIMIT_CORE, 0, 0),
    ]
}

/// A line that says which limit stopped the build, when the compiler's death names one.
pub fn limit_hint(diagnostics: &str, limits: &BuildLimits) -> Option<String> {
    let mib = |bytes: u64| bytes >> 20;
    if diagnostics.contains("SIGXCPU") || diagnostics.contains("signal: 24") {
        Some(format!("the compiler exceeded its CPU time limit of {} s", limits.cpu_seconds))
    } else if diagnostics.contains("SIGXFSZ") || diagnostics.contains("signal: 25") {
        Some(format!("the compiler exceeded its file size limit of {} MiB", mib(limits.file_bytes)))
    } else if ["more memory than available to compiler", "memory allocation of", "LLVM ERROR: out of memory"]
        .iter()
        .any(|sign| diagnostics.contains(sign))
    {
        Some(format!("the compiler reached its address space limit of {} MiB", mib(limits.address_space_bytes)))
    } else {
        None
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Whether this host may create the namespaces a build runs in (network, and mount with a private
/// tmpfs over [`VIEW_ROOT`]): tried once on a short-lived child, since the host itself is
/// multi-threaded and must not unshare.
fn namespaces_work() -> bool {
    let mut probe = Command::new("/bin/sh");
    probe.args(["-c", "exit 0"]).stdin(std::process::Stdio::null());
    let jail = Jail {
        landlock_abi: None,
        network: NetworkIsolation::Namespace { with_user_namespace: !is_root() },
        limits: BuildLimits::default(),
    };
    let view = FixedView { staging: VIEW_ROOT.into(), binds: Vec::new(), cwd: "/".into() };
    if jail.apply_with_view(&mut probe, &JailPaths::default(), Some(&view)).is_err() {
        return false;
    }
    probe.status().map(|s| s.success()).unwrap_or(false)
}

/// The uid and gid maps that keep a non-root build's own identity inside its user namespace (an
/// unmapped user could not create files).
struct UserNamespaceMaps {
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
}

impl UserNamespaceMaps {
    fn of_current_user() -> UserNamespaceMaps {
        // SAFETY: getuid and getgid have no preconditions.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        UserNamespaceMaps {
            uid_map: format!("{uid} {uid} 1\n").into_bytes(),
            gid_map: format!("{gid} {gid} 1\n").into_bytes(),
        }
    }

    /// Runs in the forked child: only open, write and close on prepared buffers.
    fn write(&self) -> std::io::Result<()> {
        write_proc_file(c"/proc/self/setgroups", b"deny")?;
        write_proc_file(c"/proc/self/uid_map", &self.uid_map)?;
        write_proc_file(c"/proc/self/gid_map", &self.gid_map)
    }
}

fn write_proc_file(path: &std::ffi::CStr, contents: &[u8]) -> std::io::Result<()> {
    // SAFETY: `path` is NUL-terminated; `contents` is a live buffer of the given length.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let written = libc::write(fd, contents.as_ptr().cast(), contents.len());
        libc::close(fd);
        if written != contents.len() as isize {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Paths every build reads besides its own: the dynamic loader's libraries and cache, the shell
/// utilities cargo may start, and the devices a process expects.
pub fn system_read_paths() -> Vec<PathBuf> {
    ["/usr", "/lib", "/lib64", "/bin", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d"]
        .into_iter()
        .map(PathBuf::from)
        .collect()
}

/// Devices a build may read and write.
pub fn system_device_paths() -> Vec<PathBuf> {
    ["/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"].into_iter().map(PathBuf::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_shows_what_is_bound_at_fixed_paths_and_hides_the_host_tmp() {
        let jail = Jail::detect(&ConfinementSettings::default()).unwrap();
        assert!(jail.has_fixed_view(), "this host cannot make mount namespaces: {}", jail.describe());
        // Under the host's /tmp as a rule, which the view then covers: the staging step matters.
        let dir = tempfile::tempdir().unwrap();
        for sub in ["staging", "data"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        std::fs::write(dir.path().join("data/f.txt"), "bound").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "host").unwrap();
        let view = FixedView {
            staging: dir.path().join("staging"),
            binds: vec![(dir.path().join("data"), "/tmp/data".into())],
            cwd: "/tmp/data".into(),
        };
        let mut read = system_read_paths();
        read.push(dir.path().join("data"));
        let paths = JailPaths { read, read_write: system_device_paths() };
        let secret = dir.path().join("secret.txt");
        let script = format!("pwd; cat f.txt; echo; test -e {} && echo visible || echo hidden", secret.display());
        let mut command = Command::new("/bin/sh");
        command.args(["-c", &script]).env_clear();
        jail.apply_with_view(&mut command, &paths, Some(&view)).unwrap();
        let output = command.output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(stdout, "/tmp/data\nbound\nhidden\n", "{}", String::from_utf8_lossy(&output.stderr));
        // The control: without the view, the same jail lets the shell see the file exists.
        let mut command = Command::new("/bin/sh");
        command.args(["-c", &script]).env_clear().current_dir("/");
        jail.apply(&mut command, &paths).unwrap();
        let output = command.output().unwrap();
        assert!(String::from_utf8_lossy(&output.stdout).ends_with("visible\n"));
    }
}
