//! Olympiad proof grading: grade a student's proof of an IMO-level problem as IMO-GradingBench's
//! human graders did.
//!
//! The data (`imo_grading/gradingbench_filtered_100_{train,val,test}.jsonl`, 100 gradings each,
//! all on the same 30 problems) is read from the data directory. The task agent sees
//! `{"problem", "solution", "grading_guidelines", "response"}` and answers
//! `{"grade": "Correct" | "Almost" | "Partial" | "Incorrect"}` (7, 6, 1 and 0 points). Scores are
//! accuracy; the set report adds the mean absolute error on points divided by 7.

use crate::judgement::{Judgement, Record, Spec, field, judgement_domain};
use serde_json::{Value, json};
use std::sync::Arc;

pub const DOMAIN: &str = "imo_grading";

pub const LABELS: [&str; 4] = ["Correct", "Almost", "Partial", "Incorrect"];
pub const POINTS: [f64; 4] = [7.0, 6.0, 1.0, 0.0];

pub static SPEC: Spec = Spec {
    name: DOMAIN,
    files: [
        "imo_grading/gradingbench_filtered_100_train.jsonl",
        "imo_grading/gradingbench_filtered_100_val.jsonl",
        "imo_grading/gradingbench_filtered_100_test.jsonl",
    ],
    source: "IMO-GradingBench (Google DeepMind, google-deepmind/superhuman), the 100/100/100 subset as \
             vendored by scasella/Proofgrade @ 1408a0031799 (CSV re-encoded as JSONL); CC BY 4.0",
    labels: &LABELS,
    points: Some((&POINTS, 7.0)),
    answer_key: "grade",
    record,
};

fn record(line: &Value) -> Result<Record, String> {
    let reward = field(line, "Reward")?;
    let points: f64 = field(line, "Points")?.trim().parse().map_err(|_| "Points is not a number".to_owned())?;
    let expected = LABELS.iter().position(|l| l.eq_ignore_ascii_case(reward.trim())).map(|i| POINTS[i]);
    if expected.is_some_and(|p| p != points) {
        return Err(format!("Reward {reward:?} does not go with Points {points}"));
    }
    let response = field(line, "Response")?;
    Ok(Record {
        id: field(line, "Grading ID")?.to_owned(),
        payload: json!({
            "problem": field(line, "Problem")?,
            "solution": field(line, "Solution")?,
            "grading_guidelines": field(line, "Grading guidelines")?,
            "response": response,
        }),
        label: reward.to_owned(),
        text: response.to_owned(),
    })
}

pub struct ImoGrading(pub Judgement);

impl ImoGrading {
    /// The domain with `settings` (`null` for the defaults), its data in `data_dir`.
    pub fn open(settings: &Value, data_dir: &std::path::Path) -> Result<Arc<dyn crate::Domain>, String> {
        Ok(Arc::new(ImoGrading(Judgement::open(&SPEC, settings, data_dir)?)))
    }
}

judgement_domain!(ImoGrading);
