//! Text features and the host's classical classifier for the judgement domains: TF-IDF over word
//! unigrams and bigrams, and a multinomial logistic regression trained by plain SGD (written
//! here, a few dozen lines, so that the baseline needs no new dependency and is deterministic).
//!
//! The classifier is trained on a training split only; its L2 regularisation is the value of
//! [`L2_GRID`] that does best on the validation split (ties go to the stronger regularisation).

use std::collections::HashMap;

/// The regularisation strengths tried, strongest first.
pub const L2_GRID: [f64; 6] = [1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 1e-4];
/// Passes over the training split.
const EPOCHS: usize = 40;
/// The first step size; it decays as `RATE / (1 + epoch / 10)`.
const RATE: f64 = 0.5;
/// Features seen in fewer training documents are dropped.
const MIN_DOCUMENT_FREQUENCY: usize = 2;

/// Lower-cased words: runs of letters and digits; one-letter words other than digits are dropped.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && (w.chars().count() > 1 || w.chars().all(|c| c.is_ascii_digit())))
        .map(str::to_lowercase)
        .collect()
}

/// Word unigrams and bigrams (bigrams joined by a space).
pub fn ngrams(text: &str) -> Vec<String> {
    let words = words(text);
    let mut grams = words.clone();
    grams.extend(words.windows(2).map(|pair| format!("{} {}", pair[0], pair[1])));
    grams
}

/// A TF-IDF vocabulary fitted on training documents: sublinear term frequency, smoothed inverse
/// document frequency, rows scaled to unit length.
#[derive(Debug, Clone)]
pub struct Tfidf {
    index: HashMap<String, usize>,
    idf: Vec<f64>,
}

/// A sparse row: (feature, value), sorted by feature.
pub type Row = Vec<(usize, f64)>;

impl Tfidf {
    pub fn fit(documents: &[&str]) -> Tfidf {
        let mut frequency: HashMap<String, usize> = HashMap::new();
        for document in documents {
            let mut grams = ngrams(document);
            grams.sort();
            grams.dedup();
            for gram in grams {
                *frequency.entry(gram).or_default() += 1;
            }
        }
        let mut kept: Vec<(String, usize)> =
            frequency.into_iter().filter(|(_, df)| *df >= MIN_DOCUMENT_FREQUENCY).collect();
        kept.sort();
        let n = documents.len() as f64;
        let idf = kept.iter().map(|(_, df)| ((1.0 + n) / (1.0 + *df as f64)).ln() + 1.0).collect();
        let index = kept.into_iter().enumerate().map(|(i, (gram, _))| (gram, i)).collect();
        Tfidf { index, idf }
    }

    pub fn features(&self) -> usize {
        self.idf.len()
    }

    pub fn transform(&self, document: &str) -> Row {
        let mut counts: HashMap<usize, f64> = HashMap::new();
        for gram in ngrams(document) {
            if let Some(&i) = self.index.get(&gram) {
                *counts.entry(i).or_default() += 1.0;
            }
        }
        let mut row: Row = counts.into_iter().map(|(i, tf)| (i, (1.0 + tf.ln()) * self.idf[i])).collect();
        row.sort_by_key(|(i, _)| *i);
        let norm = row.iter().map(|(_, v)| v * v).sum::<f64>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|(_, v)| *v /= norm);
        }
        row
    }
}

/// A multinomial logistic regression: one weight vector and bias per class.
#[derive(Debug, Clone)]
pub struct Logistic {
    weights: Vec<Vec<f64>>,
    bias: Vec<f64>,
}

impl Logistic {
    /// Trains on `rows` with labels in `0..classes` by SGD with L2 strength `l2`; the visiting
    /// order is shuffled from `seed`.
    pub fn train(rows: &[Row], labels: &[usize], classes: usize, features: usize, l2: f64, seed: u64) -> Logistic {
        let mut model = Logistic { weights: vec![vec![0.0; features]; classes], bias: vec![0.0; classes] };
        let mut order: Vec<usize> = (0..rows.len()).collect();
        let mut state = seed;
        // The weights are `scale * weights`: shrinking for L2 is one multiplication per step.
        let mut scale = 1.0;
        for epoch in 0..EPOCHS {
            crate::judgement::shuffle(&mut order, &mut state);
            let rate = RATE / (1.0 + epoch as f64 / 10.0);
            for &i in &order {
                let p = model.probabilities_scaled(&rows[i], scale);
                scale *= 1.0 - rate * l2;
                for (class, w) in model.weights.iter_mut().enumerate() {
                    let gradient = p[class] - if labels[i] == class { 1.0 } else { 0.0 };
                    for &(f, v) in &rows[i] {
                        w[f] -= rate * gradient * v / scale;
                    }
                    model.bias[class] -= rate * gradient;
                }
                if scale < 1e-9 {
                    model.weights.iter_mut().flatten().for_each(|x| *x *= scale);
                    scale = 1.0;
                }
            }
        }
        model.weights.iter_mut().flatten().for_each(|x| *x *= scale);
        model
    }

    pub fn probabilities(&self, row: &Row) -> Vec<f64> {
        self.probabilities_scaled(row, 1.0)
    }

    fn probabilities_scaled(&self, row: &Row, scale: f64) -> Vec<f64> {
        let logits: Vec<f64> = self
            .weights
            .iter()
            .zip(&self.bias)
            .map(|(w, b)| b + scale * row.iter().map(|&(f, v)| w[f] * v).sum::<f64>())
            .collect();
        let top = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let exp: Vec<f64> = logits.iter().map(|l| (l - top).exp()).collect();
        let sum: f64 = exp.iter().sum();
        exp.into_iter().map(|e| e / sum).collect()
    }

    /// The most probable class (the lowest index on a tie).
    pub fn predict(&self, row: &Row) -> usize {
        let p = self.probabilities(row);
        (0..p.len()).fold(0, |best, c| if p[c] > p[best] { c } else { best })
    }
}

/// The classical baseline, fitted: vocabulary, model, and the regularisation validation chose.
#[derive(Debug, Clone)]
pub struct Classifier {
    pub tfidf: Tfidf,
    pub model: Logistic,
    pub l2: f64,
    pub validation_accuracy: f64,
}

impl Classifier {
    /// Fits on `train` (text, label) and picks the L2 strength of [`L2_GRID`] with the best
    /// validation accuracy (the cost of a wrong label breaks ties when `cost` is given).
    pub fn fit(
        train: &[(&str, usize)],
        validation: &[(&str, usize)],
        classes: usize,
        cost: Option<&dyn Fn(usize, usize) -> f64>,
    ) -> Classifier {
        let texts: Vec<&str> = train.iter().map(|(t, _)| *t).collect();
        let tfidf = Tfidf::fit(&texts);
        let rows: Vec<Row> = texts.iter().map(|t| tfidf.transform(t)).collect();
        let labels: Vec<usize> = train.iter().map(|(_, l)| *l).collect();
        let validation_rows: Vec<(Row, usize)> = validation.iter().map(|(t, l)| (tfidf.transform(t), *l)).collect();
        let mut best: Option<(f64, f64, Logistic, f64)> = None;
        for l2 in L2_GRID {
            let model = Logistic::train(&rows, &labels, classes, tfidf.features(), l2, 0x7e57);
            let (mut right, mut error) = (0.0, 0.0);
            for (row, label) in &validation_rows {
                let predicted = model.predict(row);
                right += f64::from(u8::from(predicted == *label));
                error += cost.map_or(0.0, |c| c(predicted, *label));
            }
            let n = validation_rows.len().max(1) as f64;
            let (accuracy, error) = (right / n, error / n);
            let better = best.as_ref().is_none_or(|(a, e, _, _)| accuracy > *a || (accuracy == *a && error < *e));
            if better {
                best = Some((accuracy, error, model, l2));
            }
        }
        let (validation_accuracy, _, model, l2) = best.expect("the grid is not empty");
        Classifier { tfidf, model, l2, validation_accuracy }
    }

    pub fn predict(&self, text: &str) -> usize {
        self.model.predict(&self.tfidf.transform(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_bigrams() {
        assert_eq!(words("A deep-learning model, in 2 steps!"), ["deep", "learning", "model", "in", "2", "steps"]);
        assert_eq!(ngrams("Good GOOD work"), ["good", "good", "work", "good good", "good work"]);
    }

    #[test]
    fn tfidf_rows_are_unit_length_and_skip_rare_features() {
        let tfidf = Tfidf::fit(&["good results here", "good ideas here", "nothing"]);
        assert_eq!(tfidf.features(), 2, "`good` and `here` appear in two documents");
        let row = tfidf.transform("good good here unseen");
        let norm: f64 = row.iter().map(|(_, v)| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-9);
        assert!(tfidf.transform("unseen words only").is_empty());
    }

    #[test]
    fn the_classifier_learns_a_separable_toy_set_and_picks_a_regularisation() {
        let train: Vec<(&str, usize)> = [
            ("strong novel results state of the art", 0),
            ("novel method strong results", 0),
            ("state of the art novel", 0),
            ("weak unclear experiments limited", 1),
            ("unclear writing weak baselines", 1),
            ("limited experiments weak", 1),
        ]
        .to_vec();
        let validation = [("novel strong", 0), ("weak limited", 1)];
        let classifier = Classifier::fit(&train, &validation, 2, None);
        assert_eq!(classifier.validation_accuracy, 1.0);
        assert!(L2_GRID.contains(&classifier.l2));
        assert_eq!(classifier.predict("a novel state of the art method"), 0);
        assert_eq!(classifier.predict("weak and unclear"), 1);
    }
}
