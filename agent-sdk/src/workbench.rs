//! The host's tools over `/repo`, for meta calls (contract 0.1.1): `check_build` builds the
//! source as it stands, exactly as the host will build the child.

use crate::bindings::hyperagent::agent::workbench;
pub use crate::bindings::hyperagent::agent::workbench::BuildCheck;

/// Checks `/repo` against the source policy and builds it in the host's jail. Fails outside meta
/// calls and once the call's checks are spent.
pub fn check_build() -> Result<BuildCheck, String> {
    workbench::check_build()
}

/// A check as text for a model: the status, then the diagnostics.
pub fn describe(check: &BuildCheck) -> String {
    let again = if check.cached { " (the same source as an earlier check)" } else { "" };
    let diagnostics = check.diagnostics.trim();
    if diagnostics.is_empty() {
        format!("status: {}{again}; no diagnostics", check.status)
    } else {
        format!("status: {}{again}\n{diagnostics}", check.status)
    }
}
