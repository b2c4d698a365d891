//! Hotwords: words and phrases a caller expects ("Ljubljana", "hark
//! server"), boosted inside the beam search the way Riva's word boosting and
//! sherpa-onnx's hotwords are.
//!
//! Every letter that continues a hotword adds its boost to the hypothesis as
//! it is spelled, so a rare word survives pruning long enough to be
//! finished. A match that breaks off gives its boost back, and only a
//! finished hotword, followed by a word break, keeps it: boosting "kaur"
//! does not push "kauri" or "kau" into the transcript.

use super::trie::{TokenTrie, ROOT};
use crate::model::Vocabulary;

/// Per letter, in natural-log units: a 6-letter name gains 18 nats, enough to
/// beat a language model's unknown-word penalty at the default weights
/// (chosen on tests/hotwords.rs: 2 finds fewer names, 4 no more).
pub const DEFAULT_BOOST: f32 = 3.0;

/// One hotword or phrase and its boost per letter.
#[derive(Debug, Clone, PartialEq)]
pub struct Hotword {
    /// Normalized to the model's alphabet.
    pub phrase: String,
    pub boost: f32,
    /// As the caller wrote it ("New York"): how written transcripts show it.
    pub written: String,
}

/// Why a hotword list was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HotwordError {
    #[error("the boost of hotword '{entry}' must be a number between -20 and 20")]
    Boost { entry: String },
    #[error("hotword '{entry}' has no letters the model can spell")]
    Empty { entry: String },
    #[error("hotword '{entry}' uses '{token}', which the model cannot emit")]
    Token { entry: String, token: char },
}

/// Parses `"name, other phrase:3.5"`: comma-separated entries, each with an
/// optional `:boost`. Entries are normalized to the model's alphabet.
pub fn parse(spec: &str) -> Result<Vec<Hotword>, HotwordError> {
    spec.split(',')
        .filter(|entry| !entry.trim().is_empty())
        .map(|entry| {
            let (text, boost) = match entry.rsplit_once(':') {
                Some((text, boost)) => {
                    let boost: f32 = boost.trim().parse().map_err(|_| HotwordError::Boost { entry: entry.trim().into() })?;
                    if !(-20.0..=20.0).contains(&boost) {
                        return Err(HotwordError::Boost { entry: entry.trim().into() });
                    }
                    (text, boost)
                }
                None => (entry, DEFAULT_BOOST),
            };
            let phrase = crate::text::normalize(text);
            if phrase.is_empty() {
                return Err(HotwordError::Empty { entry: entry.trim().into() });
            }
            Ok(Hotword { phrase, boost, written: text.trim().to_string() })
        })
        .collect()
}

/// The hotwords of one request as a trie over the model's tokens.
#[derive(Debug, Clone, Default)]
pub struct Hotwords {
    trie: TokenTrie,
    nodes: Vec<HotNode>,
}

#[derive(Debug, Clone, Copy, Default)]
struct HotNode {
    /// Score for the token that leads into this node (0 for word breaks).
    boost: f32,
    /// A whole hotword ends here.
    complete: bool,
    /// Reached by a word break inside a phrase: a word starts here.
    word_start: bool,
}

/// Where a hypothesis stands in the hotword trie.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HotState {
    /// A trie node; [`ROOT`] at the start of a word; [`OFF`] inside a word
    /// that matches no hotword.
    node: u32,
    /// Boost given for the current, unfinished match: returned if it fails.
    pending: f32,
}

const OFF: u32 = u32::MAX;

impl Default for HotState {
    fn default() -> Self {
        Self { node: ROOT, pending: 0.0 }
    }
}

impl HotState {
    /// Inside a hotword, so far.
    pub fn is_matching(&self) -> bool {
        self.node != OFF && self.node != ROOT
    }
}

impl Hotwords {
    pub fn new(hotwords: &[Hotword], vocabulary: &Vocabulary) -> Result<Self, HotwordError> {
        let mut trie = TokenTrie::new();
        let mut nodes = vec![HotNode::default()];
        let separator = vocabulary.word_separator();
        for hotword in hotwords {
            let tokens: Vec<usize> = hotword
                .phrase
                .chars()
                .map(|c| match c {
                    ' ' => Ok(separator),
                    c => vocabulary.id(c.encode_utf8(&mut [0; 4])).ok_or(HotwordError::Token { entry: hotword.phrase.clone(), token: c }),
                })
                .collect::<Result<_, _>>()?;
            let path = trie.insert(&tokens);
            nodes.resize(trie.len(), HotNode::default());
            for (&node, &token) in path.iter().zip(&tokens) {
                let n = &mut nodes[node as usize];
                if token == separator {
                    n.word_start = true;
                } else {
                    n.boost = n.boost.max(hotword.boost);
                }
            }
            nodes[path[path.len() - 1] as usize].complete = true;
        }
        Ok(Self { trie, nodes })
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.len() <= 1
    }

    /// After a letter: the new state and the score to add.
    pub fn letter(&self, state: HotState, token: usize) -> (HotState, f32) {
        if state.node == OFF {
            return (state, 0.0);
        }
        if let Some(next) = self.trie.child(state.node, token) {
            let boost = self.nodes[next as usize].boost;
            return (HotState { node: next, pending: state.pending + boost }, boost);
        }
        // The match breaks: give its boost back. At a word start inside a
        // phrase, another hotword may begin with this letter.
        let refund = -state.pending;
        if state.node != ROOT && self.nodes[state.node as usize].word_start {
            if let Some(next) = self.trie.child(ROOT, token) {
                let boost = self.nodes[next as usize].boost;
                return (HotState { node: next, pending: boost }, refund + boost);
            }
        }
        (HotState { node: OFF, pending: 0.0 }, refund)
    }

    /// After a word break.
    pub fn word_break(&self, state: HotState, separator: usize) -> (HotState, f32) {
        if state.node == OFF || state.node == ROOT {
            return (HotState::default(), 0.0);
        }
        let node = self.nodes[state.node as usize];
        let next = self.trie.child(state.node, separator);
        match (node.complete, next) {
            // A finished hotword keeps its boost; a phrase may go on.
            (true, Some(next)) => (HotState { node: next, pending: 0.0 }, 0.0),
            (true, None) => (HotState::default(), 0.0),
            (false, Some(next)) => (HotState { node: next, pending: state.pending }, 0.0),
            (false, None) => (HotState::default(), -state.pending),
        }
    }

    /// At the end of the utterance: what an unfinished match gives back.
    pub fn finish(&self, state: HotState, separator: usize) -> f32 {
        let (after, score) = self.word_break(state, separator);
        score - after.pending
    }

    /// The hotword state just finished a whole hotword (before its word break).
    pub fn completes(&self, state: HotState) -> bool {
        state.is_matching() && self.nodes[state.node as usize].complete
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocabulary() -> Vocabulary {
        let letters: String = ('a'..='z').map(|c| format!("{c}\n")).collect();
        Vocabulary::parse(&format!("<blank>\n|\n'\n{letters}")).unwrap()
    }

    fn spell(hot: &Hotwords, vocabulary: &Vocabulary, text: &str) -> f32 {
        let mut state = HotState::default();
        let mut total = 0.0;
        for c in text.chars() {
            let (next, score) = if c == ' ' {
                hot.word_break(state, vocabulary.word_separator())
            } else {
                hot.letter(state, vocabulary.id(&c.to_string()).unwrap())
            };
            state = next;
            total += score;
        }
        total + hot.finish(state, vocabulary.word_separator())
    }

    #[test]
    fn entries_parse_with_optional_boosts_and_are_normalized() {
        let parsed = parse("Kaur, New York:3, 42nd street").unwrap();
        assert_eq!(parsed[0], Hotword { phrase: "kaur".into(), boost: DEFAULT_BOOST, written: "Kaur".into() });
        assert_eq!(parsed[1], Hotword { phrase: "new york".into(), boost: 3.0, written: "New York".into() });
        assert_eq!(parsed[2].phrase, "forty two nd street");
        assert!(matches!(parse("x:lots"), Err(HotwordError::Boost { .. })));
        assert!(matches!(parse("x:99"), Err(HotwordError::Boost { .. })));
        assert!(matches!(parse("?!:2"), Err(HotwordError::Empty { .. })));
    }

    #[test]
    fn only_finished_hotwords_keep_their_boost() {
        let v = vocabulary();
        let hot = Hotwords::new(&parse("kaur:2").unwrap(), &v).unwrap();
        assert_eq!(spell(&hot, &v, "ms kaur said"), 8.0);
        assert_eq!(spell(&hot, &v, "kaur"), 8.0);
        assert_eq!(spell(&hot, &v, "kauri trees"), 0.0);
        assert_eq!(spell(&hot, &v, "kau"), 0.0);
        assert_eq!(spell(&hot, &v, "skaur"), 0.0);
    }

    #[test]
    fn phrases_need_every_word() {
        let v = vocabulary();
        let hot = Hotwords::new(&parse("new york:1, york:1").unwrap(), &v).unwrap();
        assert_eq!(spell(&hot, &v, "new york"), 7.0);
        assert_eq!(spell(&hot, &v, "new yorkshire"), 0.0);
        // "new" alone gives back its boost; "york" then starts a match of its own.
        assert_eq!(spell(&hot, &v, "new jersey york"), 4.0);
        assert_eq!(spell(&hot, &v, "new"), 0.0);
    }

    #[test]
    fn letters_the_model_cannot_emit_are_refused() {
        let v = Vocabulary::parse("<blank>\n|\na\nb\n").unwrap();
        assert!(matches!(Hotwords::new(&parse("abc").unwrap(), &v), Err(HotwordError::Token { token: 'c', .. })));
    }
}
