//! The parsers of provider responses (bytes from the network), for both wire formats. Never a
//! panic, whatever a server sends.
#![no_main]

use hyperagent::llm::wire::Provider;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    for provider in [Provider::OpenAi, Provider::Anthropic] {
        let _ = provider.parse(bytes);
    }
});
