//! Evidence an auditor can check without trusting this machine: signing keys (`keygen`), and the
//! runs `verify` checks beside the archive's objects.

use super::terminal::outln;
use anyhow::{Context, Result, bail};
use hyperagent::archive::Archive;
use hyperagent::settings::Paths;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// What checking every run of a home found.
pub struct RunsChecked {
    pub runs_checked: usize,
    pub problems: Vec<String>,
    pub notes: Vec<String>,
}

/// Checks every run under `<home>/runs` (see `audit::verify_run`), with the public key in `key`.
pub fn check_runs(paths: &Paths, archive: &Archive, key: Option<&Path>) -> Result<RunsChecked> {
    let key = key.map(read_public_key).transpose()?;
    let mut checked = RunsChecked { runs_checked: 0, problems: Vec::new(), notes: Vec::new() };
    let runs = paths.home.join("runs");
    let mut dirs: Vec<_> = match std::fs::read_dir(&runs) {
        Ok(entries) => {
            entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.join("log.jsonl").is_file()).collect()
        }
        Err(_) => Vec::new(),
    };
    dirs.sort();
    if key.is_some() && dirs.is_empty() {
        bail!("a key was given but there is no run to check under {}", runs.display());
    }
    for dir in dirs {
        let check = hyperagent::audit::verify_run(archive, &dir, key.as_ref());
        checked.runs_checked += 1;
        checked.problems.extend(check.problems);
        checked.notes.extend(check.notes);
    }
    Ok(checked)
}

fn read_public_key(path: &Path) -> Result<ed25519_dalek::VerifyingKey> {
    let bytes = hyperagent::run_object::read_key_bytes(path).map_err(anyhow::Error::msg)?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes)
        .with_context(|| format!("{} is not an ed25519 public key", path.display()))
}

/// Reads the private key a run signs with.
pub fn read_signing_key(path: &Path) -> Result<ed25519_dalek::SigningKey> {
    let bytes = hyperagent::run_object::read_key_bytes(path).map_err(anyhow::Error::msg)?;
    Ok(ed25519_dalek::SigningKey::from_bytes(&bytes))
}

/// `hyperagent keygen`: a new key pair from the kernel's randomness. The private key file is
/// created new (never overwritten) and readable by its owner only.
pub fn keygen(out: &Path) -> Result<()> {
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut seed))
        .context("cannot read /dev/urandom")?;
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let public = out.with_file_name(format!("{}.pub", out.file_name().map_or("key".into(), |n| n.to_string_lossy())));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .with_context(|| format!("cannot create {} (an existing key is never overwritten)", out.display()))?;
    std::io::Write::write_all(&mut file, format!("{}\n", hyperagent::run_object::hex(&seed)).as_bytes())?;
    file.sync_all()?;
    let public_hex = hyperagent::run_object::hex(key.verifying_key().as_bytes());
    hyperagent::fsutil::write_atomic(&public, format!("{public_hex}\n").as_bytes())?;
    outln!(
        "private key: {} (keep it here; sign runs with `hyperagent run --sign-key {}`)",
        out.display(),
        out.display()
    );
    outln!(
        "public key:  {} ({public_hex}; auditors check with `hyperagent verify --key {}`)",
        public.display(),
        public.display()
    );
    Ok(())
}
