//! The `hyperagent` command line.
//!
//! Exit codes: 0 success; 1 the guest side failed (a refused or failed build, a call that did not
//! end `ok`, an archive with problems); 2 bad usage; 3 the host could not do its job (I/O, missing
//! toolchain, corrupt cache).

mod cli;

use cli::GuestFailure;
use cli::guest::{build, call, demo, verify};
use cli::terminal::errln;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use hyperagent::sandbox::{CallInput, CallLimits, Fuel, Grants, MetaInput, Preopen, TaskInput};
use hyperagent::settings::Paths;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "hyperagent",
    version,
    about = "Self-improving agents as sandboxed WebAssembly components",
    long_about = "Self-improving agents as sandboxed WebAssembly components.\n\n\
        A hyperagent is a Rust crate compiled to a WebAssembly component with two exports: `task` \
        (solves a domain's tasks) and `meta` (rewrites the hyperagent's own source). This tool \
        builds hyperagents under a source policy, runs their exports under fuel, memory and time \
        limits, and keeps every variant in a content-addressed archive.",
    after_help = "Exit codes: 0 success, 1 the guest side failed (refused or failed build, call not ok, \
        archive problems), 2 bad usage, 3 host error."
)]
struct Cli {
    /// Directory holding the archive and caches.
    #[arg(long, global = true, env = "HYPERAGENT_HOME", default_value = ".hyperagent")]
    home: PathBuf,
    /// Checkout holding agent-sdk/ and guest-agents/ (defaults to the one this binary was built from).
    #[arg(long, global = true, env = "HYPERAGENT_ROOT")]
    project_root: Option<PathBuf>,
    /// Shared cargo target directory for guest builds (default: <home>/guest-target).
    #[arg(long, global = true, env = "HYPERAGENT_GUEST_TARGET")]
    guest_target_dir: Option<PathBuf>,
    /// Build guest source even where the kernel has no Landlock to confine the compiler. Unsafe
    /// with untrusted hyperagents; logged on every start.
    #[arg(long, global = true, env = "HYPERAGENT_ALLOW_UNCONFINED_BUILDS", value_parser = clap::builder::BoolishValueParser::new())]
    allow_unconfined_builds: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a hyperagent's source against the policy and compile it; prints the component hash.
    Build {
        /// The hyperagent's source directory (Cargo.toml, src/, notes).
        dir: PathBuf,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
        /// Wall-clock limit on the build, in seconds (at most a day).
        #[arg(long, default_value = "300", value_parser = cli::flags::parse_build_timeout)]
        timeout_secs: u64,
    },
    /// Run one export of a component in the sandbox and print its report.
    Call(CallArgs),
    /// Operations on the archive.
    Archive {
        #[command(subcommand)]
        command: ArchiveCommand,
    },
    /// Build the sample hyperagent, run its task agent, let its meta agent make a child, build
    /// and run the child.
    Demo,
    /// Run the open-ended loop: select parents, let their meta agents make children, evaluate,
    /// archive. With no arguments, runs the embedded default (bin packing, offline).
    Run(RunArgs),
    /// Make and evaluate children for runs started with `run --nats`: takes jobs from the
    /// server's work queue, one at a time, and beside them parts of other workers' evaluations,
    /// until killed. With an LLM in the run, asks it with the key from this machine's environment.
    Worker {
        #[command(flatten)]
        nats: cli::cluster::NatsArgs,
        /// Directory with the benchmark data (the same as the coordinator's).
        #[arg(long, env = "HYPERAGENT_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Seconds a job may go without a sign of life before the server hands it to another
        /// worker (set when the first worker creates the shared consumer).
        #[arg(long, default_value_t = 30)]
        ack_wait_secs: u64,
        /// Deliveries of a job before it is given up (then the coordinator makes the child).
        #[arg(long, default_value_t = 3)]
        max_deliver: i64,
        /// Stop after this many jobs.
        #[arg(long)]
        max_jobs: Option<u64>,
    },
    /// Run an experiment plan (methods x seeds, each cell a run named <plan>-<method>-s<seed>;
    /// finished runs are reused, an unfinished one resumed), then summarise the best nodes' test
    /// values: medians, 95% bootstrap intervals, Wilcoxon signed-rank p-values against the
    /// reference method. Several processes may share one plan and home: each skips the cells
    /// another is running. See README "Experiments" for the plan format.
    Experiment {
        /// The plan (TOML); its file name names the experiment and its runs.
        plan: PathBuf,
        /// Directory with the benchmark data.
        #[arg(long, env = "HYPERAGENT_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Write and print the summary of the runs there are, without running anything.
        #[arg(long)]
        summary_only: bool,
    },
    /// imp@k: pair an archived hyperagent's meta agent with the target domain, let it make k
    /// children there with the meta agent held fixed, and report the best child's test gain over
    /// the start, beside the same from the initial hyperagent.
    Transfer {
        /// The node whose meta agent transfers (hash or unique prefix).
        #[arg(long)]
        from: String,
        /// The target domain.
        #[arg(long)]
        to: String,
        /// Children to make (k generations of one child).
        #[arg(long, default_value = "50")]
        k: u32,
        #[arg(long, default_value = "0")]
        seed: u64,
        /// A run configuration for the other settings (fuel, the target domain's table...).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Directory with the benchmark data.
        #[arg(long, env = "HYPERAGENT_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// The majority vote of a run's top k task agents (by validation) on its test sets, beside
    /// its best node (ties go to the better-ranked agent).
    Ensemble {
        /// The run (default: the latest).
        run: Option<String>,
        #[arg(long, default_value = "5")]
        k: usize,
        /// Directory with the benchmark data.
        #[arg(long, env = "HYPERAGENT_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// A table of a run's nodes (default: the latest run), and whether it finished, goes on in
    /// another process, or was cut short.
    Status { run: Option<String> },
    /// List, per domain, the data files it can read: whether each is present, its blake3, and
    /// where it comes from. Domains run without their data on generated stand-ins.
    Data {
        /// Directory with the benchmark data.
        #[arg(long, env = "HYPERAGENT_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// One node: its change against its parent, its scores, its meta agent's account.
    Show {
        /// Node hash or unique prefix.
        node: String,
    },
    /// Rebuild archived nodes from their source and re-run their recorded evaluation calls,
    /// checking outputs, scores and fuel; with --run, every node of a run and its parent choices.
    Replay {
        /// Node hash or unique prefix.
        node: Option<String>,
        /// The run to replay (with a node: the run to take its configuration from).
        #[arg(long)]
        run: Option<String>,
        /// Directory with the benchmark data (for provenance).
        #[arg(long, env = "HYPERAGENT_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Re-hash the whole store; report tampered, missing and orphaned objects (same as `archive verify`).
    Verify {
        #[arg(long)]
        json: bool,
        /// The lab's public key (from `hyperagent keygen`): every run must carry a signature of
        /// its run object by this key.
        #[arg(long, value_name = "PUBLIC_KEY_FILE")]
        key: Option<PathBuf>,
    },
    /// Make a key pair for signing runs: the private key (kept on this machine, never sent
    /// anywhere, readable by its owner only) and the public key to give auditors.
    Keygen {
        /// Where to write the private key; the public key goes beside it with `.pub` appended.
        #[arg(long, default_value = "run-signing.key")]
        out: PathBuf,
    },
    /// Pack a run's whole closure (nodes, trees, components, reports, LLM records, run log) into
    /// one file.
    Export { run: String, file: PathBuf },
    /// Read a bundle made by `export` into this archive, checking every object's hash.
    Import { file: PathBuf },
    /// The ancestors of a node, root first.
    Lineage {
        /// Node hash or unique prefix.
        node: String,
    },
    /// Write a self-contained HTML page of one or more runs (default: the latest): progress
    /// curves, the archive tree with each node's change, the test table, provenance and the
    /// replay commands. Made from the run logs and the archive only; opens from disk, offline.
    Report {
        /// Run ids (several: their curves side by side).
        runs: Vec<String>,
        /// Directory to write index.html in (default: <home>/reports/<run>).
        #[arg(short = 'o', long = "out")]
        out: Option<PathBuf>,
    },
    /// Serve the runs' pages over HTTP, read-only, following each run log live as it grows.
    Serve {
        /// Address to listen on; anything but loopback exposes every run to the network.
        #[arg(long, default_value = cli::serve::DEFAULT_ADDR)]
        addr: std::net::SocketAddr,
    },
}

#[derive(clap::Args)]
struct CallArgs {
    /// A .wasm file, or the hash of a component in the archive.
    component: String,
    /// Which export to call.
    export: Export,
    /// For `task`: the task's JSON payload. For `meta`: `{"iterations_left": N}`.
    #[arg(long, default_value = "{}")]
    input: String,
    /// Domain name passed to `task`.
    #[arg(long, default_value = "cli")]
    domain: String,
    /// Task id passed to `task`.
    #[arg(long, default_value = "cli/0")]
    task_id: String,
    /// Fuel budget (deterministic compute units).
    #[arg(long, default_value_t = CallLimits::default().fuel.0)]
    fuel: u64,
    /// Memory cap, in MiB (at most the sandbox's maximum).
    #[arg(long = "memory", value_name = "MIB", default_value = "256", value_parser = cli::flags::parse_memory)]
    memory_bytes: u64,
    /// Wall-clock deadline, in milliseconds.
    #[arg(long, default_value_t = 60_000)]
    deadline_ms: u64,
    /// Seed for the guest's randomness.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// For `meta`: directory granted read-write as /repo (required).
    #[arg(long, required_if_eq("export", "meta"))]
    repo: Option<PathBuf>,
    /// For `meta`: directory granted read-only as /history.
    #[arg(long)]
    history: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct RunArgs {
    /// TOML file with the run configuration; flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Continue a killed run: the latest, or the one named.
    #[arg(long, num_args = 0..=1, default_missing_value = "")]
    resume: Option<String>,
    /// Name of a new run (default: its start time).
    #[arg(long)]
    run_id: Option<String>,
    /// Sign every run object with this private key (from `hyperagent keygen`); the key stays on
    /// this machine and is never sent anywhere.
    #[arg(long, env = "HYPERAGENT_SIGN_KEY", value_name = "PRIVATE_KEY_FILE")]
    sign_key: Option<PathBuf>,
    /// Directory with the benchmark data (bin_packing/...).
    #[arg(long, env = "HYPERAGENT_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[arg(long)]
    generations: Option<u32>,
    #[arg(long)]
    seed: Option<u64>,
    /// Children per generation, made and evaluated in parallel.
    #[arg(long)]
    children: Option<u32>,
    /// Parent selection: dgm-h, random, best, latest, hgm (clade Thompson sampling), agent (the
    /// hyperagent's own `select` export).
    #[arg(long)]
    selection: Option<hyperagent::evolution::selection::Selection>,
    /// Ablation: the initial meta agent makes every child.
    #[arg(long)]
    fixed_meta: bool,
    /// Ablation: the parent is always the newest child.
    #[arg(long)]
    no_archive: bool,
    /// Where meta agents' completions come from (default: live when the configuration has an
    /// [llm] section, off otherwise).
    #[arg(long, value_enum)]
    llm: Option<cli::run::LlmMode>,
    /// For `--llm replay`: the run whose recorded exchanges answer every request.
    #[arg(long)]
    replay_from: Option<String>,
    /// Workers (`hyperagent worker --nats`) make the children; the archive is the same.
    #[command(flatten)]
    nats: cli::cluster::NatsArgs,
    /// With --nats: the share of children (0..=1) made again here and compared byte for byte.
    #[arg(long, default_value_t = 0.1)]
    spot_check: f64,
    /// With --nats: tasks per evaluation job when a worker spreads a child's evaluation over the
    /// workers (0: never). Default: 4 for domains whose tasks are costly (coding, robotics),
    /// never for the others.
    #[arg(long, value_name = "TASKS")]
    eval_chunk: Option<u32>,
}

#[derive(Subcommand)]
enum ArchiveCommand {
    /// Re-hash every object and check every node's references.
    Verify {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Export {
    Task,
    Meta,
}

fn main() -> ExitCode {
    restore_default_sigpipe();
    let cli = Cli::parse();
    let mut paths = Paths::new(cli.home.clone(), cli.project_root.clone(), cli.guest_target_dir.clone());
    paths.allow_unconfined_builds = cli.allow_unconfined_builds;
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            errln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    match runtime.block_on(run(cli.command, &paths)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(GuestFailure)) => ExitCode::from(1),
        Err(e) => {
            errln!("error: {e:#}");
            ExitCode::from(3)
        }
    }
}

async fn run(command: Command, paths: &Paths) -> Result<Result<(), GuestFailure>> {
    match command {
        Command::Build { dir, json, timeout_secs } => build(paths, &dir, json, timeout_secs),
        Command::Call(args) => call_command(paths, args).await,
        Command::Archive { command: ArchiveCommand::Verify { json } } => verify(paths, json, None),
        Command::Demo => demo(paths).await,
        Command::Run(args) => run_command(paths, args).await,
        Command::Worker { nats, data_dir, ack_wait_secs, max_deliver, max_jobs } => {
            let nats = nats.settings().context("a worker needs --nats <url>")?;
            let options = hyperagent::cluster::worker::WorkerOptions {
                ack_wait: Duration::from_secs(ack_wait_secs.max(1)),
                max_deliver: max_deliver.max(1),
                max_jobs,
            };
            let data_dir = data_dir.unwrap_or_else(|| paths.default_data_dir());
            cli::cluster::worker(paths, cli::cluster::WorkerArgs { nats, data_dir, options }).await.map(Ok)
        }
        Command::Transfer { from, to, k, seed, config, data_dir } => {
            let base = match config {
                Some(path) => Some(
                    hyperagent::evolution::config::RunConfig::from_toml(
                        &std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?,
                    )
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
                ),
                None => None,
            };
            let data_dir = data_dir.unwrap_or_else(|| paths.default_data_dir());
            let args = cli::transfer::TransferArgs { from, to, k, seed, base, data_dir };
            cli::transfer::transfer(paths, args).await.map(Ok)
        }
        Command::Ensemble { run, k, data_dir } => {
            let data_dir = data_dir.unwrap_or_else(|| paths.default_data_dir());
            cli::ensemble::ensemble(paths, run, k, &data_dir).await.map(Ok)
        }
        Command::Experiment { plan, data_dir, summary_only } => {
            let data_dir = data_dir.unwrap_or_else(|| paths.default_data_dir());
            cli::experiment::experiment(paths, &plan, data_dir, summary_only).await.map(Ok)
        }
        Command::Data { data_dir } => {
            cli::data::list(&data_dir.unwrap_or_else(|| paths.default_data_dir()));
            Ok(Ok(()))
        }
        Command::Status { run } => cli::inspect::status(paths, run).map(Ok),
        Command::Show { node } => cli::inspect::show(paths, &node).map(Ok),
        Command::Lineage { node } => cli::inspect::lineage(paths, &node).map(Ok),
        Command::Report { runs, out } => cli::report::report(paths, runs, out.as_deref()).map(Ok),
        Command::Serve { addr } => cli::serve::serve(paths, addr).await.map(Ok),
        Command::Verify { json, key } => verify(paths, json, key.as_deref()),
        Command::Keygen { out } => cli::evidence::keygen(&out).map(Ok),
        Command::Export { run, file } => cli::replay::export(paths, &run, &file).map(Ok),
        Command::Import { file } => Ok(if cli::replay::import(paths, &file)? { Ok(()) } else { Err(GuestFailure) }),
        Command::Replay { node, run, data_dir } => {
            let data_dir = data_dir.unwrap_or_else(|| paths.default_data_dir());
            Ok(if cli::replay::replay(paths, node, run, &data_dir).await? { Ok(()) } else { Err(GuestFailure) })
        }
    }
}

/// `hyperagent call`: the limits, input and grants from the flags, then the call.
async fn call_command(paths: &Paths, args: CallArgs) -> Result<Result<(), GuestFailure>> {
    let CallArgs {
        component,
        export,
        input,
        domain,
        task_id,
        fuel,
        memory_bytes,
        deadline_ms,
        seed,
        repo,
        history,
        json,
    } = args;
    let limits = CallLimits {
        fuel: Fuel(fuel),
        memory_bytes,
        deadline: Duration::from_millis(deadline_ms),
        ..CallLimits::default()
    };
    let call_input = match export {
        Export::Task => {
            serde_json::from_str::<serde_json::Value>(&input).context("--input is not valid JSON")?;
            CallInput::Task(TaskInput { domain, task_id, payload: input })
        }
        Export::Meta => {
            let value: serde_json::Value = serde_json::from_str(&input).context("--input is not valid JSON")?;
            let iterations_left = cli::flags::iterations_left(&value).map_err(anyhow::Error::msg)?;
            CallInput::Meta(MetaInput { iterations_left, repo_dir: "/repo".into(), history_dir: "/history".into() })
        }
    };
    let mut grants = Grants { seed, ..Grants::default() };
    if let Export::Meta = export {
        let repo = repo.context("`call ... meta` needs --repo <dir>: the source tree the meta agent may rewrite")?;
        grants.preopens.push(Preopen { host: repo, guest: "/repo".into(), writable: true });
    }
    if let Some(history) = history {
        grants.preopens.push(Preopen { host: history, guest: "/history".into(), writable: false });
    }
    call(paths, &component, &call_input, &limits, &grants, json).await
}

/// `hyperagent run`: the configuration from the file and the flags, then the run.
async fn run_command(paths: &Paths, args: RunArgs) -> Result<Result<(), GuestFailure>> {
    let mut config = match &args.config {
        Some(path) => hyperagent::evolution::config::RunConfig::from_toml(
            &std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
        )
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
        None => hyperagent::evolution::config::RunConfig::default(),
    };
    if let Some(g) = args.generations {
        config.generations = g;
    }
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    if let Some(children) = args.children {
        config.children_per_generation = children;
    }
    if let Some(selection) = args.selection {
        config.selection = selection;
    }
    config.fixed_meta |= args.fixed_meta;
    config.no_archive |= args.no_archive;
    config.validate().map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    cli::flags::check_run_config(&config).map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    let data_dir = args.data_dir.unwrap_or_else(|| paths.default_data_dir());
    let resume = args.resume.map(|r| if r.is_empty() { None } else { Some(r) });
    let overrides = args.config.is_some()
        || args.generations.is_some()
        || args.seed.is_some()
        || args.children.is_some()
        || args.selection.is_some()
        || args.fixed_meta
        || args.no_archive;
    if resume.is_some() && overrides {
        errln!("note: a resumed run keeps the configuration in its log; --config and the run flags are ignored");
    }
    let options = cli::run::RunOptions {
        config,
        llm: args.llm,
        replay_from: args.replay_from,
        run_id: args.run_id,
        resume,
        data_dir,
        signing_key: args.sign_key.as_deref().map(cli::evidence::read_signing_key).transpose()?,
        cluster: args.nats.settings().map(|settings| {
            let farm = hyperagent::cluster::coordinator::FarmOptions {
                spot_check: args.spot_check,
                eval_chunk: args.eval_chunk,
            };
            (settings, farm)
        }),
    };
    match cli::run::run(paths, options).await {
        Ok(()) => Ok(Ok(())),
        // A replay that makes other nodes than the run it replays has found a disagreement: the
        // guest side's verdict, exit 1.
        Err(e) if matches!(e.downcast_ref(), Some(hyperagent::evolution::RunError::Diverged { .. })) => {
            errln!("error: {e:#}");
            Ok(Err(GuestFailure))
        }
        Err(e) => Err(e),
    }
}

/// Rust ignores SIGPIPE, so `hyperagent status | head` would panic on the closed pipe; a command
/// line tool should simply stop, as the default disposition does.
fn restore_default_sigpipe() {
    unsafe extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
    }
    const SIGPIPE: i32 = 13;
    const SIG_DFL: usize = 0;
    // SAFETY: setting a signal's disposition to the default has no preconditions, and happens
    // before any thread is started.
    unsafe {
        signal(SIGPIPE, SIG_DFL);
    }
}
