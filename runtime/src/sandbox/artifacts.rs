//! The cache of precompiled components.
//!
//! Compiling a component with Cranelift takes tens of milliseconds; loading a precompiled artifact
//! takes well under one. Artifacts are native code, so loading one is `unsafe`: the cache only
//! ever loads a file whose blake3 matches the sidecar the host wrote when it produced the file,
//! under a key that includes the engine's compatibility hash.

use super::SandboxError;
use crate::fsutil::write_atomic;
use crate::hash::ContentHash;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use wasmtime::Engine;
use wasmtime::component::Component;

pub struct ArtifactCache {
    dir: Option<PathBuf>,
    engine_fingerprint: ContentHash,
}

/// Feeds `std::hash::Hash` output into blake3.
struct Blake3Hasher(blake3::Hasher);

impl Hasher for Blake3Hasher {
    fn finish(&self) -> u64 {
        let bytes = self.0.finalize();
        u64::from_le_bytes(bytes.as_bytes()[..8].try_into().expect("8 bytes"))
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl ArtifactCache {
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> ArtifactCache {
        let mut hasher = Blake3Hasher(blake3::Hasher::new());
        hasher.write(b"hyperagent engine v1");
        engine.precompile_compatibility_hash().hash(&mut hasher);
        ArtifactCache { dir, engine_fingerprint: ContentHash::from_blake3(hasher.0.finalize()) }
    }

    pub fn engine_fingerprint(&self) -> ContentHash {
        self.engine_fingerprint
    }

    pub fn component(&self, engine: &Engine, wasm_hash: &ContentHash, wasm: &[u8]) -> Result<Component, SandboxError> {
        let Some(dir) = &self.dir else {
            return Component::new(engine, wasm).map_err(|e| SandboxError::Compile(format!("{e:#}")));
        };
        let mut key = blake3::Hasher::new();
        key.update(self.engine_fingerprint.as_bytes());
        key.update(wasm_hash.as_bytes());
        let key = key.finalize().to_hex();
        let artifact_path = dir.join(format!("{key}.cwasm"));
        let sidecar_path = dir.join(format!("{key}.b3"));
        if let (Ok(bytes), Ok(expected)) = (std::fs::read(&artifact_path), std::fs::read_to_string(&sidecar_path))
            && ContentHash::of(&bytes).to_hex() == expected.trim()
        {
            // SAFETY: the bytes are an artifact this host wrote with `precompile_component`
            // (the sidecar hash, written after the artifact, matches them) for an engine with
            // the same compatibility hash; wasmtime also re-checks version and settings.
            if let Ok(component) = unsafe { Component::deserialize(engine, &bytes) } {
                return Ok(component);
            }
        }
        let bytes = engine.precompile_component(wasm).map_err(|e| SandboxError::Compile(format!("{e:#}")))?;
        let cache_err = |e: std::io::Error| SandboxError::Cache { path: dir.clone(), reason: e.to_string() };
        write_atomic(&artifact_path, &bytes).map_err(cache_err)?;
        write_atomic(&sidecar_path, ContentHash::of(&bytes).to_hex().as_bytes()).map_err(cache_err)?;
        // SAFETY: these bytes were produced just now by this engine's `precompile_component`.
        unsafe { Component::deserialize(engine, &bytes) }.map_err(|e| SandboxError::Compile(format!("{e:#}")))
    }
}
