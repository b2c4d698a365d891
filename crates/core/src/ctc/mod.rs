//! CTC decoding: [`LogProbs`] → words with times and confidences.
//!
//! Every decoder implements [`CtcDecoder`] and returns hypotheses best first:
//! [`GreedyDecoder`] takes the best token at every step; the prefix
//! [`beam::BeamSearchDecoder`] weighs alternatives with a word language
//! model, hotwords and a lexicon. Callers pick one per request.

pub mod beam;
pub mod hotwords;
mod trie;

use crate::model::{LogProbs, Vocabulary, BLANK};
use crate::transcript::Word;

/// One decoded transcript and its score (log-probability, natural log).
#[derive(Debug, Clone, PartialEq)]
pub struct Hypothesis {
    pub words: Vec<Word>,
    pub score: f32,
}

/// Turns per-step log-probabilities into hypotheses.
pub trait CtcDecoder: Send + Sync {
    /// Hypotheses best first; always at least one (possibly without words).
    fn decode(&self, log_probs: &LogProbs, vocabulary: &Vocabulary) -> Vec<Hypothesis>;

    /// The decoder and its settings in a few words, for reports.
    fn describe(&self) -> String;
}

/// Best-path decoding: the most likely token at every step, repeats
/// collapsed, blanks dropped.
#[derive(Debug, Clone, Copy, Default)]
pub struct GreedyDecoder;

/// A decoded token and the steps it spans.
#[derive(Debug, Clone, Copy)]
struct TokenSpan {
    token: usize,
    first_step: usize,
    last_step: usize,
    /// Sum of the token's log-probability over the `frames` steps that emitted it.
    log_prob_sum: f32,
    frames: usize,
}

impl CtcDecoder for GreedyDecoder {
    fn describe(&self) -> String {
        "greedy".into()
    }

    fn decode(&self, log_probs: &LogProbs, vocabulary: &Vocabulary) -> Vec<Hypothesis> {
        let mut spans: Vec<TokenSpan> = Vec::new();
        let mut previous = BLANK;
        let mut score = 0.0;
        for t in 0..log_probs.num_steps() {
            let (token, lp) = argmax(log_probs.step(t));
            score += lp;
            if token != BLANK {
                match spans.last_mut() {
                    Some(span) if token == previous => {
                        span.last_step = t;
                        span.log_prob_sum += lp;
                        span.frames += 1;
                    }
                    _ => spans.push(TokenSpan { token, first_step: t, last_step: t, log_prob_sum: lp, frames: 1 }),
                }
            }
            previous = token;
        }
        vec![Hypothesis { words: words_from_spans(&spans, vocabulary, log_probs.step_s()), score }]
    }
}

pub(crate) fn argmax(row: &[f32]) -> (usize, f32) {
    row.iter().copied().enumerate().fold((0, f32::NEG_INFINITY), |best, (i, v)| if v > best.1 { (i, v) } else { best })
}

/// Groups token spans into words at the word separator. A word runs from
/// the first step of its first letter to the end of its last; its confidence
/// is the geometric mean of its letters' posteriors over the steps that emitted them.
fn words_from_spans(spans: &[TokenSpan], vocabulary: &Vocabulary, step_s: f64) -> Vec<Word> {
    spans
        .split(|s| s.token == vocabulary.word_separator())
        .filter(|letters| !letters.is_empty())
        .map(|letters| {
            let frames: usize = letters.iter().map(|s| s.frames).sum();
            let log_prob: f32 = letters.iter().map(|s| s.log_prob_sum).sum();
            Word {
                word: letters.iter().map(|s| vocabulary.token(s.token)).collect(),
                start_s: letters[0].first_step as f64 * step_s,
                end_s: (letters[letters.len() - 1].last_step + 1) as f64 * step_s,
                confidence: (log_prob / frames as f32).exp().clamp(0.0, 1.0),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocabulary() -> Vocabulary {
        Vocabulary::parse("<blank>\n|\n'\na\nb\nc\n").unwrap()
    }

    /// Log-probabilities where step t puts `p` on token `path[t]` and
    /// spreads the rest evenly.
    fn peaked(path: &[usize], p: f32) -> LogProbs {
        let v = 6;
        let rest = ((1.0 - p) / (v - 1) as f32).ln();
        let data = path.iter().flat_map(|&k| (0..v).map(move |i| if i == k { p.ln() } else { rest })).collect();
        LogProbs::new(data, v, 0.03)
    }

    #[test]
    fn repeats_collapse_and_blanks_separate_double_letters() {
        // a a _ a b | _ c c  →  "aab c"
        let lp = peaked(&[3, 3, 0, 3, 4, 1, 0, 5, 5], 0.9);
        let best = &GreedyDecoder.decode(&lp, &vocabulary())[0];
        let words: Vec<&str> = best.words.iter().map(|w| w.word.as_str()).collect();
        assert_eq!(words, ["aab", "c"]);
    }

    #[test]
    fn word_times_span_their_letters_steps() {
        let lp = peaked(&[0, 3, 3, 4, 0, 1, 0, 0, 5, 0], 0.8);
        let best = &GreedyDecoder.decode(&lp, &vocabulary())[0];
        assert_eq!(best.words.len(), 2);
        assert!((best.words[0].start_s - 0.03).abs() < 1e-9 && (best.words[0].end_s - 0.12).abs() < 1e-9);
        assert!((best.words[1].start_s - 0.24).abs() < 1e-9 && (best.words[1].end_s - 0.27).abs() < 1e-9);
        for w in &best.words {
            assert!((w.confidence - 0.8).abs() < 1e-5, "{}", w.confidence);
        }
    }

    #[test]
    fn confident_and_unsure_words_get_different_confidences() {
        let sure = &GreedyDecoder.decode(&peaked(&[3], 0.95), &vocabulary())[0];
        let unsure = &GreedyDecoder.decode(&peaked(&[3], 0.3), &vocabulary())[0];
        assert!(sure.words[0].confidence > 0.9 && unsure.words[0].confidence < 0.35);
    }

    #[test]
    fn all_blank_or_empty_input_gives_no_words() {
        assert!(GreedyDecoder.decode(&peaked(&[0, 0, 1, 0], 0.9), &vocabulary())[0].words.is_empty());
        assert!(GreedyDecoder.decode(&LogProbs::new(vec![], 6, 0.03), &vocabulary())[0].words.is_empty());
    }
}
