//! Punctuation and casing: for each word of a transcript (lower case, no
//! marks, as CTC spells it), how it is written (lower, Capitalized, UPPER
//! or a mixed form such as "McDonald") and which mark follows it (none
//! , . ? !).
//!
//! The network is a word embedding → bidirectional LSTM layers → two linear
//! heads (case, mark), as `training/hark_train/punctuate.py` defines it in
//! PyTorch; the LSTM runs on the acoustic model's fast path
//! ([`crate::model`]). A model directory carries it in `punctuation/`:
//! config.json, model.safetensors, words.txt (the input vocabulary, one
//! word a line, `<pad>` and `<unk>` first) and mixed.txt (`word<TAB>Form`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::model::{linear, transposed, BiLstm, ModelError, Weights};
use crate::written::Punctuated;

/// `punctuation/config.json`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct PunctuationConfig {
    /// Word embedding size.
    dim: usize,
    /// LSTM units per direction.
    hidden: usize,
    layers: usize,
    /// The case classes, in the order of the case head's outputs.
    cases: Vec<Case>,
    /// The marks, in the order of the mark head's outputs ("" for none).
    marks: Vec<String>,
}

/// How a word is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Case {
    Lower,
    Capitalized,
    Upper,
    /// As the mixed-form lexicon writes it ("McDonald"), else Capitalized.
    Mixed,
}

/// The files of a punctuation model, wherever they came from (a directory
/// or the copy embedded in the binary).
pub struct PunctuationFiles<'a> {
    pub config_json: Cow<'a, [u8]>,
    pub safetensors: Cow<'a, [u8]>,
    pub words_txt: Cow<'a, [u8]>,
    pub mixed_txt: Cow<'a, [u8]>,
}

impl PunctuationFiles<'static> {
    pub fn read_dir(dir: &Path) -> Result<Self, ModelError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map(Cow::Owned).map_err(|source| ModelError::Io { path, source })
        };
        Ok(Self {
            config_json: read("config.json")?,
            safetensors: read("model.safetensors")?,
            words_txt: read("words.txt")?,
            mixed_txt: read("mixed.txt")?,
        })
    }

    /// The default model's punctuation model, compiled into the binary.
    pub fn embedded_default() -> Self {
        let [config_json, safetensors, words_txt, mixed_txt] = crate::model::DEFAULT_PUNCTUATION.map(Cow::Borrowed);
        Self { config_json, safetensors, words_txt, mixed_txt }
    }
}

/// A loaded punctuation and casing model.
pub struct Punctuator {
    /// Input vocabulary: word → row of the embedding.
    ids: HashMap<String, usize>,
    /// `vocab × dim`, row-major.
    embedding: Vec<f32>,
    dim: usize,
    lstm: BiLstm,
    case_w_t: Vec<f32>,
    case_b: Vec<f32>,
    mark_w_t: Vec<f32>,
    mark_b: Vec<f32>,
    cases: Vec<Case>,
    marks: Vec<Option<char>>,
    mixed: HashMap<String, String>,
}

impl std::fmt::Debug for Punctuator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Punctuator").field("words", &self.ids.len()).field("dim", &self.dim).finish_non_exhaustive()
    }
}

/// The input vocabulary's unknown word (its second line).
const UNK_ID: usize = 1;

impl Punctuator {
    pub fn load(files: &PunctuationFiles<'_>) -> Result<Self, ModelError> {
        let bad = |message: String| ModelError::Config(format!("punctuation: {message}"));
        let config: PunctuationConfig = serde_json::from_slice(&files.config_json).map_err(|e| bad(e.to_string()))?;
        let utf8 = |name: &str| bad(format!("{name} is not UTF-8"));
        let words = std::str::from_utf8(&files.words_txt).map_err(|_| utf8("words.txt"))?;
        let ids: HashMap<String, usize> = words.lines().enumerate().map(|(i, w)| (w.to_string(), i)).collect();
        let vocab = words.lines().count();
        if vocab <= UNK_ID {
            return Err(bad("words.txt needs <pad> and <unk> first".into()));
        }
        let mixed = std::str::from_utf8(&files.mixed_txt)
            .map_err(|_| utf8("mixed.txt"))?
            .lines()
            .filter_map(|line| line.split_once('\t').map(|(word, form)| (word.to_string(), form.to_string())))
            .collect();
        let marks = config
            .marks
            .iter()
            .map(|m| {
                let mut chars = m.chars();
                match (chars.next(), chars.next()) {
                    (None, _) => Ok(None),
                    (Some(c), None) => Ok(Some(c)),
                    _ => Err(bad(format!("mark '{m}' is not one character"))),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut weights = Weights::parse(&files.safetensors)?;
        let (dim, h) = (config.dim, config.hidden);
        let embedding = weights.get("embed.weight", &[vocab, dim])?;
        let lstm = BiLstm::load(&mut weights, "lstm", dim, h, config.layers)?;
        let (cases, n_marks) = (config.cases.len(), marks.len());
        Ok(Self {
            ids,
            embedding,
            dim,
            lstm,
            case_w_t: transposed(&weights.get("case.weight", &[cases, 2 * h])?, cases, 2 * h),
            case_b: weights.get("case.bias", &[cases])?,
            mark_w_t: transposed(&weights.get("mark.weight", &[n_marks, 2 * h])?, n_marks, 2 * h),
            mark_b: weights.get("mark.bias", &[n_marks])?,
            cases: config.cases,
            marks,
            mixed,
        })
    }

    /// Loads `dir/punctuation/` when the model directory has one.
    pub fn load_beside(dir: &Path) -> Result<Option<Self>, ModelError> {
        let dir = dir.join("punctuation");
        if !dir.is_dir() {
            return Ok(None);
        }
        Self::load(&PunctuationFiles::read_dir(&dir)?).map(Some)
    }

    /// How each word of each text is written: the texts run through the
    /// network together, as one batch.
    pub fn punctuate(&self, texts: &[&[&str]]) -> Vec<Vec<Punctuated>> {
        let inputs: Vec<Vec<f32>> = texts
            .iter()
            .map(|words| {
                let mut x = Vec::with_capacity(words.len() * self.dim);
                for word in *words {
                    let id = self.ids.get(*word).copied().unwrap_or(UNK_ID);
                    x.extend_from_slice(&self.embedding[id * self.dim..(id + 1) * self.dim]);
                }
                x
            })
            .collect();
        let output = self.lstm.run(&inputs.iter().map(Vec::as_slice).collect::<Vec<_>>());
        let width = 2 * self.lstm.hidden();
        let case_logits = linear(&output.rows, width, &self.case_w_t, &self.case_b);
        let mark_logits = linear(&output.rows, width, &self.mark_w_t, &self.mark_b);
        let best = |logits: &[f32], n: usize, row: usize| argmax(&logits[row * n..(row + 1) * n]);
        texts
            .iter()
            .zip(&output.spans)
            .map(|(words, rows)| {
                words
                    .iter()
                    .zip(rows.clone())
                    .map(|(word, row)| Punctuated {
                        form: self.form(word, self.cases[best(&case_logits, self.cases.len(), row)]),
                        mark: self.marks[best(&mark_logits, self.marks.len(), row)],
                    })
                    .collect()
            })
            .collect()
    }

    fn form(&self, word: &str, case: Case) -> String {
        match case {
            Case::Lower => word.to_string(),
            Case::Upper => word.to_uppercase(),
            Case::Mixed => self.mixed.get(word).cloned().unwrap_or_else(|| capitalized(word)),
            Case::Capitalized => capitalized(word),
        }
    }
}

/// The word with its first letter upper case.
pub fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn argmax(values: &[f32]) -> usize {
    values.iter().enumerate().fold(0, |best, (i, v)| if *v > values[best] { i } else { best })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capitalized_changes_only_the_first_letter() {
        assert_eq!(capitalized("o'brien"), "O'brien");
        assert_eq!(capitalized(""), "");
        assert_eq!(argmax(&[0.1, 0.7, 0.2]), 1);
    }

    #[test]
    fn the_default_model_writes_a_question_and_a_name() {
        let p = Punctuator::load(&PunctuationFiles::embedded_default()).unwrap();
        let words = ["where", "does", "john", "live", "he", "lives", "in", "london"];
        let out = p.punctuate(&[&words, &[], &words[..4]]);
        assert_eq!(out.len(), 3);
        assert!(out[1].is_empty());
        let written: Vec<String> = crate::written::write(&words, &[], Some(&out[0]), &[]).into_iter().map(|t| t.text).collect();
        assert_eq!(written.join(" "), "Where does John live? He lives in London.");
        // A text's result does not depend on the others in its batch.
        assert_eq!(out[2], p.punctuate(&[&words[..4]])[0]);
    }
}
