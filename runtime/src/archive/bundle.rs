//! Export and import of a run's whole closure as one file, so that an auditor on another machine
//! can replay it offline.
//!
//! Format (bytes): the line `hyperagent-export 1\n`, then entries, each a header line and a body:
//! `run <id> <length>\n` + the run log, `object <hash> <length>\n` + the object's bytes,
//! `node <hash>\n` (a node marker, no body), `run-object <hash>\n` (a run object marker, no body),
//! `head <hash>\n` (the run's latest run object; its signature follows as `signature <length>\n` +
//! the bytes of `head.sig` when the run was signed), and finally `end\n`. Import re-hashes every object before storing it, so
//! a bundle cannot smuggle in content under a wrong name.

use super::{Archive, ArchiveError};
use crate::hash::ContentHash;
use std::io::{BufRead, Read};

const MAGIC: &str = "hyperagent-export 1\n";

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("bundle I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a hyperagent export bundle, or a damaged one: {0}")]
    Format(String),
    #[error("object {claimed} in the bundle hashes to {actual}: the bundle was altered")]
    Tampered { claimed: ContentHash, actual: ContentHash },
}

/// What a bundle holds.
pub struct Bundle {
    pub run_id: String,
    pub log: Vec<u8>,
    pub objects: Vec<ContentHash>,
    pub nodes: Vec<ContentHash>,
    /// The run's latest run object, and its signature file.
    pub head: Option<ContentHash>,
    pub signature: Option<Vec<u8>>,
}

/// The run's anchor as exported: its latest run object and the signature of it, if any.
pub struct Head<'a> {
    pub object: ContentHash,
    pub signature: Option<&'a [u8]>,
    /// Every run object of the run (the head's among them), by ascending hash.
    pub run_objects: Vec<ContentHash>,
}

/// Writes the bundle of a run: its log and every object reachable from its nodes and records.
pub fn export(
    archive: &Archive,
    run_id: &str,
    log: &[u8],
    roots: &[ContentHash],
    head: Option<Head<'_>>,
) -> Result<Vec<u8>, BundleError> {
    let mut roots = roots.to_vec();
    roots.extend(head.as_ref().map(|h| h.object));
    roots.extend(head.iter().flat_map(|h| h.run_objects.iter().copied()));
    let closure = archive.closure(&roots)?;
    let node_ids: std::collections::BTreeSet<ContentHash> = archive.node_ids()?.into_iter().collect();
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC.as_bytes());
    out.extend_from_slice(format!("run {run_id} {}\n", log.len()).as_bytes());
    out.extend_from_slice(log);
    for hash in &closure {
        let bytes = archive.get_blob(hash)?;
        out.extend_from_slice(format!("object {hash} {}\n", bytes.len()).as_bytes());
        out.extend_from_slice(&bytes);
    }
    for hash in closure.iter().filter(|h| node_ids.contains(h)) {
        out.extend_from_slice(format!("node {hash}\n").as_bytes());
    }
    if let Some(head) = head {
        for object in &head.run_objects {
            out.extend_from_slice(format!("run-object {object}\n").as_bytes());
        }
        out.extend_from_slice(format!("head {}\n", head.object).as_bytes());
        if let Some(signature) = head.signature {
            out.extend_from_slice(format!("signature {}\n", signature.len()).as_bytes());
            out.extend_from_slice(signature);
        }
    }
    out.extend_from_slice(b"end\n");
    Ok(out)
}

/// Reads a bundle into `archive`, checking every object's hash; returns what it held.
pub fn import(archive: &Archive, bytes: &[u8]) -> Result<Bundle, BundleError> {
    let mut reader = std::io::Cursor::new(bytes);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if line != MAGIC {
        return Err(BundleError::Format("the first line is not `hyperagent-export 1`".into()));
    }
    let mut held = std::collections::HashSet::new();
    let mut bundle = Bundle {
        run_id: String::new(),
        log: Vec::new(),
        objects: Vec::new(),
        nodes: Vec::new(),
        head: None,
        signature: None,
    };
    let body = |reader: &mut std::io::Cursor<&[u8]>, length: &str| -> Result<Vec<u8>, BundleError> {
        let length: u64 = length.parse().map_err(|_| BundleError::Format(format!("`{length}` is not a length")))?;
        // The bundle is in memory already: an entry can claim no more than what is left of it.
        if length > (reader.get_ref().len() as u64).saturating_sub(reader.position()) {
            return Err(BundleError::Format(format!("an entry of {length} bytes runs past the end of the bundle")));
        }
        let mut data = vec![0u8; length as usize];
        reader.read_exact(&mut data)?;
        Ok(data)
    };
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(BundleError::Format("the bundle ends without `end`".into()));
        }
        let fields: Vec<&str> = line.trim_end_matches('\n').split(' ').collect();
        match fields.as_slice() {
            ["end"] => break,
            ["run", id, length] => {
                crate::source_tree::RelPath::new(id)
                    .ok()
                    .filter(|p| p.depth() == 1)
                    .ok_or_else(|| BundleError::Format(format!("`{id}` is not a run id")))?;
                bundle.run_id = (*id).to_owned();
                bundle.log = body(&mut reader, length)?;
            }
            ["object", hash, length] => {
                let claimed: ContentHash =
                    hash.parse().map_err(|e: crate::hash::BadHash| BundleError::Format(e.to_string()))?;
                let data = body(&mut reader, length)?;
                let actual = ContentHash::of(&data);
                if actual != claimed {
                    return Err(BundleError::Tampered { claimed, actual });
                }
                archive.put_blob(&data)?;
                bundle.objects.push(claimed);
                held.insert(claimed);
            }
            ["node", hash] => {
                let id: ContentHash =
                    hash.parse().map_err(|e: crate::hash::BadHash| BundleError::Format(e.to_string()))?;
                // Only an object of this bundle that really is a node becomes one.
                if !held.contains(&id) {
                    return Err(BundleError::Format(format!(
                        "a node marker names {id}, which the bundle does not hold"
                    )));
                }
                let node = archive.get_node(&id)?;
                archive.put_node(&node)?;
                bundle.nodes.push(id);
            }
            ["run-object", hash] => {
                let id: ContentHash =
                    hash.parse().map_err(|e: crate::hash::BadHash| BundleError::Format(e.to_string()))?;
                if !held.contains(&id) {
                    return Err(BundleError::Format(format!(
                        "a run object marker names {id}, which the bundle does not hold"
                    )));
                }
                archive.put_run_object(&archive.get_run_object(&id)?)?;
            }
            ["head", hash] => {
                let id: ContentHash =
                    hash.parse().map_err(|e: crate::hash::BadHash| BundleError::Format(e.to_string()))?;
                if !held.contains(&id) {
                    return Err(BundleError::Format(format!("the head names {id}, which the bundle does not hold")));
                }
                archive.put_run_object(&archive.get_run_object(&id)?)?;
                bundle.head = Some(id);
            }
            ["signature", length] => bundle.signature = Some(body(&mut reader, length)?),
            _ => return Err(BundleError::Format(format!("unexpected entry `{}`", line.trim_end()))),
        }
    }
    if bundle.run_id.is_empty() {
        return Err(BundleError::Format("the bundle holds no run log".into()));
    }
    Ok(bundle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_bundles_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::open(dir.path()).unwrap();
        let refused = |bytes: &[u8]| import(&archive, bytes).err().expect("refused").to_string();
        assert!(refused(b"not a bundle\n").contains("hyperagent-export 1"));
        assert!(refused(b"hyperagent-export 1\nrun r 100\nshort").contains("runs past the end"));
        assert!(refused(b"hyperagent-export 1\nrun r 2\nab").contains("without `end`"));
        assert!(refused(b"hyperagent-export 1\nrun ../x 0\nend\n").contains("not a run id"));
        let hash = ContentHash::of(b"abc");
        assert!(refused(format!("hyperagent-export 1\nobject {hash} 3\nabd").as_bytes()).contains("altered"));
        assert!(
            refused(format!("hyperagent-export 1\nrun r 0\nnode {hash}\nend\n").as_bytes()).contains("does not hold")
        );
        // Bodies are followed directly by the next header line.
        let good = format!("hyperagent-export 1\nrun r 2\nabobject {hash} 3\nabcend\n");
        let bundle = import(&archive, good.as_bytes()).unwrap();
        assert_eq!(
            (bundle.run_id.as_str(), bundle.log.as_slice(), bundle.objects.as_slice()),
            ("r", &b"ab"[..], &[hash][..])
        );
    }
}
