//! Running cargo on one build slot: the tree written into the slot, the command in the jail with
//! its fixed environment and view, a timeout that kills the whole process group, and the host
//! paths redacted from what cargo said.

use super::*;
use std::io::Read;
use std::os::unix::process::CommandExt;

impl GuestCompiler {
    pub(super) fn run_cargo(
        &self,
        tree: &SourceTree,
        tree_hash: &ContentHash,
        archive: &Archive,
        started: Instant,
    ) -> Result<BuildOutcome, CompileError> {
        let lock = self.lock_build_dir()?;
        self.vendor_dependencies()?;
        self.warm_dependencies()?;
        let package = format!("hyperagent-guest-{}", &tree_hash.to_hex()[..16]);
        let host = self.host_layout(&package)?;
        let seen = if self.jail.has_fixed_view() { BuildLayout::fixed(&package) } else { host.clone() };
        self.write_slot(tree, &package, &host, &seen)?;
        let command = self.cargo_command(&host, &seen, &["build"])?;
        let run = run_with_timeout(command, self.settings.timeout)?;

        let mut diagnostics = diagnostics::redact(&run.stderr, &self.redactions(&host, &seen));
        if let Some(hint) = confinement::limit_hint(&diagnostics, &self.jail.limits) {
            diagnostics = format!("{hint}\n{diagnostics}");
        }
        let artifact_name = package.replace('-', "_");
        let release = host.target.join(GUEST_TARGET).join("release");
        let duration = started.elapsed();
        let outcome = if run.timed_out {
            let limit = self.settings.timeout.as_secs();
            let diagnostics = format!("the build did not finish within {limit} s and was killed\n{diagnostics}");
            BuildOutcome::Failed { tree: *tree_hash, diagnostics, duration }
        } else if !run.success {
            BuildOutcome::Failed { tree: *tree_hash, diagnostics, duration }
        } else {
            let wasm_path = release.join(format!("{artifact_name}.wasm"));
            let wasm = fs::read(&wasm_path).map_err(io_error(&wasm_path))?;
            let component = archive.put_blob(&wasm)?;
            BuildOutcome::Built { tree: *tree_hash, component, cached: false, duration, warnings: diagnostics }
        };
        remove_package(&host, &package);
        drop(lock);
        Ok(outcome)
    }

    /// Compiles the template's dependencies, once per target directory and build environment,
    /// before any guest's own build is timed. A cold target directory's first build compiles
    /// every dependency, which takes minutes on a loaded machine; under the guest's timeout, a
    /// child's outcome would depend on whether its build happened to be the first. The host's
    /// own build of an empty crate does it instead, under [`COLD_BUILD_TIMEOUT`]. Runs under the
    /// caller's lock on the build directory.
    fn warm_dependencies(&self) -> Result<(), CompileError> {
        let marker = self.cargo_target_dir().join(format!("hyperagent-warm-{}", &self.environment_key.to_hex()[..16]));
        if marker.exists() {
            return Ok(());
        }
        let package = "hyperagent-guest-dependencies";
        let mut tree = SourceTree::default();
        tree.insert("src/lib.rs", "// The host's build of the dependencies alone.\n").expect("a valid path");
        let host = self.host_layout(package)?;
        let seen = if self.jail.has_fixed_view() { BuildLayout::fixed(package) } else { host.clone() };
        self.write_slot(&tree, package, &host, &seen)?;
        let command = self.cargo_command(&host, &seen, &["build"])?;
        let run = run_with_timeout(command, COLD_BUILD_TIMEOUT)?;
        remove_package(&host, package);
        if run.timed_out {
            // Not marked: the next build tries again, and a guest's build is never charged for it.
            return Err(CompileError::Vendor(format!(
                "the guest dependencies did not build within {} s",
                COLD_BUILD_TIMEOUT.as_secs()
            )));
        }
        if run.success {
            write_atomic(&marker, b"").map_err(io_error(&marker))?;
        }
        // Otherwise (a build limit, a broken dependency) the guest's build goes on as it would
        // without this step, and meets the same failure with its own diagnostics.
        Ok(())
    }

    /// The build's directories on the host, created where missing (the slot itself is not).
    pub(super) fn host_layout(&self, package: &str) -> Result<BuildLayout, CompileError> {
        let target = self.cargo_target_dir();
        let layout = BuildLayout {
            slots: target.join("hyperagent-slots"),
            slot: target.join("hyperagent-slots").join(package),
            cargo_home: target.join("cargo-home"),
            tmp: target.join("tmp"),
            target,
            vendor: self.vendor_dir(),
            sdk: fs::canonicalize(&self.settings.sdk_dir).map_err(io_error(&self.settings.sdk_dir))?,
            sysroot: self.toolchain.sysroot.clone(),
        };
        for dir in [&layout.target, &layout.cargo_home, &layout.tmp, &layout.slots, &self.view_staging()] {
            fs::create_dir_all(dir).map_err(io_error(dir))?;
        }
        Ok(layout)
    }

    /// The empty host directory the jail assembles a build's fixed view on.
    pub(super) fn view_staging(&self) -> PathBuf {
        self.settings.target_dir.join("view")
    }

    /// Writes the tree into its slot with the host's manifest and lock file; the manifest names
    /// the SDK where the build sees it.
    pub(super) fn write_slot(
        &self,
        tree: &SourceTree,
        package: &str,
        host: &BuildLayout,
        seen: &BuildLayout,
    ) -> Result<(), CompileError> {
        let slot = &host.slot;
        if slot.exists() {
            fs::remove_dir_all(slot).map_err(io_error(slot))?;
        }
        let mut guest_files = tree.clone();
        guest_files.files.remove(&RelPath::new("Cargo.toml").expect("valid path"));
        guest_files.write_to(slot).map_err(io_error(slot))?;
        let manifest = self
            .template_manifest
            .replace(TEMPLATE_PACKAGE, package)
            .replace(TEMPLATE_SDK_PATH, &format!("path = {:?}", seen.sdk.display().to_string()));
        let lock_file =
            self.template_lock.replace(&format!("name = \"{TEMPLATE_PACKAGE}\""), &format!("name = \"{package}\""));
        fs::write(slot.join("Cargo.toml"), manifest).map_err(io_error(slot))?;
        fs::write(slot.join("Cargo.lock"), lock_file).map_err(io_error(slot))?;
        Ok(())
    }

    /// cargo `subcommand` (`build`, or `test --no-run ...`), jailed, with a fixed environment that
    /// names only the paths in `seen`.
    pub(super) fn cargo_command(
        &self,
        host: &BuildLayout,
        seen: &BuildLayout,
        subcommand: &[&str],
    ) -> Result<Command, CompileError> {
        // Remapping keeps the build's paths out of the component; the flags are the same for every
        // build, so the dependencies in the shared target directory stay fresh.
        let rustflags = [
            GUEST_CODEGEN_FLAGS.to_owned(),
            format!("--remap-path-prefix={}=/build", seen.slots.display()),
            format!("--remap-path-prefix={}=/sdk", seen.sdk.display()),
            format!("--remap-path-prefix={}=/registry", seen.vendor.display()),
        ]
        .join("\u{1f}");
        let bin = seen.sysroot.join("bin");
        let mut command = Command::new(bin.join("cargo"));
        command
            .args(subcommand)
            .args(["--release", "--offline", "--locked", "--target", GUEST_TARGET, "--color", "never"])
            // Dependencies come from the vendored copy, never from the user's cargo home.
            .args(["--config", "source.crates-io.replace-with=\"vendored\""])
            .arg("--config")
            .arg(format!("source.vendored.directory={:?}", seen.vendor.display().to_string()))
            .arg("--manifest-path")
            .arg(seen.slot.join("Cargo.toml"))
            .current_dir(&host.slot)
            .env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("HOME", &seen.slot)
            .env("CARGO_HOME", &seen.cargo_home)
            .env("CARGO_TARGET_DIR", &seen.target)
            .env("TMPDIR", &seen.tmp)
            .env("RUSTC", bin.join("rustc"))
            .env("CARGO_ENCODED_RUSTFLAGS", rustflags)
            .env("CARGO_TERM_COLOR", "never")
            .env("CARGO_NET_OFFLINE", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // A new process group, so that a timeout kills cargo, rustc and anything they started.
        command.process_group(0);
        // Landlock rules name the host's directories; the view shows the same ones elsewhere. The
        // slots are read through the view, so their own rule is read-only.
        let mut read = vec![host.sysroot.clone(), host.vendor.clone(), host.sdk.clone(), host.slots.clone()];
        read.extend(confinement::system_read_paths());
        let mut read_write = vec![host.target.clone()];
        read_write.extend(confinement::system_device_paths());
        let view = self.jail.has_fixed_view().then(|| FixedView {
            staging: self.view_staging(),
            binds: vec![
                (host.sysroot.clone(), seen.sysroot.clone()),
                (host.vendor.clone(), seen.vendor.clone()),
                (host.sdk.clone(), seen.sdk.clone()),
                (host.slots.clone(), seen.slots.clone()),
                (host.target.clone(), seen.target.clone()),
            ],
            cwd: seen.slot.clone(),
        });
        self.jail.apply_with_view(&mut command, &JailPaths { read, read_write }, view.as_ref())?;
        Ok(command)
    }

    /// Paths in diagnostics, as the host and as the build know them, and what they become.
    pub(super) fn redactions(&self, host: &BuildLayout, seen: &BuildLayout) -> Vec<(String, &'static str)> {
        let mut pairs = Vec::new();
        for layout in [host, seen] {
            pairs.extend([
                (layout.slot.display().to_string(), "/repo"),
                (layout.sdk.display().to_string(), "<agent-sdk>"),
                (layout.vendor.display().to_string(), "<registry>"),
                (layout.sysroot.display().to_string(), "<toolchain>"),
                (layout.target.display().to_string(), "<target>"),
            ]);
        }
        pairs.push((self.settings.target_dir.display().to_string(), "<target>"));
        pairs
    }
}

/// Wall-clock limit on the host's build of the dependencies in a cold target directory.
const COLD_BUILD_TIMEOUT: Duration = Duration::from_secs(1800);

/// Removes a package's slot and artifacts: each tree has its own package, so they are never
/// reused, and the shared target directory must not grow with every generation.
fn remove_package(host: &BuildLayout, package: &str) {
    let artifact_name = package.replace('-', "_");
    let release = host.target.join(GUEST_TARGET).join("release");
    let _ = fs::remove_dir_all(&host.slot);
    remove_matching(&release, &[&format!("{artifact_name}.")]);
    remove_matching(&release.join("deps"), &[&format!("{artifact_name}-"), &format!("{artifact_name}.")]);
    remove_matching(&release.join(".fingerprint"), &[&format!("{package}-")]);
    remove_matching(&release.join("incremental"), &[&format!("{artifact_name}-")]);
}

/// The directories of one build. The host's own, or the fixed ones the build sees them as in the
/// jail's view (`/tmp/...`, the same on every host), which are also the only paths cargo's
/// environment names.
#[derive(Debug, Clone)]
pub(super) struct BuildLayout {
    /// The directory holding the build slots, and this build's slot in it.
    pub(super) slots: PathBuf,
    pub(super) slot: PathBuf,
    /// cargo's target directory, its home and its temporary directory.
    pub(super) target: PathBuf,
    pub(super) cargo_home: PathBuf,
    pub(super) tmp: PathBuf,
    pub(super) vendor: PathBuf,
    pub(super) sdk: PathBuf,
    pub(super) sysroot: PathBuf,
}

impl BuildLayout {
    pub(super) fn fixed(package: &str) -> BuildLayout {
        let root = Path::new(confinement::VIEW_ROOT);
        BuildLayout {
            slots: root.join("build"),
            slot: root.join("build").join(package),
            target: root.join("target"),
            cargo_home: root.join("target/cargo-home"),
            tmp: root.join("target/tmp"),
            vendor: root.join("registry"),
            sdk: root.join("agent-sdk"),
            sysroot: root.join("toolchain"),
        }
    }
}

pub(super) struct CargoRun {
    pub(super) success: bool,
    pub(super) timed_out: bool,
    pub(super) stdout: String,
    pub(super) stderr: String,
}

/// Runs the command, reading its output on threads (so a chatty build cannot block on a full
/// pipe), and kills its whole process group when the timeout passes.
pub(super) fn run_with_timeout(mut command: Command, timeout: Duration) -> Result<CargoRun, CompileError> {
    let mut child = command.spawn().map_err(CompileError::Spawn)?;
    let reader = |stream: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            if let Some(mut stream) = stream {
                let mut buffer = [0u8; 8192];
                while let Ok(n) = stream.read(&mut buffer) {
                    if n == 0 {
                        break;
                    }
                    let room = MAX_CARGO_OUTPUT_BYTES.saturating_sub(kept.len());
                    kept.extend_from_slice(&buffer[..n.min(room)]);
                }
            }
            kept
        })
    };
    let stdout = reader(child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    let stderr = reader(child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(CompileError::Spawn)? {
            break status;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            // SAFETY: kill(2) with a negative pid signals the process group we created for the
            // child; it has no memory-safety preconditions.
            unsafe {
                libc::kill(-(child.id() as i32), libc::SIGKILL);
            }
            break child.wait().map_err(CompileError::Spawn)?;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    Ok(CargoRun {
        success: status.success() && !timed_out,
        timed_out,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}
