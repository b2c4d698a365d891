//! Estimating a word n-gram model from text: interpolated modified
//! Kneser-Ney smoothing (Chen & Goodman 1998), computed the way KenLM's
//! `lmplz` does so that the two agree n-gram for n-gram
//! (`training/compare_lmplz.py` checks it).
//!
//! Every sentence is `<s> w1 … wn </s>`. The highest order counts
//! occurrences; lower orders count distinct left neighbours (continuation
//! counts), except n-grams starting with `<s>`, which nothing can precede.
//! Each order gets three discounts from its counts of counts; the mass they
//! free is spread over the next lower order, and unigrams over a uniform
//! distribution on the vocabulary.

use std::fmt::Write as _;

use rustc_hash::{FxHashMap, FxHashSet};

use super::{BOS, EOS, UNK};

/// The discounts lmplz falls back to (`--discount_fallback`) when an order
/// has too few distinct counts to estimate its own, as on tiny corpora.
const FALLBACK_DISCOUNTS: [f64; 3] = [0.5, 1.0, 1.5];
const UNK_ID: u32 = 0;
const BOS_ID: u32 = 1;
const EOS_ID: u32 = 2;

/// Why a model could not be estimated.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the order must be between 1 and 6, not {0}")]
    Order(usize),
    #[error("the text has no words after normalization to the model's alphabet")]
    NoText,
}

/// The three discounts of one order: for n-grams seen once, twice, and more.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Discounts(pub [f64; 3]);

impl Discounts {
    /// From the numbers of n-grams whose (adjusted) count is 1, 2, 3 and 4;
    /// `None` when they cannot give discounts in range.
    fn estimate(count_of_counts: [u64; 4]) -> Option<Self> {
        let t = count_of_counts.map(|c| c as f64);
        if t[..3].contains(&0.0) {
            return None;
        }
        let y = t[0] / (t[0] + 2.0 * t[1]);
        let d: [f64; 3] = std::array::from_fn(|i| {
            let k = (i + 1) as f64;
            k - (k + 1.0) * y * t[i + 1] / t[i]
        });
        d.iter().enumerate().all(|(i, &d)| (0.0..=(i + 1) as f64).contains(&d)).then_some(Self(d))
    }

    /// The discount for an n-gram with this (adjusted) count.
    fn of(&self, count: u64) -> f64 {
        match count {
            0 => 0.0,
            c => self.0[(c.min(3) - 1) as usize],
        }
    }
}

/// One n-gram of the estimated model.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    /// Raw count at the highest order and for `<s>`-initial n-grams; the
    /// number of distinct left neighbours otherwise.
    count: u64,
    prob: f64,
}

/// Per context: what its continuations add up to, for normalizing and back-off.
#[derive(Debug, Clone, Copy, Default)]
struct ContextStats {
    total: f64,
    /// Continuations with count 1, 2 and 3+.
    by_count: [u64; 3],
}

/// An estimated model, ready to be written as ARPA.
#[derive(Debug)]
pub struct KneserNey {
    words: Vec<String>,
    /// Per order (unigrams first): n-gram → entry.
    grams: Vec<FxHashMap<Box<[u32]>, Entry>>,
    /// Per order: context (n-1 words) → back-off weight gamma (linear).
    gammas: Vec<FxHashMap<Box<[u32]>, f64>>,
    pub discounts: Vec<Discounts>,
    /// Orders whose discounts are lmplz's fallback values.
    pub fallback_orders: Vec<usize>,
}

impl KneserNey {
    /// Estimates an `order`-gram model from sentences already in the model's
    /// alphabet (see [`crate::text::normalize`]), one per item.
    pub fn estimate<'a>(sentences: impl IntoIterator<Item = &'a str>, order: usize) -> Result<Self, BuildError> {
        if !(1..=6).contains(&order) {
            return Err(BuildError::Order(order));
        }
        let mut words: Vec<String> = [UNK, BOS, EOS].map(String::from).to_vec();
        let mut ids: FxHashMap<String, u32> = words.iter().enumerate().map(|(i, w)| (w.clone(), i as u32)).collect();
        let mut raw: Vec<FxHashMap<Box<[u32]>, u64>> = vec![FxHashMap::default(); order];
        let mut sentence_ids = Vec::new();
        for sentence in sentences {
            sentence_ids.clear();
            sentence_ids.push(BOS_ID);
            for word in sentence.split_whitespace() {
                let next = ids.len() as u32;
                let id = *ids.entry(word.to_string()).or_insert_with(|| {
                    words.push(word.to_string());
                    next
                });
                sentence_ids.push(id);
            }
            if sentence_ids.len() == 1 {
                continue;
            }
            sentence_ids.push(EOS_ID);
            for (n, counts) in raw.iter_mut().enumerate() {
                for gram in sentence_ids.windows(n + 1) {
                    if let Some(c) = counts.get_mut(gram) {
                        *c += 1;
                    } else {
                        counts.insert(gram.into(), 1);
                    }
                }
            }
        }
        if words.len() == 3 {
            return Err(BuildError::NoText);
        }

        let grams = adjusted_counts(raw);
        let mut discounts = Vec::with_capacity(order);
        let mut fallback_orders = Vec::new();
        for (n, grams) in grams.iter().enumerate() {
            let mut count_of_counts = [0u64; 4];
            for entry in grams.values() {
                if (1..=4).contains(&entry.count) {
                    count_of_counts[entry.count as usize - 1] += 1;
                }
            }
            discounts.push(Discounts::estimate(count_of_counts).unwrap_or_else(|| {
                fallback_orders.push(n + 1);
                Discounts(FALLBACK_DISCOUNTS)
            }));
        }
        let mut model = Self { words, grams, gammas: Vec::new(), discounts, fallback_orders };
        model.interpolate();
        Ok(model)
    }

    /// Probabilities of every order, lowest first, each interpolated with
    /// the order below; unigrams with the uniform distribution over the
    /// vocabulary (`<unk>` included, `<s>` excluded).
    fn interpolate(&mut self) {
        let vocabulary_size = (self.words.len() - 1) as f64;
        for n in 0..self.grams.len() {
            let d = self.discounts[n];
            let mut stats: FxHashMap<Box<[u32]>, ContextStats> = FxHashMap::default();
            for (gram, entry) in &self.grams[n] {
                let s = stats.entry(gram[..n].into()).or_default();
                s.total += entry.count as f64;
                if entry.count > 0 {
                    s.by_count[(entry.count.min(3) - 1) as usize] += 1;
                }
            }
            let gammas: FxHashMap<Box<[u32]>, f64> = stats
                .iter()
                .map(|(context, s)| {
                    let freed: f64 = (0..3).map(|k| d.0[k] * s.by_count[k] as f64).sum();
                    (context.clone(), freed / s.total)
                })
                .collect();
            let (lower, current) = self.grams.split_at_mut(n);
            for (gram, entry) in current[0].iter_mut() {
                let context = &gram[..n];
                let lower_prob = if n == 0 { 1.0 / vocabulary_size } else { lower[n - 1][&gram[1..]].prob };
                entry.prob = (entry.count as f64 - d.of(entry.count)) / stats[context].total + gammas[context] * lower_prob;
            }
            self.gammas.push(gammas);
        }
    }

    /// Drops the n-grams of order 2 and up whose (adjusted) count is at most
    /// `thresholds[n - 1]` for order n (lmplz's `--prune`: `[0, 1, 1]` drops
    /// trigrams seen once and bigrams with one left neighbour), keeping every
    /// n-gram that is the context or the suffix of a kept longer one. The
    /// kept n-grams keep their probabilities; each context's back-off weight
    /// is then solved again so that its distribution still sums to one:
    /// `bow(h) = (1 − Σ p(w | h)) / (1 − Σ p_lower(w | h′))`, summed over the
    /// words kept after h (the way SRILM renormalizes a pruned model).
    /// This is what lets a corpus of tens of millions of words fit a model
    /// directory: most of its long n-grams are seen once.
    pub fn prune(&mut self, thresholds: &[u64]) {
        if thresholds.iter().skip(1).all(|&t| t == 0) {
            return;
        }
        for n in (1..self.grams.len()).rev() {
            let threshold = thresholds.get(n).copied().unwrap_or(0);
            if threshold == 0 {
                continue;
            }
            let (lower, higher) = self.grams.split_at_mut(n + 1);
            let needed: FxHashSet<&[u32]> =
                higher.first().map_or_else(Default::default, |h| h.keys().flat_map(|g| [&g[..n + 1], &g[1..]]).collect());
            lower[n].retain(|gram, entry| entry.count > threshold || needed.contains(&gram[..]));
        }
        for n in 1..self.grams.len() {
            let mut sums: FxHashMap<Box<[u32]>, (f64, f64)> = FxHashMap::default();
            for (gram, entry) in &self.grams[n] {
                let lower = self.backed_off_prob(&gram[1..]);
                let s = sums.entry(gram[..n].into()).or_default();
                s.0 += entry.prob;
                s.1 += lower;
            }
            self.gammas[n] = sums
                .into_iter()
                .map(|(context, (kept, kept_lower))| {
                    let gamma = (1.0 - kept).max(1e-12) / (1.0 - kept_lower).max(1e-12);
                    (context, gamma)
                })
                .collect();
        }
    }

    /// P(last word | the words before it) in the model as it stands, backing
    /// off through shorter contexts where an n-gram is missing.
    fn backed_off_prob(&self, gram: &[u32]) -> f64 {
        let n = gram.len() - 1;
        if let Some(entry) = self.grams[n].get(gram) {
            return entry.prob;
        }
        let gamma = self.gammas[n].get(&gram[..n]).copied().unwrap_or(1.0);
        gamma * self.backed_off_prob(&gram[1..])
    }

    /// The model in ARPA format, n-grams sorted by their words.
    pub fn to_arpa(&self) -> String {
        let order = self.grams.len();
        let mut out = String::from("\\data\\\n");
        for (n, grams) in self.grams.iter().enumerate() {
            let _ = writeln!(out, "ngram {}={}", n + 1, grams.len());
        }
        for (n, grams) in self.grams.iter().enumerate() {
            let _ = write!(out, "\n\\{}-grams:\n", n + 1);
            let mut lines: Vec<(String, &Entry, &[u32])> = grams
                .iter()
                .map(|(gram, entry)| {
                    (gram.iter().map(|&w| self.words[w as usize].as_str()).collect::<Vec<_>>().join(" "), entry, &gram[..])
                })
                .collect();
            lines.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            for (text, entry, gram) in lines {
                // lmplz writes <s> as certain: it is never predicted, only given.
                let log10_prob = if gram == [BOS_ID] { 0.0 } else { entry.prob.log10().min(0.0) };
                let _ = write!(out, "{log10_prob}\t{text}");
                if n + 1 < order {
                    let last = gram[gram.len() - 1];
                    let gamma = match last {
                        UNK_ID | EOS_ID => None,
                        _ => self.gammas[n + 1].get(gram).copied(),
                    };
                    let _ = write!(out, "\t{}", gamma.map_or(0.0, f64::log10));
                }
                out.push('\n');
            }
        }
        out.push_str("\n\\end\\\n");
        out
    }
}

/// Kneser-Ney's counts: raw at the highest order and for `<s>`-initial
/// n-grams, distinct left neighbours for the rest; `<s>` and `<unk>` are
/// unigrams with count 0.
fn adjusted_counts(raw: Vec<FxHashMap<Box<[u32]>, u64>>) -> Vec<FxHashMap<Box<[u32]>, Entry>> {
    let order = raw.len();
    let mut adjusted: Vec<FxHashMap<Box<[u32]>, Entry>> = raw
        .iter()
        .enumerate()
        .map(|(n, counts)| {
            counts
                .iter()
                .map(|(gram, &c)| {
                    let keep_raw = n + 1 == order || gram[0] == BOS_ID;
                    (gram.clone(), Entry { count: if keep_raw { c } else { 0 }, prob: 0.0 })
                })
                .collect()
        })
        .collect();
    for n in 1..order {
        let (lower, higher) = adjusted.split_at_mut(n);
        for gram in higher[0].keys() {
            if let Some(entry) = lower[n - 1].get_mut(&gram[1..]) {
                entry.count += 1;
            }
        }
    }
    for id in [UNK_ID, BOS_ID] {
        adjusted[0].insert(Box::new([id]), Entry::default());
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lm::{LmState, NgramLm};

    const CORPUS: [&str; 3] = ["a b", "a c", "b a"];

    fn count(model: &KneserNey, n: usize, words: &str) -> u64 {
        let ids: Vec<u32> = words.split(' ').map(|w| model.words.iter().position(|x| x == w).unwrap() as u32).collect();
        model.grams[n - 1][&ids[..]].count
    }

    /// Bigram counts of "<s> a b </s>", "<s> a c </s>", "<s> b a </s>", by hand.
    #[test]
    fn continuation_counts_replace_raw_counts_below_the_highest_order() {
        let model = KneserNey::estimate(CORPUS, 2).unwrap();
        assert_eq!(count(&model, 2, "<s> a"), 2);
        assert_eq!(count(&model, 2, "a b"), 1);
        assert_eq!(count(&model, 2, "b </s>"), 1);
        // "a" follows <s> and b: 2 distinct left neighbours, though seen 3 times.
        assert_eq!(count(&model, 1, "a"), 2);
        // "b" follows a and <s>; "</s>" follows b, c and a.
        assert_eq!(count(&model, 1, "b"), 2);
        assert_eq!(count(&model, 1, "</s>"), 3);
        assert_eq!(count(&model, 1, "<s>"), 0);
        assert_eq!(count(&model, 1, "<unk>"), 0);
    }

    #[test]
    fn discounts_follow_chen_and_goodman() {
        // t1..t4 = 4, 2, 1, 1: Y = 4/8; D1 = 1 - 2·½·2/4, D2 = 2 - 3·½·1/2, D3+ = 3 - 4·½·1/1.
        let d = Discounts::estimate([4, 2, 1, 1]).unwrap();
        assert_eq!(d, Discounts([0.5, 1.25, 1.0]));
        assert_eq!(Discounts::estimate([4, 0, 1, 1]), None);
    }

    /// Unigrams of the corpus above, by hand. Adjusted counts: a 2, b 2,
    /// c 1, </s> 3 (total 8); counts of counts 1, 2, 1, 0: Y = 1/5,
    /// D1 = 1 - 2·Y·2/1 = 0.2, D2 = 2 - 3·Y·1/2 = 1.7, D3+ = 3 - 4·Y·0 = 3.
    /// gamma = (0.2·1 + 1.7·2 + 3·1) / 8 = 0.825, spread over 5 words
    /// (a b c </s> <unk>).
    #[test]
    fn unigram_probabilities_by_hand() {
        let model = KneserNey::estimate(CORPUS, 2).unwrap();
        let d = model.discounts[0].0;
        assert!(d.iter().zip([0.2, 1.7, 3.0]).all(|(a, b)| (a - b).abs() < 1e-12), "{d:?}");
        let lm = NgramLm::from_arpa(&model.to_arpa()).unwrap();
        let unigram = |w: &str| lm.score(LmState::default(), lm.word_id(w)).0 as f64;
        let expect = |count: f64, d: f64| ((count - d) / 8.0 + 0.825 / 5.0).log10();
        assert!((unigram("a") - expect(2.0, 1.7)).abs() < 1e-6);
        assert!((unigram("c") - expect(1.0, 0.2)).abs() < 1e-6);
        assert!((unigram("</s>") - expect(3.0, 3.0)).abs() < 1e-6);
        assert!((unigram("<unk>") - (0.825f64 / 5.0).log10()).abs() < 1e-6);
    }

    /// P(b | a): "a b" has count 1 (the highest order counts raw); a's
    /// continuations are b, c and </s>, once each. The bigrams' counts of
    /// counts (7, 1, 0) give no discounts: lmplz's fallback, D1 = 0.5.
    #[test]
    fn bigram_probabilities_interpolate_with_unigrams() {
        let model = KneserNey::estimate(CORPUS, 2).unwrap();
        assert_eq!(model.fallback_orders, [2]);
        let lm = NgramLm::from_arpa(&model.to_arpa()).unwrap();
        let p_b: f64 = (2.0 - 1.7) / 8.0 + 0.825 / 5.0;
        let gamma_a = 3.0 * 0.5 / 3.0;
        let (got, _) = lm.score(lm.score(lm.begin_sentence(), lm.word_id("a")).1, lm.word_id("b"));
        assert!((got as f64 - ((1.0 - 0.5) / 3.0 + gamma_a * p_b).log10()).abs() < 1e-6);
    }

    #[test]
    fn probabilities_after_each_context_sum_to_one() {
        let text = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog", "on the mat sat the cat"];
        let model = KneserNey::estimate(text, 3).unwrap();
        let lm = NgramLm::from_arpa(&model.to_arpa()).unwrap();
        let vocabulary: Vec<&str> = lm.words().filter(|w| *w != BOS).collect();
        for context in ["", "the", "sat on", "the cat", "a dog"] {
            let mut state = lm.begin_sentence();
            for w in context.split_whitespace() {
                state = lm.score(state, lm.word_id(w)).1;
            }
            let total: f64 = vocabulary.iter().map(|w| 10f64.powf(lm.score(state, lm.word_id(w)).0 as f64)).sum();
            assert!((total - 1.0).abs() < 1e-4, "after '{context}': {total}");
        }
    }

    #[test]
    fn pruning_drops_rare_ngrams_and_keeps_each_context_normalized() {
        let text = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog", "on the mat sat the cat", "the cat sat"];
        let full = KneserNey::estimate(text, 3).unwrap();
        let mut pruned = KneserNey::estimate(text, 3).unwrap();
        pruned.prune(&[0, 1, 1]);
        assert!(pruned.grams[2].len() < full.grams[2].len() && pruned.grams[1].len() < full.grams[1].len());
        assert_eq!(pruned.grams[0].len(), full.grams[0].len(), "unigrams are never pruned");
        assert!(pruned.grams[2].values().all(|e| e.count > 1));
        let lm = NgramLm::from_arpa(&pruned.to_arpa()).unwrap();
        let vocabulary: Vec<&str> = lm.words().filter(|w| *w != BOS).collect();
        for context in ["", "the", "the cat", "sat on", "a dog", "cat sat"] {
            let mut state = lm.begin_sentence();
            for w in context.split_whitespace() {
                state = lm.score(state, lm.word_id(w)).1;
            }
            let total: f64 = vocabulary.iter().map(|w| 10f64.powf(lm.score(state, lm.word_id(w)).0 as f64)).sum();
            assert!((total - 1.0).abs() < 1e-4, "after '{context}': {total}");
        }
    }

    #[test]
    fn empty_text_and_bad_orders_are_refused() {
        assert!(matches!(KneserNey::estimate(["", " "], 3), Err(BuildError::NoText)));
        assert!(matches!(KneserNey::estimate(CORPUS, 0), Err(BuildError::Order(0))));
    }
}
