//! Offline learning for the judgement domains: the meta agent retrains the task agent's lexical
//! model (`task/<domain>_model.rs`) from what `/history` shows, and writes the new table into the
//! child's source.
//!
//! The labels come from the feedback on training answers (the expected label), the texts from the
//! training inputs (`tasks/<domain>.json`); nothing else is known. Training starts from the
//! parent's weights (scaled by `WARM_START`), runs logistic-regression SGD over TF-IDF-weighted
//! features of a seeded sample of the labelled examples with extra weight on those the parent got
//! wrong, keeps the `MAX_FEATURES` heaviest features and trains again on those alone. The settings are this meta agent's own (`src/learning.rs` as compiled); mutated ones go into
//! the child's `src/learning.rs`.

use crate::learning;
use crate::task::lexical::{Model, feature_values, features};
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
    text: crate::task::imo_grading::text,
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
    pub average: bool,
    pub self_mutation: f64,
}

impl Settings {
    /// The settings this meta agent was compiled with: its own, not those in the child's source.
    /// A setting mutated into a child takes effect when that child, as a meta agent, trains its
    /// own children; so a fixed meta agent (the ablation) always trains with the initial settings.
    pub fn own() -> Settings {
        Settings {
            rate: learning::LEARNING_RATE,
            epochs: learning::EPOCHS.round().clamp(1.0, 100.0) as usize,
            l2: learning::L2.clamp(0.0, 0.5),
            max_features: learning::MAX_FEATURES.round().clamp(1.0, 4000.0) as usize,
            min_df: learning::MIN_DOCUMENT_FREQUENCY.round().max(1.0) as usize,
            ngrams: learning::NGRAMS.round().clamp(1.0, 2.0) as usize,
            mistake_boost: learning::MISTAKE_BOOST.max(0.0),
            sample: learning::SAMPLE.clamp(0.05, 1.0),
            warm_start: learning::WARM_START.clamp(0.0, 1.0),
            average: learning::AVERAGE >= 0.5,
            self_mutation: learning::SELF_MUTATION_RATE.clamp(0.0, 1.0),
        }
    }
}

/// One labelled training example: its features (indices into the vocabulary), what each counts
/// (as the task agent counts them, `lexical::feature_values`) and its label.
struct Example {
    features: Vec<usize>,
    values: Vec<f32>,
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
///
/// Two passes: one over every feature seen in at least `min_df` texts (and the parent's), then,
/// after keeping the heaviest `max_features`, one over those alone, so that the table written is
/// the model trained (the task agent normalises over the features it knows).
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
    let texts: Vec<Vec<String>> = labelled.iter().map(|(text, _, _)| features(text, settings.ngrams)).collect();
    let parent: HashMap<&str, [f32; N]> = domain.model.weights.iter().map(|(f, _, w)| (*f, *w)).collect();
    let table = Table::new(&texts, &parent, settings.min_df);
    let keep = settings.warm_start as f32;
    let mut weights: Vec<[f32; N]> =
        table.vocabulary.iter().map(|f| parent.get(f).map_or([0.0; N], |w| w.map(|x| x * keep))).collect();
    let mut bias = domain.model.bias.map(|b| b * keep);
    let sample = sample(&labelled, settings, rng);
    sgd(&table.examples(&texts, &labelled, None), &sample, &mut weights, &mut bias, settings, rng);
    let kept = select(domain, &table, &weights, settings);
    let examples = table.examples(&texts, &labelled, Some(&kept));
    sgd(&examples, &sample, &mut weights, &mut bias, settings, rng);
    let after = examples.iter().filter(|e| predict(&weights, &bias, e) == e.label).count();
    write_model(domain, repo, &table, &kept, &weights, &bias, settings)?;
    Ok(format!(
        "{} model retrained on {} of {} labelled examples ({} the parent got wrong): {} of {} features kept, \
         training accuracy {:.3} => {:.3}",
        domain.name,
        sample.len(),
        labelled.len(),
        labelled.iter().filter(|l| l.2).count(),
        kept.len(),
        table.vocabulary.len(),
        before as f64 / labelled.len() as f64,
        after as f64 / labelled.len() as f64
    ))
}

/// The features training may use, with their inverse document frequencies over the texts.
struct Table<'a> {
    vocabulary: Vec<&'a str>,
    idf: Vec<f32>,
    index: HashMap<&'a str, usize>,
}

impl<'a> Table<'a> {
    /// Features in at least `min_df` texts, and the parent's own; idf = ln((1+n)/(1+df)) + 1.
    fn new<const N: usize>(texts: &'a [Vec<String>], parent: &HashMap<&'a str, [f32; N]>, min_df: usize) -> Self {
        let mut frequency: HashMap<&str, usize> = HashMap::new();
        for feature in texts.iter().flatten() {
            *frequency.entry(feature.as_str()).or_default() += 1;
        }
        let mut vocabulary: Vec<&str> =
            frequency.iter().filter(|(f, df)| **df >= min_df || parent.contains_key(*f)).map(|(f, _)| *f).collect();
        vocabulary.sort_unstable();
        let n = texts.len() as f32;
        let idf = vocabulary.iter().map(|f| ((1.0 + n) / (1.0 + frequency[f] as f32)).ln() + 1.0).collect();
        let index = vocabulary.iter().enumerate().map(|(i, f)| (*f, i)).collect();
        Table { vocabulary, idf, index }
    }

    /// The examples over the vocabulary, or over the `only` features of it.
    fn examples(
        &self,
        texts: &[Vec<String>],
        labelled: &[(String, usize, bool)],
        only: Option<&[usize]>,
    ) -> Vec<Example> {
        let allowed: Option<HashSet<usize>> = only.map(|o| o.iter().copied().collect());
        texts
            .iter()
            .zip(labelled)
            .map(|(fs, (_, label, parent_wrong))| {
                let features: Vec<usize> = fs
                    .iter()
                    .filter_map(|f| self.index.get(f.as_str()).copied())
                    .filter(|i| allowed.as_ref().is_none_or(|a| a.contains(i)))
                    .collect();
                let names: Vec<&str> = features.iter().map(|&i| self.vocabulary[i]).collect();
                let values = feature_values(&names, &features.iter().map(|&i| self.idf[i]).collect::<Vec<_>>());
                Example { features, values, label: *label, parent_wrong: *parent_wrong }
            })
            .collect()
    }
}

/// The examples a call trains on: those the parent got wrong, and a seeded `sample` of the rest.
fn sample(labelled: &[(String, usize, bool)], settings: &Settings, rng: &mut Rng) -> Vec<usize> {
    (0..labelled.len()).filter(|&i| labelled[i].2 || rng.chance(settings.sample)).collect()
}

/// The heaviest features, at most `max_features` and as many as the table file holds, in
/// vocabulary order.
fn select<const N: usize>(domain: &Judged<N>, table: &Table, weights: &[[f32; N]], settings: &Settings) -> Vec<usize> {
    let mut ranked: Vec<usize> =
        (0..table.vocabulary.len()).filter(|&i| weights[i].iter().any(|w| w.abs() >= 5e-5)).collect();
    let heaviest = |i: usize| weights[i].iter().fold(0.0f32, |m, w| m.max(w.abs()));
    ranked.sort_by(|&a, &b| heaviest(b).total_cmp(&heaviest(a)).then(a.cmp(&b)));
    ranked.truncate(settings.max_features);
    let mut size = header(domain, &[0.0; N], settings).len();
    let mut kept = Vec::new();
    for i in ranked {
        size += row(table, i, &weights[i]).len();
        if size > MAX_MODEL_BYTES {
            break;
        }
        kept.push(i);
    }
    kept.sort_unstable();
    kept
}

fn logits<const N: usize>(weights: &[[f32; N]], bias: &[f32; N], example: &Example) -> [f32; N] {
    let mut scores = *bias;
    for (&f, value) in example.features.iter().zip(&example.values) {
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

/// Softmax-regression SGD over the `sample` of the examples, in a seeded order per epoch. With
/// `average`, the result is the mean of the weights after every step, kept without touching every
/// weight at every step: each change made at step `s` is also added, times `s - 1`, to `late`, and
/// the mean over `T` steps is the last weights less `late / T`.
fn sgd<const N: usize>(
    examples: &[Example],
    sample: &[usize],
    weights: &mut [[f32; N]],
    bias: &mut [f32; N],
    settings: &Settings,
    rng: &mut Rng,
) {
    let mut late = vec![[0.0f32; N]; weights.len()];
    let mut late_bias = [0.0f32; N];
    let mut step = 0.0f32;
    let mut order = sample.to_vec();
    for epoch in 0..settings.epochs {
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let rate = (settings.rate / (1.0 + epoch as f64 / 4.0)) as f32;
        let shrink = 1.0 - (settings.rate * settings.l2) as f32;
        for &i in &order {
            let example = &examples[i];
            let before = step;
            step += 1.0;
            let scores = logits(weights, bias, example);
            let top = scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let exp = scores.map(|s| (s - top).exp());
            let sum: f32 = exp.iter().sum();
            let boost = if example.parent_wrong { 1.0 + settings.mistake_boost as f32 } else { 1.0 };
            for class in 0..N {
                let gradient = boost * (exp[class] / sum - if example.label == class { 1.0 } else { 0.0 });
                for (&f, value) in example.features.iter().zip(&example.values) {
                    let change = weights[f][class] * (shrink - 1.0) - rate * gradient * value;
                    weights[f][class] += change;
                    late[f][class] += before * change;
                }
                bias[class] -= rate * gradient;
                late_bias[class] -= before * rate * gradient;
            }
        }
    }
    if settings.average && step > 0.0 {
        for (w, l) in weights.iter_mut().zip(&late) {
            for class in 0..N {
                w[class] -= l[class] / step;
            }
        }
        for class in 0..N {
            bias[class] -= late_bias[class] / step;
        }
    }
}

fn numbers(values: &[f32]) -> String {
    values.iter().map(|w| format!("{w:.4}")).collect::<Vec<_>>().join(", ")
}

/// One line of the table.
fn row<const N: usize>(table: &Table, i: usize, weights: &[f32; N]) -> String {
    format!("    ({:?}, {:.4}, [{}]),\n", table.vocabulary[i], table.idf[i], numbers(weights))
}

/// The table file up to its first row.
fn header<const N: usize>(domain: &Judged<N>, bias: &[f32; N], settings: &Settings) -> String {
    let labels = domain.model.labels.iter().map(|l| format!("{l:?}")).collect::<Vec<_>>().join(", ");
    format!(
        "//! The {name} model's table (see `lexical.rs`). The meta agent rewrites this file when it\n\
         //! retrains the model on the training results in `/history`.\n\n\
         use super::lexical::Model;\n\n\
         pub const MODEL: Model<{N}> =\n    Model {{ labels: [{labels}], ngrams: {ngrams}, bias: [{bias}], weights: WEIGHTS }};\n\n\
         /// Trained by the meta agent: (feature, inverse document frequency, weight per label), sorted\n\
         /// by feature.\n\
         const WEIGHTS: &[(&str, f32, [f32; {N}])] = &[\n",
        name = domain.name,
        ngrams = settings.ngrams,
        bias = numbers(bias),
    )
}

/// Writes the table of the `kept` features (in vocabulary order, which is feature order).
fn write_model<const N: usize>(
    domain: &Judged<N>,
    repo: &Repo,
    table: &Table,
    kept: &[usize],
    weights: &[[f32; N]],
    bias: &[f32; N],
    settings: &Settings,
) -> Result<(), String> {
    let mut text = header(domain, bias, settings);
    kept.iter().for_each(|&i| text.push_str(&row(table, i, &weights[i])));
    text.push_str("];\n");
    repo.write(domain.file, &text).map_err(|e| format!("cannot write {}: {e}", domain.file))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            rate: 1.0,
            epochs: 20,
            l2: 0.0,
            max_features: 2,
            min_df: 1,
            ngrams: 1,
            mistake_boost: 0.0,
            sample: 1.0,
            warm_start: 1.0,
            average: true,
            self_mutation: 0.0,
        }
    }

    #[test]
    fn training_learns_the_words_that_separate_the_labels_and_keeps_the_heaviest() {
        let labelled: Vec<(String, usize, bool)> = [
            ("strong results novel", 0),
            ("novel strong method", 0),
            ("weak unclear results", 1),
            ("unclear weak method", 1),
        ]
        .iter()
        .map(|(t, l)| (t.to_string(), *l, false))
        .collect();
        let texts: Vec<Vec<String>> = labelled.iter().map(|(t, _, _)| features(t, 1)).collect();
        let table = Table::new::<2>(&texts, &HashMap::new(), 1);
        assert!(table.idf[table.index["#len:2"]] < table.idf[table.index["results"]], "in every text: lowest idf");
        let mut weights = vec![[0.0f32; 2]; table.vocabulary.len()];
        let mut bias = [0.0f32; 2];
        let mut rng = Rng::derive(1, "test");
        let examples = table.examples(&texts, &labelled, None);
        sgd(&examples, &[0, 1, 2, 3], &mut weights, &mut bias, &settings(), &mut rng);
        assert!(examples.iter().all(|e| predict(&weights, &bias, e) == e.label));
        let kept: Vec<&str> =
            select(&PAPER_REVIEW, &table, &weights, &settings()).iter().map(|&i| table.vocabulary[i]).collect();
        assert_eq!(kept.len(), 2);
        assert!(kept.iter().all(|f| ["novel", "strong", "unclear", "weak"].contains(f)), "{kept:?}");
    }

    #[test]
    fn the_averaged_weights_are_the_mean_over_the_steps() {
        let texts = [features("good", 1), features("bad", 1)];
        let labelled = [("good".to_string(), 0, false), ("bad".to_string(), 1, false)];
        let table = Table::new::<2>(&texts, &HashMap::new(), 1);
        let examples = table.examples(&texts, &labelled, None);
        let train = |average: bool, epochs: usize| {
            let mut weights = vec![[0.0f32; 2]; table.vocabulary.len()];
            let mut bias = [0.0f32; 2];
            let settings = Settings { average, epochs, ..settings() };
            sgd(&examples, &[0, 1], &mut weights, &mut bias, &settings, &mut Rng::derive(7, "test"));
            (weights, bias)
        };
        // The same 4 steps replayed one at a time give the weights after each, to average by hand.
        let (averaged, _) = train(true, 2);
        let (last, _) = train(false, 2);
        assert_ne!(averaged, last);
        let mut steps = Vec::new();
        let mut weights = vec![[0.0f32; 2]; table.vocabulary.len()];
        let mut bias = [0.0f32; 2];
        let mut rng = Rng::derive(7, "test");
        let settings = Settings { average: false, epochs: 1, ..settings() };
        for epoch in 0..2 {
            let mut order = vec![0usize, 1];
            for i in (1..order.len()).rev() {
                order.swap(i, rng.below(i as u64 + 1) as usize);
            }
            let rate = settings.rate / (1.0 + epoch as f64 / 4.0);
            for &i in &order {
                let one = Settings { rate, ..settings.clone() };
                sgd(&examples, &[i], &mut weights, &mut bias, &one, &mut Rng::derive(0, "one"));
                steps.push(weights.clone());
            }
        }
        assert_eq!(weights, last, "the step-by-step replay follows the same path");
        for (f, w) in averaged.iter().enumerate() {
            for class in 0..2 {
                let mean = steps.iter().map(|s| s[f][class]).sum::<f32>() / steps.len() as f32;
                assert!((w[class] - mean).abs() < 1e-5, "feature {f} class {class}: {} vs {mean}", w[class]);
            }
        }
    }
}
