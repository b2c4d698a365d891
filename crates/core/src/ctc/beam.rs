//! CTC prefix beam search with shallow fusion of a word language model,
//! hotwords and a lexicon.
//!
//! Hypotheses are prefixes of tokens (Graves 2012; Hannun et al. 2014):
//! each keeps the probability of all alignments that end in blank and of
//! those that end in its last token, so "aa" (a, blank, a) and "a" (a, a)
//! stay apart and the mass of every alignment of a prefix is summed. Prefixes
//! form a tree; everything that depends only on the words (language model,
//! word bonus, hotwords, lexicon) is computed once, when a tree node is made.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::hotwords::{HotState, Hotwords};
use super::trie::{TokenTrie, ROOT};
use super::{words_from_spans, CtcDecoder, Hypothesis, TokenSpan};
use crate::lm::{LmState, NgramLm};
use crate::model::{LogProbs, Vocabulary, BLANK};

/// Search breadth and pruning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BeamOptions {
    /// Prefixes kept after every step.
    pub beam_size: usize,
    /// Tokens less likely than this (natural log) at a step are not tried...
    pub token_min_log_prob: f32,
    /// ...and at most this many of the most likely are.
    pub token_top_k: usize,
    /// A prefix is not extended by a token when that would score this much
    /// (natural log) below the best prefix: cheap hopeless hypotheses.
    pub beam_prune_log_prob: f32,
    /// Hypotheses returned, best first.
    pub alternatives: usize,
}

impl Default for BeamOptions {
    fn default() -> Self {
        Self { beam_size: 16, token_min_log_prob: -8.0, token_top_k: 8, beam_prune_log_prob: 15.0, alternatives: 1 }
    }
}

/// Shallow fusion: score = log P_ctc + weight · ln P_lm + word_bonus · words
/// − blank_penalty · steps on blank.
#[derive(Debug, Clone)]
pub struct LmFusion {
    pub lm: Arc<NgramLm>,
    pub weight: f32,
    pub word_bonus: f32,
    /// Taken from blank's log-probability at every step the search tries
    /// it. The LM charges for every word it scores, so the fused search
    /// drifts towards blank and drops the letters of unsure words, which
    /// turns them into other words rather than fewer (a word bonus cannot
    /// reach that); the penalty pays the letters back per step.
    pub blank_penalty: f32,
}

/// Words a hypothesis may use freely; others cost `oov_penalty` (natural
/// log) each, a soft ban that still lets a clearly spoken new word through.
/// With a language model, a word outside the lexicon also pays for its
/// spelling: every letter past the lexicon's last matching prefix costs
/// the LM weight times ln(letters in the alphabet), its probability under
/// uniform letters. The LM scores such a word once, as unknown, however
/// long it is; without that cost a noisy stretch of speech is cheapest as
/// one endless word with no word breaks for the LM to score.
///
/// The lexicon also looks ahead: an unfinished word already carries the
/// LM's verdict on the likeliest word it can still become (the best
/// unigram probability below its trie node, weighted like the LM), which
/// is replaced by the LM's real score when the word ends. Without it a
/// word's start is free, so the beam fills with beginnings of rare words
/// and loses likely readings before the LM ever sees a word break.
#[derive(Debug, Clone)]
pub struct Lexicon {
    trie: TokenTrie,
    is_word: Vec<bool>,
    /// Per trie node: the best log10 unigram probability of the words
    /// through it (0 at the root).
    best_log10_prob: Vec<f32>,
}

impl Lexicon {
    /// The words with their log10 unigram probabilities under the LM the
    /// lexicon is used with (any constant without one), spelled with the
    /// model's tokens; words with other characters are left out.
    pub fn new<'a>(words: impl IntoIterator<Item = (&'a str, f32)>, vocabulary: &Vocabulary) -> Self {
        let mut trie = TokenTrie::new();
        let mut is_word = vec![false];
        let mut best_log10_prob = vec![0.0];
        for (word, log10_prob) in words {
            let tokens: Option<Vec<usize>> = word.chars().map(|c| vocabulary.id(c.encode_utf8(&mut [0; 4]))).collect();
            if let Some(tokens) = tokens.filter(|t| !t.is_empty() && !t.contains(&vocabulary.word_separator())) {
                let path = trie.insert(&tokens);
                is_word.resize(trie.len(), false);
                best_log10_prob.resize(trie.len(), f32::NEG_INFINITY);
                is_word[path[path.len() - 1] as usize] = true;
                for &node in &path {
                    let best = &mut best_log10_prob[node as usize];
                    *best = best.max(log10_prob);
                }
            }
        }
        Self { trie, is_word, best_log10_prob }
    }

    /// Number of distinct words.
    pub fn len(&self) -> usize {
        self.is_word.iter().filter(|&&w| w).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The beam search decoder for one request.
#[derive(Debug, Clone, Default)]
pub struct BeamSearchDecoder {
    pub options: BeamOptions,
    pub lm: Option<LmFusion>,
    pub hotwords: Hotwords,
    /// With the penalty per out-of-vocabulary word.
    pub lexicon: Option<(Arc<Lexicon>, f32)>,
}

/// Where the lexicon walk of the current word stands.
#[derive(Debug, Clone, Copy, PartialEq)]
enum LexState {
    In(u32),
    /// Left the lexicon; `charged` once the penalty has been paid (it waits
    /// while the word may still become a hotword).
    Out {
        charged: bool,
    },
}

/// A node of the prefix tree.
#[derive(Debug, Clone)]
struct Prefix {
    parent: u32,
    token: usize,
    /// Where this token was emitted in the likeliest alignment of this
    /// prefix, and the last step it was held there.
    first_step: u32,
    last_step: u32,
    /// Everything beyond the acoustic score, for the whole prefix.
    bonus: f32,
    /// The node where the current (unfinished) word starts.
    word_start: u32,
    lm_state: Option<LmState>,
    hot: HotState,
    lex: LexState,
}

/// A live hypothesis: a prefix and its alignment probabilities.
#[derive(Debug, Clone, Copy)]
struct Beam {
    prefix: u32,
    /// log P(alignments of the prefix that end in blank).
    blank: f32,
    /// log P(alignments that end in the prefix's last token).
    token: f32,
    /// Of this step's mass: what arrived by emitting the last token now,
    /// and what was already this prefix a step ago. Whichever is larger
    /// says when the token was spoken.
    entered: f32,
    carried: f32,
}

/// The beams of the next step, each prefix once: extensions that reach the
/// same prefix merge their probability mass.
#[derive(Default)]
struct NextBeams {
    beams: Vec<Beam>,
    /// Where each prefix's beam is in `beams`.
    slot: FxHashMap<u32, usize>,
}

impl NextBeams {
    fn clear(&mut self) {
        self.beams.clear();
        self.slot.clear();
    }

    /// Adds mass ending in blank and in the prefix's last token; `entered`
    /// when it is a new token, not the previous one held.
    fn add(&mut self, prefix: u32, blank: f32, token: f32, entered: bool) {
        let beams = &mut self.beams;
        let i = *self.slot.entry(prefix).or_insert_with(|| {
            let none = f32::NEG_INFINITY;
            beams.push(Beam { prefix, blank: none, token: none, entered: none, carried: none });
            beams.len() - 1
        });
        let b = &mut beams[i];
        b.blank = log_add(b.blank, blank);
        b.token = log_add(b.token, token);
        let mass = log_add(blank, token);
        if entered {
            b.entered = log_add(b.entered, mass);
        } else {
            b.carried = log_add(b.carried, mass);
        }
    }
}

impl Beam {
    fn acoustic(&self) -> f32 {
        log_add(self.blank, self.token)
    }
}

fn log_add(a: f32, b: f32) -> f32 {
    if a == f32::NEG_INFINITY {
        return b;
    }
    if b == f32::NEG_INFINITY {
        return a;
    }
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    hi + (lo - hi).exp().ln_1p()
}

const LN_10: f32 = std::f32::consts::LN_10;
const ROOT_PREFIX: u32 = 0;

/// One search over one utterance.
struct Search<'a> {
    decoder: &'a BeamSearchDecoder,
    vocabulary: &'a Vocabulary,
    separator: usize,
    /// What a letter outside the lexicon costs, and what turns the
    /// lexicon's log10 look-ahead into score (see [`Lexicon`]).
    oov_letter_cost: f32,
    lookahead_scale: f32,
    prefixes: Vec<Prefix>,
    children: FxHashMap<(u32, u32), u32>,
}

impl<'a> Search<'a> {
    fn new(decoder: &'a BeamSearchDecoder, vocabulary: &'a Vocabulary) -> Self {
        let root = Prefix {
            parent: ROOT_PREFIX,
            token: BLANK,
            first_step: 0,
            last_step: 0,
            bonus: 0.0,
            word_start: ROOT_PREFIX,
            lm_state: decoder.lm.as_ref().map(|f| f.lm.begin_sentence()),
            hot: HotState::default(),
            lex: LexState::In(ROOT),
        };
        // The letters a word is spelled with: every token but blank and the word break.
        let letters = vocabulary.len().saturating_sub(2).max(1) as f32;
        let oov_letter_cost = decoder.lm.as_ref().map_or(0.0, |fusion| fusion.weight * letters.ln());
        let lookahead_scale = decoder.lm.as_ref().map_or(0.0, |fusion| fusion.weight * LN_10);
        Self {
            decoder,
            vocabulary,
            separator: vocabulary.word_separator(),
            oov_letter_cost,
            lookahead_scale,
            prefixes: vec![root],
            children: FxHashMap::default(),
        }
    }

    /// A separator right after another (or at the start) adds nothing to
    /// the text: it is treated like a blank.
    fn at_word_start(&self, prefix: u32) -> bool {
        prefix == ROOT_PREFIX || self.prefixes[prefix as usize].token == self.separator
    }

    /// The letters of the prefix's unfinished word.
    fn current_word(&self, prefix: u32) -> String {
        let start = self.prefixes[prefix as usize].word_start;
        let mut letters = Vec::new();
        let mut node = prefix;
        while node != start && node != ROOT_PREFIX {
            letters.push(self.vocabulary.token(self.prefixes[node as usize].token));
            node = self.prefixes[node as usize].parent;
        }
        letters.iter().rev().copied().collect()
    }

    /// Score and state changes when the prefix's current word is finished:
    /// the language model's word probability and bonus, the lexicon's
    /// penalty, the hotword's fate.
    fn finish_word(&self, prefix: u32) -> (f32, Option<LmState>, HotState) {
        let p = &self.prefixes[prefix as usize];
        let (hot, mut score) = self.decoder.hotwords.word_break(p.hot, self.separator);
        if let Some((lexicon, penalty)) = &self.decoder.lexicon {
            // Outside the lexicon and not yet charged, unless a hotword excuses it.
            let unpaid = match p.lex {
                LexState::In(node) => !lexicon.is_word[node as usize],
                LexState::Out { charged } => !charged,
            };
            if unpaid && !self.decoder.hotwords.completes(p.hot) {
                score -= penalty;
            }
            // The look-ahead gives way to the LM's score below.
            if let LexState::In(node) = p.lex {
                score -= self.lookahead(lexicon, node);
            }
        }
        let mut lm_state = p.lm_state;
        if let (Some(fusion), Some(state)) = (&self.decoder.lm, p.lm_state) {
            let word = self.current_word(prefix);
            let (log10_prob, next) = fusion.lm.score(state, fusion.lm.word_id(&word));
            score += fusion.weight * LN_10 * log10_prob + fusion.word_bonus;
            lm_state = Some(next);
        }
        (score, lm_state, hot)
    }

    /// What an unfinished word at this lexicon node has been credited (see [`Lexicon`]).
    fn lookahead(&self, lexicon: &Lexicon, node: u32) -> f32 {
        self.lookahead_scale * lexicon.best_log10_prob[node as usize]
    }

    /// The child of `prefix` for `token`, made on first use.
    fn extend(&mut self, prefix: u32, token: usize, step: u32) -> u32 {
        if let Some(&child) = self.children.get(&(prefix, token as u32)) {
            return child;
        }
        let parent = &self.prefixes[prefix as usize];
        let mut child = Prefix { parent: prefix, token, first_step: step, last_step: step, ..parent.clone() };
        let id = self.prefixes.len() as u32;
        if token == self.separator {
            let (score, lm_state, hot) = self.finish_word(prefix);
            child.bonus += score;
            child.lm_state = lm_state;
            child.hot = hot;
            child.lex = LexState::In(ROOT);
            child.word_start = id;
        } else {
            let (hot, score) = self.decoder.hotwords.letter(parent.hot, token);
            child.hot = hot;
            child.bonus += score;
            if let Some((lexicon, penalty)) = &self.decoder.lexicon {
                child.lex = match parent.lex {
                    LexState::In(node) => match lexicon.trie.child(node, token) {
                        Some(next) => {
                            child.bonus += self.lookahead(lexicon, next) - self.lookahead(lexicon, node);
                            LexState::In(next)
                        }
                        None => {
                            child.bonus -= self.lookahead(lexicon, node);
                            LexState::Out { charged: false }
                        }
                    },
                    out => out,
                };
                // Pay for leaving the lexicon once no hotword can excuse it,
                // and for every letter spelled outside it.
                if child.lex == (LexState::Out { charged: false }) && !hot.is_matching() {
                    child.bonus -= penalty;
                    child.lex = LexState::Out { charged: true };
                }
                if child.lex == (LexState::Out { charged: true }) {
                    child.bonus -= self.oov_letter_cost;
                }
            }
        }
        self.prefixes.push(child);
        self.children.insert((prefix, token as u32), id);
        id
    }

    /// The prefix's score once the utterance is over.
    fn final_score(&self, beam: &Beam) -> f32 {
        let p = &self.prefixes[beam.prefix as usize];
        let mut score = beam.acoustic() + p.bonus;
        let (mut lm_state, mut hot) = (p.lm_state, p.hot);
        if !self.at_word_start(beam.prefix) {
            let (word_score, state, next_hot) = self.finish_word(beam.prefix);
            score += word_score;
            lm_state = state;
            hot = next_hot;
        }
        score += self.decoder.hotwords.finish(hot, self.separator);
        if let (Some(fusion), Some(state)) = (&self.decoder.lm, lm_state) {
            score += fusion.weight * LN_10 * fusion.lm.score(state, Some(fusion.lm.end_of_sentence())).0;
        }
        score
    }

    /// The tokens of a prefix with their steps. A token's span ends before
    /// the next token's begins (a prefix's node may have been held further
    /// by other hypotheses); its confidence comes from the steps where it
    /// beats blank, as in greedy decoding.
    fn spans(&self, prefix: u32, log_probs: &LogProbs) -> Vec<TokenSpan> {
        let mut spans: Vec<TokenSpan> = Vec::new();
        let mut node = prefix;
        let mut next_first = u32::MAX;
        while node != ROOT_PREFIX {
            let p = &self.prefixes[node as usize];
            let first = p.first_step.min(next_first.saturating_sub(1));
            let last = p.last_step.min(next_first.saturating_sub(1)).max(first);
            let (mut log_prob_sum, mut frames) = (0.0, 0);
            for t in first..=last {
                let row = log_probs.step(t as usize);
                if t == first || row[p.token] > row[BLANK] {
                    log_prob_sum += row[p.token];
                    frames += 1;
                }
            }
            spans.push(TokenSpan { token: p.token, first_step: first as usize, last_step: last as usize, log_prob_sum, frames });
            next_first = first;
            node = p.parent;
        }
        spans.reverse();
        spans
    }

    fn run(mut self, log_probs: &LogProbs) -> Vec<Hypothesis> {
        let none = f32::NEG_INFINITY;
        let mut beams = vec![Beam { prefix: ROOT_PREFIX, blank: 0.0, token: none, entered: 0.0, carried: 0.0 }];
        let mut next = NextBeams::default();
        let mut candidates: Vec<(usize, f32)> = Vec::with_capacity(log_probs.vocab());
        for t in 0..log_probs.num_steps() {
            let row = log_probs.step(t);
            self.candidates(row, &mut candidates);
            next.clear();
            self.extend_beams(t as u32, &beams, &candidates, &mut next);
            self.mark_steps(t as u32, row, &next.beams);
            self.prune(&mut next.beams);
            std::mem::swap(&mut beams, &mut next.beams);
        }
        self.hypotheses(&beams, log_probs)
    }

    /// The tokens worth trying at a step: those above the floor (the best
    /// one at least), most likely first, at most `token_top_k`.
    fn candidates(&self, row: &[f32], candidates: &mut Vec<(usize, f32)>) {
        let options = &self.decoder.options;
        let blank_penalty = self.decoder.lm.as_ref().map_or(0.0, |fusion| fusion.blank_penalty);
        let searched = |(token, lp): (usize, f32)| (token, if token == BLANK { lp - blank_penalty } else { lp });
        candidates.clear();
        candidates.extend(row.iter().copied().enumerate().map(searched).filter(|&(_, lp)| lp >= options.token_min_log_prob));
        if candidates.is_empty() {
            candidates.push(searched(super::argmax(row)));
        }
        candidates.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
        candidates.truncate(options.token_top_k.max(1));
    }

    /// A beam's score for ranking: acoustics plus its prefix's bonuses.
    fn score(&self, beam: &Beam) -> f32 {
        beam.acoustic() + self.prefixes[beam.prefix as usize].bonus
    }

    /// Every beam extended by every candidate token at step `t`, skipping
    /// the extensions that fall too far behind the best.
    fn extend_beams(&mut self, t: u32, beams: &[Beam], candidates: &[(usize, f32)], next: &mut NextBeams) {
        let none = f32::NEG_INFINITY;
        let best = beams.iter().map(|b| self.score(b)).fold(none, f32::max);
        let (best_lp, floor) = (candidates[0].1, -self.decoder.options.beam_prune_log_prob);
        for beam in beams {
            let total = beam.acoustic();
            let last = self.prefixes[beam.prefix as usize].token;
            let behind = self.score(beam) - best - best_lp;
            for &(token, lp) in candidates {
                if behind + lp < floor {
                    break;
                }
                if token == BLANK || (token == self.separator && self.at_word_start(beam.prefix)) {
                    next.add(beam.prefix, total + lp, none, false);
                } else if token == last && beam.prefix != ROOT_PREFIX {
                    // Held: the same token goes on; after a blank it is a new one.
                    next.add(beam.prefix, none, beam.token + lp, false);
                    let child = self.extend(beam.prefix, token, t);
                    next.add(child, none, beam.blank + lp, true);
                } else {
                    let child = self.extend(beam.prefix, token, t);
                    next.add(child, none, total + lp, true);
                }
            }
        }
    }

    /// The steps each surviving prefix's last token spans: it starts where
    /// most of its mass entered, and lasts while it beats blank.
    fn mark_steps(&mut self, t: u32, row: &[f32], next: &[Beam]) {
        for b in next {
            let p = &mut self.prefixes[b.prefix as usize];
            if b.entered > b.carried {
                (p.first_step, p.last_step) = (t, t);
            } else if b.prefix != ROOT_PREFIX && row[p.token] > row[BLANK] {
                p.last_step = t;
            }
        }
    }

    /// Keeps the `beam_size` best.
    fn prune(&self, next: &mut Vec<Beam>) {
        let beam_size = self.decoder.options.beam_size;
        if next.len() > beam_size {
            next.select_nth_unstable_by(beam_size - 1, |a, b| self.score(b).total_cmp(&self.score(a)));
            next.truncate(beam_size);
        }
    }

    /// The final beams as the n best distinct transcripts, the best one's
    /// word confidences weighed by how many final beams agree on them.
    fn hypotheses(&self, beams: &[Beam], log_probs: &LogProbs) -> Vec<Hypothesis> {
        let mut finals: Vec<(f32, &Beam)> = beams.iter().map(|b| (self.final_score(b), b)).collect();
        finals.sort_by(|a, b| b.0.total_cmp(&a.0));
        // Every final beam's words, kept to weigh the best one's words below.
        let all: Vec<Hypothesis> = finals
            .into_iter()
            .map(|(score, beam)| Hypothesis {
                words: words_from_spans(&self.spans(beam.prefix, log_probs), self.vocabulary, log_probs.step_s()),
                score,
            })
            .collect();
        let mut hypotheses: Vec<Hypothesis> = Vec::new();
        for h in &all {
            // "a" and "a|" are different prefixes of the same text: keep the better.
            if hypotheses.iter().any(|kept| same_words(&kept.words, &h.words)) {
                continue;
            }
            hypotheses.push(h.clone());
            if hypotheses.len() >= self.decoder.options.alternatives.max(1) {
                break;
            }
        }
        match hypotheses.first_mut() {
            Some(best) => weigh_by_support(&mut best.words, &all),
            None => hypotheses.push(Hypothesis { words: Vec::new(), score: 0.0 }),
        }
        hypotheses
    }
}

/// Scales each word's acoustic confidence by its support in the final
/// beams: the share of their probability (a softmax of their scores, LM
/// included) held by beams with the same word overlapping it in time. A
/// word that the letters favour but other readings of the audio dispute is
/// less likely right, and its confidence should say so.
fn weigh_by_support(words: &mut [crate::transcript::Word], beams: &[Hypothesis]) {
    let Some(top) = beams.iter().map(|h| h.score).reduce(f32::max) else { return };
    let weights: Vec<f32> = beams.iter().map(|h| (h.score - top).exp()).collect();
    let total: f32 = weights.iter().sum();
    for word in words.iter_mut() {
        let support: f32 = beams
            .iter()
            .zip(&weights)
            .filter(|(h, _)| h.words.iter().any(|w| w.word == word.word && w.start_s < word.end_s && word.start_s < w.end_s))
            .map(|(_, weight)| weight)
            .sum();
        word.confidence *= (support / total).clamp(0.0, 1.0);
    }
}

fn same_words(a: &[crate::transcript::Word], b: &[crate::transcript::Word]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.word == y.word)
}

impl CtcDecoder for BeamSearchDecoder {
    fn decode(&self, log_probs: &LogProbs, vocabulary: &Vocabulary) -> Vec<Hypothesis> {
        Search::new(self, vocabulary).run(log_probs)
    }

    fn describe(&self) -> String {
        let mut parts = vec![format!("beam search, {} beams", self.options.beam_size)];
        if let Some(f) = &self.lm {
            parts.push(format!(
                "{}-gram LM weight {} word bonus {} blank penalty {}",
                f.lm.order(),
                f.weight,
                f.word_bonus,
                f.blank_penalty
            ));
        }
        if let Some((_, penalty)) = &self.lexicon {
            parts.push(format!("lexicon OOV penalty {penalty}"));
        }
        if !self.hotwords.is_empty() {
            parts.push("hotwords".into());
        }
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctc::hotwords;
    use crate::ctc::GreedyDecoder;

    fn vocabulary() -> Vocabulary {
        let letters: String = ('a'..='z').map(|c| format!("{c}\n")).collect();
        Vocabulary::parse(&format!("<blank>\n|\n'\n{letters}")).unwrap()
    }

    /// One step per entry: the listed tokens ('_' blank, ' ' word break) get
    /// their probabilities, the rest of the vocabulary shares what is left.
    fn steps(spec: &[&[(char, f32)]]) -> LogProbs {
        let v = vocabulary();
        let mut data = Vec::new();
        for step in spec {
            let listed: f32 = step.iter().map(|(_, p)| p).sum();
            let rest = ((1.0 - listed).max(1e-6) / (v.len() - step.len()) as f32).ln();
            let mut row = vec![rest; v.len()];
            for &(c, p) in step.iter() {
                let id = match c {
                    '_' => BLANK,
                    ' ' => v.word_separator(),
                    c => v.id(&c.to_string()).unwrap(),
                };
                row[id] = p.ln();
            }
            data.extend(row);
        }
        LogProbs::new(data, v.len(), 0.03)
    }

    /// A clear path through `text` ('_' for blank), one token per step.
    fn clear(text: &str) -> LogProbs {
        let spec: Vec<Vec<(char, f32)>> = text.chars().map(|c| vec![(c, 0.95)]).collect();
        steps(&spec.iter().map(Vec::as_slice).collect::<Vec<_>>())
    }

    fn text(h: &Hypothesis) -> String {
        crate::transcript::text_of(&h.words)
    }

    fn best(decoder: &BeamSearchDecoder, lp: &LogProbs) -> String {
        text(&decoder.decode(lp, &vocabulary())[0])
    }

    #[test]
    fn a_word_other_beams_dispute_gets_a_lower_confidence() {
        let lp = steps(&[&[('_', 0.95)], &[('c', 0.5), ('b', 0.45)], &[('a', 0.95)], &[('t', 0.95)], &[('_', 0.95)]]);
        let beam = &BeamSearchDecoder::default().decode(&lp, &vocabulary())[0];
        let greedy = &GreedyDecoder.decode(&lp, &vocabulary())[0];
        assert_eq!(text(beam), "cat");
        // "bat" holds about 0.45 / 0.95 of the beams' probability.
        let (b, g) = (beam.words[0].confidence, greedy.words[0].confidence);
        assert!(b < 0.6 * g && b > 0.4 * g, "beam {b}, greedy {g}");
    }

    #[test]
    fn clear_input_gives_the_greedy_words_and_times() {
        let lp = clear("_ca_t__ s_a_t_");
        let beam = &BeamSearchDecoder::default().decode(&lp, &vocabulary())[0];
        let greedy = &GreedyDecoder.decode(&lp, &vocabulary())[0];
        assert_eq!(text(beam), "cat sat");
        assert_eq!(beam.words.len(), greedy.words.len());
        for (b, g) in beam.words.iter().zip(&greedy.words) {
            assert!((b.start_s - g.start_s).abs() < 1e-9 && (b.end_s - g.end_s).abs() < 1e-9, "{b:?} vs {g:?}");
            // The letters' confidence, times the share of beams that agree: nearly all.
            assert!(b.confidence <= g.confidence + 1e-6 && b.confidence > 0.9 * g.confidence, "{b:?} vs {g:?}");
        }
    }

    /// Two steps of blank 0.6 / a 0.4: the best path is blank-blank (0.36),
    /// but "a" has three alignments worth 0.64 together.
    #[test]
    fn the_search_sums_alignments_where_greedy_takes_one_path() {
        let lp = steps(&[&[('_', 0.6), ('a', 0.4)], &[('_', 0.6), ('a', 0.4)]]);
        assert_eq!(text(&GreedyDecoder.decode(&lp, &vocabulary())[0]), "");
        let hypotheses = BeamSearchDecoder::default().decode(&lp, &vocabulary());
        assert_eq!(text(&hypotheses[0]), "a");
        assert!((hypotheses[0].score - 0.64f32.ln()).abs() < 1e-3, "{}", hypotheses[0].score);
    }

    /// One step, blank 0.6 / a 0.4: blank wins until the penalty (with a
    /// fused LM that scores every word alike) makes it 0.6 / e.
    #[test]
    fn a_blank_penalty_lets_a_faint_letter_through() {
        let lm = crate::lm::build::KneserNey::estimate(["a"], 1).unwrap();
        let lm = Arc::new(NgramLm::from_arpa(&lm.to_arpa()).unwrap());
        let lp = steps(&[&[('_', 0.6), ('a', 0.4)]]);
        let fused = |blank_penalty| BeamSearchDecoder {
            lm: Some(LmFusion { lm: lm.clone(), weight: 0.0, word_bonus: 0.0, blank_penalty }),
            ..Default::default()
        };
        assert_eq!(best(&fused(0.0), &lp), "");
        assert_eq!(best(&fused(1.0), &lp), "a");
    }

    #[test]
    fn repeated_letters_need_a_blank_between_them() {
        assert_eq!(best(&BeamSearchDecoder::default(), &clear("_aa_")), "a");
        assert_eq!(best(&BeamSearchDecoder::default(), &clear("_a_a_")), "aa");
    }

    #[test]
    fn alternatives_come_best_first_and_distinct() {
        let lp = steps(&[&[('c', 0.9)], &[('a', 0.6), ('o', 0.4)], &[('t', 0.9)]]);
        let decoder = BeamSearchDecoder { options: BeamOptions { alternatives: 3, ..Default::default() }, ..Default::default() };
        let hypotheses = decoder.decode(&lp, &vocabulary());
        assert_eq!(hypotheses.len(), 3);
        assert_eq!(text(&hypotheses[0]), "cat");
        assert_eq!(text(&hypotheses[1]), "cot");
        assert!(hypotheses.windows(2).all(|w| w[0].score >= w[1].score));
    }

    /// The acoustics lean to "cot"; a language model that has seen "the cat"
    /// but never "the cot" turns it around.
    #[test]
    fn the_language_model_decides_between_close_spellings() {
        let lm = crate::lm::build::KneserNey::estimate(["the cat sat", "the cat ran", "a cat", "the dog sat"], 2).unwrap();
        let lm = Arc::new(NgramLm::from_arpa(&lm.to_arpa()).unwrap());
        let lp =
            steps(&[&[('t', 0.9)], &[('h', 0.9)], &[('e', 0.9)], &[(' ', 0.9)], &[('c', 0.9)], &[('o', 0.55), ('a', 0.45)], &[('t', 0.9)]]);
        assert_eq!(best(&BeamSearchDecoder::default(), &lp), "the cot");
        let fused = BeamSearchDecoder { lm: Some(LmFusion { lm, weight: 0.5, word_bonus: 0.0, blank_penalty: 0.0 }), ..Default::default() };
        assert_eq!(best(&fused, &lp), "the cat");
    }

    /// A name heard unclearly: the letters are there but each is doubtful.
    #[test]
    fn hotwords_recover_a_doubtful_name_and_leave_other_words_alone() {
        let lp = steps(&[
            &[('k', 0.5), ('c', 0.5)],
            &[('a', 0.9)],
            &[('u', 0.5), ('_', 0.5)],
            &[('r', 0.5), ('_', 0.5)],
            &[(' ', 0.9)],
            &[('s', 0.9)],
            &[('a', 0.9)],
            &[('t', 0.9)],
        ]);
        let plain = best(&BeamSearchDecoder::default(), &lp);
        assert_ne!(plain.split(' ').next(), Some("kaur"));
        let v = vocabulary();
        let hot = hotwords::Hotwords::new(&hotwords::parse("kaur").unwrap(), &v).unwrap();
        let boosted = BeamSearchDecoder { hotwords: hot, ..Default::default() };
        let out = best(&boosted, &lp);
        assert_eq!(out.split(' ').next(), Some("kaur"), "{out}");
        assert_eq!(out.split(' ').nth(1), Some("sat"));
        assert_eq!(plain.split(' ').nth(1), Some("sat"));
    }

    #[test]
    fn the_lexicon_penalizes_words_outside_it() {
        let v = vocabulary();
        let lp = steps(&[&[('c', 0.9)], &[('o', 0.55), ('a', 0.45)], &[('t', 0.9)]]);
        let lexicon = Arc::new(Lexicon::new(["cat", "dog"].map(|w| (w, 0.0)), &v));
        assert_eq!(lexicon.len(), 2);
        let soft = BeamSearchDecoder { lexicon: Some((lexicon.clone(), 5.0)), ..Default::default() };
        assert_eq!(best(&soft, &lp), "cat");
        // A clearly spoken new word still comes through the soft ban.
        assert_eq!(best(&soft, &clear("_c_o_w_")), "cow");
    }

    /// Word breaks the acoustics are unsure of, and an LM that makes every
    /// word cost something: one run-on word outside the lexicon, scored
    /// once as unknown, must not dodge the words' scores for free.
    #[test]
    fn a_word_outside_the_lexicon_pays_for_its_letters() {
        let v = vocabulary();
        let lm = crate::lm::build::KneserNey::estimate(["the cat sat", "a cat ran", "the dog sat", "a dog ran"], 2).unwrap();
        let lm = Arc::new(NgramLm::from_arpa(&lm.to_arpa()).unwrap());
        let words = ["the", "a", "cat", "dog", "sat", "ran"].map(|w| (w, lm.unigram_log10_prob(w)));
        let lexicon = Arc::new(Lexicon::new(words, &v));
        let unsure = [(' ', 0.25), ('_', 0.75)];
        let sentence = "the cat sat a dog ran the dog sat";
        let mut spec: Vec<Vec<(char, f32)>> = Vec::new();
        for (i, word) in sentence.split(' ').enumerate() {
            if i > 0 {
                spec.push(unsure.to_vec());
            }
            spec.extend(word.chars().map(|c| vec![(c, 0.95)]));
        }
        let lp = steps(&spec.iter().map(Vec::as_slice).collect::<Vec<_>>());
        let decoder = BeamSearchDecoder {
            lm: Some(LmFusion { lm, weight: 2.0, word_bonus: 0.0, blank_penalty: 0.0 }),
            lexicon: Some((lexicon, 5.0)),
            ..Default::default()
        };
        assert_eq!(best(&decoder, &lp), sentence);
    }

    /// A word's first letter sounds more like a rare word's: in a beam of
    /// one, only the look-ahead keeps the common word's beginning alive.
    #[test]
    fn the_lexicon_looks_ahead_to_the_words_a_beginning_can_become() {
        let v = vocabulary();
        // "cat" follows many words, "zap" and "zax" one.
        let mut text = ["cat", "a cat", "my cat", "one cat", "the cat", "old cat", "cat ran"].repeat(3);
        text.extend(["the zap", "the zax"]);
        let lm = crate::lm::build::KneserNey::estimate(text, 2).unwrap();
        let lm = Arc::new(NgramLm::from_arpa(&lm.to_arpa()).unwrap());
        let words = ["the", "cat", "zap", "zax"];
        let informed = Arc::new(Lexicon::new(words.map(|w| (w, lm.unigram_log10_prob(w))), &v));
        // Every word's look-ahead equal: none at all.
        let flat = Arc::new(Lexicon::new(words.map(|w| (w, 0.0)), &v));
        let lp = steps(&[&[('z', 0.6), ('c', 0.4)], &[('a', 0.9)], &[('t', 0.5), ('p', 0.25), ('x', 0.25)]]);
        let decoder = |beam_size, lexicon: &Arc<Lexicon>| BeamSearchDecoder {
            options: BeamOptions { beam_size, ..Default::default() },
            lm: Some(LmFusion { lm: lm.clone(), weight: 1.0, word_bonus: 0.0, blank_penalty: 0.0 }),
            lexicon: Some((lexicon.clone(), 5.0)),
            ..Default::default()
        };
        assert_eq!(best(&decoder(16, &flat), &lp), "cat");
        assert_eq!(best(&decoder(1, &informed), &lp), "cat");
        assert_ne!(best(&decoder(1, &flat), &lp), "cat");
    }

    #[test]
    fn empty_input_gives_one_empty_hypothesis() {
        let hypotheses = BeamSearchDecoder::default().decode(&LogProbs::new(vec![], 29, 0.03), &vocabulary());
        assert_eq!(hypotheses.len(), 1);
        assert!(hypotheses[0].words.is_empty());
    }
}
