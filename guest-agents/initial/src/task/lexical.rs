//! The lexical model both judgement domains answer with: a text becomes a set of features (words,
//! word bigrams, a length bucket, tags), each known feature counts its inverse document frequency
//! (normalised over the text's known features, as TF-IDF does) times one weight per label, and
//! the label with the highest sum wins. A tag (a line of the text that starts with `@`, such as
//! the problem a proof answers) counts 1, outside that normalisation: it says what the text is
//! about, however long the text. The tables live in `<domain>_model.rs`; the meta agent
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

/// What starts a tag line, and the tag feature.
pub const TAG: char = '@';

/// The distinct features of a text, sorted: words, bigrams when `ngrams >= 2`, `#len:<k>` with k
/// the base-2 logarithm of the word count (long and short answers differ), and each tag line
/// (trimmed) as it stands.
pub fn features(text: &str, ngrams: usize) -> Vec<String> {
    let (tags, lines): (Vec<&str>, Vec<&str>) = text.lines().partition(|line| line.starts_with(TAG));
    let words = words(&lines.join("\n"));
    let mut features = Vec::with_capacity(words.len() * 2 + tags.len() + 1);
    features.extend(tags.iter().map(|tag| tag.trim().to_owned()));
    features.push(format!("#len:{}", usize::BITS - words.len().leading_zeros()));
    if ngrams >= 2 {
        features.extend(words.windows(2).map(|pair| format!("{} {}", pair[0], pair[1])));
    }
    features.extend(words);
    features.sort_unstable();
    features.dedup();
    features
}

/// What each known feature of a text (`names`, with their inverse document frequencies `idfs`)
/// counts: a tag 1; any other its idf over the Euclidean norm of the others' idfs, so that long
/// and short texts weigh alike and rare words weigh more.
pub fn feature_values(names: &[&str], idfs: &[f32]) -> Vec<f32> {
    let tag = |name: &str| name.starts_with(TAG);
    let norm = names.iter().zip(idfs).filter(|(n, _)| !tag(n)).map(|(_, v)| v * v).sum::<f32>().sqrt();
    let norm = norm.max(f32::MIN_POSITIVE);
    names.iter().zip(idfs).map(|(n, v)| if tag(n) { 1.0 } else { v / norm }).collect()
}

impl<const N: usize> Model<N> {
    pub fn scores(&self, text: &str) -> [f32; N] {
        let known: Vec<usize> = features(text, self.ngrams)
            .iter()
            .filter_map(|feature| self.weights.binary_search_by(|(f, _, _)| (*f).cmp(feature.as_str())).ok())
            .collect();
        let names: Vec<&str> = known.iter().map(|&i| self.weights[i].0).collect();
        let values = feature_values(&names, &known.iter().map(|&i| self.weights[i].1).collect::<Vec<_>>());
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
        assert_eq!(features("Proof.\n@problem:1f\nDone", 1), ["#len:2", "@problem:1f", "done", "proof"]);
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
        assert_eq!(feature_values(&["a", "b"], &[3.0, 4.0]), [0.6, 0.8]);
        assert_eq!(feature_values(&["a", "@p", "b"], &[3.0, 9.0, 4.0]), [0.6, 1.0, 0.8], "a tag counts 1, apart");
    }
}
