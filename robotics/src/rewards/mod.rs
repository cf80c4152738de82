//! The host's hand-written rewards, each in the reward interface ([`crate::api`]) and nothing
//! else, so that the same text also builds as a reward component (the overhead benchmark does
//! that). `SOURCES` holds their text for that purpose.

pub mod jump;
pub mod stand_tall;
pub mod walk;

/// Each reward's name and source text.
pub const SOURCES: &[(&str, &str)] = &[
    ("stand-tall", include_str!("stand_tall.rs")),
    ("jump", include_str!("jump.rs")),
    ("walk", include_str!("walk.rs")),
];
