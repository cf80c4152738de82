//! The SDK's edit parser, fed an LLM's answer. Never a panic; every edit it returns names a file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes);
    if let Ok(edits) = agent_sdk::edits::parse(&text) {
        assert!(edits.iter().all(|e| !e.path().is_empty()));
    }
});
