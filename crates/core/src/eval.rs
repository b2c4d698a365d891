//! Measuring accuracy: NeMo-style manifests in, word and character error
//! rates and the real-time factor out.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::model::LogProbs;
use crate::recognizer::{Decoding, RecognizeError, Recognizer};
use crate::transcript::text_of;

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
    #[error("{path}: {message}")]
    Npy { path: PathBuf, message: String },
}

/// Where the acoustic model's output may be kept between runs, as one
/// `.npy` file (steps × vocabulary, f32) per utterance in manifest order:
/// tuning a decoder then costs decoding only, and other decoders
/// (`training/compare_pyctcdecode.py`) read the very same numbers.
#[derive(Debug, Clone)]
pub enum LogProbsCache {
    /// Run the model and write its output.
    Save(PathBuf),
    /// Read the output instead of running the model; times are decoding only.
    Load(PathBuf),
}

/// Reads a JSON-lines manifest with `audio_filepath` and `text` per line.
pub fn read_manifest(path: &Path) -> Result<Vec<Utterance>, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io { path: path.into(), source })?;
    let base = path.parent().unwrap_or(Path::new("."));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let line: ManifestLine =
                serde_json::from_str(l).map_err(|e| EvalError::Manifest { path: path.into(), line: i + 1, message: e.to_string() })?;
            Ok(Utterance { audio_path: base.join(line.audio_filepath), text: crate::text::normalize(&line.text) })
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

/// For each word of `hypothesis`, whether a minimum-edit alignment with
/// `reference` matches it to the same reference word.
pub fn words_right<T: PartialEq>(reference: &[T], hypothesis: &[T]) -> Vec<bool> {
    let (n, m) = (reference.len(), hypothesis.len());
    let mut cost = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in cost.iter_mut().enumerate() {
        row[0] = i;
    }
    cost[0] = (0..=m).collect();
    for i in 1..=n {
        for j in 1..=m {
            let substitution = cost[i - 1][j - 1] + usize::from(reference[i - 1] != hypothesis[j - 1]);
            cost[i][j] = substitution.min(cost[i - 1][j] + 1).min(cost[i][j - 1] + 1);
        }
    }
    let (mut right, mut i, mut j) = (vec![false; m], n, m);
    while j > 0 {
        if i > 0 && cost[i][j] == cost[i - 1][j - 1] + usize::from(reference[i - 1] != hypothesis[j - 1]) {
            right[j - 1] = reference[i - 1] == hypothesis[j - 1];
            (i, j) = (i - 1, j - 1);
        } else if i > 0 && cost[i][j] == cost[i - 1][j] + 1 {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    right
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
    /// Each recognized word's confidence, and whether it is right.
    pub confidences: Vec<(f32, bool)>,
}

impl Scored {
    /// `confidences` holds one value per word of `hypothesis` (or none).
    pub fn new(audio_path: PathBuf, reference: String, hypothesis: String, confidences: &[f32]) -> Self {
        let ref_words: Vec<&str> = reference.split_whitespace().collect();
        let hyp_words: Vec<&str> = hypothesis.split_whitespace().collect();
        let ref_chars: Vec<char> = reference.chars().collect();
        let hyp_chars: Vec<char> = hypothesis.chars().collect();
        let right = words_right(&ref_words, &hyp_words);
        Self {
            word_errors: edit_distance(&ref_words, &hyp_words),
            words: ref_words.len(),
            char_errors: edit_distance(&ref_chars, &hyp_chars),
            chars: ref_chars.len(),
            confidences: confidences.iter().copied().zip(right).collect(),
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

    /// How far word confidences can be trusted: for each bin of confidence
    /// (lower bounds `edges`, each bin up to the next edge, the last up to
    /// 1), the number of recognized words in it and how many are right.
    pub fn reliability(&self, edges: &[f32]) -> Vec<(f32, usize, usize)> {
        let mut bins: Vec<(f32, usize, usize)> = edges.iter().map(|&e| (e, 0, 0)).collect();
        for &(confidence, right) in self.utterances.iter().flat_map(|u| &u.confidences) {
            if let Some(bin) = bins.iter_mut().rev().find(|b| confidence >= b.0) {
                bin.1 += 1;
                bin.2 += usize::from(right);
            }
        }
        bins
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
/// The spoken words are scored, against the reference as the model would
/// spell it, whatever the text format.
pub fn evaluate(
    recognizer: &Recognizer,
    decoding: &Decoding,
    utterances: &[Utterance],
    cache: Option<&LogProbsCache>,
    mut progress: impl FnMut(&Scored),
) -> Result<Report, EvalError> {
    let mut report = Report::default();
    let step_s = recognizer.model().config().step_s();
    for (i, u) in utterances.iter().enumerate() {
        let transcript = match cache {
            Some(LogProbsCache::Load(dir)) => {
                let path = dir.join(format!("{i:06}.npy"));
                let log_probs = read_npy(&path, step_s)?;
                let started = Instant::now();
                let transcript = recognizer.decode(&log_probs, log_probs.num_steps() as f64 * step_s, decoding);
                report.compute += started.elapsed();
                transcript
            }
            _ => {
                let bytes = std::fs::read(&u.audio_path).map_err(|source| EvalError::Io { path: u.audio_path.clone(), source })?;
                let recognize_error = |source| EvalError::Recognize { path: u.audio_path.clone(), source };
                let started = Instant::now();
                let waveform = recognizer.read_audio(&bytes).map_err(recognize_error)?;
                let transcript = match cache {
                    // Decoder tuning reads each utterance's log-probs whole.
                    Some(LogProbsCache::Save(dir)) => {
                        let log_probs = recognizer.log_probs(&waveform).map_err(recognize_error)?;
                        write_npy(&dir.join(format!("{i:06}.npy")), &log_probs)?;
                        recognizer.decode(&log_probs, waveform.duration_s(), decoding)
                    }
                    // Cut at pauses as the service cuts: the same transcripts.
                    _ => recognizer.transcribe(&waveform, decoding).map_err(recognize_error)?,
                };
                report.compute += started.elapsed();
                transcript
            }
        };
        report.audio_s += transcript.duration_s;
        let confidences: Vec<f32> = transcript.words.iter().map(|w| w.confidence).collect();
        let scored = Scored::new(u.audio_path.clone(), u.text.clone(), text_of(&transcript.words), &confidences);
        progress(&scored);
        report.utterances.push(scored);
    }
    Ok(report)
}

/// Writes steps × vocabulary f32 as NumPy's .npy (format 1.0).
fn write_npy(path: &Path, log_probs: &LogProbs) -> Result<(), EvalError> {
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}", log_probs.num_steps(), log_probs.vocab());
    // Magic (6) + version (2) + length (2) + header + newline, padded to 64 bytes.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(log_probs.data().iter().flat_map(|v| v.to_le_bytes()));
    std::fs::write(path, bytes).map_err(|source| EvalError::Io { path: path.into(), source })
}

/// Reads what [`write_npy`] writes (and NumPy's own 2-D little-endian f32 arrays).
fn read_npy(path: &Path, step_s: f64) -> Result<LogProbs, EvalError> {
    let bytes = std::fs::read(path).map_err(|source| EvalError::Io { path: path.into(), source })?;
    let bad = |message: &str| EvalError::Npy { path: path.into(), message: message.into() };
    if bytes.len() < 10 || &bytes[..8] != b"\x93NUMPY\x01\x00" {
        return Err(bad("not a version 1.0 .npy file"));
    }
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = bytes.get(10..10 + header_len).and_then(|h| std::str::from_utf8(h).ok()).ok_or_else(|| bad("bad header"))?;
    if !header.contains("'descr': '<f4'") || header.contains("'fortran_order': True") {
        return Err(bad("expected little-endian f32 in C order"));
    }
    let shape: Vec<usize> = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .map(|s| s.split(',').filter_map(|d| d.trim().parse().ok()).collect())
        .ok_or_else(|| bad("no shape"))?;
    let [steps, vocab] = shape[..] else {
        return Err(bad("expected a 2-D array"));
    };
    let data: Vec<f32> = bytes[10 + header_len..].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    if data.len() != steps * vocab || vocab == 0 {
        return Err(bad("the data does not match the shape"));
    }
    Ok(LogProbs::new(data, vocab, step_s))
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
        let s = Scored::new("x.wav".into(), "the cat sat".into(), "the bat sat down".into(), &[0.95, 0.6, 0.85, 0.3]);
        assert_eq!((s.word_errors, s.words), (2, 3));
        assert_eq!(s.confidences, [(0.95, true), (0.6, false), (0.85, true), (0.3, false)]);
        assert_eq!((s.char_errors, s.chars), (6, 11));
        let report = Report { utterances: vec![s], audio_s: 2.0, compute: Duration::from_millis(500) };
        assert!((report.wer() - 2.0 / 3.0).abs() < 1e-12);
        assert!((report.real_time_factor() - 0.25).abs() < 1e-12);
        assert_eq!(report.reliability(&[0.0, 0.5, 0.9]), [(0.0, 1, 0), (0.5, 2, 1), (0.9, 1, 1)]);
    }

    #[test]
    fn words_right_follows_a_minimum_edit_alignment() {
        assert_eq!(words_right(&["a", "b", "c"], &["a", "c"]), [true, true]);
        assert_eq!(words_right(&["a", "b", "c"], &["x", "a", "b", "y"]), [false, true, true, false]);
        assert_eq!(words_right::<&str>(&["a"], &[]), [] as [bool; 0]);
        assert_eq!(words_right(&[] as &[&str], &["a", "b"]), [false, false]);
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

    #[test]
    fn log_probs_round_trip_through_npy() {
        let path = std::env::temp_dir().join(format!("hark-npy-{}.npy", std::process::id()));
        let lp = LogProbs::new((0..12).map(|i| -(i as f32) / 3.0).collect(), 4, 0.03);
        write_npy(&path, &lp).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!((10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize) % 64, 0);
        assert_eq!(read_npy(&path, 0.03).unwrap(), lp);
        std::fs::write(&path, b"nonsense").unwrap();
        assert!(read_npy(&path, 0.03).is_err());
        std::fs::remove_file(&path).unwrap();
    }
}
