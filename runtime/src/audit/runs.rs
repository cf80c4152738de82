//! Checking a run directory against the archive: the log's chain, its node events, its run
//! objects and their signature.

use crate::archive::Archive;
use crate::evolution::log::Event;
use crate::evolution::records::NodeMetadata;
use crate::hash::ContentHash;

/// What `verify` found of one run: problems, and facts worth saying (a signature not checked).
#[derive(Debug, Default)]
pub struct RunCheck {
    pub problems: Vec<String>,
    pub notes: Vec<String>,
}

/// Checks a run directory against the archive: the log's hash chain; every `node` event against
/// its node object; the run's head against the run object the log implies; with `key`, the head's
/// signature. A consistent forgery (log, nodes and run object rewritten together) passes all but
/// the signature: that is what signing is for.
pub fn verify_run(archive: &Archive, run_dir: &std::path::Path, key: Option<&ed25519_dalek::VerifyingKey>) -> RunCheck {
    let mut check = RunCheck::default();
    let run = run_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let contents = match crate::evolution::log::RunLog::read_chain(&run_dir.join("log.jsonl")) {
        Ok(contents) => contents,
        Err(e) => {
            check.problems.push(format!("run {run}: {e}"));
            return check;
        }
    };
    for event in &contents.events {
        if let Event::Node { node, .. } = event
            && let Err(why) = node_event_agrees(archive, event)
        {
            check.problems.push(format!("run {run}: the node event of {}: {why}", node.short()));
        }
    }
    check_head(archive, run_dir, &run, &contents, key, &mut check);
    check
}

/// A `node` event says what its node object says.
pub fn node_event_agrees(archive: &Archive, event: &Event) -> Result<(), String> {
    let Event::Node { generation, slot, node, parent, score, status } = event else { return Ok(()) };
    let object = archive.get_node(node).map_err(|e| e.to_string())?;
    let meta = NodeMetadata::of(&object)?;
    let logged = (*generation, *slot, *parent, score.map(f64::to_bits), status.as_str());
    let stored = (meta.generation, meta.slot, object.parent, meta.score.map(f64::to_bits), meta.status.label());
    if logged != stored {
        return Err(format!(
            "the log says generation {generation} slot {slot} parent {parent:?} score {score:?} status {status}; \
             the node says generation {} slot {} parent {:?} score {:?} status {}",
            meta.generation,
            meta.slot,
            object.parent,
            meta.score,
            meta.status.label()
        ));
    }
    Ok(())
}

/// The head names a run object in the archive that is exactly what the log implies (and, for a
/// finished run, covers all of it); with a key, its signature holds.
fn check_head(
    archive: &Archive,
    run_dir: &std::path::Path,
    run: &str,
    contents: &crate::evolution::log::LogContents,
    key: Option<&ed25519_dalek::VerifyingKey>,
    check: &mut RunCheck,
) {
    use crate::run_object::{RunObject, RunSignature, check_signature};
    let head = match std::fs::read_to_string(run_dir.join("head")).map(|t| t.trim_end().parse::<ContentHash>()) {
        Ok(Ok(head)) => head,
        _ => return check.problems.push(format!("run {run}: no readable head: nothing anchors its log")),
    };
    let object = match archive.get_run_object(&head) {
        Ok(object) => object,
        Err(e) => return check.problems.push(format!("run {run}: its head {}: {e}", head.short())),
    };
    match RunObject::from_log(run, contents, object.log_lines as usize) {
        Some(implied) if implied == object => {}
        _ => check.problems.push(format!(
            "run {run}: the run object {} does not match the log's first {} lines",
            head.short(),
            object.log_lines
        )),
    }
    // Every run object of this run, not only the head's, says what its log prefix says: a stale
    // one left behind by a rewrite contradicts the log.
    for id in archive.run_object_ids().unwrap_or_default().into_iter().filter(|id| *id != head) {
        if let Ok(other) = archive.get_run_object(&id)
            && other.run == run
            && RunObject::from_log(run, contents, other.log_lines as usize).as_ref() != Some(&other)
        {
            check.problems.push(format!(
                "run {run}: run object {} does not match the log's first {} lines",
                id.short(),
                other.log_lines
            ));
        }
    }
    let finished = contents.events.iter().any(|e| matches!(e, Event::Finished { .. }));
    if finished && object.log_lines != contents.events.len() as u64 {
        check.problems.push(format!(
            "run {run}: the log has {} lines after its run finished at line {}",
            contents.events.len(),
            object.log_lines
        ));
    }
    let signature = std::fs::read(run_dir.join("head.sig"))
        .ok()
        .map(|bytes| serde_json::from_slice::<RunSignature>(&bytes).map_err(|e| e.to_string()));
    match (key, signature) {
        (Some(key), Some(Ok(signature))) => {
            if let Err(why) = check_signature(&signature, &head, key) {
                check.problems.push(format!("run {run}: {why}"));
            }
        }
        (Some(_), Some(Err(why))) => check.problems.push(format!("run {run}: head.sig is unreadable: {why}")),
        (Some(_), None) => check.problems.push(format!("run {run}: not signed, and a key was given")),
        (None, Some(Ok(signature))) => {
            check.notes.push(format!("run {run}: signed by {}; give --key to check the signature", signature.key))
        }
        (None, Some(Err(why))) => check.problems.push(format!("run {run}: head.sig is unreadable: {why}")),
        (None, None) => {}
    }
}
