//! hark's Viterbi against a reference implementation: on the English
//! model's log-probabilities for the shared dev sets, hark's strict
//! alignment (the plain CTC graph) finds the path torchaudio's
//! `forced_align` finds, frame for frame
//! (tests/fixtures/align_golden.safetensors, from training/golden_alignment.py).

mod common;

use hark_core::align::{align, AlignOptions, AlignPiece, AlignText};
use hark_core::model::{LogProbs, Vocabulary, BLANK};
use hark_core::vad::Loudness;

/// The network's step in the English model.
const STEP_S: f64 = 0.03;

/// Each token the path emits, with its first and last frame: a run of one
/// label is one token (a repeated letter has a blank between its runs).
fn tokens_of(path: &[usize]) -> Vec<(usize, usize, usize)> {
    let mut tokens: Vec<(usize, usize, usize)> = Vec::new();
    for (t, &label) in path.iter().enumerate() {
        match tokens.last_mut() {
            Some((last, _, end)) if *last == label && *end + 1 == t => *end = t,
            _ if label != BLANK => tokens.push((label, t, t)),
            _ => {}
        }
    }
    tokens
}

#[test]
fn strict_alignment_finds_torchaudios_forced_align_path_frame_for_frame() {
    let path = common::fixture("align_golden.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let texts: std::collections::BTreeMap<String, String> = serde_json::from_str(&metadata.metadata().as_ref().unwrap()["texts"]).unwrap();
    let golden = common::read_tensors(&path);
    let vocabulary = Vocabulary::parse(&std::fs::read_to_string(common::repo().join("models/hark-en/tokens.txt")).unwrap()).unwrap();
    let options = AlignOptions { strict: true, characters: true, ..AlignOptions::default() };
    let (mut frames, mut letters) = (0, 0);
    assert!(texts.len() >= 30, "{} utterances", texts.len());
    for (name, text) in &texts {
        let (shape, data) = &golden[&format!("{name}/log_probs")];
        let log_probs = LogProbs::new(data.clone(), shape[1], STEP_S);
        let reference: Vec<usize> = golden[&format!("{name}/path")].1.iter().map(|&l| l as usize).collect();
        let want: Vec<(usize, usize, usize)> =
            tokens_of(&reference).into_iter().filter(|&(label, _, _)| label != vocabulary.word_separator()).collect();

        let duration_s = shape[0] as f64 * STEP_S;
        let piece = AlignPiece { start_s: 0.0, log_probs, recognized: Vec::new() };
        let text = AlignText::new(text, &vocabulary).unwrap();
        let alignment = align(&[piece], &Loudness::default(), duration_s, &text, &vocabulary, &options).unwrap();
        let frame = |s: f64| (s / STEP_S).round() as usize;
        let got: Vec<(usize, usize, usize)> = alignment
            .words
            .iter()
            .flat_map(|w| &w.characters)
            .map(|c| (vocabulary.id(&c.character).unwrap(), frame(c.start_s), frame(c.end_s) - 1))
            .collect();
        assert!(alignment.words.iter().all(|w| w.span.is_some()), "{name}: strict alignment leaves no word out");
        assert_eq!(got, want, "{name}: each letter's (token, first frame, last frame)");
        frames += shape[0];
        letters += got.len();
    }
    eprintln!("{} utterances, {frames} frames, {letters} letters: the same path", texts.len());
}
