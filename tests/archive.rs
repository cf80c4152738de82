//! The content-addressed archive: dedup, round trips, tamper detection, safe materialisation.

use hyperagent::archive::{Archive, ArchiveError, Node, Problem};
use hyperagent::hash::ContentHash;
use hyperagent::source_tree::{SourceTree, TreeLimits};

fn sample_tree() -> SourceTree {
    let mut tree = SourceTree::default();
    tree.insert("Cargo.toml", "[package]\nname = \"x\"\n").unwrap();
    tree.insert("src/lib.rs", "pub fn f() -> u32 { 1 }\n").unwrap();
    tree.insert("src/util/mod.rs", "pub fn g() {}\n").unwrap();
    tree.insert("NOTES.md", "same\n").unwrap();
    tree.insert("notes/copy.md", "same\n").unwrap();
    tree
}

fn object_count(archive: &Archive) -> usize {
    walk(&archive.root().join("objects"))
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).map(|p| if p.is_dir() { walk(&p) } else { 1 }).sum()
}

#[test]
fn identical_content_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path()).unwrap();
    let a = archive.put_blob(b"hello").unwrap();
    let b = archive.put_blob(b"hello").unwrap();
    assert_eq!(a, b);
    assert_eq!(object_count(&archive), 1);
    // Five files, two with equal content, plus the manifest: five objects.
    let tree = archive.put_tree(&sample_tree()).unwrap();
    assert_eq!(object_count(&archive), 1 + 5);
    assert_eq!(archive.put_tree(&sample_tree()).unwrap(), tree);
    assert_eq!(object_count(&archive), 6);
}

#[test]
fn trees_round_trip_through_the_archive_and_the_file_system() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path().join("archive")).unwrap();
    let tree = sample_tree();
    let hash = archive.put_tree(&tree).unwrap();
    assert_eq!(hash, Archive::tree_hash(&tree));
    assert_eq!(archive.get_tree(&hash).unwrap(), tree);
    let out = dir.path().join("out");
    archive.materialise(&hash, &out).unwrap();
    assert_eq!(SourceTree::read_dir(&out, &TreeLimits::default()).unwrap(), tree);
    // A non-empty target is refused rather than merged into.
    assert!(matches!(archive.materialise(&hash, &out), Err(ArchiveError::Materialise { .. })));
}

#[test]
fn nodes_hash_canonically_and_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path()).unwrap();
    let tree = archive.put_tree(&sample_tree()).unwrap();
    let node = Node::new(tree, None, None).with("score", 0.5).with("generation", 0);
    let id = archive.put_node(&node).unwrap();
    assert_eq!(archive.get_node(&id).unwrap(), node);
    assert_eq!(archive.node_ids().unwrap(), vec![id]);
    // Metadata inserted in another order is the same node.
    let same = Node::new(tree, None, None).with("generation", 0).with("score", 0.5);
    assert_eq!(archive.put_node(&same).unwrap(), id);
}

#[test]
fn verify_catches_a_flipped_byte_in_every_kind_of_object() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path()).unwrap();
    let tree = sample_tree();
    let tree_hash = archive.put_tree(&tree).unwrap();
    let component = archive.put_blob(b"\0asm fake component bytes").unwrap();
    let node = archive.put_node(&Node::new(tree_hash, Some(component), None)).unwrap();
    let file_blob = ContentHash::of(&tree.get("src/lib.rs").unwrap().bytes);
    assert!(archive.verify().unwrap().is_clean());

    for victim in [file_blob, tree_hash, component, node] {
        let path = archive.object_path(&victim);
        let original = std::fs::read(&path).unwrap();
        let mut flipped = original.clone();
        flipped[original.len() / 2] ^= 0x01;
        std::fs::write(&path, &flipped).unwrap();
        let report = archive.verify().unwrap();
        assert!(
            report.problems.iter().any(|p| matches!(p, Problem::Tampered { object, .. } if *object == victim)),
            "flipping {victim:?} went unnoticed: {:?}",
            report.problems
        );
        // Reading the object refuses the tampered bytes too.
        assert!(matches!(archive.get_blob(&victim), Err(ArchiveError::Corrupt { .. })));
        std::fs::write(&path, &original).unwrap();
    }
    assert!(archive.verify().unwrap().is_clean());

    std::fs::remove_file(archive.object_path(&component)).unwrap();
    let report = archive.verify().unwrap();
    assert!(
        report.problems.iter().any(|p| matches!(p, Problem::Missing { object, .. } if *object == component)),
        "{:?}",
        report.problems
    );
}

#[test]
fn materialising_never_writes_outside_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path().join("archive")).unwrap();
    let blob = archive.put_blob(b"pwned").unwrap();
    for evil_path in ["../escape.txt", "/tmp/escape.txt", "a/../../escape.txt", "./x"] {
        let manifest = format!("100644 {blob} {evil_path}\n");
        let tree = archive.put_blob(manifest.as_bytes()).unwrap();
        let target = dir.path().join("target");
        let result = archive.materialise(&tree, &target);
        assert!(matches!(result, Err(ArchiveError::BadManifest { .. })), "{evil_path}: {result:?}");
        assert!(!dir.path().join("escape.txt").exists());
        assert!(!std::path::Path::new("/tmp/escape.txt").exists() || evil_path != "/tmp/escape.txt");
        assert!(!target.exists(), "nothing is written for a refused manifest");
    }
}

#[test]
fn text_a_guest_wrote_never_pulls_an_object_into_a_closure() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path()).unwrap();
    // Another run's object, which this node's guest has no claim to.
    let secret = archive.put_blob(b"{\"someone else's\": \"LLM exchange\"}").unwrap();
    let report = archive.put_blob(br#"[{"id":"t","llm":[]}]"#).unwrap();
    // The guest names it in a notes file, in its account and in its logs.
    let mut tree = sample_tree();
    tree.insert("NOTES.md", format!("[\"{secret}\"]\n")).unwrap();
    let tree_hash = archive.put_tree(&tree).unwrap();
    let node = Node::new(tree_hash, None, None)
        .with("meta", serde_json::json!({"summary": secret.to_hex(), "logs": [secret.to_hex()]}))
        .with("evaluation", serde_json::json!({"report": report}));
    let id = archive.put_node(&node).unwrap();
    let closure = archive.closure(&[id]).unwrap();
    assert!(closure.contains(&report), "a field of the schema is followed");
    assert!(!closure.contains(&secret), "guest-written text pulled another object into the closure");
    let verify = archive.verify().unwrap();
    assert_eq!(verify.problems.len(), 1, "{:?}", verify.problems);
    assert!(matches!(verify.problems[0], Problem::Orphaned { object } if object == secret));
    // A field of the schema naming an object the store lacks is reported as missing.
    std::fs::remove_file(archive.object_path(&report)).unwrap();
    assert!(
        archive
            .verify()
            .unwrap()
            .problems
            .iter()
            .any(|p| matches!(p, Problem::Missing { object, .. } if *object == report))
    );
}
