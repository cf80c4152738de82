//! Importing an export bundle (a file from another machine) into an archive. Any bytes: no panic,
//! and whatever is accepted leaves the archive with no tampered or malformed object.
#![no_main]

use hyperagent::archive::{Archive, Problem, bundle};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn archive() -> &'static (tempfile::TempDir, Archive) {
    static ARCHIVE: OnceLock<(tempfile::TempDir, Archive)> = OnceLock::new();
    ARCHIVE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let archive = Archive::open(dir.path().join("archive")).expect("archive");
        (dir, archive)
    })
}

fuzz_target!(|bytes: &[u8]| {
    let (_, archive) = archive();
    if bundle::import(archive, bytes).is_ok() {
        let report = archive.verify().expect("verify runs");
        let damage = report.problems.iter().filter(|p| matches!(p, Problem::Tampered { .. } | Problem::Unexpected { .. }));
        assert_eq!(damage.count(), 0, "{:?}", report.problems);
    }
});
