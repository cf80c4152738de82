//! The Rust toolchain the host builds guests with, found once and then called by absolute path,
//! so that builds do not depend on the caller's PATH, rustup overrides or toolchain files.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const GUEST_TARGET: &str = "wasm32-wasip2";

#[derive(Debug, Clone)]
pub struct Toolchain {
    pub sysroot: PathBuf,
    pub cargo: PathBuf,
    pub rustc: PathBuf,
    /// `rustc -vV`, recorded with every build.
    pub rustc_version: String,
    /// Where cargo's registry cache lives (dependencies are used offline from there).
    pub cargo_home: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ToolchainError {
    #[error("cannot run `rustc --print sysroot` ({0}); install Rust with rustup (https://rustup.rs)")]
    NoRustc(String),
    #[error(
        "the {GUEST_TARGET} target is not installed for the toolchain at {0}; run `rustup target add {GUEST_TARGET}`"
    )]
    NoTarget(PathBuf),
    #[error("cargo was not found at {0}")]
    NoCargo(PathBuf),
    #[error("cannot find cargo's home directory: set CARGO_HOME or HOME")]
    NoCargoHome,
}

impl Toolchain {
    pub fn discover() -> Result<Toolchain, ToolchainError> {
        let rustc_on_path = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let output = Command::new(&rustc_on_path)
            .args(["--print", "sysroot"])
            .output()
            .map_err(|e| ToolchainError::NoRustc(e.to_string()))?;
        if !output.status.success() {
            return Err(ToolchainError::NoRustc(String::from_utf8_lossy(&output.stderr).trim().to_owned()));
        }
        let sysroot = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if !sysroot.join("lib/rustlib").join(GUEST_TARGET).is_dir() {
            return Err(ToolchainError::NoTarget(sysroot));
        }
        let cargo = sysroot.join("bin/cargo");
        let rustc = sysroot.join("bin/rustc");
        if !cargo.is_file() {
            return Err(ToolchainError::NoCargo(cargo));
        }
        let version = Command::new(&rustc).arg("-vV").output().map_err(|e| ToolchainError::NoRustc(e.to_string()))?;
        let cargo_home = match std::env::var_os("CARGO_HOME") {
            Some(home) => PathBuf::from(home),
            None => Path::new(&std::env::var_os("HOME").ok_or(ToolchainError::NoCargoHome)?).join(".cargo"),
        };
        Ok(Toolchain {
            sysroot,
            cargo,
            rustc,
            rustc_version: String::from_utf8_lossy(&version.stdout).trim().to_owned(),
            cargo_home,
        })
    }
}
