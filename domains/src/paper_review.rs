//! Paper review: predict whether ICLR 2017/2018 accepted a paper from its title and abstract.
//!
//! The data (`paper_review/iclr2017_2018_{train,val,test}.jsonl`, 642/214/214 papers, each half
//! accepted) is read from the data directory; splits of 100/100/100 are drawn from the three
//! files, balanced and seeded, and may be raised to the whole files. The task agent sees
//! `{"title", "abstract"}` and answers `{"decision": "accept" | "reject"}`; the score is exact
//! match after normalising case and whitespace.

use crate::judgement::{Judgement, Record, Spec, field, judgement_domain};
use serde_json::{Value, json};
use std::sync::Arc;

pub const DOMAIN: &str = "paper_review";

pub static SPEC: Spec = Spec {
    name: DOMAIN,
    files: [
        "paper_review/iclr2017_2018_train.jsonl",
        "paper_review/iclr2017_2018_val.jsonl",
        "paper_review/iclr2017_2018_test.jsonl",
    ],
    source: "ICLR 2017 and 2018 titles, abstracts and decisions from papercopilot/paperlists @ 33f9884e652f \
             (Oral/Poster as accept, Reject as reject; balanced, split 60/20/20); no licence declared",
    labels: &["accept", "reject"],
    points: None,
    answer_key: "decision",
    record,
};

fn record(line: &Value) -> Result<Record, String> {
    let (title, abstract_) = (field(line, "title")?, field(line, "abstract")?);
    Ok(Record {
        id: field(line, "id")?.to_owned(),
        payload: json!({"title": title, "abstract": abstract_}),
        label: field(line, "decision")?.to_owned(),
        text: format!("{title}\n{abstract_}"),
    })
}

pub struct PaperReview(pub Judgement);

impl PaperReview {
    /// The domain with `settings` (`null` for the defaults), its data in `data_dir`.
    pub fn open(settings: &Value, data_dir: &std::path::Path) -> Result<Arc<dyn crate::Domain>, String> {
        Ok(Arc::new(PaperReview(Judgement::open(&SPEC, settings, data_dir)?)))
    }
}

judgement_domain!(PaperReview);
