//! The archive's tree manifest parser, fed arbitrary bytes (a tampered or hostile archive).
//! Whatever it accepts must render back to exactly the bytes it read: one tree, one encoding.
#![no_main]

use hyperagent::archive::manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(entries) = manifest::parse(bytes) {
        assert_eq!(manifest::render(&entries), bytes, "an accepted manifest is not canonical");
        for entry in &entries {
            let path = entry.path.as_str();
            assert!(!path.starts_with('/') && !path.split('/').any(|c| c == ".." || c == "." || c.is_empty()));
        }
    }
});
