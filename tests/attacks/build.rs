//! Hostile source aimed at the build past the names the policy checks: compile-time macros under
//! other names, macro calls and attributes assembled by `macro_rules!`, what a compiler that is
//! made to run anyway can tell about the host, and a static too big to compile.

use super::*;

#[test]
fn compile_time_macros_under_other_names() {
    let scene = Scene::new();
    let canary = scene.canary().display().to_string();
    for code in [
        format!("use core::include as splice;\npub const S: &str = splice!({canary:?});"),
        "use std::env as compile_env;\npub const P: &str = compile_env!(\"PATH\");".to_owned(),
        "use std::env as compile_env;\npub const D: &str = compile_env!(\"CARGO_MANIFEST_DIR\");".to_owned(),
        "use ::core::{include as splice};\nsplice!(\"/etc/hostname\");".to_owned(),
        "use std::{fs, env as e};\npub const H: &str = e!(\"HOME\");".to_owned(),
        "pub mod again { pub use std::prelude::v1::env as var; }\npub const P: &str = again::var!(\"PATH\");"
            .to_owned(),
    ] {
        assert_codes(&violations(append_to_lib(code)), "macro-rename");
    }
    scene.assert_intact();
}

#[test]
fn macro_calls_and_attributes_assembled_from_macro_variables() {
    let scene = Scene::new();
    let canary = scene.canary().display().to_string();
    // `include ! (...)` put together from fragments: no `include!` and no `$name!` in the source.
    let call = format!(
        "macro_rules! splice {{ ($name:ident, $bang:tt, $file:literal) => {{ $name $bang ($file) }} }}\n\
         pub const S: &str = splice!(include, !, {canary:?});"
    );
    assert_codes(&violations(append_to_lib(call)), "macro-variable-call");
    let bang = "macro_rules! call { ($bang:tt) => { env $bang (\"PATH\") } }\npub const P: &str = call!(!);";
    assert_codes(&violations(append_to_lib(bang)), "env-macro");
    // `#[cfg_attr(all(), path = ...)]` whose `path` comes from the macro's caller.
    let key = format!(
        "macro_rules! module {{ ($key:ident) => {{ #[cfg_attr(all(), $key = {canary:?})] pub mod stolen; }} }}\n\
         module!(path);"
    );
    assert_codes(&violations(append_to_lib(key)), "macro-built-attribute");
    // The whole attribute handed in as a token tree, its `#` written by the macro.
    let whole =
        format!("macro_rules! module {{ ($attr:tt) => {{ # $attr pub mod stolen; }} }}\nmodule!([path = {canary:?}]);");
    let found = violations(append_to_lib(whole));
    assert_codes(&found, "macro-built-attribute");
    assert_codes(&found, "path-attribute");
    let conditional = format!("#[cfg_attr(all(), path = {canary:?})]\nmod stolen;");
    assert_codes(&violations(append_to_lib(conditional)), "cfg-attr-path");
    scene.assert_intact();
}

/// A macro that reverses its tokens: `rev!([] ("PATH") ! env)` expands to `env!("PATH")`, and no
/// name the policy checks stands where a macro's name goes, so the tree passes it. The policy is
/// a fast refusal of the obvious, not the boundary; this is what the compiler behind it tells.
const REVERSE: &str = "macro_rules! rev {\n    ([$($done:tt)*]) => { $($done)* };\n    \
                       ([$($done:tt)*] $next:tt $($rest:tt)*) => { rev!([$next $($done)*] $($rest)*) };\n}\n";

/// Variables the build's processes are given by the host or by cargo.
const BUILD_VARIABLES: &[&str] = &[
    "PATH",
    "HOME",
    "TMPDIR",
    "RUSTC",
    "CARGO",
    "CARGO_HOME",
    "CARGO_TARGET_DIR",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_ENCODED_RUSTFLAGS",
    "LD_LIBRARY_PATH",
];

/// Every host path a build could give away: the test's directories, the user's home, the build
/// directory, the toolchain, cargo's home and the checkout.
fn host_paths(scene: &Scene) -> Vec<String> {
    let toolchain = world().compiler.toolchain();
    let mut paths = vec![
        scene.root.path().to_path_buf(),
        world().home.path().to_path_buf(),
        guest_target_dir(),
        toolchain.sysroot.clone(),
        toolchain.cargo_home.clone(),
        world().paths.project_root.clone(),
    ];
    paths.extend(std::env::var_os("HOME").map(PathBuf::from));
    paths.extend(paths.iter().filter_map(|p| std::fs::canonicalize(p).ok()).collect::<Vec<_>>());
    paths.iter().map(|p| p.display().to_string()).filter(|p| p != "/").collect()
}

#[test]
fn a_compiler_made_to_tell_its_environment_names_no_host_path() {
    let scene = Scene::new();
    let mut tree = guest_source("probe");
    let reads: Vec<String> = BUILD_VARIABLES.iter().map(|v| format!("rev!([] ({v:?}) ! env)")).collect();
    let leaks = format!("{REVERSE}pub static LEAKS: [&str; {}] = [{}, file!()];", reads.len() + 1, reads.join(", "));
    append_to_lib(leaks)(&mut tree);
    // The probe's `echo` op answers with what the compiler told it.
    let echo = "\"echo\" => payload[\"value\"].clone(),";
    let lib = lib_rs(&tree);
    assert!(lib.contains(echo), "test set-up: the probe's echo op changed");
    tree.insert("src/lib.rs", lib.replace(echo, "\"echo\" => json!(LEAKS),")).unwrap();
    let component = load(&build(&tree));
    let report =
        block_on(world().sandbox.call(&component, &task(json!({"op": "echo"})), &limits(), &Grants::default()))
            .unwrap();
    let told: Vec<String> = serde_json::from_value(output_json(&report)).unwrap();
    let names: Vec<&str> = BUILD_VARIABLES.iter().copied().chain(["file!()"]).collect();
    assert_eq!(told.len(), names.len());
    let host = host_paths(&scene);
    let mut leaks = Vec::new();
    for (name, value) in names.iter().zip(&told) {
        assert!(!value.is_empty(), "{name} is empty");
        leaks.extend(
            host.iter()
                .filter(|path| value.contains(path.as_str()))
                .map(|path| format!("{name} = {value:?} names {path}")),
        );
    }
    assert!(leaks.is_empty(), "the compiler gave away host paths:\n{}", leaks.join("\n"));
    scene.assert_intact();
}

#[test]
fn a_gigabyte_static_is_stopped_within_seconds() {
    let scene = Scene::new();
    // 1088 MiB of zeros that the optimiser may not drop: rustc evaluates it, LLVM lays it out and
    // writes it whole into the object file. The default limits stop it long before that.
    let big = "pub static BIG: [u8; 1088 << 20] = [0; 1088 << 20];\n\
               #[unsafe(no_mangle)] pub extern \"C\" fn big(i: usize) -> u8 {\n\
                   let all = std::hint::black_box(&BIG);\n    all[i % all.len()]\n}";
    let (_home, compiler, archive) = compiler_with(Duration::from_secs(600), |_| {});
    let started = std::time::Instant::now();
    let diagnostics = failed_build(&compiler, &archive, big);
    let limits = hyperagent::compiler::confinement::BuildLimits::default();
    let named = format!("address space limit of {} MiB", limits.address_space_bytes >> 20);
    assert!(diagnostics.starts_with(&format!("the compiler reached its {named}")), "{diagnostics}");
    // Far below the 600 s build timeout (and what writing the object would take): the limit, not
    // the clock, ended it, even on a loaded machine.
    assert!(started.elapsed() < Duration::from_secs(300), "the build ran for {:?}", started.elapsed());
    scene.assert_intact();
}
