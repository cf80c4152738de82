//! The source policy: what a hyperagent's source tree may contain before the host compiles it.
//!
//! The host owns the build: Cargo.toml's dependencies, Cargo.lock, the cargo configuration and
//! the toolchain. A guest may change only `src/**/*.rs` and small plain-text notes. Rust sources
//! are scanned token by token (comments and strings cannot hide or fake a construct) for the
//! constructs that reach outside the tree at compile time: `include*!`, `env!`/`option_env!`,
//! `#[path]` (also inside `cfg_attr`), `use` renames of those macros, `extern crate` of anything
//! but the standard crates and the SDK, proc-macro definitions, and macros that build a macro
//! call or an attribute from macro variables (`$name!`, `$name $bang`, `#[$attr]`, `# $attr`,
//! `cfg_attr` with a variable in it).
//!
//! What the policy is for: a fast refusal, before cargo starts, of every way to reach outside the
//! tree that can be written plainly, with a message that tells the meta agent what to change. It
//! is not the boundary. `macro_rules!` can rearrange tokens in ways no token scan follows in
//! general (a macro that reverses its input turns `! env` into `env !`), and refusing every
//! identifier a macro might rearrange would refuse ordinary code. What gets past the policy meets
//! the build jail ([`super::confinement`]): it reads only the toolchain, the dependencies and its
//! own tree, and the compiler it runs in sees fixed paths and a fixed environment, so neither
//! `include_str!` nor `env!` has anything of the host to give away.

use crate::source_tree::{RelPath, SourceTree};
use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// The macros that read files or the environment at compile time.
const COMPILE_TIME_MACROS: &[&str] = &["include", "include_str", "include_bytes", "env", "option_env"];
/// Crates an `extern crate` may name.
const ALLOWED_EXTERN_CRATES: &[&str] = &["alloc", "core", "std", "agent_sdk", "self"];
/// Largest Rust source file, in bytes.
pub const MAX_RUST_FILE_BYTES: usize = 256 * 1024;
/// Largest plain-text note, in bytes.
pub const MAX_NOTE_BYTES: usize = 64 * 1024;
/// Keys a hyperagent's `[package]` may hold.
const ALLOWED_PACKAGE_KEYS: &[&str] = &["name", "version", "edition", "publish", "description", "authors", "license"];

/// One reason a tree is refused. Every variant has its own message, written for the meta agent
/// that has to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    BuildScript { path: String },
    CargoConfig { path: String },
    ToolchainFile { path: String },
    LockFile,
    ManifestMissing,
    ManifestInvalid { reason: String },
    ManifestKey { key: String },
    NewDependency { name: String },
    ChangedDependency { name: String },
    MissingDependency { name: String },
    ProcMacroCrate { path: String, line: usize },
    ForbiddenFile { path: String },
    NotUtf8 { path: String },
    FileTooLarge { path: String, bytes: usize, limit: usize },
    LibRsMissing,
    IncludeMacro { path: String, line: usize, name: String },
    EnvMacro { path: String, line: usize, name: String },
    PathAttribute { path: String, line: usize },
    CfgAttrPath { path: String, line: usize },
    MacroRename { path: String, line: usize, name: String },
    MacroVariableCall { path: String, line: usize },
    MacroBuiltAttribute { path: String, line: usize },
    ExternCrate { path: String, line: usize, name: String },
    Unparsable { path: String, reason: String },
    Symlink { path: String },
    BadTree { reason: String },
}

impl Violation {
    /// A stable identifier, for reports and tests.
    pub fn code(&self) -> &'static str {
        match self {
            Violation::BuildScript { .. } => "build-script",
            Violation::CargoConfig { .. } => "cargo-config",
            Violation::ToolchainFile { .. } => "toolchain-file",
            Violation::LockFile => "lock-file",
            Violation::ManifestMissing => "manifest-missing",
            Violation::ManifestInvalid { .. } => "manifest-invalid",
            Violation::ManifestKey { .. } => "manifest-key",
            Violation::NewDependency { .. } => "new-dependency",
            Violation::ChangedDependency { .. } => "changed-dependency",
            Violation::MissingDependency { .. } => "missing-dependency",
            Violation::ProcMacroCrate { .. } => "proc-macro",
            Violation::ForbiddenFile { .. } => "forbidden-file",
            Violation::NotUtf8 { .. } => "not-utf8",
            Violation::FileTooLarge { .. } => "file-too-large",
            Violation::LibRsMissing => "lib-rs-missing",
            Violation::IncludeMacro { .. } => "include-macro",
            Violation::EnvMacro { .. } => "env-macro",
            Violation::PathAttribute { .. } => "path-attribute",
            Violation::CfgAttrPath { .. } => "cfg-attr-path",
            Violation::MacroRename { .. } => "macro-rename",
            Violation::MacroVariableCall { .. } => "macro-variable-call",
            Violation::MacroBuiltAttribute { .. } => "macro-built-attribute",
            Violation::ExternCrate { .. } => "extern-crate",
            Violation::Unparsable { .. } => "unparsable",
            Violation::Symlink { .. } => "symlink",
            Violation::BadTree { .. } => "bad-tree",
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::BuildScript { path } => {
                write!(f, "{path}: build scripts are not allowed; the host owns the build")
            }
            Violation::CargoConfig { path } => {
                write!(f, "{path}: cargo configuration is owned by the host and may not be added")
            }
            Violation::ToolchainFile { path } => {
                write!(f, "{path}: the toolchain is chosen by the host; toolchain files are not allowed")
            }
            Violation::LockFile => write!(f, "Cargo.lock: the lock file is owned by the host; remove it"),
            Violation::ManifestMissing => write!(f, "Cargo.toml is missing; restore the original manifest"),
            Violation::ManifestInvalid { reason } => write!(f, "Cargo.toml cannot be parsed: {reason}"),
            Violation::ManifestKey { key } => {
                write!(f, "Cargo.toml: `{key}` is not allowed; the host owns the build configuration")
            }
            Violation::NewDependency { name } => write!(
                f,
                "Cargo.toml: new dependency `{name}` is not allowed; only the host's dependency set may be used"
            ),
            Violation::ChangedDependency { name } => {
                write!(f, "Cargo.toml: dependency `{name}` was changed; dependencies may not be changed")
            }
            Violation::MissingDependency { name } => {
                write!(f, "Cargo.toml: dependency `{name}` was removed; restore it")
            }
            Violation::ProcMacroCrate { path, line } => {
                write!(f, "{path}:{line}: procedural macros (proc_macro, proc-macro crates) are not allowed")
            }
            Violation::ForbiddenFile { path } => {
                write!(f, "{path}: only src/**/*.rs, Cargo.toml and plain-text notes (*.md, *.txt) may be in the tree")
            }
            Violation::NotUtf8 { path } => write!(f, "{path}: the file is not valid UTF-8"),
            Violation::FileTooLarge { path, bytes, limit } => {
                write!(f, "{path}: {bytes} bytes is above the limit of {limit} bytes for this kind of file")
            }
            Violation::LibRsMissing => {
                write!(f, "src/lib.rs is missing; a hyperagent is a library crate rooted at src/lib.rs")
            }
            Violation::IncludeMacro { path, line, name } => write!(
                f,
                "{path}:{line}: `{name}!` reads files at compile time and is not allowed; put the text in the source"
            ),
            Violation::EnvMacro { path, line, name } => {
                write!(f, "{path}:{line}: `{name}!` reads the compile-time environment and is not allowed")
            }
            Violation::PathAttribute { path, line } => write!(
                f,
                "{path}:{line}: `#[path = ...]` is not allowed; modules must live at their default paths under src/"
            ),
            Violation::CfgAttrPath { path, line } => write!(
                f,
                "{path}:{line}: `#[cfg_attr(..., path = ...)]` is not allowed: `path` may not be set, conditionally or \
                 not; modules must live at their default paths under src/"
            ),
            Violation::MacroRename { path, line, name } => write!(
                f,
                "{path}:{line}: `{name}` may not be renamed with `use ... as ...`: that makes the compile-time macro \
                 `{name}!`, which is not allowed, callable under another name. Name what you need by its path \
                 (`std::env::args()`) or import it without renaming (`use std::env;`)"
            ),
            Violation::MacroVariableCall { path, line } => write!(
                f,
                "{path}:{line}: a macro may not build a macro call from macro variables: not `$name!(...)`, and not \
                 one macro variable right after another (`$name $bang (...)`); write the called macro's name and \
                 `!` in the macro body"
            ),
            Violation::MacroBuiltAttribute { path, line } => write!(
                f,
                "{path}:{line}: a macro may not build an attribute from macro variables (`#[$attr]`, `# $attr`, \
                 `#[cfg_attr(..., $key = ...)]`); write the attribute out in the macro body (`#[doc = $text]` is fine)"
            ),
            Violation::ExternCrate { path, line, name } => write!(
                f,
                "{path}:{line}: `extern crate {name}` is not allowed; only {} may be named",
                ALLOWED_EXTERN_CRATES.join(", ")
            ),
            Violation::Unparsable { path, reason } => write!(f, "{path}: cannot be read as Rust tokens: {reason}"),
            Violation::Symlink { path } => {
                write!(f, "{path}: symbolic links are not allowed; source trees hold regular files only")
            }
            Violation::BadTree { reason } => write!(f, "the source tree is refused: {reason}"),
        }
    }
}

/// The policy, holding the dependency set every hyperagent must declare.
#[derive(Debug, Clone)]
pub struct SourcePolicy {
    /// Dependency name → its specification, with `path` keys removed (paths are the host's).
    dependencies: BTreeMap<String, toml::Value>,
}

impl SourcePolicy {
    /// Builds the policy from the host's build template manifest.
    pub fn from_template(template_manifest: &str) -> Result<SourcePolicy, String> {
        let manifest: toml::Table = toml::from_str(template_manifest).map_err(|e| e.to_string())?;
        Ok(SourcePolicy { dependencies: dependency_specs(&manifest) })
    }

    /// Every violation in the tree (empty when the tree may be built).
    pub fn check(&self, tree: &SourceTree) -> Vec<Violation> {
        let mut violations = Vec::new();
        let mut has_manifest = false;
        let mut has_lib = false;
        for (path, file) in &tree.files {
            let name = path.as_str();
            match classify(path) {
                FileKind::Manifest => {
                    has_manifest = true;
                    match std::str::from_utf8(&file.bytes) {
                        Ok(text) => self.check_manifest(text, &mut violations),
                        Err(_) => violations.push(Violation::NotUtf8 { path: name.into() }),
                    }
                }
                FileKind::BuildScript => violations.push(Violation::BuildScript { path: name.into() }),
                FileKind::CargoConfig => violations.push(Violation::CargoConfig { path: name.into() }),
                FileKind::Toolchain => violations.push(Violation::ToolchainFile { path: name.into() }),
                FileKind::Lock => violations.push(Violation::LockFile),
                FileKind::Rust => {
                    has_lib |= name == "src/lib.rs";
                    if file.bytes.len() > MAX_RUST_FILE_BYTES {
                        violations.push(Violation::FileTooLarge {
                            path: name.into(),
                            bytes: file.bytes.len(),
                            limit: MAX_RUST_FILE_BYTES,
                        });
                        continue;
                    }
                    match std::str::from_utf8(&file.bytes) {
                        Ok(text) => check_rust(name, text, &mut violations),
                        Err(_) => violations.push(Violation::NotUtf8 { path: name.into() }),
                    }
                }
                FileKind::Note => {
                    if file.bytes.len() > MAX_NOTE_BYTES {
                        violations.push(Violation::FileTooLarge {
                            path: name.into(),
                            bytes: file.bytes.len(),
                            limit: MAX_NOTE_BYTES,
                        });
                    } else if std::str::from_utf8(&file.bytes).is_err() {
                        violations.push(Violation::NotUtf8 { path: name.into() });
                    }
                }
                FileKind::Other => violations.push(Violation::ForbiddenFile { path: name.into() }),
            }
        }
        if !has_manifest {
            violations.push(Violation::ManifestMissing);
        }
        if !has_lib {
            violations.push(Violation::LibRsMissing);
        }
        violations
    }

    fn check_manifest(&self, text: &str, violations: &mut Vec<Violation>) {
        let manifest: toml::Table = match toml::from_str(text) {
            Ok(manifest) => manifest,
            Err(e) => {
                violations.push(Violation::ManifestInvalid { reason: e.message().to_owned() });
                return;
            }
        };
        for (key, value) in &manifest {
            match key.as_str() {
                "package" => {
                    let Some(package) = value.as_table() else {
                        violations.push(Violation::ManifestInvalid { reason: "`package` is not a table".into() });
                        continue;
                    };
                    for key in package.keys() {
                        if key == "build" {
                            violations.push(Violation::BuildScript { path: "Cargo.toml (package.build)".into() });
                        } else if !ALLOWED_PACKAGE_KEYS.contains(&key.as_str()) {
                            violations.push(Violation::ManifestKey { key: format!("package.{key}") });
                        }
                    }
                }
                "lib" => {
                    let Some(lib) = value.as_table() else {
                        violations.push(Violation::ManifestInvalid { reason: "`lib` is not a table".into() });
                        continue;
                    };
                    for (key, value) in lib {
                        match key.as_str() {
                            "proc-macro" | "proc_macro" => violations.push(Violation::ProcMacroCrate {
                                path: "Cargo.toml (lib.proc-macro)".into(),
                                line: 0,
                            }),
                            "crate-type" if *value == toml::Value::Array(vec!["cdylib".into()]) => {}
                            "path" if value.as_str() == Some("src/lib.rs") => {}
                            _ => violations.push(Violation::ManifestKey { key: format!("lib.{key}") }),
                        }
                    }
                }
                "dependencies" => {}
                "workspace" if value.as_table().is_some_and(|t| t.is_empty()) => {}
                "build-dependencies" | "build_dependencies" => {
                    violations.push(Violation::BuildScript { path: format!("Cargo.toml ({key})") })
                }
                _ => violations.push(Violation::ManifestKey { key: key.clone() }),
            }
        }
        let declared = dependency_specs(&manifest);
        for (name, spec) in &declared {
            match self.dependencies.get(name) {
                None => violations.push(Violation::NewDependency { name: name.clone() }),
                Some(expected) if expected != spec => {
                    violations.push(Violation::ChangedDependency { name: name.clone() })
                }
                Some(_) => {}
            }
        }
        for name in self.dependencies.keys() {
            if !declared.contains_key(name) {
                violations.push(Violation::MissingDependency { name: name.clone() });
            }
        }
    }
}

/// `[dependencies]` with `path` keys removed and string specs normalised to tables.
fn dependency_specs(manifest: &toml::Table) -> BTreeMap<String, toml::Value> {
    let mut out = BTreeMap::new();
    if let Some(deps) = manifest.get("dependencies").and_then(|d| d.as_table()) {
        for (name, spec) in deps {
            let normalised = match spec {
                toml::Value::String(version) => {
                    let mut table = toml::Table::new();
                    table.insert("version".into(), version.clone().into());
                    toml::Value::Table(table)
                }
                toml::Value::Table(table) => {
                    let mut table = table.clone();
                    table.remove("path");
                    toml::Value::Table(table)
                }
                other => other.clone(),
            };
            out.insert(name.clone(), normalised);
        }
    }
    out
}

enum FileKind {
    Manifest,
    BuildScript,
    CargoConfig,
    Toolchain,
    Lock,
    Rust,
    Note,
    Other,
}

fn classify(path: &RelPath) -> FileKind {
    let name = path.as_str();
    let file_name = path.file_name();
    if name == "Cargo.toml" {
        FileKind::Manifest
    } else if file_name == "build.rs" && !name.starts_with("src/") {
        FileKind::BuildScript
    } else if name.starts_with(".cargo/") || name.contains("/.cargo/") {
        FileKind::CargoConfig
    } else if file_name == "rust-toolchain" || file_name == "rust-toolchain.toml" {
        FileKind::Toolchain
    } else if file_name == "Cargo.lock" {
        FileKind::Lock
    } else if name.starts_with("src/") && path.extension() == Some("rs") {
        FileKind::Rust
    } else if matches!(path.extension(), Some("md" | "txt")) && !name.starts_with("src/") {
        FileKind::Note
    } else {
        FileKind::Other
    }
}

/// Scans one Rust file's tokens for constructs that reach outside the tree.
pub fn check_rust(path: &str, source: &str, violations: &mut Vec<Violation>) {
    match TokenStream::from_str(source) {
        Ok(tokens) => scan(path, &tokens.into_iter().collect::<Vec<_>>(), violations),
        Err(e) => violations.push(Violation::Unparsable { path: path.into(), reason: e.to_string() }),
    }
}

fn ident_name(token: &TokenTree) -> Option<String> {
    match token {
        TokenTree::Ident(ident) => {
            let name = ident.to_string();
            Some(name.strip_prefix("r#").map(str::to_owned).unwrap_or(name))
        }
        _ => None,
    }
}

fn is_punct(token: Option<&TokenTree>, ch: char) -> bool {
    matches!(token, Some(TokenTree::Punct(p)) if p.as_char() == ch)
}

fn line_of(token: &TokenTree) -> usize {
    token.span().start().line
}

fn is_metavariable(tokens: &[TokenTree], at: usize) -> bool {
    is_punct(tokens.get(at), '$') && tokens.get(at + 1).and_then(ident_name).is_some_and(|name| name != "crate")
}

fn group_tokens(group: &proc_macro2::Group) -> Vec<TokenTree> {
    group.stream().into_iter().collect()
}

fn scan(path: &str, tokens: &[TokenTree], violations: &mut Vec<Violation>) {
    for (i, token) in tokens.iter().enumerate() {
        match token {
            TokenTree::Ident(_) => check_ident(path, tokens, i, violations),
            // `$name!(...)`, or `$name $bang (...)` where the `!` comes from a variable too.
            TokenTree::Punct(p)
                if p.as_char() == '$'
                    && p.spacing() == Spacing::Alone
                    && is_metavariable(tokens, i)
                    && (is_punct(tokens.get(i + 2), '!') || is_metavariable(tokens, i + 2)) =>
            {
                violations.push(Violation::MacroVariableCall { path: path.into(), line: line_of(token) });
            }
            // `# $attr` / `#! $attr`: the whole attribute comes from a macro variable.
            TokenTree::Punct(p)
                if p.as_char() == '#'
                    && is_punct(tokens.get(if is_punct(tokens.get(i + 1), '!') { i + 2 } else { i + 1 }), '$') =>
            {
                violations.push(Violation::MacroBuiltAttribute { path: path.into(), line: line_of(token) });
            }
            TokenTree::Group(group) => {
                let inner = group_tokens(group);
                if group.delimiter() == Delimiter::Bracket {
                    check_bracket(path, tokens, i, &inner, violations);
                }
                scan(path, &inner, violations);
            }
            _ => {}
        }
    }
}

/// Rules on one identifier: the compile-time macros, proc macros, `extern crate`, `use` renames.
fn check_ident(path: &str, tokens: &[TokenTree], i: usize, violations: &mut Vec<Violation>) {
    let Some(name) = ident_name(&tokens[i]) else { return };
    let line = line_of(&tokens[i]);
    // A call, or a call whose `!` a macro variable supplies (`env $bang ("PATH")`).
    let called = is_punct(tokens.get(i + 1), '!') || is_punct(tokens.get(i + 1), '$');
    match name.as_str() {
        // These names have no use but the macro; refuse them anywhere, so that they cannot be
        // handed to a macro that assembles the call.
        "include_str" | "include_bytes" => violations.push(Violation::IncludeMacro { path: path.into(), line, name }),
        "option_env" => violations.push(Violation::EnvMacro { path: path.into(), line, name }),
        "include" if called => violations.push(Violation::IncludeMacro { path: path.into(), line, name }),
        "env" if called => violations.push(Violation::EnvMacro { path: path.into(), line, name }),
        "proc_macro" | "proc_macro_derive" | "proc_macro_attribute" => {
            violations.push(Violation::ProcMacroCrate { path: path.into(), line })
        }
        "extern" if tokens.get(i + 1).and_then(ident_name).as_deref() == Some("crate") => {
            if let Some(krate) = tokens.get(i + 2).and_then(ident_name) {
                if krate == "proc_macro" {
                    // Reported by the `proc_macro` ident itself on the next iterations.
                } else if !ALLOWED_EXTERN_CRATES.contains(&krate.as_str()) {
                    violations.push(Violation::ExternCrate { path: path.into(), line, name: krate });
                }
            }
        }
        "use" => {
            let end = tokens[i..].iter().position(|t| is_punct(Some(t), ';')).map_or(tokens.len(), |n| i + n);
            check_use_tree(path, &tokens[i + 1..end], violations);
        }
        _ => {}
    }
}

/// Refuses `name as alias` for the compile-time macros anywhere in a `use` tree, groups included
/// (`use std::{fs, env as e}`): a renamed macro is called by a name no rule knows.
fn check_use_tree(path: &str, tokens: &[TokenTree], violations: &mut Vec<Violation>) {
    for (i, token) in tokens.iter().enumerate() {
        if let TokenTree::Group(group) = token {
            check_use_tree(path, &group_tokens(group), violations);
        } else if let Some(name) = ident_name(token)
            && COMPILE_TIME_MACROS.contains(&name.as_str())
            && tokens.get(i + 1).and_then(ident_name).as_deref() == Some("as")
        {
            violations.push(Violation::MacroRename { path: path.into(), line: line_of(token), name });
        }
    }
}

/// Rules on a `[...]` group at `tokens[at]`. After `#` or `#!` it is an attribute; anywhere else
/// it is checked for the attributes that need no macro variable to be dangerous, since a macro
/// may supply the `#` (`# $attr`).
fn check_bracket(path: &str, tokens: &[TokenTree], at: usize, inner: &[TokenTree], violations: &mut Vec<Violation>) {
    let is_attribute = at >= 1
        && (is_punct(tokens.get(at - 1), '#')
            || (at >= 2 && is_punct(tokens.get(at - 1), '!') && is_punct(tokens.get(at - 2), '#')));
    let line = line_of(&tokens[at]);
    let starts_with = |name: &str| inner.first().and_then(ident_name).as_deref() == Some(name);
    if is_attribute && is_punct(inner.first(), '$') {
        violations.push(Violation::MacroBuiltAttribute { path: path.into(), line });
    }
    if starts_with("cfg_attr") {
        if contains_punct(inner, '$') {
            violations.push(Violation::MacroBuiltAttribute { path: path.into(), line });
        }
        if attribute_has_path(inner) {
            violations.push(Violation::CfgAttrPath { path: path.into(), line });
        }
    } else if (is_attribute && attribute_has_path(inner)) || (starts_with("path") && is_punct(inner.get(1), '=')) {
        violations.push(Violation::PathAttribute { path: path.into(), line });
    }
}

fn contains_punct(tokens: &[TokenTree], ch: char) -> bool {
    tokens.iter().any(|token| match token {
        TokenTree::Punct(p) => p.as_char() == ch,
        TokenTree::Group(g) => contains_punct(&group_tokens(g), ch),
        _ => false,
    })
}

/// Whether an attribute's tokens contain `path = ...` at any depth (`#[path = ..]`,
/// `#[cfg_attr(x, path = ..)]`).
fn attribute_has_path(tokens: &[TokenTree]) -> bool {
    tokens.iter().enumerate().any(|(i, token)| {
        (ident_name(token).as_deref() == Some("path") && is_punct(tokens.get(i + 1), '='))
            || matches!(token, TokenTree::Group(g) if attribute_has_path(&group_tokens(g)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(source: &str) -> Vec<&'static str> {
        let mut violations = Vec::new();
        check_rust("src/lib.rs", source, &mut violations);
        violations.iter().map(Violation::code).collect()
    }

    #[test]
    fn ordinary_code_passes() {
        assert!(codes("use std::env; fn f() -> usize { env::args().count() } // include_str!(\"x\")").is_empty());
        assert!(codes("const S: &str = \"include_bytes!(\\\"/etc/passwd\\\")\"; fn path() {}").is_empty());
        assert!(codes("macro_rules! m { ($x:expr) => { $x + 1 }; } #[derive(Debug)] struct S;").is_empty());
    }

    #[test]
    fn compile_time_escapes_are_caught() {
        assert_eq!(codes("const A: &str = include_str!(\"/etc/passwd\");"), ["include-macro"]);
        assert_eq!(codes("const A: &[u8] = core::include_bytes!(\"/etc/passwd\");"), ["include-macro"]);
        assert_eq!(codes("include!(\"/etc/x.rs\");"), ["include-macro"]);
        assert_eq!(codes("const H: &str = std::env!(\"HOME\");"), ["env-macro"]);
        assert_eq!(codes("const H: Option<&str> = option_env!(\"HOME\");"), ["env-macro"]);
        assert_eq!(codes("#[path = \"/etc/passwd\"] mod m;"), ["path-attribute"]);
        assert_eq!(codes("#[cfg_attr(all(), path = \"/x.rs\")] mod m;"), ["cfg-attr-path"]);
        assert_eq!(codes("extern crate libc;"), ["extern-crate"]);
        assert_eq!(codes("extern crate proc_macro;"), ["proc-macro"]);
        assert_eq!(codes("macro_rules! m { ($f:ident) => { $f!(\"/etc/passwd\") }; }"), ["macro-variable-call"]);
        assert_eq!(codes("macro_rules! m { ($a:meta) => { #[$a] mod x; }; }"), ["macro-built-attribute"]);
        assert_eq!(codes("fn f() { let r#include_str = 1; }"), ["include-macro"]);
        assert_eq!(codes("fn f( {"), ["unparsable"]);
    }

    #[test]
    fn renamed_and_assembled_names_are_caught() {
        assert_eq!(codes("use core::include as splice; splice!(\"/x\");"), ["macro-rename"]);
        assert_eq!(codes("use std::env as e; const P: &str = e!(\"PATH\");"), ["macro-rename"]);
        assert_eq!(codes("pub use ::core::{fs, env as e};"), ["macro-rename"]);
        assert_eq!(codes("use std::prelude::v1::{self, include_bytes as b};"), ["macro-rename", "include-macro"]);
        assert_eq!(codes("macro_rules! m { ($a:ident $b:tt) => { $a $b (\"/x\") } }"), ["macro-variable-call"]);
        assert_eq!(codes("macro_rules! m { ($b:tt) => { include $b (\"/x\") } }"), ["include-macro"]);
        assert_eq!(
            codes("macro_rules! m { ($k:ident) => { #[cfg_attr(all(), $k = \"/x\")] mod m; } }"),
            ["macro-built-attribute"]
        );
        assert_eq!(codes("macro_rules! m { ($a:tt) => { #! $a } }"), ["macro-built-attribute"]);
        assert_eq!(codes("m!([path = \"/x.rs\"]);"), ["path-attribute"]);
        assert_eq!(codes("m!([cfg_attr(all(), path = \"/x.rs\")]);"), ["cfg-attr-path"]);
    }

    #[test]
    fn ordinary_names_and_macros_pass() {
        assert!(codes("use std::env; use std::{env::args, fs}; fn f() -> usize { env::args().count() }").is_empty());
        assert!(codes("fn f(env: u32, path: u32, include: bool) -> u32 { let v = [env, path]; v[0] }").is_empty());
        assert!(codes("use std::path::Path as P; use std::env::{self as e};").is_empty());
        assert!(codes("macro_rules! d { ($t:literal, $f:ident) => { #[doc = $t] fn $f() {} } }").is_empty());
        assert!(
            codes("macro_rules! c { ($($x:expr),*) => { vec![$($x),*] } } #[cfg_attr(test, derive(Debug))] struct S;")
                .is_empty()
        );
        assert!(codes("macro_rules! n { () => { $crate::f() } } fn f() { println!(\"{}\", 1 != 2); }").is_empty());
    }
}
