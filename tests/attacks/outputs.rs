//! Outputs that two JSON readers would read differently: the sandbox's check and the scorer must
//! apply one rule, so that what the sandbox passes is what the scorer scores.

use super::*;

#[test]
fn duplicate_keys_and_overflowing_numbers_in_an_output() {
    let scene = Scene::new();
    let refused = [
        (r#"{"a":1,"a":2}"#, "duplicate key"),
        ("[1e999]", "number out of range"),
        (r#"{"bins": [0, 1, 2, 3], "note": {"k": 1, "k": 2}}"#, "duplicate key"),
        // Read "last key wins", this answer is a perfect packing; read "first wins", it overfills.
        (r#"{"bins": [0, 0, 0, 0], "bins": [0, 1, 2, 3]}"#, "duplicate key"),
        (r#"{"bins": [0, 1, 2, -1e400]}"#, "number out of range"),
    ];
    for (output, reason) in refused {
        let report = scene.task(json!({"op": "raw", "text": output}), &limits());
        match &report.outcome {
            Outcome::InvalidOutput { reason: why } => assert!(why.contains(reason), "{output}: {why}"),
            other => panic!("the sandbox passed {output}: {other}"),
        }
        assert_eq!(report.output, None);
        // The scorer, given the same text directly, refuses it for the same reason.
        let scored = bin_packing::score(&instance(), output);
        assert!(scored.invalid.as_deref().unwrap_or("").contains(reason), "{output}: {:?}", scored.invalid);
    }
    // The control: the plain answer passes both.
    let plain = scene.task(json!({"op": "raw", "text": r#"{"bins": [0, 1, 2, 3]}"#}), &limits());
    assert_eq!(plain.outcome, Outcome::Ok, "{}", plain.outcome);
    assert_eq!(bin_packing::score(&instance(), plain.output.as_deref().unwrap()).invalid, None);
    scene.assert_intact();
}
