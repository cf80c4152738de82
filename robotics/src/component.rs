//! The source files of a reward component: the host's wrapper (`guest/lib.rs`, with the
//! `reward` world's WIT written into it), the reward interface (`api.rs`) and the reward's own
//! source as `reward.rs`. The runtime adds the build template's manifest and builds the tree
//! like any guest: through the source policy, in the jail.

/// The `reward` world, the contract between the host and a reward component.
pub const REWARD_WIT: &str = include_str!("../wit/reward.wit");
/// The reward interface, as reward sources see it (`crate::api`).
pub const API_SOURCE: &str = include_str!("api.rs");
const WRAPPER: &str = include_str!("../guest/lib.rs");
const WIT_PLACEHOLDER: &str = "__REWARD_WIT__";

/// Largest reward source accepted, in bytes.
pub const MAX_REWARD_SOURCE_BYTES: usize = 64 * 1024;

/// The files of the component of `reward_source`, as (relative path, contents), without the
/// manifest. The source must define `pub struct Reward` implementing
/// `crate::api::RewardFunction`.
pub fn source_files(reward_source: &str) -> Result<Vec<(&'static str, String)>, String> {
    if reward_source.len() > MAX_REWARD_SOURCE_BYTES {
        return Err(format!(
            "the reward source is {} bytes; the limit is {MAX_REWARD_SOURCE_BYTES}",
            reward_source.len()
        ));
    }
    Ok(vec![
        ("src/lib.rs", WRAPPER.replace(WIT_PLACEHOLDER, REWARD_WIT)),
        ("src/api.rs", API_SOURCE.to_owned()),
        ("src/reward.rs", reward_source.to_owned()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wrapper_carries_the_world_whole() {
        let files = source_files("pub struct Reward;").unwrap();
        let lib = &files[0].1;
        assert!(lib.contains(REWARD_WIT) && !lib.contains(WIT_PLACEHOLDER));
        // The WIT goes into a raw string that it must not close.
        assert!(!REWARD_WIT.contains("\"#"));
        assert!(source_files(&"x".repeat(MAX_REWARD_SOURCE_BYTES + 1)).is_err());
    }
}
