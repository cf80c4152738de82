//! `hyperagent worker` and the `--nats` flags that `run` shares with it.

use super::terminal::errln;
use super::{new_sandbox, open_archive, ready_compiler};
use anyhow::{Context, Result};
use hyperagent::cluster::NatsSettings;
use hyperagent::cluster::worker::{Worker, WorkerOptions, WorkerSetup};
use hyperagent::settings::Paths;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How to reach the NATS server (JetStream on).
#[derive(Debug, Clone, clap::Args)]
pub struct NatsArgs {
    /// The NATS server, e.g. nats://127.0.0.1:4222 (tls:// for TLS).
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,
    #[arg(long, env = "HYPERAGENT_NATS_USER")]
    pub nats_user: Option<String>,
    /// Better given in the environment than on the command line.
    #[arg(long, env = "HYPERAGENT_NATS_PASSWORD", hide_env_values = true)]
    pub nats_password: Option<String>,
    /// A file holding this machine's NKey seed.
    #[arg(long, env = "HYPERAGENT_NATS_NKEY", value_name = "SEED_FILE")]
    pub nats_nkey: Option<PathBuf>,
    /// CA certificate(s) to trust; TLS is then required.
    #[arg(long, env = "HYPERAGENT_NATS_CA", value_name = "PEM_FILE")]
    pub nats_ca: Option<PathBuf>,
    /// A client certificate and its key, for servers that verify clients.
    #[arg(long, value_names = ["CERT_PEM", "KEY_PEM"], num_args = 2)]
    pub nats_client_cert: Option<Vec<PathBuf>>,
    /// Require TLS even without --nats-ca.
    #[arg(long)]
    pub nats_tls: bool,
    /// GiB the object store may hold, when this host is the one that creates it. The server's
    /// JetStream store (`max_file_store`) must have room for it.
    #[arg(long, value_name = "GIB", default_value_t = hyperagent::cluster::DEFAULT_OBJECT_STORE_GIB, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub nats_object_store_gib: u32,
}

impl NatsArgs {
    /// The settings, when `--nats` was given.
    pub fn settings(&self) -> Option<NatsSettings> {
        let url = self.nats.clone()?;
        Some(NatsSettings {
            user: self.nats_user.clone(),
            password: self.nats_password.clone(),
            nkey_seed_file: self.nats_nkey.clone(),
            ca_file: self.nats_ca.clone(),
            client_cert: self.nats_client_cert.as_ref().map(|pair| (pair[0].clone(), pair[1].clone())),
            require_tls: self.nats_tls,
            object_store_bytes: i64::from(self.nats_object_store_gib) << 30,
            ..NatsSettings::new(url)
        })
    }
}

pub struct WorkerArgs {
    pub nats: NatsSettings,
    pub data_dir: PathBuf,
    pub options: WorkerOptions,
}

/// Serves jobs until killed (or `max_jobs` are done).
pub async fn worker(paths: &Paths, args: WorkerArgs) -> Result<()> {
    let setup = WorkerSetup {
        archive: open_archive(paths)?,
        compiler: Arc::new(ready_compiler(paths, Duration::from_secs(300))?),
        sandbox: Arc::new(new_sandbox(paths)?),
        data_dir: args.data_dir,
        initial_agent: paths.guest_agents().join("initial"),
        work_dir: paths.home.join("worker"),
    };
    let say = Arc::new(|line: String| errln!("{line}"));
    let mut worker = Worker::connect(&args.nats, setup, say).await.context("the worker cannot start")?;
    worker.serve(&args.options).await.context("the worker stopped")?;
    Ok(())
}
