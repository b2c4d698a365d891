//! Word n-gram language models: ARPA files of any order, scored with
//! back-off, and estimated from text with interpolated modified Kneser-Ney
//! ([`build`]).
//!
//! The beam search asks one question, many times per utterance: "how likely
//! is this word after that context?" [`NgramLm::score`] answers it with a
//! few hash lookups. A context is an [`LmState`]: the stored n-gram of the
//! longest history that matters, so extending it never re-reads the words.

pub mod build;

use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;

/// log10 probability given to words the model has never seen when the ARPA
/// file has no `<unk>` entry (SRILM and KenLM both use this value).
const UNKNOWN_LOG10_PROB: f32 = -100.0;
pub const BOS: &str = "<s>";
pub const EOS: &str = "</s>";
pub const UNK: &str = "<unk>";

/// Why a language model could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LmError {
    #[error("cannot read the language model {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}: {message}")]
    Arpa { path: PathBuf, line: usize, message: String },
}

/// A word's index in the model's vocabulary.
pub type WordId = u32;

/// A position in the model: the context that the next word is scored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LmState(u32);

/// One stored n-gram.
#[derive(Debug, Clone, Copy)]
struct Node {
    log10_prob: f32,
    log10_backoff: f32,
    /// The node of this n-gram without its first word (the root for unigrams).
    suffix: u32,
    order: u8,
}

const ROOT: u32 = 0;

/// A back-off n-gram model held as a trie of n-grams: node ids are n-grams,
/// edges (node, next word) → node live in one hash map.
#[derive(Debug, Clone)]
pub struct NgramLm {
    order: usize,
    words: Vec<String>,
    ids: FxHashMap<String, WordId>,
    nodes: Vec<Node>,
    children: FxHashMap<(u32, WordId), u32>,
    /// Nodes that start some longer n-gram: a state needs no more history than that.
    is_context: Vec<bool>,
    bos: WordId,
    eos: WordId,
    unk: Option<WordId>,
}

impl NgramLm {
    /// Reads an ARPA file.
    pub fn load(path: &Path) -> Result<Self, LmError> {
        let text = std::fs::read_to_string(path).map_err(|source| LmError::Io { path: path.into(), source })?;
        Self::from_arpa(&text).map_err(|(line, message)| LmError::Arpa { path: path.into(), line, message })
    }

    /// Parses ARPA text; errors carry the 1-based line number.
    pub fn from_arpa(text: &str) -> Result<Self, (usize, String)> {
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
        if !lines.by_ref().any(|(_, line)| line == "\\data\\") {
            return Err((1, "no \\data\\ section: not an ARPA file".into()));
        }
        let mut declared: Vec<usize> = Vec::new();
        let mut lm = NgramLm {
            order: 0,
            words: Vec::new(),
            ids: FxHashMap::default(),
            nodes: vec![Node { log10_prob: 0.0, log10_backoff: 0.0, suffix: ROOT, order: 0 }],
            children: FxHashMap::default(),
            is_context: vec![false],
            bos: 0,
            eos: 0,
            unk: None,
        };
        let mut section = 0usize;
        let mut last_line = 0;
        for (number, line) in lines {
            last_line = number;
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix("ngram ") {
                let (n, count) = rest.split_once('=').ok_or((number, format!("malformed count line '{line}'")))?;
                let n: usize = n.trim().parse().map_err(|_| (number, format!("malformed count line '{line}'")))?;
                let count: usize = count.trim().parse().map_err(|_| (number, format!("malformed count line '{line}'")))?;
                if n != declared.len() + 1 {
                    return Err((number, format!("expected the count of {}-grams, found '{line}'", declared.len() + 1)));
                }
                declared.push(count);
                continue;
            }
            if line == "\\end\\" {
                section = usize::MAX;
                break;
            }
            if let Some(n) = line.strip_prefix('\\').and_then(|l| l.strip_suffix("-grams:")) {
                section = n.parse().map_err(|_| (number, format!("malformed section header '{line}'")))?;
                if section == 0 || section > declared.len() {
                    return Err((number, format!("section {line} but the header declares {} orders", declared.len())));
                }
                if section == 2 {
                    lm.finish_unigrams().map_err(|m| (number, m))?;
                }
                continue;
            }
            if section == 0 {
                return Err((number, format!("n-gram line before any section: '{line}'")));
            }
            lm.add_arpa_line(section, line, declared.len()).map_err(|m| (number, m))?;
        }
        if section != usize::MAX {
            return Err((last_line, "the file ends before \\end\\".into()));
        }
        if declared.is_empty() {
            return Err((last_line, "no n-gram counts in the \\data\\ section".into()));
        }
        if declared.len() == 1 {
            lm.finish_unigrams().map_err(|m| (last_line, m))?;
        }
        lm.order = declared.len();
        for (n, &count) in declared.iter().enumerate() {
            let found = lm.nodes.iter().filter(|node| node.order as usize == n + 1).count();
            if found != count {
                return Err((last_line, format!("the header declares {count} {}-grams but the file has {found}", n + 1)));
            }
        }
        Ok(lm)
    }

    fn finish_unigrams(&mut self) -> Result<(), String> {
        self.bos = *self.ids.get(BOS).ok_or("the 1-grams have no <s>")?;
        self.eos = *self.ids.get(EOS).ok_or("the 1-grams have no </s>")?;
        self.unk = self.ids.get(UNK).copied();
        Ok(())
    }

    fn add_arpa_line(&mut self, n: usize, line: &str, max_order: usize) -> Result<(), String> {
        let mut fields = line.split_whitespace();
        let log10_prob: f32 = fields
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("expected a log10 probability at the start of '{line}'"))?;
        let words: Vec<&str> = fields.by_ref().take(n).collect();
        if words.len() != n {
            return Err(format!("a {n}-gram line needs {n} words: '{line}'"));
        }
        let log10_backoff: f32 = match fields.next() {
            Some(b) if n < max_order => b.parse().map_err(|_| format!("malformed back-off in '{line}'"))?,
            Some(_) => return Err(format!("highest-order n-grams have no back-off: '{line}'")),
            None => 0.0,
        };
        let ids: Vec<WordId> = if n == 1 {
            let id = self.words.len() as WordId;
            if self.ids.insert(words[0].to_string(), id).is_some() {
                return Err(format!("the 1-gram '{}' appears twice", words[0]));
            }
            self.words.push(words[0].to_string());
            vec![id]
        } else {
            words
                .iter()
                .map(|w| self.ids.get(*w).copied().ok_or_else(|| format!("'{w}' in '{line}' is not among the 1-grams")))
                .collect::<Result<_, _>>()?
        };
        let parent = self
            .find(&ids[..n - 1])
            .ok_or_else(|| format!("'{line}': its first {} words are not an n-gram of the file", n - 1))?;
        let suffix = self
            .find(&ids[1..])
            .ok_or_else(|| format!("'{line}': its last {} words are not an n-gram of the file", n - 1))?;
        let id = self.nodes.len() as u32;
        if self.children.insert((parent, ids[n - 1]), id).is_some() {
            return Err(format!("the {n}-gram '{}' appears twice", words.join(" ")));
        }
        self.nodes.push(Node { log10_prob, log10_backoff, suffix, order: n as u8 });
        self.is_context.push(false);
        self.is_context[parent as usize] = true;
        Ok(())
    }

    /// The node of an n-gram, if stored.
    fn find(&self, words: &[WordId]) -> Option<u32> {
        words.iter().try_fold(ROOT, |node, &w| self.children.get(&(node, w)).copied())
    }

    pub fn order(&self) -> usize {
        self.order
    }

    /// Number of stored n-grams of each order, unigrams first.
    pub fn counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.order];
        for node in &self.nodes[1..] {
            counts[node.order as usize - 1] += 1;
        }
        counts
    }

    /// The words of the vocabulary, markers (`<s>`, `</s>`, `<unk>`) included.
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.words.iter().map(String::as_str)
    }

    /// The word's id; unknown words map to `<unk>` (or to no stored word).
    pub fn word_id(&self, word: &str) -> Option<WordId> {
        self.ids.get(word).copied()
    }

    pub fn end_of_sentence(&self) -> WordId {
        self.eos
    }

    /// The state at the start of a sentence, after `<s>`.
    pub fn begin_sentence(&self) -> LmState {
        LmState(self.children.get(&(ROOT, self.bos)).copied().unwrap_or(ROOT))
    }

    /// log10 P(word | state) with back-off, and the state after the word.
    /// `None` is a word outside the vocabulary: `<unk>`'s probability.
    pub fn score(&self, state: LmState, word: Option<WordId>) -> (f32, LmState) {
        let Some(word) = word.or(self.unk) else {
            return (UNKNOWN_LOG10_PROB, LmState(ROOT));
        };
        let mut context = state.0;
        let mut backoff = 0.0;
        loop {
            if let Some(&node) = self.children.get(&(context, word)) {
                return (backoff + self.nodes[node as usize].log10_prob, self.next_state(node));
            }
            if context == ROOT {
                return (UNKNOWN_LOG10_PROB, LmState(ROOT));
            }
            backoff += self.nodes[context as usize].log10_backoff;
            context = self.nodes[context as usize].suffix;
        }
    }

    /// The shortest history that still predicts as well as `node`: drop
    /// words from the front while the n-gram is full-order, or starts no
    /// longer n-gram and has no back-off weight.
    fn next_state(&self, mut node: u32) -> LmState {
        let droppable = |n: &Node, id: u32| {
            n.order as usize >= self.order || (!self.is_context[id as usize] && n.log10_backoff == 0.0)
        };
        while node != ROOT && droppable(&self.nodes[node as usize], node) {
            node = self.nodes[node as usize].suffix;
        }
        LmState(node)
    }

    /// log10 probability of a whole sentence, `<s>` and `</s>` included.
    pub fn sentence_log10_prob(&self, sentence: &str) -> f32 {
        let mut state = self.begin_sentence();
        let mut total = 0.0;
        for word in sentence.split_whitespace().map(|w| self.word_id(w)).chain([Some(self.eos)]) {
            let (p, next) = self.score(state, word);
            total += p;
            state = next;
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-written bigram model.
    const ARPA: &str = "\\data\\\nngram 1=5\nngram 2=4\n\n\\1-grams:\n-1.0\t<unk>\t0\n-99\t<s>\t-0.5\n-0.7\t</s>\t0\n\
        -0.6\ta\t-0.3\n-0.8\tb\t-0.2\n\n\\2-grams:\n-0.2\t<s> a\n-0.4\ta b\n-0.3\tb </s>\n-0.9\ta a\n\n\\end\\\n";

    #[test]
    fn stored_ngrams_score_directly_and_others_back_off() {
        let lm = NgramLm::from_arpa(ARPA).unwrap();
        assert_eq!(lm.order(), 2);
        assert_eq!(lm.counts(), [5, 4]);
        let s = lm.begin_sentence();
        let (p, after_a) = lm.score(s, lm.word_id("a"));
        assert!((p - -0.2).abs() < 1e-6);
        let (p, _) = lm.score(after_a, lm.word_id("b"));
        assert!((p - -0.4).abs() < 1e-6);
        // "b" after "<s>" is not stored: back-off of <s> plus P(b).
        let (p, _) = lm.score(s, lm.word_id("b"));
        assert!((p - (-0.5 + -0.8)).abs() < 1e-6);
        // Unknown words take <unk>'s probability after backing off.
        let (p, _) = lm.score(after_a, None);
        assert!((p - (-0.3 + -1.0)).abs() < 1e-6);
    }

    #[test]
    fn sentence_probability_includes_the_end_marker() {
        let lm = NgramLm::from_arpa(ARPA).unwrap();
        assert!((lm.sentence_log10_prob("a b") - (-0.2 + -0.4 + -0.3)).abs() < 1e-5);
    }

    #[test]
    fn malformed_files_name_the_line_and_the_problem() {
        let bad = ARPA.replace("-0.4\ta b", "-0.4\ta c");
        let (line, message) = NgramLm::from_arpa(&bad).unwrap_err();
        assert_eq!(line, 14);
        assert!(message.contains("'c'"), "{message}");
        let (_, message) = NgramLm::from_arpa(&ARPA.replace("ngram 2=4", "ngram 2=5")).unwrap_err();
        assert!(message.contains("declares 5 2-grams"), "{message}");
        let (_, message) = NgramLm::from_arpa(&ARPA.replace("\\end\\", "")).unwrap_err();
        assert!(message.contains("ends before"), "{message}");
    }
}
