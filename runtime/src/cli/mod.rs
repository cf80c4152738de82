//! The parts of the CLI beyond `main.rs`: the run commands, and the set-up every command shares.

pub mod cluster;
pub mod data;
pub mod ensemble;
pub mod evidence;
pub mod experiment;
pub mod flags;
pub mod guest;
pub mod inspect;
pub mod llm_view;
pub mod replay;
pub mod report;
pub mod run;
pub mod serve;
pub mod terminal;
pub mod transfer;

use anyhow::{Context, Result};
use hyperagent::archive::Archive;
use hyperagent::compiler::GuestCompiler;
use hyperagent::sandbox::{EngineSettings, Sandbox};
use hyperagent::settings::Paths;
use std::time::Duration;

/// The outcome that decides exit code 1: the guest side failed (a refused or failed build, a call
/// that did not end `ok`, an archive with problems); a host error exits 3.
pub struct GuestFailure;

pub fn open_archive(paths: &Paths) -> Result<Archive> {
    Archive::open(paths.archive()).with_context(|| format!("cannot open the archive at {}", paths.archive().display()))
}

/// The guest compiler, with the template's dependencies fetched so that builds can run offline.
pub fn ready_compiler(paths: &Paths, timeout: Duration) -> Result<GuestCompiler> {
    let compiler = GuestCompiler::new(paths.compiler_settings(timeout))?;
    compiler.fetch_dependencies()?;
    Ok(compiler)
}

pub fn new_sandbox(paths: &Paths) -> Result<Sandbox> {
    Ok(Sandbox::new(EngineSettings::default(), Some(paths.artifacts()))?)
}
