//! The judgement domains through the `Domain` seam: small inline data sets for the protocol
//! (splits, schema, scores, reports, feedback, baselines), and the real data files when the data
//! directory is present.

use hyperagent_domains::domain::open;
use hyperagent_domains::{Domain, Task};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    // The judgement scorers never wait: one poll finishes them.
    let waker = std::task::Waker::noop();
    let mut context = std::task::Context::from_waker(waker);
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(value) => value,
        std::task::Poll::Pending => panic!("a judgement score waited"),
    }
}

fn write_lines(dir: &Path, file: &str, lines: &[Value]) {
    let path = dir.join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(path, text).unwrap();
}

/// A paper-review data directory: `n` papers per file, alternating decisions, the accepted ones
/// with words the rejected ones lack.
fn paper_data(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for split in ["train", "val", "test"] {
        let lines: Vec<Value> = (0..n)
            .map(|i| {
                let accept = i % 2 == 0;
                let words = if accept { "novel strong results state of the art" } else { "weak unclear limited" };
                json!({"id": format!("{split}{i}"), "venue": "ICLR", "year": 2018, "title": format!("Paper {i}"),
                       "abstract": format!("{words} {i}"), "decision": if accept { "accept" } else { "reject" },
                       "status": "x"})
            })
            .collect();
        write_lines(dir.path(), &format!("paper_review/iclr2017_2018_{split}.jsonl"), &lines);
    }
    dir
}

fn imo_data(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let grades = [("Correct", "7"), ("Almost", "6"), ("Partial", "1"), ("Incorrect", "0")];
    for split in ["train", "val", "test"] {
        let lines: Vec<Value> = (0..n)
            .map(|i| {
                let (reward, points) = grades[i % 4];
                json!({"Grading ID": format!("{split}-{i}"), "Problem ID": "P", "Problem": "Show x.",
                       "Solution": "x.", "Grading guidelines": "(Partial) ...", "Response": format!("{reward} proof {i}"),
                       "Points": points, "Reward": reward, "Problem Source": "test"})
            })
            .collect();
        write_lines(dir.path(), &format!("imo_grading/gradingbench_filtered_100_{split}.jsonl"), &lines);
    }
    dir
}

fn domain(name: &str, dir: &Path, settings: Value) -> Arc<dyn Domain> {
    open(name, &settings, dir).unwrap()
}

fn score(domain: &dyn Domain, task: &Task, answer: &str) -> hyperagent_domains::TaskScore {
    block_on(domain.score(task, answer))
}

#[test]
fn paper_review_splits_are_balanced_seeded_and_carry_no_label() {
    let data = paper_data(40);
    let small = json!({"train_tasks": 10, "validation_tasks": 6, "test_tasks": 8, "staged_tasks": 4});
    let d = domain("paper_review", data.path(), small.clone());
    let (train, validation) = d.splits(1, 2).unwrap();
    assert_eq!((train.tasks.len(), validation.tasks.len()), (10, 6));
    assert!(train.tasks.iter().all(|t| t.id.starts_with("train/") && !t.payload.contains("decision")));
    let payload: Value = serde_json::from_str(&train.tasks[0].payload).unwrap();
    assert_eq!(payload.as_object().unwrap().keys().collect::<Vec<_>>(), ["abstract", "title"]);
    let accepted = train.tasks.iter().filter(|t| score(&*d, t, r#"{"decision":"accept"}"#).score == 1.0).count();
    assert_eq!(accepted, 5, "balanced");
    let again = domain("paper_review", data.path(), small.clone()).splits(1, 2).unwrap().0;
    assert_eq!(train, again, "the same seed draws the same tasks");
    assert_ne!(train, d.splits(3, 2).unwrap().0, "another seed draws others");
    let test = d.test_sets(data.path()).unwrap();
    assert_eq!(test.sets[0].tasks.len(), 8);
    assert!(test.notice.is_none());
    assert_eq!(d.staging().tasks, 4);
    let whole =
        domain("paper_review", data.path(), json!({"train_tasks": 40, "validation_tasks": 40, "test_tasks": 40}));
    assert_eq!(whole.splits(0, 0).unwrap().0.tasks.len(), 40, "up to the whole file");
    let over = domain("paper_review", data.path(), json!({"train_tasks": 41}));
    assert!(over.splits(0, 0).unwrap_err().to_string().contains("train_tasks = 41, but the file holds 40"));
}

#[test]
fn answers_are_checked_against_the_schema_with_a_reason() {
    let data = paper_data(20);
    let d = domain("paper_review", data.path(), json!({"train_tasks": 20, "validation_tasks": 2, "test_tasks": 2}));
    let (train, _) = d.splits(0, 0).unwrap();
    let accepted = train.tasks.iter().find(|t| t.payload.contains("novel")).unwrap();
    assert_eq!(score(&*d, accepted, r#"{"decision": "accept"}"#).score, 1.0);
    assert_eq!(score(&*d, accepted, r#"{"decision": "  ACCEPT \n"}"#).score, 1.0, "case and spacing");
    assert_eq!(score(&*d, accepted, r#"{"decision": "reject"}"#).score, 0.0);
    assert!(score(&*d, accepted, r#"{"decision": "reject"}"#).invalid.is_none(), "wrong is not invalid");
    let refused = |answer: &str| score(&*d, accepted, answer).invalid.unwrap_or_else(|| panic!("{answer} accepted"));
    assert!(refused("accept").contains("not JSON"));
    assert!(refused(r#""accept""#).contains("not a JSON object"));
    assert!(refused(r#"{"decision": "maybe"}"#).contains("\"maybe\" is not a label"));
    assert!(refused(r#"{"decision": "accept", "confidence": 0.9}"#).contains("unexpected field \"confidence\""));
    assert!(refused(r#"{"verdict": "accept"}"#).contains("unexpected field"));
    assert!(refused("{}").contains("no field \"decision\""));
    assert!(refused(r#"{"decision": 1}"#).contains("not a string"));
    assert!(refused(r#"{"decision": "accept", "decision": "reject"}"#).contains("duplicate key"));
    assert!(refused(&format!(r#"{{"decision": "{}"}}"#, "a".repeat(10_000))).contains("bytes, over"));
    let stranger = Task { id: "validation/unknown".into(), payload: "{}".into() };
    assert!(score(&*d, &stranger, r#"{"decision": "accept"}"#).invalid.unwrap().contains("no task"));
}

#[test]
fn feedback_names_the_expected_label_for_training_tasks_only() {
    let data = paper_data(20);
    let d = domain(
        "paper_review",
        data.path(),
        json!({"train_tasks": 4, "validation_tasks": 4, "test_tasks": 4, "staged_tasks": 2}),
    );
    let (train, validation) = d.splits(0, 0).unwrap();
    let task = &train.tasks[0];
    let answered = score(&*d, task, r#"{"decision": "reject"}"#);
    let feedback = d.feedback(task, &answered);
    let expected = if task.payload.contains("novel") { "accept" } else { "reject" };
    assert_eq!(feedback, json!({"expected": expected}));
    let held_out = &validation.tasks[0];
    assert_eq!(d.feedback(held_out, &score(&*d, held_out, r#"{"decision": "reject"}"#)), Value::Null);
}

#[test]
fn imo_grading_reports_accuracy_and_the_points_error() {
    let data = imo_data(16);
    let d = domain("imo_grading", data.path(), json!({"train_tasks": 16, "validation_tasks": 8, "test_tasks": 8}));
    let (train, _) = d.splits(0, 0).unwrap();
    let grade_of = |t: &Task| {
        ["Correct", "Almost", "Partial", "Incorrect"]
            .into_iter()
            .find(|g| t.payload.contains(&format!("{g} proof")))
            .unwrap()
    };
    // Every task answered "Partial": right on the Partial ones, |Δ| = 6, 5, 1 on the others.
    let scores: Vec<_> = train.tasks.iter().map(|t| score(&*d, t, r#"{"grade": "partial"}"#)).collect();
    let report = d.report(&train.tasks, &scores);
    assert_eq!((report.metric.as_str(), report.value), ("accuracy", 0.25));
    let mae = &report.figures[0];
    assert_eq!((mae.metric.as_str(), mae.lower_is_better), ("points MAE", true));
    assert!((mae.value - (6.0 + 5.0 + 0.0 + 1.0) / 4.0 / 7.0).abs() < 1e-12, "{}", mae.value);
    // An invalid answer counts as the farthest label: 7 for Correct and Incorrect, 6 for the others.
    let invalid: Vec<_> = train.tasks.iter().map(|t| score(&*d, t, "{}")).collect();
    let worst = d.report(&train.tasks, &invalid);
    assert_eq!(worst.invalid, 16);
    assert!((worst.figures[0].value - (7.0 + 6.0 + 6.0 + 7.0) / 4.0 / 7.0).abs() < 1e-12);
    assert_eq!(d.feedback(&train.tasks[0], &scores[0])["expected"], grade_of(&train.tasks[0]));
    let extra = score(&*d, &train.tasks[0], r#"{"grade": "Correct", "points": 7}"#);
    assert!(extra.invalid.unwrap().contains("unexpected field \"points\""));
}

#[test]
fn the_baselines_are_fitted_on_the_training_split() {
    let data = paper_data(40);
    let d = domain("paper_review", data.path(), json!({"train_tasks": 20, "validation_tasks": 10, "test_tasks": 10}));
    d.splits(0, 0).unwrap();
    let test = d.test_sets(data.path()).unwrap().sets.remove(0);
    assert_eq!(d.baselines(), ["majority", "tfidf+lr"]);
    let accuracy = |name: &str| {
        let scores: Vec<_> = test.tasks.iter().map(|t| d.baseline(name, t).unwrap()).collect();
        d.report(&test.tasks, &scores).value
    };
    assert_eq!(accuracy("majority"), 0.5, "a 50/50 split: the tie goes to the first label");
    assert_eq!(accuracy("tfidf+lr"), 1.0, "the toy set is separable");
    assert!(d.baseline("oracle", &test.tasks[0]).is_none());
}

#[test]
fn missing_data_fails_with_the_path_and_how_to_point_at_it() {
    let empty = tempfile::tempdir().unwrap();
    for name in ["paper_review", "imo_grading"] {
        let d = domain(name, empty.path(), Value::Null);
        assert!(!d.data_files().is_empty(), "opening needs no data: `hyperagent data` lists it");
        let error = d.splits(0, 0).unwrap_err().to_string();
        assert!(
            error.contains(&empty.path().display().to_string()) && error.contains("HYPERAGENT_DATA_DIR"),
            "{error}"
        );
        assert!(error.contains(&format!("[domain.{name}]")), "{error}");
    }
    let here = Path::new(".");
    assert!(open("paper_review", &json!({"staged_tasks": 101}), here).err().unwrap().contains("staged_tasks"));
    assert!(open("imo_grading", &json!({"surprise": 1}), here).err().unwrap().contains("surprise"));
}

#[test]
fn a_domain_setting_names_its_own_data_directory() {
    let data = paper_data(40);
    let elsewhere = tempfile::tempdir().unwrap();
    let small = json!({"train_tasks": 10, "validation_tasks": 6, "test_tasks": 8, "staged_tasks": 4});
    assert!(
        domain("paper_review", elsewhere.path(), small.clone()).splits(1, 2).is_err(),
        "the run's directory is empty"
    );
    let mut own = small;
    own["data_dir"] = json!(data.path());
    let d = domain("paper_review", elsewhere.path(), own);
    assert_eq!(d.splits(1, 2).unwrap().0.tasks.len(), 10, "read from the domain's own directory");
    let notice = d.test_sets(elsewhere.path()).unwrap().notice.unwrap();
    assert!(notice.contains(&data.path().display().to_string()), "{notice}");
}

/// The real data directory, or `None` (with a message) when it is absent.
fn real_data() -> Option<PathBuf> {
    let dir = std::env::var_os("HYPERAGENT_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data")));
    if dir.join("paper_review").is_dir() && dir.join("imo_grading").is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: no judgement data under {} (set HYPERAGENT_DATA_DIR)", dir.display());
        None
    }
}

#[test]
fn the_real_files_load_with_their_published_label_mix() {
    let Some(dir) = real_data() else { return };
    let whole = json!({"train_tasks": 642, "validation_tasks": 214, "test_tasks": 214});
    let paper = domain("paper_review", &dir, whole);
    let (train, validation) = paper.splits(5, 6).unwrap();
    assert_eq!((train.tasks.len(), validation.tasks.len()), (642, 214));
    let test = paper.test_sets(&dir).unwrap().sets.remove(0);
    let majority: Vec<_> = test.tasks.iter().map(|t| paper.baseline("majority", t).unwrap()).collect();
    assert_eq!(paper.report(&test.tasks, &majority).value, 0.5, "each file is half accepted");
    let imo = domain("imo_grading", &dir, Value::Null);
    let (train, _) = imo.splits(5, 6).unwrap();
    let correct = train.tasks.iter().filter(|t| score(&*imo, t, r#"{"grade": "Correct"}"#).score == 1.0).count();
    let almost = train.tasks.iter().filter(|t| score(&*imo, t, r#"{"grade": "almost"}"#).score == 1.0).count();
    assert_eq!((train.tasks.len(), correct, almost), (100, 35, 6), "35 Correct, 35 Incorrect, 24 Partial, 6 Almost");
    assert!(train.tasks.iter().all(|t| !t.payload.contains("\"Reward\"") && !t.payload.contains("\"Points\"")));
}
