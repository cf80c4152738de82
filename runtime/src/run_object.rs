//! The run object: a run's state as its log says it, stored content-addressed in the archive, so
//! that the log is part of the evidence. It names the hash of the last log line it covers (the
//! log is a hash chain, so that hash pins every line before it), the nodes the run made, the best
//! one and the test results. The loop writes one at the end of every generation and when the run
//! finishes (so a killed run has one too), and points `runs/<id>/head` at the latest. With the
//! lab's key it is signed (`head.sig`): a forgery that rewrites the log, the nodes and the run
//! object consistently is then still caught by anyone holding the public key.

use crate::evolution::log::{Event, LogContents};
use crate::fsutil::write_atomic;
use crate::hash::ContentHash;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const RUN_SCHEMA: &str = "hyperagent.run/1";
/// What a signature covers: this prefix, then the run object's hash (32 bytes).
const SIGNING_CONTEXT: &[u8] = b"hyperagent run object v1\0";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunObject {
    pub schema: String,
    pub run: String,
    pub config_hash: ContentHash,
    /// The hash of the last log line covered, and how many lines that is.
    pub log_head: ContentHash,
    pub log_lines: u64,
    /// The nodes of the covered `node` events, in log order.
    pub nodes: Vec<ContentHash>,
    /// The `finished` event's best node, once there is one.
    pub best: Option<ContentHash>,
    /// The covered `test` and `baseline` events, as logged.
    pub tests: Vec<serde_json::Value>,
}

impl RunObject {
    /// What the first `lines` lines of a log say. `None` when the log has fewer lines or does not
    /// start with its configuration.
    pub fn from_log(run: &str, log: &LogContents, lines: usize) -> Option<RunObject> {
        let events = log.events.get(..lines)?;
        let Some(Event::Started { config_hash, .. }) = events.first() else { return None };
        let mut object = RunObject {
            schema: RUN_SCHEMA.to_owned(),
            run: run.to_owned(),
            config_hash: *config_hash,
            log_head: *log.line_hashes.get(lines.checked_sub(1)?)?,
            log_lines: lines as u64,
            nodes: Vec::new(),
            best: None,
            tests: Vec::new(),
        };
        for event in events {
            match event {
                Event::Node { node, .. } => object.nodes.push(*node),
                Event::Finished { best } => object.best = Some(*best),
                Event::Test { .. } | Event::Baseline { .. } => {
                    object.tests.push(serde_json::to_value(event).expect("events serialise"))
                }
                _ => {}
            }
        }
        Some(object)
    }

    pub fn canonical_json(&self) -> Vec<u8> {
        crate::canonical::to_vec(self)
    }

    pub fn parse(bytes: &[u8]) -> Result<RunObject, String> {
        let object: RunObject = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if object.schema != RUN_SCHEMA {
            return Err(format!("unknown run object schema `{}` (this host reads `{RUN_SCHEMA}`)", object.schema));
        }
        if object.canonical_json() != bytes {
            return Err("the run object is not in canonical form".into());
        }
        Ok(object)
    }
}

/// A signature of a run object, as `runs/<id>/head.sig` holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSignature {
    /// The signed run object.
    pub object: ContentHash,
    /// The signer's public key, hex.
    pub key: String,
    /// Ed25519 over `SIGNING_CONTEXT ‖ object hash`, hex.
    pub signature: String,
}

fn message(object: &ContentHash) -> Vec<u8> {
    let mut message = SIGNING_CONTEXT.to_vec();
    message.extend_from_slice(object.as_bytes());
    message
}

pub fn sign(key: &SigningKey, object: &ContentHash) -> RunSignature {
    RunSignature {
        object: *object,
        key: hex(key.verifying_key().as_bytes()),
        signature: hex(&key.sign(&message(object)).to_bytes()),
    }
}

/// Checks `signature` over `object` with `public`; the reason when it does not hold.
pub fn check_signature(signature: &RunSignature, object: &ContentHash, public: &VerifyingKey) -> Result<(), String> {
    if signature.object != *object {
        return Err(format!("the signature is of run object {}, not of {}", signature.object.short(), object.short()));
    }
    if signature.key != hex(public.as_bytes()) {
        return Err(format!("signed with key {}, not with the key given", signature.key));
    }
    let bytes: [u8; 64] =
        unhex(&signature.signature).and_then(|b| b.try_into().ok()).ok_or("the signature is not 64 bytes of hex")?;
    public
        .verify(&message(object), &Signature::from_bytes(&bytes))
        .map_err(|_| "the signature does not verify: the run object was not signed by this key".to_owned())
}

/// Writes `runs/<id>/head` (and `head.sig` with a key) for a run object already in the archive.
pub fn write_head(run_dir: &Path, object: &ContentHash, key: Option<&SigningKey>) -> std::io::Result<()> {
    if let Some(key) = key {
        let signature = crate::canonical::to_vec(&sign(key, object));
        write_atomic(&run_dir.join("head.sig"), &signature)?;
    }
    write_atomic(&run_dir.join("head"), object.to_hex().as_bytes())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// Reads a key file written by `hyperagent keygen`: 32 bytes of hex.
pub fn read_key_bytes(path: &Path) -> Result<[u8; 32], String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    unhex(&text)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("{} does not hold 32 bytes of hex", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_holds_for_its_object_and_key_only() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let other = SigningKey::from_bytes(&[8u8; 32]);
        let object = ContentHash::of(b"run object");
        let signature = sign(&key, &object);
        assert!(check_signature(&signature, &object, &key.verifying_key()).is_ok());
        assert!(check_signature(&signature, &ContentHash::of(b"forged"), &key.verifying_key()).is_err());
        assert!(check_signature(&signature, &object, &other.verifying_key()).unwrap_err().contains("not with the key"));
        // A signature made by another key, labelled with this key's name, does not verify.
        let forged = RunSignature { key: signature.key.clone(), ..sign(&other, &object) };
        assert!(check_signature(&forged, &object, &key.verifying_key()).unwrap_err().contains("does not verify"));
    }

    #[test]
    fn hex_round_trips_and_refuses_odd_text() {
        assert_eq!(unhex(&hex(&[0, 1, 255])), Some(vec![0, 1, 255]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }
}
