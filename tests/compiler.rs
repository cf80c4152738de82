//! The guest compiler: every forbidden construct refused with its own message, real builds,
//! bounded and redacted diagnostics, the build cache.

mod common;

use common::*;
use hyperagent::compiler::BuildOutcome;
use hyperagent::compiler::policy::Violation;

/// Asserts that exactly one violation was found, with `code`, and that its message says `words`.
fn assert_single(found: Vec<Violation>, code: &str, words: &str) {
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].code(), code);
    let message = found[0].to_string();
    assert!(message.contains(words), "message {message:?} should say {words:?}");
}

#[test]
fn each_forbidden_construct_is_refused_with_its_own_message() {
    let cases: Vec<(&str, &str, Vec<Violation>)> = vec![
        (
            "build-script",
            "build scripts are not allowed",
            violations(|t| t.insert("build.rs", "fn main() {}").unwrap()),
        ),
        (
            "build-script",
            "build scripts",
            violations(edit_manifest("publish = false", "publish = false\nbuild = \"src/gen.rs\"")),
        ),
        (
            "new-dependency",
            "new dependency `libc`",
            violations(edit_manifest("[dependencies]", "[dependencies]\nlibc = \"0.2\"")),
        ),
        (
            "changed-dependency",
            "`agent-sdk` was changed",
            violations(edit_manifest("path = \"../../agent-sdk\"", "path = \"../../agent-sdk\", features = [\"x\"]")),
        ),
        (
            "proc-macro",
            "procedural macros",
            violations(edit_manifest("crate-type = [\"cdylib\"]", "proc-macro = true")),
        ),
        ("proc-macro", "procedural macros", violations(append_to_lib("extern crate proc_macro;"))),
        (
            "include-macro",
            "`include_str!` reads files",
            violations(append_to_lib("const P: &str = include_str!(\"/etc/passwd\");")),
        ),
        (
            "include-macro",
            "`include_bytes!` reads files",
            violations(append_to_lib("const P: &[u8] = include_bytes!(\"/etc/passwd\");")),
        ),
        ("include-macro", "`include!` reads files", violations(append_to_lib("include!(\"/etc/passwd\");"))),
        (
            "env-macro",
            "`env!` reads the compile-time environment",
            violations(append_to_lib("const H: &str = env!(\"HOME\");")),
        ),
        ("env-macro", "`option_env!`", violations(append_to_lib("const H: Option<&str> = option_env!(\"HOME\");"))),
        ("path-attribute", "#[path = ...]", violations(append_to_lib("#[path = \"/etc/passwd\"] mod leak;"))),
        ("extern-crate", "`extern crate libc`", violations(append_to_lib("extern crate libc;"))),
        (
            "macro-rename",
            "`include` may not be renamed",
            violations(append_to_lib("use core::include as splice;\nsplice!(\"/etc/hostname\");")),
        ),
        (
            "macro-rename",
            "`env` may not be renamed",
            violations(append_to_lib("use std::env as compile_env;\npub const P: &str = compile_env!(\"PATH\");")),
        ),
        (
            "macro-rename",
            "`env` may not be renamed",
            violations(append_to_lib("use ::std::{fs, env as e};\npub const H: &str = e!(\"HOME\");")),
        ),
        (
            "macro-variable-call",
            "one macro variable right after another",
            violations(append_to_lib(
                "macro_rules! splice { ($n:ident, $b:tt, $f:literal) => { $n $b ($f) } }\nsplice!(include, !, \"/etc/hostname\");",
            )),
        ),
        (
            "env-macro",
            "`env!` reads the compile-time environment",
            violations(append_to_lib(
                "macro_rules! call { ($b:tt) => { env $b (\"PATH\") } }\npub const P: &str = call!(!);",
            )),
        ),
        (
            "macro-built-attribute",
            "may not build an attribute",
            violations(append_to_lib(
                "macro_rules! m { ($k:ident) => { #[cfg_attr(all(), $k = \"/etc/hostname\")] mod leak; } }\nm!(path);",
            )),
        ),
        (
            "macro-built-attribute",
            "may not build an attribute",
            violations(append_to_lib("macro_rules! m { ($a:tt) => { # $a mod leak; } }\nm!([doc = \"x\"]);")),
        ),
        (
            "cfg-attr-path",
            "`path` may not be set",
            violations(append_to_lib("#[cfg_attr(all(), path = \"/etc/hostname\")] mod leak;")),
        ),
        (
            "macro-variable-call",
            "macro variable",
            violations(append_to_lib("macro_rules! m { ($f:ident) => { $f!(\"/etc/passwd\") }; }")),
        ),
        (
            "cargo-config",
            "cargo configuration",
            violations(|t| t.insert(".cargo/config.toml", "[build]\nrustflags = []").unwrap()),
        ),
        (
            "toolchain-file",
            "toolchain",
            violations(|t| t.insert("rust-toolchain.toml", "[toolchain]\nchannel = \"nightly\"").unwrap()),
        ),
        ("lock-file", "lock file is owned by the host", violations(|t| t.insert("Cargo.lock", "version = 4").unwrap())),
        ("forbidden-file", "only src/**/*.rs", violations(|t| t.insert("src/data.bin", vec![0u8, 1, 2]).unwrap())),
        ("not-utf8", "not valid UTF-8", violations(|t| t.insert("src/extra.rs", vec![0xffu8, 0xfe]).unwrap())),
        ("file-too-large", "above the limit", violations(|t| t.insert("NOTES.md", "x".repeat(100_000)).unwrap())),
        (
            "file-too-large",
            "262144 bytes",
            violations(|t| t.insert("src/big.rs", format!("// {}\n", "x".repeat(300_000))).unwrap()),
        ),
        (
            "lib-rs-missing",
            "src/lib.rs is missing",
            violations(|t| {
                t.files.remove(&hyperagent::source_tree::RelPath::new("src/lib.rs").unwrap());
            }),
        ),
    ];
    for (code, words, found) in cases {
        assert_single(found, code, words);
    }
}

#[test]
fn symlinks_and_oversized_trees_are_refused_when_reading_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    guest_source("probe").write_to(&dir.path().join("agent")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("agent/src/passwd.rs")).unwrap();
    match world().compiler.build_dir(&dir.path().join("agent"), &world().archive).unwrap() {
        BuildOutcome::Rejected { violations, .. } => {
            assert_eq!(violations[0].code(), "symlink");
            assert!(violations[0].to_string().contains("symbolic links are not allowed"), "{violations:?}");
        }
        other => panic!("a tree with a symlink was not refused: {other:?}"),
    }
    let big = tempfile::tempdir().unwrap();
    guest_source("probe").write_to(&big.path().join("agent")).unwrap();
    std::fs::write(big.path().join("agent/src/huge.rs"), vec![b'/'; 2 << 20]).unwrap();
    match world().compiler.build_dir(&big.path().join("agent"), &world().archive).unwrap() {
        BuildOutcome::Rejected { violations, .. } => {
            assert_eq!(violations[0].code(), "file-too-large");
            assert!(violations[0].to_string().contains("limit"), "{violations:?}");
        }
        other => panic!("an oversized file was not refused: {other:?}"),
    }
}

#[test]
fn compile_errors_come_back_bounded_and_without_host_paths() {
    let mut tree = guest_source("probe");
    tree.insert("src/lib.rs", lib_rs(&tree) + "\nfn broken() -> u32 { undefined_name }\n").unwrap();
    let outcome = world().compiler.build(&tree, &world().archive).unwrap();
    let BuildOutcome::Failed { diagnostics, .. } = outcome else { panic!("expected a failed build, got {outcome:?}") };
    assert!(diagnostics.contains("undefined_name"), "{diagnostics}");
    assert!(diagnostics.contains("src/lib.rs"), "{diagnostics}");
    let home = std::env::var("HOME").unwrap_or_default();
    for host_path in [home.as_str(), "/work", "/tmp", guest_target_dir().to_str().unwrap()] {
        if !host_path.is_empty() && host_path != "/" {
            assert!(!diagnostics.contains(host_path), "diagnostics leak {host_path}: {diagnostics}");
        }
    }
    assert!(diagnostics.len() <= hyperagent::compiler::diagnostics::MAX_DIAGNOSTICS_BYTES + 64);
}

#[test]
fn redaction_keeps_comments_and_what_follows_a_path() {
    let mut tree = guest_source("probe");
    let code = "pub fn broken() -> u32 { let _p = \"/etc/hostname\"; undefined_name } // keep this //comment";
    append_to_lib(code)(&mut tree);
    let outcome = world().compiler.build(&tree, &world().archive).unwrap();
    let BuildOutcome::Failed { diagnostics, .. } = outcome else { panic!("expected a failed build, got {outcome:?}") };
    assert!(diagnostics.contains("// keep this //comment"), "{diagnostics}");
    assert!(diagnostics.contains("let _p = \"<host path>\"; undefined_name"), "{diagnostics}");
}

#[test]
fn edits_rebuild_and_unchanged_trees_come_from_the_cache() {
    let mut tree = guest_source("initial");
    let first = build(&tree);
    // Unchanged: served from the build index, no cargo run.
    match world().compiler.build(&tree, &world().archive).unwrap() {
        BuildOutcome::Built { component, cached, .. } => assert_eq!((component, cached), (first, true)),
        other => panic!("{other:?}"),
    }
    let priority = String::from_utf8(tree.get("src/priority.rs").unwrap().bytes.clone()).unwrap();
    let edited = priority.replace("WASTE_WEIGHT: f64 = 1.0", "WASTE_WEIGHT: f64 = 1.5");
    assert_ne!(edited, priority, "test set-up: the edit must change the source");
    tree.insert("src/priority.rs", edited).unwrap();
    match world().compiler.build(&tree, &world().archive).unwrap() {
        BuildOutcome::Built { component, cached, .. } => {
            assert!(!cached);
            assert_ne!(component, first, "a changed source must give a different component");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn builds_are_reproducible_across_caches() {
    let tree = guest_source("initial");
    let cached = build(&tree);
    // A second compiler with an empty build index rebuilds with cargo and gets the same bytes.
    let home = tempfile::tempdir().unwrap();
    let paths = hyperagent::settings::Paths::new(home.path().into(), None, Some(guest_target_dir()));
    let compiler =
        hyperagent::compiler::GuestCompiler::new(paths.compiler_settings(std::time::Duration::from_secs(600))).unwrap();
    let archive = hyperagent::archive::Archive::open(paths.archive()).unwrap();
    match compiler.build(&tree, &archive).unwrap() {
        BuildOutcome::Built { component, cached: false, .. } => assert_eq!(component, cached),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_cold_target_directory_builds_its_dependencies_before_a_guest_build_is_timed() {
    // A fresh target directory: its first build must compile every dependency, which takes far
    // longer than this compiler's 10 s limit on 2 cores; only the guest's own crate is held to it.
    let home = tempfile::tempdir().unwrap();
    let target = tempfile::tempdir().unwrap();
    let paths = hyperagent::settings::Paths::new(home.path().into(), None, Some(target.path().into()));
    let compiler =
        hyperagent::compiler::GuestCompiler::new(paths.compiler_settings(std::time::Duration::from_secs(10))).unwrap();
    compiler.fetch_dependencies().unwrap();
    let archive = hyperagent::archive::Archive::open(paths.archive()).unwrap();
    let marker = |dir: &std::path::Path| {
        std::fs::read_dir(dir.join("target"))
            .map(|entries| entries.flatten().any(|e| e.file_name().to_string_lossy().starts_with("hyperagent-warm-")))
            .unwrap_or(false)
    };
    assert!(!marker(target.path()));
    match compiler.build(&guest_source("probe"), &archive).unwrap() {
        BuildOutcome::Built { cached: false, .. } => {}
        other => panic!("the first build in a cold directory: {other:?}"),
    }
    assert!(marker(target.path()), "the dependencies are marked as built");
    // The host's own build does not change the guest's: the same bytes as a warm directory's.
    assert_eq!(
        compiler.build(&guest_source("probe"), &archive).unwrap().component(),
        Some(build(&guest_source("probe")))
    );
}

#[test]
fn a_build_that_runs_too_long_is_killed() {
    let home = tempfile::tempdir().unwrap();
    let paths = hyperagent::settings::Paths::new(home.path().into(), None, Some(guest_target_dir()));
    let compiler =
        hyperagent::compiler::GuestCompiler::new(paths.compiler_settings(std::time::Duration::from_secs(3))).unwrap();
    let archive = hyperagent::archive::Archive::open(paths.archive()).unwrap();
    // The dependencies are built before the clock starts (in a cold target directory the first
    // build compiles them first, under its own long limit).
    build(&guest_source("probe"));
    let mut tree = guest_source("probe");
    // Constant evaluation that never ends: rustc would spin until killed.
    let lib = "#![allow(long_running_const_eval)]\n".to_owned()
        + &lib_rs(&tree)
        + "\npub const FOREVER: u64 = { let mut i = 0u64; loop { i = i.wrapping_add(1); if i == u64::MAX { break i; } } };\n";
    tree.insert("src/lib.rs", lib).unwrap();
    let started = std::time::Instant::now();
    match compiler.build(&tree, &archive).unwrap() {
        BuildOutcome::Failed { diagnostics, .. } => {
            assert!(diagnostics.contains("did not finish within 3 s"), "{diagnostics}")
        }
        other => panic!("expected a killed build, got {other:?}"),
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "the kill took {:?}", started.elapsed());
}

#[test]
fn ordinary_code_that_names_env_path_and_macros_still_builds() {
    let mut tree = guest_source("probe");
    // The module `std::env` by path or imported unrenamed, variables named `env` and `path`,
    // macros that forward expressions and attributes written out, `cfg_attr` without `path`.
    let code = "use std::env;\n\
                macro_rules! twice { ($e:expr) => { $e + $e } }\n\
                macro_rules! documented { ($d:literal, $name:ident) => { #[doc = $d] pub fn $name() {} } }\n\
                documented!(\"a function\", plain);\n\
                #[cfg_attr(test, derive(Debug))]\npub struct Settings { pub path: u32 }\n\
                pub fn counts() -> usize {\n\
                    let env = env::args().count() + std::env::vars().count();\n\
                    let path = Settings { path: 1 }.path as usize;\n\
                    twice!(env + path)\n\
                }";
    append_to_lib(code)(&mut tree);
    build(&tree);
}
