//! Runs an exercise's test binaries as WASI commands: deterministic (virtual clocks, seeded
//! randomness, NaN canonicalisation), fuel-metered, memory-capped, epoch-interruptible, with
//! nothing granted but arguments, bounded output pipes and, when given, a fresh working directory
//! per run, measured at every epoch tick ([`super::workdir`]): no environment, no network.
//!
//! A test that fails panics, and a panic aborts a wasm program (no unwinding), so one binary run
//! would stop at the first failure. Instead the binary lists its tests (`--list`) and each test
//! runs alone in a fresh instance (`<name> --exact --include-ignored --nocapture`), all from one
//! pre-instantiated component. A binary's tests share its fuel budget.

use super::workdir::{Usage, WorkDir};
use crate::sandbox::imports;
use crate::sandbox::limits::MemoryLimiter;
use std::path::{Path, PathBuf};
use std::time::Duration;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store, Trap, UpdateDeadline};
use wasmtime_wasi::p2::bindings::sync::CommandPre;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx, WasiCtxView, WasiView};

/// What one test binary may use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestLimits {
    /// Fuel for all of a binary's runs (its listing included).
    pub fuel_per_binary: u64,
    /// Cap on linear memory per run, bytes.
    pub memory_bytes: u64,
    /// Wall-clock backstop per run; fuel is the budget, this only catches what fuel cannot.
    pub deadline: Duration,
    /// Bytes a run may write to stdout and to stderr, each; a write beyond it ends the run.
    pub output_bytes: usize,
    /// Tests run from one binary at most.
    pub max_tests: usize,
    /// What a run's working directory may hold: bytes of files, and entries.
    pub workdir_bytes: u64,
    pub workdir_entries: u64,
}

impl Default for TestLimits {
    /// 5·10¹⁰ fuel per binary (alphametics' reference solution needs up to 3·10¹⁰), 256 MiB, 1 MiB
    /// of output, 500 tests, a working directory of 16 MiB in 256 entries (grep's tests write a few
    /// files of a few hundred bytes). The deadline, 300 s per run, sits far past what the fuel buys
    /// (a tight loop burns 5·10¹⁰ in about a minute on a loaded core), so that fuel, which is
    /// deterministic, ends a run, and never the machine's load.
    fn default() -> Self {
        TestLimits {
            fuel_per_binary: 50_000_000_000,
            memory_bytes: 256 << 20,
            deadline: Duration::from_secs(300),
            output_bytes: 1 << 20,
            max_tests: 500,
            workdir_bytes: 16 << 20,
            workdir_entries: 256,
        }
    }
}

/// How one test ended.
#[derive(Debug, Clone, PartialEq)]
pub struct TestOutcome {
    pub name: String,
    pub passed: bool,
    /// Why it failed: the end of its output, or the trap (empty when it passed).
    pub failure: String,
}

/// What running one binary gave.
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryRun {
    pub binary: String,
    pub tests: Vec<TestOutcome>,
    /// Set when the binary could not be run or listed at all (then no test passed).
    pub error: Option<String>,
    pub fuel: u64,
}

/// Longest failure text kept per test, bytes.
const MAX_FAILURE_BYTES: usize = 2048;
const EPOCH_TICK: Duration = Duration::from_millis(10);

struct RunState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Compiles test binaries and runs their tests.
pub struct TestRunner {
    engine: Engine,
    linker: Linker<RunState>,
}

/// How one run of a binary ended.
struct Run {
    exit: Result<i32, String>,
    stdout: String,
    stderr: String,
    fuel: u64,
}

impl TestRunner {
    pub fn new() -> Result<TestRunner, String> {
        let engine =
            crate::sandbox::virtual_env::bare_engine(EPOCH_TICK).map_err(|e| format!("the test engine: {e}"))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| format!("cannot link WASI: {e:#}"))?;
        Ok(TestRunner { engine, linker })
    }

    /// Lists the binary's tests and runs each in a fresh instance, with a fresh copy of
    /// `workdir`'s files as the current directory when given.
    pub fn run_binary(&self, name: &str, wasm: &[u8], limits: &TestLimits, workdir: Option<&Path>) -> BinaryRun {
        let mut result = BinaryRun { binary: name.to_owned(), tests: Vec::new(), error: None, fuel: 0 };
        let pre = match self.prepare(wasm) {
            Ok(pre) => pre,
            Err(e) => {
                result.error = Some(e);
                return result;
            }
        };
        let listing = self.run(&pre, &["--list"], limits, limits.fuel_per_binary, workdir);
        result.fuel += listing.fuel;
        let names = match listing.exit {
            Ok(0) => test_names(&listing.stdout),
            Ok(code) => {
                result.error = Some(format!("listing the tests exited {code}: {}", tail(&listing.stderr)));
                return result;
            }
            Err(e) => {
                result.error = Some(format!("listing the tests failed: {e}"));
                return result;
            }
        };
        if names.len() > limits.max_tests {
            result.error = Some(format!("{} tests; at most {} are run", names.len(), limits.max_tests));
            return result;
        }
        for test in names {
            let left = limits.fuel_per_binary.saturating_sub(result.fuel);
            let outcome = if left == 0 {
                TestOutcome { name: test, passed: false, failure: "the binary's fuel was spent".into() }
            } else {
                let args = [test.as_str(), "--exact", "--include-ignored", "--nocapture", "--test-threads", "1"];
                let run = self.run(&pre, &args, limits, left, workdir);
                result.fuel += run.fuel;
                judge(test, &run)
            };
            result.tests.push(outcome);
        }
        result
    }

    fn prepare(&self, wasm: &[u8]) -> Result<CommandPre<RunState>, String> {
        let component = Component::new(&self.engine, wasm).map_err(|e| format!("not a valid component: {e:#}"))?;
        let names = imports::import_names(&self.engine, &component);
        imports::check(&names).map_err(|e| e.to_string())?;
        let pre = self.linker.instantiate_pre(&component).map_err(|e| format!("cannot link the binary: {e:#}"))?;
        CommandPre::new(pre).map_err(|e| format!("not a WASI command: {e:#}"))
    }

    /// One run of the binary with `args`, under `fuel`.
    fn run(
        &self,
        pre: &CommandPre<RunState>,
        args: &[&str],
        limits: &TestLimits,
        fuel: u64,
        workdir: Option<&Path>,
    ) -> Run {
        let (stdout, stderr) = (MemoryOutputPipe::new(limits.output_bytes), MemoryOutputPipe::new(limits.output_bytes));
        let mut argv = vec!["test-binary"];
        argv.extend_from_slice(args);
        let failed = |why: String| Run { exit: Err(why), stdout: String::new(), stderr: String::new(), fuel: 0 };
        let mut builder = crate::sandbox::virtual_env::bare_wasi();
        let scratch = match workdir.map(WorkDir::copy_of).transpose() {
            Ok(scratch) => scratch,
            Err(e) => return failed(format!("the host could not make the working directory: {e}")),
        };
        if let Some(dir) = &scratch
            && let Err(e) = builder.preopened_dir(dir.path(), ".", FsPerms::ReadWrite)
        {
            return failed(format!("the host could not open the working directory: {e:#}"));
        }
        let wasi = builder.args(&argv).stdout(stdout.clone()).stderr(stderr.clone()).build();
        let state =
            RunState { wasi, table: ResourceTable::new(), limiter: MemoryLimiter::new(limits.memory_bytes as usize) };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.set_fuel(fuel).expect("fuel is enabled on the test engine");
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(tick_watch(limits, scratch.as_ref().map(|d| d.path().to_owned())));
        let exit = match pre.instantiate(&mut store) {
            Ok(command) => match command.wasi_cli_run().call_run(&mut store) {
                Ok(Ok(())) => Ok(0),
                Ok(Err(())) => Ok(1),
                Err(e) => match e.downcast_ref::<I32Exit>() {
                    Some(I32Exit(code)) => Ok(*code),
                    None => Err(classify(&e, &store)),
                },
            },
            Err(e) => Err(classify(&e, &store)),
        };
        let fuel_used = fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let text = |pipe: &MemoryOutputPipe| String::from_utf8_lossy(&pipe.contents()).into_owned();
        Run { exit, stdout: text(&stdout), stderr: text(&stderr), fuel: fuel_used }
    }
}

/// What a run ended by because its working directory grew past the limits.
#[derive(Debug)]
struct WorkdirFull(String);

impl std::fmt::Display for WorkdirFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WorkdirFull {}

/// The check at every epoch tick: the wall-clock deadline, and what the working directory holds.
fn tick_watch(
    limits: &TestLimits,
    workdir: Option<PathBuf>,
) -> impl FnMut(wasmtime::StoreContextMut<'_, RunState>) -> wasmtime::Result<UpdateDeadline> + Send + Sync + 'static {
    let ticks = limits.deadline.as_millis() as u64 / EPOCH_TICK.as_millis() as u64 + 1;
    let (max_bytes, max_entries) = (limits.workdir_bytes, limits.workdir_entries);
    let mut elapsed = 0u64;
    move |_| {
        elapsed += 1;
        if elapsed >= ticks {
            return Err(Trap::Interrupt.into());
        }
        if let Some(dir) = &workdir {
            let usage = Usage::of(dir, max_entries);
            if usage.bytes > max_bytes || usage.entries > max_entries {
                return Err(WorkdirFull(format!(
                    "the working directory grew past its limits ({max_bytes} bytes, {max_entries} entries)"
                ))
                .into());
            }
        }
        Ok(UpdateDeadline::Continue(1))
    }
}

/// Whether a test's run passed: it exited 0 and libtest counted it as passed (a test libtest
/// skipped is not a pass).
fn judge(name: String, run: &Run) -> TestOutcome {
    let passed = run.exit == Ok(0) && run.stdout.contains("test result: ok. 1 passed");
    let failure = if passed {
        String::new()
    } else {
        let how = match &run.exit {
            Ok(0) => "the test did not run (libtest skipped it)".to_owned(),
            Ok(code) => format!("exited {code}"),
            Err(e) => e.clone(),
        };
        bounded(format!("{how}\n{}", tail(&run.stderr)))
    };
    TestOutcome { name, passed, failure }
}

/// The test names of a `--list` output (`name: test` lines).
fn test_names(listing: &str) -> Vec<String> {
    listing.lines().filter_map(|line| line.strip_suffix(": test")).map(str::to_owned).collect()
}

/// What a failed run means.
fn classify(error: &wasmtime::Error, store: &Store<RunState>) -> String {
    if let Some(full) = error.downcast_ref::<WorkdirFull>() {
        return full.0.clone();
    }
    let limiter = &store.data().limiter;
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => "out of fuel".to_owned(),
        Some(Trap::Interrupt) => "the deadline passed".to_owned(),
        _ if limiter.denied_bytes.is_some() => format!(
            "asked for {} bytes of memory; the cap is {}",
            limiter.denied_bytes.unwrap_or_default(),
            limiter.cap_bytes
        ),
        // A panic aborts: the trap is `unreachable`, and what the test said is on stderr.
        Some(trap) => format!("trap: {trap}"),
        None => bounded(format!("{error:#}")),
    }
}

/// The last part of a text, at most [`MAX_FAILURE_BYTES`].
fn tail(text: &str) -> String {
    let text = text.trim_end();
    if text.len() <= MAX_FAILURE_BYTES {
        return text.to_owned();
    }
    let mut start = text.len() - MAX_FAILURE_BYTES;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("[...]{}", &text[start..])
}

fn bounded(mut text: String) -> String {
    crate::sandbox::host::truncate_utf8(&mut text, 2 * MAX_FAILURE_BYTES);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_and_verdicts() {
        assert_eq!(test_names("a: test\nm::b: test\nc: bench\n\n2 tests, 1 benchmark\n"), ["a", "m::b"]);
        let run = |exit, stdout: &str| Run { exit, stdout: stdout.into(), stderr: "boom".into(), fuel: 1 };
        assert!(judge("a".into(), &run(Ok(0), "test a ... ok\n\ntest result: ok. 1 passed; 0 failed")).passed);
        let skipped = judge("a".into(), &run(Ok(0), "test result: ok. 0 passed; 0 failed; 1 ignored"));
        assert!(!skipped.passed && skipped.failure.contains("did not run"));
        let trapped = judge("a".into(), &run(Err("trap: unreachable".into()), ""));
        assert_eq!(trapped.failure, "trap: unreachable\nboom");
        assert_eq!(tail(&"x".repeat(5000)).len(), MAX_FAILURE_BYTES + 5);
    }
}
