//! Compiler output as the meta agent may see it: bounded, and with no host path outside the
//! guest tree.

/// Longest diagnostics text handed back, in bytes.
pub const MAX_DIAGNOSTICS_BYTES: usize = 16 * 1024;

/// Rewrites known host directories to neutral names, drops cargo's progress lines, replaces any
/// other absolute path with `<host path>`, and cuts the result at [`MAX_DIAGNOSTICS_BYTES`].
pub fn redact(raw: &str, replacements: &[(String, &str)]) -> String {
    let mut out = String::new();
    for line in raw.lines() {
        let trimmed = line.trim_start();
        if ["Compiling ", "Finished ", "Fresh ", "Locking ", "Blocking ", "Building "]
            .iter()
            .any(|p| trimmed.starts_with(p))
        {
            continue;
        }
        let mut line = line.to_owned();
        for (from, to) in replacements {
            if !from.is_empty() {
                line = line.replace(from.as_str(), to);
            }
        }
        out.push_str(&scrub_absolute_paths(&line));
        out.push('\n');
        if out.len() > MAX_DIAGNOSTICS_BYTES {
            crate::sandbox::host::truncate_utf8(&mut out, MAX_DIAGNOSTICS_BYTES);
            out.push_str("\n[diagnostics cut]\n");
            break;
        }
    }
    out
}

/// Replaces every absolute path that is not the guest tree (`/repo/...`) with `<host path>`. A
/// path starts with `/` at the start of the line or after a character that cannot be part of one
/// (a space, a quote, a bracket, `=`), continues over path characters, and has at least two
/// components. Only the path is replaced: what follows it (`"`, `)`, `:3:5`) is kept, and `//`
/// (a comment in quoted source, a URL's `://`) starts no path.
fn scrub_absolute_paths(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    let mut previous: Option<char> = None;
    while let Some(c) = rest.chars().next() {
        let starts_path = c == '/'
            && previous.is_none_or(|p| !is_path_char(p))
            && rest[1..].chars().next().is_some_and(|n| is_path_char(n) && n != '/');
        if starts_path {
            let len = rest.find(|c: char| !is_path_char(c)).unwrap_or(rest.len());
            let path = &rest[..len];
            let components = path.split('/').filter(|c| !c.is_empty()).count();
            if components >= 2 && !path.starts_with("/repo/") {
                out.push_str("<host path>");
            } else {
                out.push_str(path);
            }
            previous = path.chars().last();
            rest = &rest[len..];
        } else {
            out.push(c);
            previous = Some(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Characters a path in compiler output is made of.
fn is_path_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+' | '~' | '@' | '%')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_host_paths() {
        let raw = "   Compiling x v0.1.0 (/work/slots/x)\nerror[E0425]: cannot find value `y`\n --> /work/slots/x/src/lib.rs:3:5\nnote: see /root/.cargo/registry/src/a/b.rs:1\n";
        let out = redact(raw, &[("/work/slots/x".into(), "/repo")]);
        assert!(!out.contains("Compiling"));
        assert!(out.contains("/repo/src/lib.rs:3:5"), "{out}");
        assert!(!out.contains("/root"), "{out}");
        assert!(out.contains("<host path>"), "{out}");
    }

    #[test]
    fn keeps_plain_slashes_and_is_bounded() {
        assert_eq!(scrub_absolute_paths("a / b and x/y"), "a / b and x/y");
        assert_eq!(scrub_absolute_paths("see https://example.com/a/b"), "see https://example.com/a/b");
        assert_eq!(scrub_absolute_paths("a/b/c and ../d/e and /usr"), "a/b/c and ../d/e and /usr");
        let long = "error: x\n".repeat(10_000);
        assert!(redact(&long, &[]).len() < MAX_DIAGNOSTICS_BYTES + 100);
    }

    #[test]
    fn comments_in_quoted_source_are_kept_and_only_the_path_is_replaced() {
        let quoted = "3 |     splice!(\"/etc/hostname\"); // take it //twice";
        assert_eq!(scrub_absolute_paths(quoted), "3 |     splice!(\"<host path>\"); // take it //twice");
        assert_eq!(scrub_absolute_paths("/// doc comment"), "/// doc comment");
        assert_eq!(scrub_absolute_paths(" --> /work/x/src/lib.rs:3:5"), " --> <host path>:3:5");
        assert_eq!(scrub_absolute_paths("(/root/.cargo/a), /repo/src/m.rs"), "(<host path>), /repo/src/m.rs");
        assert_eq!(scrub_absolute_paths("--flag=/opt/secret/key"), "--flag=<host path>");
        assert_eq!(scrub_absolute_paths("PATH=/usr/bin:/root/.cargo/bin"), "PATH=<host path>:<host path>");
    }
}
