//! The source tree of a reward component: the build template's manifest, the host's wrapper and
//! the reward interface, and the reward's source as `src/reward.rs`.

use crate::source_tree::SourceTree;
use hyperagent_robotics::component;

/// The tree to build for `reward_source`, with the build template's manifest (`template`) as its
/// `Cargo.toml`, less the build profile that the host alone sets. Fails only for a source over
/// the size limit.
pub fn reward_tree(reward_source: &str, template: &str) -> Result<SourceTree, String> {
    let mut tree = SourceTree::default();
    let mut insert = |path: &str, bytes: Vec<u8>| {
        tree.insert(path, bytes).map_err(|e| format!("cannot place {path} in the reward tree: {e}"))
    };
    insert("Cargo.toml", without_profiles(template).into_bytes())?;
    for (path, text) in component::source_files(reward_source)? {
        insert(path, text.into_bytes())?;
    }
    Ok(tree)
}

/// The manifest without its `[profile.*]` tables.
fn without_profiles(manifest: &str) -> String {
    let mut kept = String::with_capacity(manifest.len());
    let mut in_profile = false;
    for line in manifest.lines() {
        let header = line.trim_start();
        if header.starts_with('[') {
            in_profile = header.starts_with("[profile");
        }
        if !in_profile {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_goes_and_the_rest_stays() {
        let manifest =
            "[package]\nname = \"x\"\n[profile.release]\nlto = \"off\"\n[dependencies]\na = \"1\"\n[workspace]\n";
        assert_eq!(without_profiles(manifest), "[package]\nname = \"x\"\n[dependencies]\na = \"1\"\n[workspace]\n");
        let tree = reward_tree("pub struct Reward;", manifest).unwrap();
        let paths: Vec<&str> = tree.files.keys().map(|p| p.as_str()).collect();
        assert_eq!(paths, ["Cargo.toml", "src/api.rs", "src/lib.rs", "src/reward.rs"]);
    }
}
