//! The text form of a source tree, hashed as a whole to name the tree.
//!
//! One line per file, sorted by path (byte order), no duplicates, each line
//! `<mode> <blob hash> <path>\n` with mode `100644` or `100755`. The format is strict so that one
//! tree has exactly one manifest; the parser accepts nothing else, since manifests may be read
//! from an archive someone tampered with.

use crate::hash::ContentHash;
use crate::source_tree::{FileMode, RelPath};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    pub mode: FileMode,
    pub blob: ContentHash,
    pub path: RelPath,
}

/// Largest manifest the parser accepts (bytes); bounds the work a tampered archive can cause.
pub const MAX_MANIFEST_BYTES: usize = 1 << 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("manifest is larger than {MAX_MANIFEST_BYTES} bytes")]
    TooLarge,
    #[error("manifest is not UTF-8")]
    NotUtf8,
    #[error("manifest line {line}: {reason}")]
    BadLine { line: usize, reason: String },
    #[error("manifest line {line}: `{path}` is out of order or repeated")]
    Unsorted { line: usize, path: String },
}

pub fn render(entries: &[ManifestEntry]) -> Vec<u8> {
    let mut out = String::new();
    for entry in entries {
        out.push_str(entry.mode.octal());
        out.push(' ');
        out.push_str(&entry.blob.to_hex());
        out.push(' ');
        out.push_str(entry.path.as_str());
        out.push('\n');
    }
    out.into_bytes()
}

pub fn parse(bytes: &[u8]) -> Result<Vec<ManifestEntry>, ManifestError> {
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::TooLarge);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| ManifestError::NotUtf8)?;
    if !text.is_empty() && !text.ends_with('\n') {
        return Err(ManifestError::BadLine {
            line: text.lines().count(),
            reason: "the last line does not end with a newline".into(),
        });
    }
    let mut entries: Vec<ManifestEntry> = Vec::new();
    for (index, line) in text.split_terminator('\n').enumerate() {
        let number = index + 1;
        let bad = |reason: String| ManifestError::BadLine { line: number, reason };
        let mut parts = line.splitn(3, ' ');
        let (Some(mode), Some(hash), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected `<mode> <hash> <path>`".into()));
        };
        let mode = FileMode::from_octal(mode).ok_or_else(|| bad(format!("unknown mode `{mode}`")))?;
        let blob: ContentHash = hash.parse().map_err(|e: crate::hash::BadHash| bad(e.to_string()))?;
        let path = RelPath::new(path).map_err(|e| bad(e.to_string()))?;
        if let Some(previous) = entries.last()
            && previous.path.as_str().as_bytes() >= path.as_str().as_bytes()
        {
            return Err(ManifestError::Unsorted { line: number, path: path.to_string() });
        }
        entries.push(ManifestEntry { mode, blob, path });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str) -> ManifestEntry {
        ManifestEntry {
            mode: FileMode::Regular,
            blob: ContentHash::of(path.as_bytes()),
            path: RelPath::new(path).unwrap(),
        }
    }

    #[test]
    fn round_trip() {
        let entries = vec![entry("Cargo.toml"), entry("src/lib.rs")];
        assert_eq!(parse(&render(&entries)).unwrap(), entries);
        assert_eq!(parse(b"").unwrap(), vec![]);
    }

    #[test]
    fn rejects_malformed() {
        let h = ContentHash::of(b"x").to_hex();
        for bad in [
            format!("100644 {h} ../escape\n"),
            format!("100644 {h} /etc/passwd\n"),
            format!("120000 {h} link\n"),
            format!("100644 {h} b\n100644 {h} a\n"),
            format!("100644 {h} a\n100644 {h} a\n"),
            format!("100644 {h} a"),
            "100644 nothex a\n".to_owned(),
            "garbage\n".to_owned(),
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert_eq!(parse(&[0xff, b'\n']), Err(ManifestError::NotUtf8));
    }
}
