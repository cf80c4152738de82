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

/// Replaces every absolute path that is not the guest tree (`/repo/...`) with `<host path>`.
/// A path is a whitespace-separated word that, once leading quotes and brackets are stripped,
/// starts with `/` and has at least two components.
fn scrub_absolute_paths(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for (i, word) in line.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let lead = word.len() - word.trim_start_matches(|c: char| "([{'\"`=".contains(c)).len();
        let (prefix, core) = word.split_at(lead);
        let is_host_path = core.starts_with('/') && core[1..].contains('/') && !core.starts_with("/repo/");
        if is_host_path {
            out.push_str(prefix);
            out.push_str("<host path>");
        } else {
            out.push_str(word);
        }
    }
    out
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
        let long = "error: x\n".repeat(10_000);
        assert!(redact(&long, &[]).len() < MAX_DIAGNOSTICS_BYTES + 100);
    }
}
