//! The host's tools over `/repo`, for meta calls: `check_build` (contract 0.1.1) builds the
//! source as it stands, exactly as the host will build the child; `try_task` (0.1.2) also runs its
//! task agent on one training task.

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

pub use crate::bindings::hyperagent::agent::workbench::TaskTrial;

/// Builds `/repo` and runs its task agent on one training task (contract 0.1.2): the outcome, the
/// domain's score and feedback, and the answer. Fails outside meta calls, when the source does not
/// build, for a task outside the run's training split, and once the call's trials are spent.
pub fn try_task(domain: &str, task_id: &str) -> Result<TaskTrial, String> {
    workbench::try_task(domain, task_id)
}

/// A trial as text for a model.
pub fn describe_trial(trial: &TaskTrial) -> String {
    let mut text = format!("outcome: {}; score: {}; fuel: {}", trial.outcome, trial.score, trial.fuel);
    if let Some(invalid) = &trial.invalid {
        text.push_str(&format!("\nrefused: {invalid}"));
    }
    text.push_str(&format!("\nfeedback: {}", trial.feedback));
    if let Some(answer) = &trial.answer {
        text.push_str(&format!("\nanswer: {answer}"));
    }
    text
}
