//! The one canonical form of every JSON object the archive hashes: the JSON Canonicalization
//! Scheme (RFC 8785). Object keys sorted by their UTF-16 code units, no insignificant whitespace,
//! numbers as ECMAScript prints them, strings with the minimal escapes. A published standard, so
//! an independent verifier in any language can recompute every hash.

use serde::Serialize;

/// The canonical bytes of `value`.
pub fn to_vec<T: Serialize>(value: &T) -> Vec<u8> {
    // Only non-finite numbers fail, and no archived object holds one (guest outputs are refused
    // with them before they reach a record).
    serde_json_canonicalizer::to_vec(value).expect("archived JSON has no non-finite numbers")
}

/// The largest integer canonical JSON carries exactly (numbers are IEEE 754 doubles): 2^53 − 1.
/// Counters and seeds that are hashed must stay at or below it.
pub const MAX_EXACT_INTEGER: u64 = (1 << 53) - 1;

/// Whether `bytes` are exactly the canonical form of the JSON they hold.
pub fn is_canonical(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(bytes).is_ok_and(|value| to_vec(&value) == bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_utf16_and_numbers_print_as_ecmascript() {
        // RFC 8785 §3.2.3: U+20AC sorts before U+1F600 in UTF-16 (0x20AC < 0xD83D), the
        // opposite of their code point order... and "\r" before "1".
        let value = serde_json::json!({"\u{1F600}": 1, "\u{20AC}": 2, "1": 3, "\r": 4});
        assert_eq!(String::from_utf8(to_vec(&value)).unwrap(), "{\"\\r\":4,\"1\":3,\"€\":2,\"😀\":1}");
        let numbers = serde_json::json!([1.0, 0.9647, 1e21, 1e-7, -0.0, 333333333.3333333]);
        assert_eq!(String::from_utf8(to_vec(&numbers)).unwrap(), "[1,0.9647,1e+21,1e-7,0,333333333.3333333]");
        assert!(is_canonical(b"{\"a\":1,\"b\":[true,null]}"));
        assert!(!is_canonical(b"{\"b\":1,\"a\":2}"));
        assert!(!is_canonical(b"{\"a\": 1}"));
        // Past 2^53 an integer cannot be carried exactly; configurations refuse such values.
        assert_eq!(to_vec(&serde_json::json!(MAX_EXACT_INTEGER + 2)), b"9007199254740992");
    }
}
