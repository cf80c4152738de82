//! The one JSON reader for what a guest returns. The sandbox checks every output with it and the
//! scorers read answers with it, so an output the sandbox accepts is one a scorer reads, and both
//! read it the same way.
//!
//! Stricter than `serde_json::from_str`: parsers disagree on a duplicated object key (first wins,
//! last wins, error), so one is refused at any depth; a number that overflows to an infinity is
//! refused; nesting is bounded by [`MAX_DEPTH`], well inside serde_json's own recursion limit.
//! The caller bounds the text's length (the sandbox caps outputs before this runs).

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

/// Deepest nesting of arrays and objects accepted.
pub const MAX_DEPTH: usize = 100;

/// Parses `text` as one strict JSON value, or says why it is refused.
pub fn parse_strict(text: &str) -> Result<Value, String> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = Strict { depth: 0 }.deserialize(&mut deserializer).map_err(describe)?;
    deserializer.end().map_err(describe)?;
    Ok(value)
}

fn describe(error: serde_json::Error) -> String {
    let text = error.to_string();
    // serde_json files an overflowing number as a syntax error; it is JSON, just not a number.
    if error.is_data() || text.starts_with("number out of range") { text } else { format!("not JSON: {text}") }
}

/// A value at `depth` levels of nesting.
#[derive(Clone, Copy)]
struct Strict {
    depth: usize,
}

impl Strict {
    fn nested<E: de::Error>(self) -> Result<Strict, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format!("nested more than {MAX_DEPTH} levels deep")));
        }
        Ok(Strict { depth: self.depth + 1 })
    }
}

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Value, E> {
        Number::from_f64(n).map(Value::Number).ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                // The key is the guest's: quoted with escapes and cut, as it ends up in reports.
                let shown: String = key.chars().take(40).collect();
                return Err(de::Error::custom(format!("duplicate key {shown:?}")));
            }
            let value = map.next_value_seed(inner)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_json_reads_as_serde_json_reads_it() {
        for text in [
            r#"{"bins": [0, 1, 2], "note": "ok", "x": -3, "y": 2.5e10, "z": null, "t": true}"#,
            "[]",
            "{}",
            "\"\\u00e9\\n\"",
            "18446744073709551615",
            "-9223372036854775808",
            "1e-999",
            " [1] ",
        ] {
            assert_eq!(parse_strict(text), Ok(serde_json::from_str::<Value>(text).unwrap()), "{text}");
        }
        assert_eq!(parse_strict(r#"{"a": {"b": [1, {"c": 2}]}}"#).unwrap(), json!({"a": {"b": [1, {"c": 2}]}}));
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        for text in [
            r#"{"a": 1, "a": 2}"#,
            r#"{"bins": [0], "bins": [1]}"#,
            r#"[{"x": {"k": 1, "k": 1}}]"#,
            // The same key spelled with an escape is the same key.
            r#"{"a": 1, "\u0061": 2}"#,
        ] {
            let error = parse_strict(text).unwrap_err();
            assert!(error.starts_with("duplicate key"), "{text}: {error}");
        }
        // Equal keys in different objects are fine.
        assert!(parse_strict(r#"{"a": {"a": 1}, "b": [{"a": 1}, {"a": 2}]}"#).is_ok());
    }

    #[test]
    fn numbers_that_overflow_are_refused() {
        for text in ["1e999", "[1e999]", "-1e400", r#"{"n": 123456789e400}"#] {
            let error = parse_strict(text).unwrap_err();
            assert!(error.contains("number out of range"), "{text}: {error}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let at_limit = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse_strict(&at_limit).is_ok());
        let over = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(parse_strict(&over).unwrap_err().contains("levels deep"));
        let objects = format!("{}1{}", r#"{"a":"#.repeat(MAX_DEPTH + 1), "}".repeat(MAX_DEPTH + 1));
        assert!(parse_strict(&objects).unwrap_err().contains("levels deep"));
        // Far deeper than any recursive parser's stack: refused, not followed.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_strict(&deep).unwrap_err().contains("levels deep"));
    }

    #[test]
    fn what_is_not_json_says_so() {
        for text in ["", "{not json", "[1,]", "[1] [2]", "NaN", "Infinity", "'a'", "\"\u{1b}\""] {
            let error = parse_strict(text).unwrap_err();
            assert!(error.starts_with("not JSON"), "{text:?}: {error}");
        }
    }

    #[test]
    fn a_hostile_key_is_shown_escaped_and_cut() {
        let key = format!("\u{1b}]52;c;{}", "A".repeat(1000));
        let text = format!("{{{k}: 1, {k}: 2}}", k = serde_json::to_string(&key).unwrap());
        let error = parse_strict(&text).unwrap_err();
        assert!(!error.contains('\u{1b}') && error.contains("\\u{1b}"), "{error}");
        assert!(error.len() < 120, "{error}");
    }
}
