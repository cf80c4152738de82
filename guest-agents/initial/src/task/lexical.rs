//! The lexical model both judgement domains answer with: a text becomes a set of features (words,
//! word bigrams, a length bucket), each known feature counts its inverse document frequency
//! (normalised over the text's known features, as TF-IDF does) times one weight per label, and
//! the label with the highest sum wins. The tables live in `<domain>_model.rs`; the meta agent
//! retrains and rewrites them (`learn.rs`), so the feature code here is shared by both sides.

/// A model as its table file spells it.
pub struct Model<const N: usize> {
    pub labels: [&'static str; N],
    /// 1: words only; 2: words and word bigrams.
    pub ngrams: usize,
    pub bias: [f32; N],
    /// (feature, inverse document frequency, weight per label), sorted by feature so that lookups
    /// are binary searches.
    pub weights: &'static [(&'static str, f32, [f32; N])],
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

/// What each known feature of a text counts: its inverse document frequency over the Euclidean
/// norm of all of them, so that long and short texts weigh alike and rare words weigh more.
pub fn feature_values(idfs: &[f32]) -> Vec<f32> {
    let norm = idfs.iter().map(|v| v * v).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
    idfs.iter().map(|v| v / norm).collect()
}

impl<const N: usize> Model<N> {
    pub fn scores(&self, text: &str) -> [f32; N] {
        let known: Vec<usize> = features(text, self.ngrams)
            .iter()
            .filter_map(|feature| self.weights.binary_search_by(|(f, _, _)| (*f).cmp(feature.as_str())).ok())
            .collect();
        let values = feature_values(&known.iter().map(|&i| self.weights[i].1).collect::<Vec<_>>());
        let mut scores = self.bias;
        for (&i, value) in known.iter().zip(values) {
            for (score, w) in scores.iter_mut().zip(self.weights[i].2) {
                *score += w * value;
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
        static WEIGHTS: [(&str, f32, [f32; 2]); 2] = [("novel", 1.0, [1.0, -1.0]), ("weak", 1.0, [-1.0, 1.0])];
        let model = Model { labels: ["accept", "reject"], ngrams: 1, bias: [0.0, 0.1], weights: &WEIGHTS };
        assert_eq!(model.predict("a novel method"), "accept");
        assert_eq!(model.predict("weak"), "reject");
        assert_eq!(model.predict("nothing known"), "reject", "the bias decides");
    }

    #[test]
    fn rare_features_weigh_more_and_length_does_not_matter() {
        static WEIGHTS: [(&str, f32, [f32; 2]); 2] = [("common", 1.0, [1.0, -1.0]), ("rare", 3.0, [-1.0, 1.0])];
        let model = Model { labels: ["accept", "reject"], ngrams: 1, bias: [0.0, 0.0], weights: &WEIGHTS };
        assert_eq!(model.predict("common rare"), "reject", "the rarer feature outweighs the common one");
        let short = model.scores("common");
        let long = model.scores("common and many unknown words besides");
        assert_eq!(short, long, "unknown words change nothing");
        assert!((short[0] - 1.0).abs() < 1e-6, "one known feature counts 1: {short:?}");
        assert_eq!(feature_values(&[3.0, 4.0]), [0.6, 0.8]);
    }
}
