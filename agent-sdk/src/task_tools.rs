//! Tools a task call may use where its domain offers them (contract 0.1.2): `run_tests` builds a
//! coding answer with tests the agent wrote and runs them as the host runs an exercise's tests.

use crate::bindings::hyperagent::agent::task_tools;
pub use crate::bindings::hyperagent::agent::task_tools::TestRun;

/// Runs `tests` (one integration test file) against the solution `files` (paths under `src/`).
/// Fails where the task's domain offers no such tool, and once the call's runs are spent.
pub fn run_tests(files: &[(String, String)], tests: &str) -> Result<TestRun, String> {
    task_tools::run_tests(files, tests)
}

/// A run as text for a model.
pub fn describe(run: &TestRun) -> String {
    if !run.built {
        return format!("the solution or the tests did not compile:\n{}", run.output);
    }
    format!("{} passed, {} failed\n{}", run.passed, run.failed, run.output).trim_end().to_owned()
}
