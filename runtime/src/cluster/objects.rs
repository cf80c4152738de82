//! Objects in the bucket, named by the blake3 hex of their bytes. Whatever is read back is
//! re-hashed and refused when it does not have its name, so the bucket (and whoever can write to
//! it) is never trusted.

use super::ClusterError;
use crate::archive::Archive;
use crate::evolution::farm::HistorySnapshot;
use crate::hash::ContentHash;
use async_nats::jetstream::object_store::ObjectStore;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tokio::io::AsyncReadExt;

fn object_error(hash: &ContentHash, reason: impl std::fmt::Display) -> ClusterError {
    ClusterError::Object { name: hash.to_hex(), reason: reason.to_string() }
}

/// The bucket, with the names this process already knows are in it.
#[derive(Clone)]
pub struct Bucket {
    pub store: ObjectStore,
    known: Arc<Mutex<HashSet<ContentHash>>>,
}

impl Bucket {
    pub fn new(store: ObjectStore) -> Bucket {
        Bucket { store, known: Default::default() }
    }

    fn is_known(&self, hash: &ContentHash) -> bool {
        self.known.lock().expect("the set is never poisoned").contains(hash)
    }

    fn know(&self, hash: ContentHash) {
        self.known.lock().expect("the set is never poisoned").insert(hash);
    }

    /// Stores bytes under their hash unless the bucket has them.
    pub async fn put(&self, bytes: &[u8]) -> Result<ContentHash, ClusterError> {
        let hash = ContentHash::of(bytes);
        if self.is_known(&hash) {
            return Ok(hash);
        }
        let present = self.store.info(hash.to_hex()).await.is_ok_and(|info| !info.deleted);
        if !present {
            let mut reader = bytes;
            self.store.put(hash.to_hex().as_str(), &mut reader).await.map_err(|e| object_error(&hash, e))?;
        }
        self.know(hash);
        Ok(hash)
    }

    /// Stores an archived object.
    pub async fn put_from(&self, archive: &Archive, hash: &ContentHash) -> Result<(), ClusterError> {
        if !self.is_known(hash) {
            self.put(&archive.get_blob(hash)?).await?;
        }
        Ok(())
    }

    /// Reads an object and checks that its bytes have its name: a forged object is refused.
    pub async fn get(&self, hash: &ContentHash) -> Result<Vec<u8>, ClusterError> {
        let mut object = self.store.get(hash.to_hex()).await.map_err(|e| object_error(hash, e))?;
        let size = object.info().size;
        if size > super::MAX_OBJECT_BYTES {
            return Err(object_error(hash, format!("{size} bytes exceed the limit of {}", super::MAX_OBJECT_BYTES)));
        }
        let mut bytes = Vec::with_capacity(size);
        (&mut object)
            .take(super::MAX_OBJECT_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| object_error(hash, e))?;
        let actual = ContentHash::of(&bytes);
        if actual != *hash {
            return Err(object_error(hash, format!("refused: its content hashes to {actual}")));
        }
        self.know(*hash);
        Ok(bytes)
    }

    /// Brings an object into `archive` unless it is there.
    pub async fn fetch_into(&self, archive: &Archive, hash: &ContentHash) -> Result<(), ClusterError> {
        if archive.get_blob(hash).is_err() {
            archive.put_blob(&self.get(hash).await?)?;
        }
        Ok(())
    }

    /// Stores a tree (its manifest and every file) from `archive`.
    pub async fn put_tree(&self, archive: &Archive, tree: &ContentHash) -> Result<(), ClusterError> {
        if self.is_known(tree) {
            return Ok(());
        }
        for entry in archive.get_manifest(tree)? {
            self.put_from(archive, &entry.blob).await?;
        }
        // The manifest last: a tree whose manifest is present is complete.
        self.put_from(archive, tree).await
    }

    /// Brings a tree into `archive`, its manifest first (parsed by the archive's rules).
    pub async fn fetch_tree(&self, archive: &Archive, tree: &ContentHash) -> Result<(), ClusterError> {
        self.fetch_into(archive, tree).await?;
        for entry in archive.get_manifest(tree)? {
            self.fetch_into(archive, &entry.blob).await?;
        }
        Ok(())
    }

    /// Stores a history snapshot: each node's entry as an object of its own (they never change,
    /// so a worker fetches each once per run), and a list that names them.
    pub async fn put_snapshot(&self, snapshot: &HistorySnapshot) -> Result<ContentHash, ClusterError> {
        let mut entries = Vec::with_capacity(snapshot.entries.len());
        for (node, entry) in &snapshot.entries {
            let bytes = serde_json::to_vec(entry.as_ref()).expect("JSON values serialise");
            entries.push(serde_json::json!([node, self.put(&bytes).await?]));
        }
        let list = serde_json::json!({"nodes": snapshot.nodes, "entries": entries});
        self.put(&serde_json::to_vec(&list).expect("JSON values serialise")).await
    }

    /// Reads a history snapshot (and its entries) through `archive`, which keeps them.
    pub async fn get_snapshot(&self, archive: &Archive, hash: &ContentHash) -> Result<HistorySnapshot, ClusterError> {
        let bad = |reason: String| object_error(hash, format!("not a history snapshot: {reason}"));
        self.fetch_into(archive, hash).await?;
        let list: Value = serde_json::from_slice(&archive.get_blob(hash)?).map_err(|e| bad(e.to_string()))?;
        let nodes = list["nodes"].as_array().cloned().ok_or_else(|| bad("no node list".into()))?;
        let mut entries = Vec::new();
        for pair in list["entries"].as_array().ok_or_else(|| bad("no entry list".into()))? {
            let (node, entry): (ContentHash, ContentHash) =
                serde_json::from_value(pair.clone()).map_err(|e| bad(e.to_string()))?;
            self.fetch_into(archive, &entry).await?;
            let value: Value = serde_json::from_slice(&archive.get_blob(&entry)?).map_err(|e| bad(e.to_string()))?;
            entries.push((node, Arc::new(value)));
        }
        Ok(HistorySnapshot { nodes, entries })
    }
}
