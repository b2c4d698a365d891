//! Measuring accuracy: NeMo-style manifests in, word and character error
//! rates and the real-time factor out.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::ctc::CtcDecoder;
use crate::recognizer::{RecognizeError, Recognizer};

/// One line of a manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Utterance {
    /// Resolved against the manifest's folder when relative.
    pub audio_path: PathBuf,
    /// The reference, normalized to the model's alphabet.
    pub text: String,
}

#[derive(Deserialize)]
struct ManifestLine {
    audio_filepath: PathBuf,
    text: String,
}

/// Why an evaluation could not run.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}: {message}")]
    Manifest { path: PathBuf, line: usize, message: String },
    #[error("{path}: {source}")]
    Recognize { path: PathBuf, source: RecognizeError },
}

/// Reads a JSON-lines manifest with `audio_filepath` and `text` per line.
pub fn read_manifest(path: &Path) -> Result<Vec<Utterance>, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io { path: path.into(), source })?;
    let base = path.parent().unwrap_or(Path::new("."));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let line: ManifestLine = serde_json::from_str(l).map_err(|e| EvalError::Manifest {
                path: path.into(),
                line: i + 1,
                message: e.to_string(),
            })?;
            Ok(Utterance {
                audio_path: base.join(line.audio_filepath),
                text: crate::text::normalize(&line.text),
            })
        })
        .collect()
}

/// Levenshtein distance between two sequences.
pub fn edit_distance<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(x != y);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// The outcome for one utterance.
#[derive(Debug, Clone)]
pub struct Scored {
    pub audio_path: PathBuf,
    pub reference: String,
    pub hypothesis: String,
    pub word_errors: usize,
    pub words: usize,
    pub char_errors: usize,
    pub chars: usize,
}

impl Scored {
    pub fn new(audio_path: PathBuf, reference: String, hypothesis: String) -> Self {
        let ref_words: Vec<&str> = reference.split_whitespace().collect();
        let hyp_words: Vec<&str> = hypothesis.split_whitespace().collect();
        let ref_chars: Vec<char> = reference.chars().collect();
        let hyp_chars: Vec<char> = hypothesis.chars().collect();
        Self {
            word_errors: edit_distance(&ref_words, &hyp_words),
            words: ref_words.len(),
            char_errors: edit_distance(&ref_chars, &hyp_chars),
            chars: ref_chars.len(),
            audio_path,
            reference,
            hypothesis,
        }
    }

    pub fn wer(&self) -> f64 {
        self.word_errors as f64 / self.words.max(1) as f64
    }
}

/// Totals over a manifest.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub utterances: Vec<Scored>,
    pub audio_s: f64,
    pub compute: Duration,
}

impl Report {
    pub fn wer(&self) -> f64 {
        let errors: usize = self.utterances.iter().map(|u| u.word_errors).sum();
        errors as f64 / self.utterances.iter().map(|u| u.words).sum::<usize>().max(1) as f64
    }

    pub fn cer(&self) -> f64 {
        let errors: usize = self.utterances.iter().map(|u| u.char_errors).sum();
        errors as f64 / self.utterances.iter().map(|u| u.chars).sum::<usize>().max(1) as f64
    }

    /// Compute time over audio time (decoding, features, network, CTC).
    pub fn real_time_factor(&self) -> f64 {
        self.compute.as_secs_f64() / self.audio_s.max(1e-9)
    }

    /// The `n` utterances with the highest WER.
    pub fn worst(&self, n: usize) -> Vec<&Scored> {
        let mut sorted: Vec<&Scored> = self.utterances.iter().collect();
        sorted.sort_by(|a, b| b.wer().total_cmp(&a.wer()).then(b.word_errors.cmp(&a.word_errors)));
        sorted.truncate(n);
        sorted
    }
}

/// Recognizes every utterance and scores it; `progress` is called after each.
pub fn evaluate(
    recognizer: &Recognizer,
    decoder: &dyn CtcDecoder,
    utterances: &[Utterance],
    mut progress: impl FnMut(&Scored),
) -> Result<Report, EvalError> {
    let mut report = Report::default();
    for u in utterances {
        let bytes = std::fs::read(&u.audio_path).map_err(|source| EvalError::Io { path: u.audio_path.clone(), source })?;
        let started = Instant::now();
        let transcript = recognizer
            .transcribe_wav(&bytes, decoder)
            .map_err(|source| EvalError::Recognize { path: u.audio_path.clone(), source })?;
        report.compute += started.elapsed();
        report.audio_s += transcript.duration_s;
        let scored = Scored::new(u.audio_path.clone(), u.text.clone(), transcript.text);
        progress(&scored);
        report.utterances.push(scored);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_substitutions_insertions_deletions() {
        assert_eq!(edit_distance(&["a", "b", "c"], &["a", "x", "c", "d"]), 2);
        assert_eq!(edit_distance::<char>(&[], &['a', 'b']), 2);
        assert_eq!(edit_distance(&['k', 'i', 't', 't', 'e', 'n'], &['s', 'i', 't', 't', 'i', 'n', 'g']), 3);
    }

    #[test]
    fn scores_count_words_and_characters() {
        let s = Scored::new("x.wav".into(), "the cat sat".into(), "the bat sat down".into());
        assert_eq!((s.word_errors, s.words), (2, 3));
        assert_eq!((s.char_errors, s.chars), (6, 11));
        let report = Report { utterances: vec![s], audio_s: 2.0, compute: Duration::from_millis(500) };
        assert!((report.wer() - 2.0 / 3.0).abs() < 1e-12);
        assert!((report.real_time_factor() - 0.25).abs() < 1e-12);
    }

    #[test]
    fn manifest_paths_resolve_against_the_manifest_folder() {
        let dir = std::env::temp_dir().join(format!("hark-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.jsonl");
        std::fs::write(&path, "{\"audio_filepath\": \"a.wav\", \"duration\": 1.0, \"text\": \"Zero\"}\n\nnot json\n").unwrap();
        let err = read_manifest(&path).unwrap_err();
        assert!(err.to_string().contains("m.jsonl:3"), "{err}");
        std::fs::write(&path, "{\"audio_filepath\": \"a.wav\", \"duration\": 1.0, \"text\": \"Zero\"}\n").unwrap();
        assert_eq!(read_manifest(&path).unwrap(), vec![Utterance { audio_path: dir.join("a.wav"), text: "zero".into() }]);
    }
}
