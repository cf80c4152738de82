//! Content hashes: blake3 digests that name everything the archive stores.

use std::fmt;
use std::str::FromStr;

/// The blake3 hash of some bytes, printed as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash([u8; 32]);

impl ContentHash {
    pub fn of(bytes: &[u8]) -> ContentHash {
        ContentHash(*blake3::hash(bytes).as_bytes())
    }

    pub fn from_blake3(hash: blake3::Hash) -> ContentHash {
        ContentHash(*hash.as_bytes())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }

    /// The first 12 hex digits, for tables and messages.
    pub fn short(&self) -> String {
        self.to_hex()[..12].to_owned()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a content hash (expected 64 lowercase hex digits)")]
pub struct BadHash(pub String);

impl FromStr for ContentHash {
    type Err = BadHash;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lowercase_hex = s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !lowercase_hex {
            return Err(BadHash(s.chars().take(80).collect()));
        }
        blake3::Hash::from_hex(s).map(ContentHash::from_blake3).map_err(|_| BadHash(s.to_owned()))
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({})", self.short())
    }
}

impl serde::Serialize for ContentHash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for ContentHash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_rejects() {
        let h = ContentHash::of(b"hello");
        assert_eq!(h.to_hex().parse::<ContentHash>().unwrap(), h);
        assert!("abc".parse::<ContentHash>().is_err());
        assert!(h.to_hex().to_uppercase().parse::<ContentHash>().is_err());
        assert!(format!("{}g", &h.to_hex()[..63]).parse::<ContentHash>().is_err());
    }
}
