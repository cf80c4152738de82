//! The editable parent selector (`selection = "agent"`, the paper's appendix E.5): the hyperagent's
//! own `select` export chooses each generation's parents. The selector asked is that of the newest
//! node that can be a parent and exports one, as the original asks the newest node able to select.
//! It runs in the sandbox under its own fuel, memory and deadline, sees the archive as the
//! generation began, and everything it answers is checked: the right number of ids, each a node of
//! the archive that can be a parent. Anything else (an error, a trap, running out of fuel, too
//! large an answer, an unknown or invalid node) is recorded and the generation falls back to the
//! configured rule. The call is deterministic, so a resumed generation or a replay asks again and
//! gets the same parents.

use super::NodeRecord;
use super::history::archive_list;
use super::selection::Selection;
use crate::hash::ContentHash;
use crate::sandbox::{CallInput, CallLimits, Fuel, Grants, LoadedComponent, Sandbox, SandboxError, SelectInput};
use std::time::Duration;

/// Fuel for one `select` call: room for sorting and scoring thousands of nodes, far less than a
/// meta call.
pub const SELECTOR_FUEL: u64 = 2_000_000_000;
/// Memory cap of a `select` call, in bytes.
pub const SELECTOR_MEMORY_BYTES: u64 = 64 << 20;
/// Largest answer accepted, in bytes (64 ids of 64 hex digits need about 4.3 KB).
pub const SELECTOR_OUTPUT_BYTES: usize = 64 << 10;

pub fn selector_limits() -> CallLimits {
    CallLimits {
        fuel: Fuel(SELECTOR_FUEL),
        memory_bytes: SELECTOR_MEMORY_BYTES,
        deadline: Duration::from_secs(30),
        output_bytes: SELECTOR_OUTPUT_BYTES,
        hostcall_bytes: 1 << 20,
        ..CallLimits::default()
    }
}

/// The archive as a selector is shown it: the list `/history` holds, with `valid` per node.
pub fn selector_archive(nodes: &[NodeRecord]) -> String {
    let mut list = archive_list(nodes, Selection::DgmH);
    for (entry, node) in list.iter_mut().zip(nodes) {
        entry["valid"] = serde_json::Value::Bool(node.can_be_parent());
    }
    serde_json::json!({ "nodes": list }).to_string()
}

/// What asking a selector came to.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectorAnswer {
    /// The node whose selector was asked.
    pub selector: ContentHash,
    /// The parents it chose, one per slot, or why its answer was not used.
    pub parents: Result<Vec<ContentHash>, String>,
    pub fuel: u64,
}

/// Asks `component`'s selector (that of node `selector`) for `count` parents among `nodes`.
/// Errors are the host's own (a bad setup); everything the selector does ends in the answer.
pub async fn ask(
    sandbox: &Sandbox,
    selector: ContentHash,
    component: &LoadedComponent,
    nodes: &[NodeRecord],
    count: u32,
    seed: u64,
) -> Result<SelectorAnswer, SandboxError> {
    let input = CallInput::Select(SelectInput { archive: selector_archive(nodes), count });
    let grants = Grants { seed, ..Grants::default() };
    let report = sandbox.call(component, &input, &selector_limits(), &grants).await?;
    let parents = match (&report.outcome, &report.output) {
        (outcome, Some(output)) if outcome.is_ok() => check_answer(output, nodes, count),
        (outcome, _) => Err(format!("the selector's call ended {}: {outcome}", outcome.label())),
    };
    Ok(SelectorAnswer { selector, parents, fuel: report.fuel_consumed })
}

/// The parents an answer names, if it is `count` ids of nodes that can be parents.
pub fn check_answer(output: &str, nodes: &[NodeRecord], count: u32) -> Result<Vec<ContentHash>, String> {
    let ids: Vec<String> =
        serde_json::from_str(output).map_err(|e| format!("the answer is not a list of node ids: {e}"))?;
    if ids.len() != count as usize {
        return Err(format!("the answer names {} node(s); the generation has {count} slot(s)", ids.len()));
    }
    ids.iter()
        .enumerate()
        .map(|(slot, id)| {
            let shown: String = id.chars().take(80).collect();
            let hash: ContentHash = id.parse().map_err(|_| format!("slot {slot}: `{shown}` is not a node id"))?;
            match nodes.iter().find(|n| n.id == hash) {
                Some(node) if node.can_be_parent() => Ok(hash),
                Some(_) => Err(format!("slot {slot}: node {} cannot be a parent", hash.short())),
                None => Err(format!("slot {slot}: no node {} in the archive", hash.short())),
            }
        })
        .collect()
}
