//! The lexical model both judgement domains answer with: a text becomes a set of features (words,
//! word bigrams, a length bucket), each feature carries one weight per label, and the label with
//! the highest summed weight wins. The tables live in `<domain>_model.rs`; the meta agent
//! retrains and rewrites them (`learn.rs`), so the feature code here is shared by both sides.

/// A model as its table file spells it.
pub struct Model<const N: usize> {
    pub labels: [&'static str; N],
    /// 1: words only; 2: words and word bigrams.
    pub ngrams: usize,
    pub bias: [f32; N],
    /// (feature, weight per label), sorted by feature so that lookups are binary searches.
    pub weights: &'static [(&'static str, [f32; N])],
}

/// Lower-cased runs of letters and digits; one-letter words other than digits are dropped.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && (w.chars().count() > 1 || w.chars().all(|c| c.is_ascii_digit())))
        .map(str::to_lowercase)
        .collect()
}

/// The distinct features of a text, sorted: words, bigrams when `ngrams >= 2`, and `#len:<k>`
/// with k the base-2 logarithm of the word count (long and short answers differ).
pub fn features(text: &str, ngrams: usize) -> Vec<String> {
    let words = words(text);
    let mut features = Vec::with_capacity(words.len() * 2 + 1);
    features.push(format!("#len:{}", usize::BITS - words.len().leading_zeros()));
    if ngrams >= 2 {
        features.extend(words.windows(2).map(|pair| format!("{} {}", pair[0], pair[1])));
    }
    features.extend(words);
    features.sort_unstable();
    features.dedup();
    features
}

/// Each present feature counts `1 / sqrt(count)`, so that long and short texts weigh alike.
pub fn feature_value(count: usize) -> f32 {
    1.0 / (count.max(1) as f32).sqrt()
}

impl<const N: usize> Model<N> {
    pub fn scores(&self, text: &str) -> [f32; N] {
        let features = features(text, self.ngrams);
        let value = feature_value(features.len());
        let mut scores = self.bias;
        for feature in &features {
            if let Ok(i) = self.weights.binary_search_by(|(f, _)| (*f).cmp(feature.as_str())) {
                for (score, w) in scores.iter_mut().zip(self.weights[i].1) {
                    *score += w * value;
                }
            }
        }
        scores
    }

    /// The label with the highest score (the first listed on a tie).
    pub fn predict(&self, text: &str) -> &'static str {
        let scores = self.scores(text);
        let best = (0..N).fold(0, |best, l| if scores[l] > scores[best] { l } else { best });
        self.labels[best]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_words_bigrams_and_a_length_bucket() {
        assert_eq!(features("A novel, novel idea", 2), ["#len:2", "idea", "novel", "novel idea", "novel novel"]);
        assert_eq!(features("", 1), ["#len:0"]);
    }

    #[test]
    fn the_heaviest_label_wins() {
        static WEIGHTS: [(&str, [f32; 2]); 2] = [("novel", [1.0, -1.0]), ("weak", [-1.0, 1.0])];
        let model = Model { labels: ["accept", "reject"], ngrams: 1, bias: [0.0, 0.1], weights: &WEIGHTS };
        assert_eq!(model.predict("a novel method"), "accept");
        assert_eq!(model.predict("weak"), "reject");
        assert_eq!(model.predict("nothing known"), "reject", "the bias decides");
    }
}
