//! Attacks on the host's hold on a guest's files: the disk quota (deep nests, exhausted
//! descriptors, files deleted while open, holes, directories), nesting and its cleanup, metadata
//! that would let real time in, and host work that fuel does not see.

use super::*;
use hyperagent::sandbox::guarded_fs::{ENTRY_BYTES, MAX_NESTING, MAX_OPEN_DESCRIPTORS};
use hyperagent::sandbox::quota;

fn quota_limits() -> CallLimits {
    CallLimits { disk_bytes: 16 << 20, ..limits() }
}

/// What the repository holds now, as the host measures it (deep trees measured in full).
fn held(scene: &Scene) -> u64 {
    hyperagent::tree_walk::usage(&scene.repo(), usize::MAX).unwrap().bytes
}

/// What the repository takes on the disk, in allocated blocks (`du`), printed for the record.
fn blocks_held(scene: &Scene, attack: &str) -> u64 {
    let out = Command::new("du").arg("-s").arg("-B1").arg(scene.repo()).output().unwrap();
    let bytes = String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().parse().unwrap();
    println!("{attack}: {bytes} bytes on disk");
    bytes
}

/// The call ended on a file rule whose reason contains `what`.
fn assert_file_limit(report: &CallReport, what: &str) {
    match &report.outcome {
        Outcome::FileLimit { reason } => assert!(reason.contains(what), "{reason}"),
        other => panic!("expected a file limit ({what}), got {other}"),
    }
}

fn assert_disk_quota(report: &CallReport, limits: &CallLimits) {
    match report.outcome {
        Outcome::DiskQuota { used_bytes, limit_bytes } => {
            assert!(used_bytes > limit_bytes && limit_bytes == limits.disk_bytes, "{}", report.outcome)
        }
        ref other => panic!("expected the disk quota, got {other}"),
    }
}

#[test]
fn a_deep_nest_with_a_big_file_at_the_bottom() {
    let scene = Scene::new();
    let limits = quota_limits();
    // 2,100 one-letter levels (past the host's PATH_MAX), then 256 MiB at the bottom: the walk
    // that used to measure this could not open the bottom and counted nothing there.
    let report = scene.meta(json!({"op": "nest", "count": 2100, "mib": 256}), &limits);
    assert_file_limit(&report, &format!("nested {} deep", MAX_NESTING + 1));
    assert!(held(&scene) <= limits.disk_bytes, "{} bytes held", held(&scene));
    assert!(blocks_held(&scene, "nest 2100") <= limits.disk_bytes);
    assert!(hyperagent::tree_walk::usage(&scene.repo(), usize::MAX).unwrap().deepest <= MAX_NESTING);
    hyperagent::tree_walk::remove_tree(&scene.repo().join("d")).unwrap();
    // Within the bound, a nest and its file are measured and charged whole.
    let shallow = scene.meta(json!({"op": "nest", "count": 20, "mib": 32}), &limits);
    assert_disk_quota(&shallow, &limits);
    assert!(held(&scene) <= limits.disk_bytes, "{} bytes held", held(&scene));
    assert!(blocks_held(&scene, "nest 20 + 32 MiB") <= limits.disk_bytes);
    hyperagent::tree_walk::remove_tree(&scene.repo().join("d")).unwrap();
    scene.assert_intact();
}

#[test]
fn exhausting_descriptors_then_writing_through_an_old_one() {
    let scene = Scene::new();
    let limits = quota_limits();
    let report = scene.meta(json!({"op": "hold-open", "count": 20_000, "mib": 256}), &limits);
    assert_file_limit(&report, &format!("more than {MAX_OPEN_DESCRIPTORS} files"));
    assert!(held(&scene) <= limits.disk_bytes, "{} bytes held", held(&scene));
    // Within the bound, the write through the first handle meets the quota.
    let report = scene.meta(json!({"op": "hold-open", "count": 10, "mib": 256}), &limits);
    assert_disk_quota(&report, &limits);
    assert!(held(&scene) <= limits.disk_bytes, "{} bytes held", held(&scene));
    assert!(blocks_held(&scene, "hold-open") <= limits.disk_bytes);
    scene.assert_intact();
}

#[test]
fn a_file_deleted_while_open_grows_without_a_name() {
    let scene = Scene::new();
    let limits = quota_limits();
    // No walk can see such a file; the charge is made before each write.
    let report = scene.meta(json!({"op": "unlinked-grow", "mib": 256}), &limits);
    assert_disk_quota(&report, &limits);
    let within = scene.meta(json!({"op": "unlinked-grow", "mib": 4}), &limits);
    assert_eq!(within.outcome, Outcome::Ok, "{}", within.outcome);
    scene.assert_intact();
}

#[test]
fn directories_and_holes_cost_what_they_take() {
    let scene = Scene::new();
    let limits = quota_limits();
    // 30,000 directories take about 118 MiB on ext4; each is charged a block and its name's
    // record in the parent. (A 4 MiB quota: removing directories is slow on some disks.)
    let limits = CallLimits { disk_bytes: 4 << 20, ..limits };
    let dirs = scene.meta(json!({"op": "dirs", "count": 30_000}), &limits);
    assert_disk_quota(&dirs, &limits);
    assert!(blocks_held(&scene, "30,000 directories") <= limits.disk_bytes);
    let made = std::fs::read_dir(scene.repo()).unwrap().count() as u64;
    assert!(made * ENTRY_BYTES <= limits.disk_bytes, "{made} directories made");
    let limits = quota_limits();
    for entry in std::fs::read_dir(scene.repo()).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with("dir") {
            std::fs::remove_dir(entry.path()).unwrap();
        }
    }
    // A file stretched to a gigabyte holds no blocks, but its size is charged like data.
    let sparse = scene.meta(json!({"op": "sparse", "mib": 1024}), &limits);
    assert_disk_quota(&sparse, &limits);
    // Many small files: each takes a block on the disk, and is charged one.
    let files = scene.meta(json!({"op": "files", "dir": "/repo", "count": 100_000}), &limits);
    assert_disk_quota(&files, &limits);
    assert!(blocks_held(&scene, "100,000 empty files") <= limits.disk_bytes);
    scene.assert_intact();
}

#[test]
fn links_and_moves_that_would_deepen_the_tree() {
    let scene = Scene::new();
    assert_refused(&Scene::result_of(&scene.meta(json!({"op": "symlink"}), &limits())), "a symbolic link");
    assert_refused(&Scene::result_of(&scene.meta(json!({"op": "move-deeper"}), &limits())), "a directory moved deeper");
    assert!(scene.repo().join("x").is_dir(), "the directory stayed where it was");
    scene.assert_intact();
}

#[test]
fn a_nest_far_too_deep_is_removed_without_recursion_or_descriptors() {
    // A tree 2,500 levels deep (as a guest that slipped past every bound would leave; 5 KB of
    // path, past PATH_MAX), removed on a thread with a 256 KiB stack: neither recursion, nor full
    // paths, nor a descriptor per level. (Deeper nests behave alike; removing directories is slow
    // on some disks, a few milliseconds each.)
    let root = tempfile::tempdir().unwrap();
    let nest = root.path().join("scratch");
    std::fs::create_dir(&nest).unwrap();
    let mut dir = rustix::fs::open(&nest, rustix::fs::OFlags::DIRECTORY, rustix::fs::Mode::empty()).unwrap();
    for _ in 0..2_500 {
        rustix::fs::mkdirat(&dir, "d", rustix::fs::Mode::from_raw_mode(0o755)).unwrap();
        dir = rustix::fs::openat(&dir, "d", rustix::fs::OFlags::DIRECTORY, rustix::fs::Mode::empty()).unwrap();
    }
    drop(dir);
    assert!(matches!(
        hyperagent::tree_walk::usage(&nest, MAX_NESTING),
        Err(hyperagent::tree_walk::WalkError::TooDeep(_))
    ));
    let target = nest.clone();
    let removed = std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || hyperagent::tree_walk::remove_tree(&target))
        .unwrap()
        .join()
        .unwrap();
    removed.unwrap();
    assert!(!nest.exists());
}

#[test]
fn file_times_and_listing_order_leak_no_real_time() {
    let scene = Scene::new();
    // Entries made in an order that is not the names' order, at different real times.
    for name in ["zeta", "alpha", "mid"] {
        std::fs::write(scene.repo().join(name), name).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let look = |dir: &str| scene.meta(json!({"op": "metadata", "dir": dir}), &limits());
    let first = [look("/repo"), look("/history")];
    std::thread::sleep(Duration::from_millis(1100));
    // Touch a file from the host in between: its real mtime changes, the guest's view does not.
    std::fs::write(scene.repo().join("mid"), "mid").unwrap();
    let again = [look("/repo"), look("/history")];
    for (a, b) in first.iter().zip(&again) {
        assert_eq!(a.outcome, Outcome::Ok, "{}", a.outcome);
        assert_eq!(a.output, b.output, "metadata changed between two calls a second apart");
    }
    let seen = Scene::result_of(&first[0]);
    let names: Vec<&str> = seen.as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "directory entries come in byte order");
    let modified = &seen[0]["modified"];
    assert_eq!(modified, &json!(format!("{}", 946_684_800u128 * 1_000_000_000)), "{seen}");
    scene.assert_intact();
}

#[test]
fn flooding_the_host_with_bytes_that_cost_no_fuel() {
    let scene = Scene::new();
    let limits = CallLimits { fuel: Fuel(5_000_000_000), deadline: Duration::from_secs(300), ..limits() };
    // 397 log lines of 16 MiB minus 4 KiB used to take 23 s of copying for 16.8 M fuel.
    let op = json!({"op": "log-flood", "count": 397, "bytes": (16 << 20) - 4096});
    let first = scene.meta(op.clone(), &limits);
    let again = scene.meta(op, &limits);
    match first.outcome {
        Outcome::HostIo { moved_bytes, limit_bytes } => {
            assert!(moved_bytes > limit_bytes && limit_bytes == limits.host_io_bytes)
        }
        ref other => panic!("a flood of host bytes ended as {other}"),
    }
    assert_eq!((&first.outcome, first.fuel_consumed), (&again.outcome, again.fuel_consumed));
    // Every byte moved costs fuel: the lines copied so far were paid for.
    assert!(first.fuel_consumed >= limits.host_io_bytes - (16 << 20), "{}", first.fuel_consumed);
    // A budget of fuel smaller than the bytes ends the call out of fuel instead, just as surely.
    let poor = CallLimits { fuel: Fuel(40_000_000), ..limits.clone() };
    let report = scene.meta(json!({"op": "log-flood", "count": 397, "bytes": (16 << 20) - 4096}), &poor);
    assert_eq!(report.outcome, Outcome::OutOfFuel, "{}", report.outcome);
    scene.assert_intact();
}

#[test]
fn quota_measurement_that_cannot_see_fails_closed() {
    let scene = Scene::new();
    // A grant the host cannot measure (here: nested past the bound before the call) is refused.
    let mut path = scene.repo();
    for _ in 0..=MAX_NESTING {
        path.push("n");
    }
    std::fs::create_dir_all(&path).unwrap();
    let report = scene.meta(json!({"op": "echo", "value": 1}), &limits());
    assert_file_limit(&report, "nested deeper");
    assert!(quota::usage(&[scene.repo()]).is_err());
    hyperagent::tree_walk::remove_tree(&scene.repo().join("n")).unwrap();
    scene.assert_intact();
}
