//! Offline learning for the judgement domains: the meta agent retrains the task agent's lexical
//! model (`task/<domain>_model.rs`) from what `/history` shows, and writes the new table into the
//! child's source.
//!
//! The labels come from the feedback on training answers (the expected label), the texts from the
//! training inputs (`tasks/<domain>.json`); nothing else is known. Training starts from the
//! parent's weights (scaled by `WARM_START`), runs logistic-regression SGD over a seeded sample of
//! the labelled examples with extra weight on those the parent got wrong, and keeps the
//! `MAX_FEATURES` heaviest features. The settings are read from the child's `src/learning.rs`.

use crate::learning;
use crate::task::lexical::{Model, feature_value, features};
use agent_sdk::history::History;
use agent_sdk::repo::Repo;
use agent_sdk::rng::Rng;
use agent_sdk::serde_json::{self, Value};
use std::collections::{HashMap, HashSet};

pub const LEARNING_FILE: &str = "src/learning.rs";
/// Largest model file written, well under the host's limit on a source file.
const MAX_MODEL_BYTES: usize = 200 * 1024;

/// A judgement domain as the meta agent trains it.
pub struct Judged<const N: usize> {
    pub name: &'static str,
    pub file: &'static str,
    pub model: &'static Model<N>,
    /// The text the task agent reads, from a task's payload (as `task/<domain>.rs` builds it).
    pub text: fn(&Value) -> Option<String>,
}

pub const PAPER_REVIEW: Judged<2> = Judged {
    name: "paper_review",
    file: "src/task/paper_review_model.rs",
    model: &crate::task::paper_review_model::MODEL,
    text: |p| Some(format!("{}\n{}", p["title"].as_str()?, p["abstract"].as_str()?)),
};

pub const IMO_GRADING: Judged<4> = Judged {
    name: "imo_grading",
    file: "src/task/imo_grading_model.rs",
    model: &crate::task::imo_grading_model::MODEL,
    text: |p| p["response"].as_str().map(str::to_owned),
};

/// The learning settings, as the child's source holds them.
#[derive(Debug, Clone)]
pub struct Settings {
    pub rate: f64,
    pub epochs: usize,
    pub l2: f64,
    pub max_features: usize,
    pub min_df: usize,
    pub ngrams: usize,
    pub mistake_boost: f64,
    pub sample: f64,
    pub warm_start: f64,
    pub self_mutation: f64,
}

impl Settings {
    /// Reads `src/learning.rs` from `repo`; a setting it cannot read keeps the compiled value.
    pub fn read(repo: &Repo) -> Settings {
        let source = repo.read(LEARNING_FILE).unwrap_or_default();
        let get = |name: &str, compiled: f64| {
            source
                .lines()
                .find_map(|line| {
                    let rest = line.trim().strip_prefix("pub const ")?.strip_prefix(name)?.strip_prefix(": f64 =")?;
                    rest.split(';').next()?.trim().parse::<f64>().ok()
                })
                .unwrap_or(compiled)
        };
        Settings {
            rate: get("LEARNING_RATE", learning::LEARNING_RATE),
            epochs: get("EPOCHS", learning::EPOCHS).round().clamp(1.0, 100.0) as usize,
            l2: get("L2", learning::L2).clamp(0.0, 0.5),
            max_features: get("MAX_FEATURES", learning::MAX_FEATURES).round().clamp(1.0, 4000.0) as usize,
            min_df: get("MIN_DOCUMENT_FREQUENCY", learning::MIN_DOCUMENT_FREQUENCY).round().max(1.0) as usize,
            ngrams: get("NGRAMS", learning::NGRAMS).round().clamp(1.0, 2.0) as usize,
            mistake_boost: get("MISTAKE_BOOST", learning::MISTAKE_BOOST).max(0.0),
            sample: get("SAMPLE", learning::SAMPLE).clamp(0.05, 1.0),
            warm_start: get("WARM_START", learning::WARM_START).clamp(0.0, 1.0),
            self_mutation: get("SELF_MUTATION_RATE", learning::SELF_MUTATION_RATE).clamp(0.0, 1.0),
        }
    }
}

/// One labelled training example: its features (indices into the vocabulary) and label.
struct Example {
    features: Vec<usize>,
    /// What each feature counts, from all the text's features (as the task agent counts them).
    value: f32,
    label: usize,
    parent_wrong: bool,
}

/// What `/history` tells of a domain: (text, label, whether the parent got it wrong) per task
/// whose label some node's feedback gave.
fn labelled<const N: usize>(domain: &Judged<N>, history: &History) -> Result<Vec<(String, usize, bool)>, String> {
    let tasks = history.training_tasks(domain.name).map_err(|e| format!("tasks/{}.json: {e}", domain.name))?;
    let lineage = history.lineage_ids().unwrap_or_default();
    let parent = lineage.last().cloned().unwrap_or_default();
    let mut labels: HashMap<String, usize> = HashMap::new();
    let mut wrong: HashSet<String> = HashSet::new();
    // The parent first; other nodes only while some task still lacks a label.
    let mut nodes = vec![parent.clone()];
    nodes.extend(history.node_ids().unwrap_or_default().into_iter().filter(|id| *id != parent));
    for node in nodes {
        if labels.len() == tasks.len() {
            break;
        }
        for result in history.training_results(&node, domain.name).unwrap_or_default() {
            let expected = result.feedback["expected"].as_str().unwrap_or("");
            let Some(label) = domain.model.labels.iter().position(|l| l.eq_ignore_ascii_case(expected)) else {
                continue;
            };
            if node == parent && result.score.unwrap_or(0.0) < 1.0 {
                wrong.insert(result.task.clone());
            }
            labels.insert(result.task, label);
        }
    }
    let mut examples = Vec::new();
    for (id, payload) in tasks {
        let Some(&label) = labels.get(&id) else { continue };
        let Some(text) = serde_json::from_str::<Value>(&payload).ok().as_ref().and_then(domain.text) else { continue };
        examples.push((text, label, wrong.contains(&id)));
    }
    Ok(examples)
}

/// Retrains `domain`'s model and writes its table into `repo`; returns a summary line.
pub fn train<const N: usize>(
    domain: &Judged<N>,
    history: &History,
    repo: &Repo,
    settings: &Settings,
    rng: &mut Rng,
) -> Result<String, String> {
    let labelled = labelled(domain, history)?;
    if labelled.is_empty() {
        return Err(format!("{}: no labelled training example in /history yet", domain.name));
    }
    let before =
        labelled.iter().filter(|(text, label, _)| domain.model.predict(text) == domain.model.labels[*label]).count();
    // The vocabulary: features in at least `min_df` texts, and the parent's own features.
    let texts: Vec<Vec<String>> = labelled.iter().map(|(text, _, _)| features(text, settings.ngrams)).collect();
    let mut frequency: HashMap<&str, usize> = HashMap::new();
    for feature in texts.iter().flatten() {
        *frequency.entry(feature.as_str()).or_default() += 1;
    }
    let parent: HashMap<&str, [f32; N]> = domain.model.weights.iter().map(|(f, w)| (*f, *w)).collect();
    let mut vocabulary: Vec<&str> = frequency
        .iter()
        .filter(|(f, df)| **df >= settings.min_df || parent.contains_key(*f))
        .map(|(f, _)| *f)
        .collect();
    vocabulary.sort_unstable();
    let index: HashMap<&str, usize> = vocabulary.iter().enumerate().map(|(i, f)| (*f, i)).collect();
    let examples: Vec<Example> = texts
        .iter()
        .zip(&labelled)
        .map(|(fs, (_, label, parent_wrong))| Example {
            features: fs.iter().filter_map(|f| index.get(f.as_str()).copied()).collect(),
            value: feature_value(fs.len()),
            label: *label,
            parent_wrong: *parent_wrong,
        })
        .collect();
    let keep = settings.warm_start as f32;
    let mut weights: Vec<[f32; N]> =
        vocabulary.iter().map(|f| parent.get(f).map_or([0.0; N], |w| w.map(|x| x * keep))).collect();
    let mut bias = domain.model.bias.map(|b| b * keep);
    let trained = sgd(&examples, &mut weights, &mut bias, settings, rng);
    let after = examples.iter().filter(|e| predict(&weights, &bias, e) == e.label).count();
    let kept = write_model(domain, repo, &vocabulary, &weights, &bias, settings)?;
    Ok(format!(
        "{} model retrained on {trained} of {} labelled examples ({} the parent got wrong): {kept} features, \
         training accuracy {:.3} => {:.3}",
        domain.name,
        labelled.len(),
        labelled.iter().filter(|l| l.2).count(),
        before as f64 / labelled.len() as f64,
        after as f64 / labelled.len() as f64
    ))
}

fn logits<const N: usize>(weights: &[[f32; N]], bias: &[f32; N], example: &Example) -> [f32; N] {
    let value = example.value;
    let mut scores = *bias;
    for &f in &example.features {
        for (s, w) in scores.iter_mut().zip(weights[f]) {
            *s += w * value;
        }
    }
    scores
}

fn predict<const N: usize>(weights: &[[f32; N]], bias: &[f32; N], example: &Example) -> usize {
    let scores = logits(weights, bias, example);
    (0..N).fold(0, |best, l| if scores[l] > scores[best] { l } else { best })
}

/// Softmax-regression SGD over a seeded sample; returns how many examples it used.
fn sgd<const N: usize>(
    examples: &[Example],
    weights: &mut [[f32; N]],
    bias: &mut [f32; N],
    settings: &Settings,
    rng: &mut Rng,
) -> usize {
    let mut order: Vec<usize> =
        (0..examples.len()).filter(|&i| examples[i].parent_wrong || rng.chance(settings.sample)).collect();
    for epoch in 0..settings.epochs {
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let rate = (settings.rate / (1.0 + epoch as f64 / 4.0)) as f32;
        let shrink = 1.0 - (settings.rate * settings.l2) as f32;
        for &i in &order {
            let example = &examples[i];
            let scores = logits(weights, bias, example);
            let top = scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let exp = scores.map(|s| (s - top).exp());
            let sum: f32 = exp.iter().sum();
            let boost = if example.parent_wrong { 1.0 + settings.mistake_boost as f32 } else { 1.0 };
            let value = example.value;
            for class in 0..N {
                let gradient = boost * (exp[class] / sum - if example.label == class { 1.0 } else { 0.0 });
                for &f in &example.features {
                    weights[f][class] = weights[f][class] * shrink - rate * gradient * value;
                }
                bias[class] -= rate * gradient;
            }
        }
    }
    order.len()
}

/// Writes the table, heaviest features first up to `max_features` and the file-size cap, sorted by
/// feature; returns how many features it kept.
fn write_model<const N: usize>(
    domain: &Judged<N>,
    repo: &Repo,
    vocabulary: &[&str],
    weights: &[[f32; N]],
    bias: &[f32; N],
    settings: &Settings,
) -> Result<usize, String> {
    let mut ranked: Vec<usize> =
        (0..vocabulary.len()).filter(|&i| weights[i].iter().any(|w| w.abs() >= 5e-5)).collect();
    let heaviest = |i: usize| weights[i].iter().fold(0.0f32, |m, w| m.max(w.abs()));
    ranked.sort_by(|&a, &b| heaviest(b).total_cmp(&heaviest(a)).then(a.cmp(&b)));
    ranked.truncate(settings.max_features);
    let row = |values: &[f32; N]| values.iter().map(|w| format!("{w:.4}")).collect::<Vec<_>>().join(", ");
    let labels = domain.model.labels.iter().map(|l| format!("{l:?}")).collect::<Vec<_>>().join(", ");
    let mut text = format!(
        "//! The {name} model's table (see `lexical.rs`). The meta agent rewrites this file when it\n\
         //! retrains the model on the training results in `/history`.\n\n\
         use super::lexical::Model;\n\n\
         pub const MODEL: Model<{N}> =\n    Model {{ labels: [{labels}], ngrams: {ngrams}, bias: [{bias}], weights: WEIGHTS }};\n\n\
         /// Trained by the meta agent: (feature, weight per label), sorted by feature.\n\
         const WEIGHTS: &[(&str, [f32; {N}])] = &[\n",
        name = domain.name,
        ngrams = settings.ngrams,
        bias = row(bias),
    );
    // The heaviest lines that fit under the cap, then in feature order.
    let (mut size, mut lines) = (text.len(), Vec::new());
    for i in ranked {
        let line = format!("    ({:?}, [{}]),\n", vocabulary[i], row(&weights[i]));
        if size + line.len() > MAX_MODEL_BYTES {
            break;
        }
        size += line.len();
        lines.push((vocabulary[i], line));
    }
    lines.sort_unstable();
    let kept = lines.len();
    lines.iter().for_each(|(_, line)| text.push_str(line));
    text.push_str("];\n");
    repo.write(domain.file, &text).map_err(|e| format!("cannot write {}: {e}", domain.file))?;
    Ok(kept)
}
