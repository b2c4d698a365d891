//! Word n-gram language models: ARPA files of any order, scored with
//! back-off, estimated from text with interpolated modified Kneser-Ney
//! ([`build`]), and stored in a binary form that loads in milliseconds.
//!
//! The beam search asks one question, many times per utterance: "how likely
//! is this word after that context?" The model is a trie in sorted arrays,
//! one level per order (the layout of KenLM's trie, without bit packing):
//! the children of an n-gram are a contiguous, sorted run of the next level,
//! found by binary search. An 88 MB ARPA file (3-gram, 2 M n-grams) takes
//! about 1.8 s and 280 MB to parse; its binary form is 22 MB and loads in
//! about 0.25 s.

pub mod build;

use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;

pub const BOS: &str = "<s>";
pub const EOS: &str = "</s>";
pub const UNK: &str = "<unk>";
/// log10 probability of words the model has never seen when it has no `<unk>`.
const UNKNOWN_LOG10_PROB: f32 = -100.0;
/// Longest n-gram order read: plenty for words.
pub const MAX_ORDER: usize = 6;
const BINARY_MAGIC: &[u8; 8] = b"HARKLM1\n";

/// Why a language model could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LmError {
    #[error("cannot read the language model {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}: {message}")]
    Arpa { path: PathBuf, line: usize, message: String },
    #[error("{path}: not a hark binary language model ({message}); ARPA files are read too")]
    Binary { path: PathBuf, message: String },
}

/// A word's index in the model's vocabulary.
pub type WordId = u32;

/// The context the next word is scored in: the last words, as many as the
/// model can use (most recent last).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LmState {
    words: [WordId; MAX_ORDER - 1],
    len: u8,
}

impl LmState {
    fn words(&self) -> &[WordId] {
        &self.words[..self.len as usize]
    }
}

/// One order of the trie: parallel arrays sorted by (context, word).
#[derive(Debug, Clone, Default, PartialEq)]
struct Level {
    /// The last word of each n-gram (unigrams: implicit, index = word id).
    words: Vec<WordId>,
    log10_prob: Vec<f32>,
    /// Empty at the highest order.
    log10_backoff: Vec<f32>,
    /// Children of n-gram i are next_level[first_child[i]..first_child[i + 1]];
    /// empty at the highest order.
    first_child: Vec<u32>,
}

/// A back-off n-gram model.
#[derive(Debug, Clone, PartialEq)]
pub struct NgramLm {
    vocabulary: Vec<String>,
    ids: FxHashMap<String, WordId>,
    levels: Vec<Level>,
    bos: WordId,
    eos: WordId,
    unk: Option<WordId>,
}

impl NgramLm {
    /// Reads an ARPA file or hark's binary form (told apart by the first bytes).
    pub fn load(path: &Path) -> Result<Self, LmError> {
        let bytes = std::fs::read(path).map_err(|source| LmError::Io { path: path.into(), source })?;
        Self::from_bytes(&bytes, path)
    }

    /// Parses a model already in memory; `path` names it in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, LmError> {
        if bytes.starts_with(BINARY_MAGIC) {
            return Self::from_binary(bytes).map_err(|message| LmError::Binary { path: path.into(), message });
        }
        let text = String::from_utf8_lossy(bytes);
        Self::from_arpa(&text).map_err(|(line, message)| LmError::Arpa { path: path.into(), line, message })
    }

    /// Parses ARPA text; errors carry the 1-based line number.
    pub fn from_arpa(text: &str) -> Result<Self, (usize, String)> {
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
        if !lines.by_ref().any(|(_, line)| line == "\\data\\") {
            return Err((1, "no \\data\\ section: not an ARPA file".into()));
        }
        let mut declared: Vec<usize> = Vec::new();
        // Per order: (words, log10 prob, log10 back-off), in file order.
        let mut grams: Vec<Vec<(Vec<WordId>, f32, f32)>> = Vec::new();
        let mut vocabulary: Vec<String> = Vec::new();
        let mut ids: FxHashMap<String, WordId> = FxHashMap::default();
        let mut section = 0usize;
        let mut last_line = 0;
        let mut ended = false;
        for (number, line) in lines {
            last_line = number;
            if line.is_empty() {
                continue;
            }
            let malformed = || (number, format!("malformed count line '{line}'"));
            if let Some(rest) = line.strip_prefix("ngram ") {
                let (n, count) = rest.split_once('=').ok_or_else(malformed)?;
                let n: usize = n.trim().parse().map_err(|_| malformed())?;
                let count: usize = count.trim().parse().map_err(|_| malformed())?;
                if n != declared.len() + 1 || n > MAX_ORDER {
                    return Err((number, format!("unexpected count line '{line}' (orders 1 to {MAX_ORDER}, in sequence)")));
                }
                declared.push(count);
                grams.push(Vec::with_capacity(count));
                continue;
            }
            if line == "\\end\\" {
                ended = true;
                break;
            }
            if let Some(n) = line.strip_prefix('\\').and_then(|l| l.strip_suffix("-grams:")) {
                section = n.parse().map_err(|_| (number, format!("malformed section header '{line}'")))?;
                if section == 0 || section > declared.len() {
                    return Err((number, format!("section {line} but the header declares {} orders", declared.len())));
                }
                continue;
            }
            if section == 0 {
                return Err((number, format!("n-gram line before any section: '{line}'")));
            }
            let gram = parse_arpa_line(line, section, declared.len(), &mut vocabulary, &mut ids).map_err(|m| (number, m))?;
            grams[section - 1].push(gram);
        }
        if !ended {
            return Err((last_line, "the file ends before \\end\\".into()));
        }
        for (n, (&count, found)) in declared.iter().zip(&grams).enumerate() {
            if count != found.len() {
                return Err((last_line, format!("the header declares {count} {}-grams but the file has {}", n + 1, found.len())));
            }
        }
        Self::from_grams(vocabulary, grams).map_err(|m| (last_line, m))
    }

    /// Lays out parsed n-grams as the sorted trie.
    fn from_grams(vocabulary: Vec<String>, mut grams: Vec<Vec<(Vec<WordId>, f32, f32)>>) -> Result<Self, String> {
        if grams.is_empty() {
            return Err("no n-gram counts in the \\data\\ section".into());
        }
        let order = grams.len();
        let mut levels: Vec<Level> = Vec::with_capacity(order);
        for (n, level_grams) in grams.iter_mut().enumerate() {
            level_grams.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            let has_children = n + 1 < order;
            let level = Level {
                words: if n == 0 { Vec::new() } else { level_grams.iter().map(|g| g.0[n]).collect() },
                log10_prob: level_grams.iter().map(|g| g.1).collect(),
                log10_backoff: if has_children { level_grams.iter().map(|g| g.2).collect() } else { Vec::new() },
                first_child: Vec::new(),
            };
            levels.push(level);
        }
        // Children: order n+1 is sorted by its first n words, which must be
        // n-grams of order n (ARPA's prefix property); one merge pass.
        for n in 0..order - 1 {
            let (parents, children) = (&grams[n], &grams[n + 1]);
            let mut first_child = Vec::with_capacity(parents.len() + 1);
            let mut c = 0;
            for parent in parents {
                first_child.push(c as u32);
                while c < children.len() && children[c].0[..=n] == parent.0[..] {
                    c += 1;
                }
            }
            first_child.push(c as u32);
            if c != children.len() {
                let orphan = &children[c].0;
                let words: Vec<&str> = orphan.iter().map(|&w| vocabulary[w as usize].as_str()).collect();
                return Err(format!("the {}-gram '{}' has no {}-gram prefix in the file", n + 2, words.join(" "), n + 1));
            }
            levels[n].first_child = first_child;
        }
        // Unigrams are indexed by word id: the file lists each word once.
        if grams[0].iter().enumerate().any(|(i, g)| g.0[0] as usize != i) {
            return Err("the 1-grams do not cover the vocabulary exactly once".into());
        }
        let ids: FxHashMap<String, WordId> = vocabulary.iter().enumerate().map(|(i, w)| (w.clone(), i as WordId)).collect();
        let bos = *ids.get(BOS).ok_or("the 1-grams have no <s>")?;
        let eos = *ids.get(EOS).ok_or("the 1-grams have no </s>")?;
        let unk = ids.get(UNK).copied();
        Ok(Self { vocabulary, ids, levels, bos, eos, unk })
    }

    pub fn order(&self) -> usize {
        self.levels.len()
    }

    /// Number of n-grams of each order, unigrams first.
    pub fn counts(&self) -> Vec<usize> {
        self.levels.iter().map(|l| l.log10_prob.len()).collect()
    }

    /// The words of the vocabulary, markers (`<s>`, `</s>`, `<unk>`) included.
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.vocabulary.iter().map(String::as_str)
    }

    /// The word's id; `None` for words outside the vocabulary.
    pub fn word_id(&self, word: &str) -> Option<WordId> {
        self.ids.get(word).copied()
    }

    /// log10 P(word) with no context; words outside the vocabulary get `<unk>`'s.
    pub fn unigram_log10_prob(&self, word: &str) -> f32 {
        self.score(LmState::default(), self.word_id(word)).0
    }

    pub fn end_of_sentence(&self) -> WordId {
        self.eos
    }

    /// The state at the start of a sentence, after `<s>`.
    pub fn begin_sentence(&self) -> LmState {
        let mut state = LmState::default();
        if self.order() > 1 {
            state.words[0] = self.bos;
            state.len = 1;
        }
        state
    }

    /// (level, index) of a stored n-gram.
    fn find(&self, words: &[WordId]) -> Option<(usize, usize)> {
        let (&first, rest) = words.split_first()?;
        let mut index = first as usize;
        if index >= self.levels[0].log10_prob.len() {
            return None;
        }
        for (n, &w) in rest.iter().enumerate() {
            let parent = &self.levels[n];
            let child = self.levels.get(n + 1)?;
            let (lo, hi) = (parent.first_child[index] as usize, parent.first_child[index + 1] as usize);
            index = lo + child.words[lo..hi].binary_search(&w).ok()?;
        }
        Some((words.len() - 1, index))
    }

    /// log10 P(word | state) with back-off, and the state after the word.
    /// `None` is a word outside the vocabulary: `<unk>`'s probability.
    pub fn score(&self, state: LmState, word: Option<WordId>) -> (f32, LmState) {
        let Some(word) = word.or(self.unk) else {
            return (UNKNOWN_LOG10_PROB, LmState::default());
        };
        let history = state.words();
        let mut backoff = 0.0;
        let mut gram = [0; MAX_ORDER];
        for skip in 0..=history.len() {
            let context = &history[skip..];
            gram[..context.len()].copy_from_slice(context);
            gram[context.len()] = word;
            if let Some((level, index)) = self.find(&gram[..=context.len()]) {
                let log10_prob = backoff + self.levels[level].log10_prob[index];
                // The next state: this n-gram, at most order-1 words of it.
                let kept = (context.len() + 1).min(self.order() - 1);
                let mut next = LmState { len: kept as u8, ..LmState::default() };
                next.words[..kept].copy_from_slice(&gram[context.len() + 1 - kept..=context.len()]);
                return (log10_prob, next);
            }
            if let Some((level, index)) = self.find(context) {
                backoff += self.levels[level].log10_backoff.get(index).copied().unwrap_or(0.0);
            }
        }
        (UNKNOWN_LOG10_PROB, LmState::default())
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

    /// The binary form: the arrays as they are in memory, little-endian.
    pub fn to_binary(&self) -> Vec<u8> {
        let mut out = BINARY_MAGIC.to_vec();
        let words = self.vocabulary.join("\n");
        out.extend((self.order() as u32).to_le_bytes());
        out.extend((words.len() as u64).to_le_bytes());
        out.extend(words.as_bytes());
        for level in &self.levels {
            for array in [&level.words, &level.first_child] {
                out.extend((array.len() as u64).to_le_bytes());
                out.extend(array.iter().flat_map(|v| v.to_le_bytes()));
            }
            for array in [&level.log10_prob, &level.log10_backoff] {
                out.extend((array.len() as u64).to_le_bytes());
                out.extend(array.iter().flat_map(|v| v.to_le_bytes()));
            }
        }
        out
    }

    fn from_binary(bytes: &[u8]) -> Result<Self, String> {
        let mut reader = Reader { bytes, at: BINARY_MAGIC.len() };
        let order = reader.u32()? as usize;
        if order == 0 || order > MAX_ORDER {
            return Err(format!("order {order}"));
        }
        let words_len = reader.u64()? as usize;
        let words = std::str::from_utf8(reader.take(words_len)?).map_err(|_| "vocabulary is not UTF-8")?;
        let vocabulary: Vec<String> = words.split('\n').map(String::from).collect();
        let mut levels = Vec::with_capacity(order);
        for _ in 0..order {
            levels.push(Level {
                words: reader.array(u32::from_le_bytes)?,
                first_child: reader.array(u32::from_le_bytes)?,
                log10_prob: reader.array(f32::from_le_bytes)?,
                log10_backoff: reader.array(f32::from_le_bytes)?,
            });
        }
        if reader.at != bytes.len() {
            return Err("trailing bytes".into());
        }
        check_layout(&levels, vocabulary.len())?;
        let ids: FxHashMap<String, WordId> = vocabulary.iter().enumerate().map(|(i, w)| (w.clone(), i as WordId)).collect();
        let bos = *ids.get(BOS).ok_or("no <s>")?;
        let eos = *ids.get(EOS).ok_or("no </s>")?;
        let unk = ids.get(UNK).copied();
        Ok(Self { vocabulary, ids, levels, bos, eos, unk })
    }
}

/// The arrays of a binary file fit together, so that lookups cannot go out of bounds.
fn check_layout(levels: &[Level], vocabulary: usize) -> Result<(), String> {
    for (n, level) in levels.iter().enumerate() {
        let len = level.log10_prob.len();
        let last = n + 1 == levels.len();
        let sizes_ok = (n == 0 && level.words.is_empty() && len == vocabulary || n > 0 && level.words.len() == len)
            && (last && level.first_child.is_empty() && level.log10_backoff.is_empty()
                || !last && level.first_child.len() == len + 1 && level.log10_backoff.len() == len);
        if !sizes_ok {
            return Err(format!("inconsistent arrays at order {}", n + 1));
        }
        if !last {
            let children = levels[n + 1].log10_prob.len();
            let monotone = level.first_child.windows(2).all(|w| w[0] <= w[1]);
            if !monotone || level.first_child.last().is_some_and(|&c| c as usize != children) {
                return Err(format!("inconsistent child ranges at order {}", n + 1));
            }
        }
        if level.words.iter().any(|&w| w as usize >= vocabulary) {
            return Err(format!("word id out of range at order {}", n + 1));
        }
    }
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or("truncated")?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    fn array<T>(&mut self, from: fn([u8; 4]) -> T) -> Result<Vec<T>, String> {
        let len = usize::try_from(self.u64()?).map_err(|_| "array too long")?;
        let bytes = self.take(len.checked_mul(4).ok_or("array too long")?)?;
        Ok(bytes.chunks_exact(4).map(|c| from(c.try_into().expect("4 bytes"))).collect())
    }
}

/// One line of an ARPA section: `log10_prob w1 … wn [log10_backoff]`.
fn parse_arpa_line(
    line: &str,
    n: usize,
    max_order: usize,
    vocabulary: &mut Vec<String>,
    ids: &mut FxHashMap<String, WordId>,
) -> Result<(Vec<WordId>, f32, f32), String> {
    let mut fields = line.split_whitespace();
    let log10_prob: f32 =
        fields.next().and_then(|p| p.parse().ok()).ok_or_else(|| format!("expected a log10 probability at the start of '{line}'"))?;
    let words: Vec<&str> = fields.by_ref().take(n).collect();
    if words.len() != n {
        return Err(format!("a {n}-gram line needs {n} words: '{line}'"));
    }
    let log10_backoff: f32 = match fields.next() {
        Some(b) if n < max_order => b.parse().map_err(|_| format!("malformed back-off in '{line}'"))?,
        Some(_) => return Err(format!("highest-order n-grams have no back-off: '{line}'")),
        None => 0.0,
    };
    let ids_of_words = if n == 1 {
        let id = vocabulary.len() as WordId;
        if ids.insert(words[0].to_string(), id).is_some() {
            return Err(format!("the 1-gram '{}' appears twice", words[0]));
        }
        vocabulary.push(words[0].to_string());
        vec![id]
    } else {
        words
            .iter()
            .map(|w| ids.get(*w).copied().ok_or_else(|| format!("'{w}' in '{line}' is not among the 1-grams")))
            .collect::<Result<_, _>>()?
    };
    Ok((ids_of_words, log10_prob, log10_backoff))
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
    fn the_binary_form_round_trips_and_rejects_damage() {
        let lm = NgramLm::from_arpa(ARPA).unwrap();
        let bytes = lm.to_binary();
        assert_eq!(NgramLm::from_binary(&bytes).unwrap(), lm);
        assert!(NgramLm::from_binary(&bytes[..bytes.len() - 3]).is_err());
        assert!(NgramLm::from_binary(&[&bytes[..], &[0]].concat()).is_err());
        // A child range pointing past the bigrams.
        let mut bad = lm.clone();
        bad.levels[0].first_child[5] = 9;
        assert!(NgramLm::from_binary(&bad.to_binary()).unwrap_err().contains("child ranges"));
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
