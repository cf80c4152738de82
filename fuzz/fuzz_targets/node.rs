//! The node parser, fed arbitrary bytes. Whatever it accepts is canonical: serialising the parsed
//! node gives back the same bytes, so a node has exactly one hash.
#![no_main]

use hyperagent::archive::Node;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(node) = Node::parse(bytes) {
        assert_eq!(node.canonical_json(), bytes);
    }
});
