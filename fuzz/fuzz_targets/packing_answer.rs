//! The host's scorer, fed a task agent's answer. The first bytes choose a small instance, the rest
//! is the answer: never a panic, a score in [0, 1], and a valid answer never beats the L1 bound.
#![no_main]

use hyperagent_domains::bin_packing::{self, Instance};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let (head, answer) = bytes.split_at(bytes.len().min(8));
    let items: Vec<u64> = head.iter().map(|b| u64::from(*b % 100) + 1).collect();
    let instance = Instance { name: "fuzz".into(), capacity: 100, items };
    let scored = bin_packing::score(&instance, &String::from_utf8_lossy(answer));
    assert!((0.0..=1.0).contains(&scored.score), "{}", scored.score);
    if scored.invalid.is_none() {
        let bins = scored.details["bins"].as_u64().expect("a valid answer reports its bins");
        assert!(bins >= instance.l1_bound(), "{bins} bins beat the lower bound");
    } else {
        assert_eq!(scored.score, 0.0);
    }
});
