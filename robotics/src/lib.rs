//! Robot reward design on a Unitree Go2 in rapier3d: the robot built from its MJCF, rollouts under
//! PD control, the interface a reward function implements, hand-written rewards, a gait
//! generator and the seeded optimiser that a reward drives.
//!
//! Nothing here runs untrusted code: a reward reaches the optimiser as a [`reward::RewardSource`],
//! which the host implements natively for its own rewards and over WebAssembly for agent-written
//! ones.

pub mod api;
pub mod cem;
pub mod component;
pub mod domain;
pub mod gait;
pub mod go2;
pub mod mjcf;
pub mod reward;
pub mod rewards;
pub mod rng;
pub mod rollout;
pub mod sim;

use std::path::{Path, PathBuf};

/// Where the Go2's MJCF sits in a data directory.
pub const MJCF_PATH: &str = "robotics/unitree_go2.xml";

/// Reads the Go2 from a data directory, with a message that says what to do when it is missing.
pub fn load_go2(data_dir: &Path) -> Result<go2::Go2, String> {
    let path: PathBuf = data_dir.join(MJCF_PATH);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "cannot read the Go2 model {}: {e}. The robotics domain needs the Unitree Go2 MJCF \
             (mujoco_menagerie unitree_go2/go2.xml, BSD-3-Clause) at {MJCF_PATH} in the data directory \
             (--data-dir or HYPERAGENT_DATA_DIR)",
            path.display()
        )
    })?;
    go2::Go2::from_mjcf(&text).map_err(|e| format!("{}: {e}", path.display()))
}
