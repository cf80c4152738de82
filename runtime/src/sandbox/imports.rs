//! The allow-list of interfaces a hyperagent component may import, checked before any
//! instantiation so that a component asking for sockets, HTTP or anything new is refused outright
//! instead of failing at its first call.

use wasmtime::Engine;
use wasmtime::component::Component;

/// WASI interfaces std needs (stdio, clocks, random, filesystem for the granted preopens) and the
/// hyperagent contract. Versions are checked separately: WASI `0.2.*`, contract `0.1.*`.
const ALLOWED_WASI: &[&str] = &[
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
];

const ALLOWED_CONTRACT: &[&str] =
    &["hyperagent:agent/types", "hyperagent:agent/host", "hyperagent:agent/workbench", "hyperagent:agent/task-tools"];

/// The contract version prefix this host implements.
pub const CONTRACT_VERSION: &str = "0.1.2";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the component imports {} interface(s) the sandbox does not grant: {}", .0.len(), .0.join(", "))]
pub struct ForbiddenImports(pub Vec<String>);

/// Every import name of the component, sorted.
pub fn import_names(engine: &Engine, component: &Component) -> Vec<String> {
    let mut names: Vec<String> = component.component_type().imports(engine).map(|(name, _)| name.to_owned()).collect();
    names.sort();
    names
}

pub fn check(names: &[String]) -> Result<(), ForbiddenImports> {
    let forbidden: Vec<String> = names.iter().filter(|name| !is_allowed(name)).cloned().collect();
    if forbidden.is_empty() { Ok(()) } else { Err(ForbiddenImports(forbidden)) }
}

fn is_allowed(name: &str) -> bool {
    let (interface, version) = match name.split_once('@') {
        Some((interface, version)) => (interface, version),
        None => (name, ""),
    };
    if ALLOWED_WASI.contains(&interface) {
        return version.starts_with("0.2.");
    }
    if ALLOWED_CONTRACT.contains(&interface) {
        return version.starts_with("0.1.");
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list() {
        let ok = ["wasi:cli/stdout@0.2.6".to_owned(), "hyperagent:agent/host@0.1.0".to_owned()];
        assert!(check(&ok).is_ok());
        let bad = [
            "wasi:sockets/tcp@0.2.6".to_owned(),
            "wasi:cli/stdout@0.3.0".to_owned(),
            "hyperagent:agent/host@1.0.0".to_owned(),
            "evil:x/y".to_owned(),
        ];
        assert_eq!(check(&bad).unwrap_err().0.len(), 4);
    }
}
