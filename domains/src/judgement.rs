//! What the judgement domains (paper review, olympiad proof grading) share: a task is a JSON
//! record read from a data file, the answer is one label out of a few, and the score is exact
//! match after normalising case and whitespace.
//!
//! A domain is a [`Spec`] (its files, labels, answer field, how a data line becomes a task) and a
//! [`Judgement`] built from it and the `[domain.<name>]` settings. Splits are drawn from the
//! files, stratified by label and seeded; the labels stay on the host, keyed by task id, so the
//! payload a task agent gets never holds one. The data directory is `data_dir` in the settings,
//! else the run's (`--data-dir` or `HYPERAGENT_DATA_DIR`); a missing file fails the run with its
//! path and how to point at it.

use crate::domain::{DataError, DataFile, ScoreFuture, SetReport, Split, Staging, TestSets};
use crate::text::Classifier;
use crate::{Task, TaskScore};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// The seed of the test split: every run is tested on the same tasks.
const TEST_SEED: u64 = 0x7e57;
/// Longest answer, in bytes, that is parsed at all (a label is a few bytes).
pub const MAX_ANSWER_BYTES: usize = 4096;
/// The baselines' names, as the test table shows them.
pub const MAJORITY: &str = "majority";
pub const CLASSICAL: &str = "tfidf+lr";

/// One data line as a task: its id in the file, what the task agent sees, the label (as the file
/// spells it) and the text the classical baseline reads.
pub struct Record {
    pub id: String,
    pub payload: Value,
    pub label: String,
    pub text: String,
}

/// A judgement domain's fixed facts.
pub struct Spec {
    pub name: &'static str,
    /// Training, validation and test files, relative to the data directory.
    pub files: [&'static str; 3],
    pub source: &'static str,
    /// The labels, as the answers and the feedback spell them.
    pub labels: &'static [&'static str],
    /// Points per label and the most a task gives, for the points error (none: no such metric).
    pub points: Option<(&'static [f64], f64)>,
    /// The answer is `{"<answer_key>": "<label>"}`.
    pub answer_key: &'static str,
    pub record: fn(&Value) -> Result<Record, String>,
}

/// The `[domain.<name>]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Tasks drawn from each file (stratified by label, seeded); at most the file's size.
    pub train_tasks: usize,
    pub validation_tasks: usize,
    pub test_tasks: usize,
    /// Training tasks evaluated first; the rest only when their mean reaches `staged_threshold`.
    pub staged_tasks: usize,
    pub staged_threshold: f64,
    /// The data directory for this domain (default: the run's data directory).
    pub data_dir: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            train_tasks: 100,
            validation_tasks: 100,
            test_tasks: 100,
            staged_tasks: 10,
            staged_threshold: 0.1,
            data_dir: None,
        }
    }
}

/// One task with its label, as the host keeps it.
#[derive(Debug, Clone)]
struct Example {
    task: Task,
    label: usize,
    text: String,
}

/// The three files, read once.
struct Data {
    files: [Vec<Example>; 3],
    by_id: HashMap<String, (usize, String)>,
}

/// The fitted baselines: the majority label and the classical classifier.
struct Baselines {
    majority: usize,
    classifier: Classifier,
}

pub struct Judgement {
    spec: &'static Spec,
    settings: Settings,
    dir: PathBuf,
    data: OnceLock<Result<Arc<Data>, DataError>>,
    /// The splits last drawn, which the baselines are fitted on.
    drawn: Mutex<Option<(Vec<Example>, Vec<Example>)>>,
    fitted: Mutex<Option<Arc<Baselines>>>,
}

/// Lower case, surrounding whitespace trimmed, inner runs of whitespace as one space.
pub fn normalise(label: &str) -> String {
    label.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

fn pairs(examples: &[Example]) -> Vec<(&str, usize)> {
    examples.iter().map(|e| (e.text.as_str(), e.label)).collect()
}

/// A deterministic shuffle (splitmix64 steps from `state`).
pub fn shuffle<T>(items: &mut [T], state: &mut u64) {
    for i in (1..items.len()).rev() {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        items.swap(i, (z % (i as u64 + 1)) as usize);
    }
}

/// `count` items of `examples`, stratified by label (largest remainders, ties to the lower
/// label), in an order shuffled from `seed`.
fn stratified(examples: &[Example], count: usize, labels: usize, seed: u64) -> Vec<Example> {
    let mut state = seed;
    let mut groups: Vec<Vec<&Example>> = vec![Vec::new(); labels];
    for example in examples {
        groups[example.label].push(example);
    }
    let total = examples.len().max(1);
    let mut quotas: Vec<(usize, usize, usize)> =
        groups.iter().enumerate().map(|(l, g)| (g.len() * count / total, (g.len() * count) % total, l)).collect();
    let mut left = count - quotas.iter().map(|q| q.0).sum::<usize>();
    let mut by_remainder: Vec<usize> = (0..labels).collect();
    by_remainder.sort_by_key(|&l| (std::cmp::Reverse(quotas[l].1), l));
    for l in by_remainder {
        if left > 0 && quotas[l].0 < groups[l].len() {
            quotas[l].0 += 1;
            left -= 1;
        }
    }
    let mut chosen = Vec::with_capacity(count);
    for (l, group) in groups.iter_mut().enumerate() {
        shuffle(group, &mut state);
        chosen.extend(group.iter().take(quotas[l].0).map(|e| (*e).clone()));
    }
    shuffle(&mut chosen, &mut state);
    chosen
}

impl Judgement {
    /// The domain with `settings` (`null` for the defaults), its data in `data_dir` unless the
    /// settings name another. Reads nothing yet: the data is read when a split is first asked
    /// for, so that listing domains works without it.
    pub fn open(spec: &'static Spec, settings: &Value, data_dir: &Path) -> Result<Judgement, String> {
        let settings: Settings = if settings.is_null() {
            Settings::default()
        } else {
            Settings::deserialize(settings).map_err(|e| e.to_string())?
        };
        if [settings.train_tasks, settings.validation_tasks, settings.test_tasks].contains(&0) {
            return Err("train_tasks, validation_tasks and test_tasks must be at least 1".into());
        }
        if settings.staged_tasks == 0 || settings.staged_tasks > settings.train_tasks {
            return Err("staged_tasks must be in 1..=train_tasks".into());
        }
        if !(0.0..=1.0).contains(&settings.staged_threshold) {
            return Err("staged_threshold must be in [0, 1]".into());
        }
        let dir = settings.data_dir.clone().unwrap_or_else(|| data_dir.to_owned());
        Ok(Judgement { spec, settings, dir, data: OnceLock::new(), drawn: Mutex::new(None), fitted: Mutex::new(None) })
    }

    pub fn spec(&self) -> &'static Spec {
        self.spec
    }

    fn data(&self) -> Result<Arc<Data>, DataError> {
        self.data.get_or_init(|| self.read().map(Arc::new)).clone()
    }

    fn read(&self) -> Result<Data, DataError> {
        let mut files: [Vec<Example>; 3] = Default::default();
        let mut by_id = HashMap::new();
        for (index, (file, split)) in self.spec.files.iter().zip(["train", "validation", "test"]).enumerate() {
            let path = self.dir.join(file);
            let text = std::fs::read_to_string(&path).map_err(|e| DataError::Io {
                path: path.display().to_string(),
                reason: format!(
                    "{e}. The {} domain needs its data files: give the run the directory that holds {file} \
                     (--data-dir or HYPERAGENT_DATA_DIR, or `data_dir` in [domain.{}])",
                    self.spec.name, self.spec.name
                ),
            })?;
            for (line, row) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                let parse =
                    |reason: String| DataError::Parse { path: format!("{}:{}", path.display(), line + 1), reason };
                let value: Value = serde_json::from_str(row).map_err(|e| parse(e.to_string()))?;
                let record = (self.spec.record)(&value).map_err(parse)?;
                let label = self
                    .label_index(&record.label)
                    .ok_or_else(|| parse(format!("unknown label {:?}", record.label)))?;
                let id = format!("{split}/{}", record.id);
                if by_id.insert(id.clone(), (label, record.text.clone())).is_some() {
                    return Err(parse(format!("the id {} appears twice", record.id)));
                }
                let task = Task { id, payload: record.payload.to_string() };
                files[index].push(Example { task, label, text: record.text });
            }
        }
        Ok(Data { files, by_id })
    }

    fn label_index(&self, label: &str) -> Option<usize> {
        let wanted = normalise(label);
        self.spec.labels.iter().position(|l| normalise(l) == wanted)
    }

    fn draw(&self, file: usize, count: usize, seed: u64) -> Result<Vec<Example>, DataError> {
        let data = self.data()?;
        let available = data.files[file].len();
        if count > available {
            let key = ["train_tasks", "validation_tasks", "test_tasks"][file];
            return Err(DataError::Parse {
                path: self.dir.join(self.spec.files[file]).display().to_string(),
                reason: format!("{key} = {count}, but the file holds {available} records"),
            });
        }
        Ok(stratified(&data.files[file], count, self.spec.labels.len(), seed))
    }

    pub fn splits(&self, train_seed: u64, validation_seed: u64) -> Result<(Split, Split), DataError> {
        let train = self.draw(0, self.settings.train_tasks, train_seed)?;
        let validation = self.draw(1, self.settings.validation_tasks, validation_seed)?;
        let as_split = |name: &str, examples: &[Example]| Split {
            name: name.into(),
            tasks: examples.iter().map(|e| e.task.clone()).collect(),
            generated: false,
        };
        let splits = (as_split("train", &train), as_split("validation", &validation));
        *self.drawn.lock().expect("not poisoned") = Some((train, validation));
        *self.fitted.lock().expect("not poisoned") = None;
        Ok(splits)
    }

    pub fn test_sets(&self, data_dir: &Path) -> Result<TestSets, DataError> {
        let test = self.draw(2, self.settings.test_tasks, TEST_SEED)?;
        let same = |a: &Path, b: &Path| a.canonicalize().ok().zip(b.canonicalize().ok()).is_some_and(|(a, b)| a == b);
        let notice = (!same(data_dir, &self.dir)).then(|| {
            format!(
                "{}: its data is read from {} (`data_dir` in [domain.{}]), not from the run's {}",
                self.spec.name,
                self.dir.display(),
                self.spec.name,
                data_dir.display()
            )
        });
        let tasks = test.into_iter().map(|e| e.task).collect();
        Ok(TestSets { sets: vec![Split { name: "test".into(), tasks, generated: false }], notice })
    }

    /// The label of a task this domain made, if it knows it.
    fn expected(&self, task: &Task) -> Option<usize> {
        self.data().ok()?.by_id.get(&task.id).map(|(label, _)| *label)
    }

    pub fn score<'a>(&'a self, task: &'a Task, answer: &'a str) -> ScoreFuture<'a> {
        Box::pin(async move {
            match self.expected(task) {
                Some(expected) => self.score_answer(answer, expected),
                None => TaskScore::invalid(format!("{} has no task {:?}", self.spec.name, task.id)),
            }
        })
    }

    /// Checks an answer against the schema `{"<answer_key>": "<label>"}` and scores it.
    pub fn score_answer(&self, answer: &str, expected: usize) -> TaskScore {
        match self.read_answer(answer) {
            Ok(label) => self.score_label(label, expected),
            Err(reason) => TaskScore::invalid(reason),
        }
    }

    fn read_answer(&self, answer: &str) -> Result<usize, String> {
        let key = self.spec.answer_key;
        let schema = format!("the answer must be {{\"{key}\": <one of {}>}}", self.spec.labels.join(", "));
        if answer.len() > MAX_ANSWER_BYTES {
            return Err(format!("the answer is {} bytes, over {MAX_ANSWER_BYTES}; {schema}", answer.len()));
        }
        let value = crate::json::parse_strict(answer).map_err(|e| format!("{e}; {schema}"))?;
        let Value::Object(object) = value else { return Err(format!("not a JSON object; {schema}")) };
        if let Some(extra) = object.keys().find(|k| k.as_str() != key) {
            let shown: String = extra.chars().take(40).collect();
            return Err(format!("unexpected field {shown:?}; {schema} and nothing else"));
        }
        let Some(given) = object.get(key) else { return Err(format!("no field \"{key}\"; {schema}")) };
        let Some(text) = given.as_str() else { return Err(format!("\"{key}\" is not a string; {schema}")) };
        self.label_index(text).ok_or_else(|| {
            let shown: String = text.chars().take(40).collect();
            format!("{shown:?} is not a label; {schema} (case and spacing do not matter)")
        })
    }

    fn score_label(&self, label: usize, expected: usize) -> TaskScore {
        let mut details = json!({"label": self.spec.labels[label]});
        if let Some((points, _)) = self.spec.points {
            details["points"] = json!(points[label]);
        }
        TaskScore { score: if label == expected { 1.0 } else { 0.0 }, invalid: None, details }
    }

    /// Accuracy, and for a domain with points the normalised mean absolute error on points as a
    /// second figure (an invalid answer counts as the farthest label from the expected one).
    pub fn report(&self, tasks: &[Task], scores: &[TaskScore]) -> SetReport {
        let accuracy = crate::domain::mean_score(scores);
        let mut figures = Vec::new();
        if let Some((points, most)) = self.spec.points {
            let mut error = 0.0;
            for (task, score) in tasks.iter().zip(scores) {
                let Some(expected) = self.expected(task).map(|e| points[e]) else { continue };
                error += match score.details.get("points").and_then(Value::as_f64) {
                    Some(given) if score.invalid.is_none() => (given - expected).abs(),
                    _ => points.iter().map(|p| (p - expected).abs()).fold(0.0, f64::max),
                } / most;
            }
            let mae = if tasks.is_empty() { 0.0 } else { error / tasks.len() as f64 };
            figures.push(crate::domain::Figure { metric: "points MAE".into(), value: mae, lower_is_better: true });
        }
        SetReport {
            metric: "accuracy".into(),
            value: accuracy,
            lower_is_better: false,
            score: accuracy,
            invalid: scores.iter().filter(|s| s.invalid.is_some()).count(),
            figures,
        }
    }

    pub fn data_files(&self) -> Vec<DataFile> {
        self.spec.files.iter().map(|path| DataFile { path, source: self.spec.source }).collect()
    }

    pub fn baselines(&self) -> Vec<&'static str> {
        vec![MAJORITY, CLASSICAL]
    }

    fn fitted(&self) -> Option<Arc<Baselines>> {
        let mut fitted = self.fitted.lock().expect("not poisoned");
        if fitted.is_none() {
            let drawn = self.drawn.lock().expect("not poisoned");
            let (train, validation) = drawn.as_ref()?;
            let mut counts = vec![0usize; self.spec.labels.len()];
            train.iter().for_each(|e| counts[e.label] += 1);
            // The most frequent training label; a tie goes to the label listed first.
            let majority = (0..counts.len()).fold(0, |best, l| if counts[l] > counts[best] { l } else { best });
            let cost = self.spec.points.map(|(points, _)| move |a: usize, b: usize| (points[a] - points[b]).abs());
            let cost_ref = cost.as_ref().map(|c| c as &dyn Fn(usize, usize) -> f64);
            let classifier = Classifier::fit(&pairs(train), &pairs(validation), self.spec.labels.len(), cost_ref);
            *fitted = Some(Arc::new(Baselines { majority, classifier }));
        }
        fitted.clone()
    }

    /// A baseline's answer to `task`, scored as a guest's would be.
    pub fn baseline(&self, name: &str, task: &Task) -> Option<TaskScore> {
        let data = self.data().ok()?;
        let (expected, text) = data.by_id.get(&task.id)?;
        let fitted = self.fitted()?;
        let label = match name {
            MAJORITY => fitted.majority,
            CLASSICAL => fitted.classifier.predict(text),
            _ => return None,
        };
        Some(self.score_label(label, *expected))
    }

    /// The regularisation the classical baseline chose on validation, and its validation accuracy.
    pub fn classical_choice(&self) -> Option<(f64, f64)> {
        self.fitted().map(|f| (f.classifier.l2, f.classifier.validation_accuracy))
    }

    pub fn staging(&self) -> Staging {
        Staging { tasks: self.settings.staged_tasks, threshold: self.settings.staged_threshold }
    }

    /// What a meta agent learns about a training answer: the expected label. Only training
    /// tasks are shown (the host shows no others), and this says nothing of any other task.
    pub fn feedback(&self, task: &Task, _score: &TaskScore) -> Value {
        let expected = task.id.starts_with("train/").then(|| self.expected(task)).flatten();
        match expected {
            // Only the label: the answer and its score are beside it already, and a node's file is capped.
            Some(label) => json!({"expected": self.spec.labels[label]}),
            None => Value::Null,
        }
    }
}

/// Implements [`crate::Domain`] for a type that derefs to a [`Judgement`].
macro_rules! judgement_domain {
    ($ty:ty) => {
        impl $crate::Domain for $ty {
            fn name(&self) -> &'static str {
                self.0.spec().name
            }
            fn splits(&self, train: u64, validation: u64) -> Result<($crate::Split, $crate::Split), $crate::DataError> {
                self.0.splits(train, validation)
            }
            fn test_sets(&self, dir: &std::path::Path) -> Result<$crate::TestSets, $crate::DataError> {
                self.0.test_sets(dir)
            }
            fn score<'a>(&'a self, task: &'a $crate::Task, answer: &'a str) -> $crate::domain::ScoreFuture<'a> {
                self.0.score(task, answer)
            }
            fn report(&self, tasks: &[$crate::Task], scores: &[$crate::TaskScore]) -> $crate::SetReport {
                self.0.report(tasks, scores)
            }
            fn data_files(&self) -> Vec<$crate::DataFile> {
                self.0.data_files()
            }
            fn baselines(&self) -> Vec<&'static str> {
                self.0.baselines()
            }
            fn baseline(&self, name: &str, task: &$crate::Task) -> Option<$crate::TaskScore> {
                self.0.baseline(name, task)
            }
            fn staging(&self) -> $crate::Staging {
                self.0.staging()
            }
            fn feedback(&self, task: &$crate::Task, score: &$crate::TaskScore) -> serde_json::Value {
                self.0.feedback(task, score)
            }
        }
    };
}
pub(crate) use judgement_domain;

/// A string field of a data line.
pub fn field<'a>(value: &'a Value, name: &str) -> Result<&'a str, String> {
    value.get(name).and_then(Value::as_str).ok_or_else(|| format!("no string field {name:?}"))
}
