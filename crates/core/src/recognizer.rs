//! The recognizer: audio bytes → [`Transcript`], the whole pipeline behind
//! one call. It knows nothing of HTTP; the server and the command line are
//! thin adapters over it.
//!
//! How to decode is chosen per request ([`DecodeOptions`]) on top of the
//! model directory's defaults (`decoder.json`, with the language model it
//! names): greedy, or beam search with the LM, hotwords and n-best.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::align::{self, AlignError, AlignOptions, AlignPiece, AlignText, Alignment};
use crate::audio::{self, AudioError, AudioLimits, Waveform, SAMPLE_RATE_HZ};
use crate::ctc::beam::{BeamOptions, BeamSearchDecoder, Lexicon, LmFusion};
use crate::ctc::hotwords::{self, Hotword, HotwordError, Hotwords};
use crate::ctc::{CtcDecoder, GreedyDecoder};
use crate::error::{Coded, ErrorKind};
use crate::features::{Fbank, FeatureConfigError, Features};
use crate::lm::{LmError, NgramLm, BOS, EOS, UNK};
use crate::model::{AcousticModel, LogProbs, ModelError, ModelFiles, DEFAULT_DECODING, DEFAULT_MODEL};
use crate::pipeline::{Cut, Heard};
use crate::punctuation::{PunctuationFiles, Punctuator};
use crate::transcript::{text_of, Alternative, Transcript, Word};
use crate::vad::{self, Loudness};
use crate::written::{self, GivenForm, WrittenToken};

/// Audio up to this long is recognized whole; longer audio is cut at pauses
/// into pieces this long at most (the model was trained on sentences of up
/// to about 10 s; whole minutes are outside what it has seen).
pub const DEFAULT_WINDOW_S: f64 = 15.0;

/// Pieces the network runs at once outside the server (which has its own
/// batching): bounds the memory of one batch.
const PIECES_PER_BATCH: usize = 8;

/// Why a recognizer could not be built.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("the model's feature settings cannot be served: {0}")]
    Features(#[from] FeatureConfigError),
    #[error("cannot read {path}: {message}")]
    DecoderConfig { path: PathBuf, message: String },
    #[error(transparent)]
    Lm(#[from] LmError),
}

/// Greedy or beam search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum DecoderKind {
    Greedy,
    Beam,
}

/// `decoder.json` in a model directory: how its model is decoded unless a
/// request says otherwise. The weights were tuned on a dev split of the
/// training side; the model card says how.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecoderConfig {
    pub decoder: DecoderKind,
    /// Language model (ARPA text or hark's binary form), relative to the
    /// model directory.
    pub lm: Option<PathBuf>,
    pub beam_size: usize,
    pub lm_weight: f32,
    pub word_bonus: f32,
    /// Per step the search spends on blank, with the LM.
    pub blank_penalty: f32,
    /// Per word outside the LM's vocabulary; 0 turns lexicon mode off.
    pub oov_penalty: f32,
    pub token_min_log_prob: f32,
    pub token_top_k: usize,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        let beam = BeamOptions::default();
        Self {
            decoder: DecoderKind::Greedy,
            lm: None,
            beam_size: beam.beam_size,
            lm_weight: 0.5,
            word_bonus: 1.0,
            blank_penalty: 0.0,
            oov_penalty: 0.0,
            token_min_log_prob: beam.token_min_log_prob,
            token_top_k: beam.token_top_k,
        }
    }
}

/// Per-request choices (query parameters, form fields, command-line flags
/// with the `cli` feature); unset ones take the model's defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
#[serde(deny_unknown_fields)]
pub struct DecodeOptions {
    /// greedy, or beam search (with the language model when there is one).
    #[cfg_attr(feature = "cli", arg(long, value_enum))]
    pub decoder: Option<DecoderKind>,
    /// Hypotheses kept per step by the beam search (1–256).
    #[cfg_attr(feature = "cli", arg(long))]
    pub beam_size: Option<usize>,
    /// Language-model weight (alpha), 0–5.
    #[cfg_attr(feature = "cli", arg(long))]
    pub lm_weight: Option<f32>,
    /// Score added per word (beta), -10–10.
    #[cfg_attr(feature = "cli", arg(long))]
    pub word_bonus: Option<f32>,
    /// Penalty per step on blank, with the language model, 0–5.
    #[cfg_attr(feature = "cli", arg(long))]
    pub blank_penalty: Option<f32>,
    /// Penalty per word outside the LM's vocabulary (0 = off), 0–50.
    #[cfg_attr(feature = "cli", arg(long))]
    pub oov_penalty: Option<f32>,
    /// Words or phrases to boost, comma-separated, each with an optional `:boost`.
    #[cfg_attr(feature = "cli", arg(long))]
    pub hotwords: Option<String>,
    /// Return the N best transcripts (1–20).
    #[cfg_attr(feature = "cli", arg(long))]
    pub alternatives: Option<usize>,
    /// `written` (punctuation, capitals, numbers as digits; the default) or
    /// `spoken` (the words as the model spells them).
    #[cfg_attr(feature = "cli", arg(long, value_enum))]
    pub text_format: Option<TextFormat>,
}

/// How a transcript's text is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum TextFormat {
    /// As people write it: "On the 5th of May, Mr. Smith paid $25."
    #[default]
    Written,
    /// As the model spells it: "on the fifth of may mister smith paid
    /// twenty five dollars".
    Spoken,
}

/// How one request is decoded and written ([`Recognizer::decoding`]).
#[derive(Clone)]
pub struct Decoding {
    decoder: Arc<dyn CtcDecoder>,
    /// None for spoken text; else the phrases the caller gave (hotwords),
    /// written as given.
    written: Option<Vec<GivenForm>>,
}

impl Decoding {
    pub fn decoder(&self) -> &dyn CtcDecoder {
        self.decoder.as_ref()
    }

    /// The decoder and its settings, for logs and reports.
    pub fn describe(&self) -> String {
        self.decoder.describe()
    }

    /// The same decoding, giving the spoken words as text (a live stream's
    /// partial results, which change as more audio comes).
    pub fn spoken(&self) -> Self {
        Self { decoder: self.decoder.clone(), written: None }
    }
}

/// Why a request's decoding options were refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeOptionsError {
    #[error("{name} must be between {min} and {max}, not {value}")]
    OutOfRange { name: &'static str, value: f32, min: f32, max: f32 },
    #[error("{0} needs decoder=beam")]
    NeedsBeam(&'static str),
    #[error("{0} needs a language model, and this model has none (see --lm)")]
    NeedsLm(&'static str),
    #[error(transparent)]
    Hotwords(#[from] HotwordError),
}

fn check_range(name: &'static str, value: f32, min: f32, max: f32) -> Result<(), DecodeOptionsError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(DecodeOptionsError::OutOfRange { name, value, min, max })
    }
}

/// Why one request could not be recognized.
#[derive(Debug, thiserror::Error)]
pub enum RecognizeError {
    #[error(transparent)]
    Audio(#[from] AudioError),
}

impl Coded for RecognizeError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Audio(e) => e.kind(),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Audio(e) => e.code(),
        }
    }
}

impl Coded for DecodeOptionsError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Invalid
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Hotwords(_) => "invalid_hotwords",
            _ => "invalid_decoder_options",
        }
    }
}

/// A loaded model with its feature extractor and language model; shared by
/// all requests.
#[derive(Debug)]
pub struct Recognizer {
    model: Arc<AcousticModel>,
    fbank: Fbank,
    limits: AudioLimits,
    decoding: DecoderConfig,
    lm: Option<Arc<NgramLm>>,
    /// The LM's words, for lexicon mode.
    lexicon: Option<Arc<Lexicon>>,
    /// Audio longer than this is cut at pauses into pieces this long at most.
    window_s: f64,
    /// Punctuation and casing for written transcripts.
    punctuator: Option<Punctuator>,
}

impl Recognizer {
    pub fn new(model: AcousticModel, limits: AudioLimits, decoding: DecoderConfig, lm: Option<NgramLm>) -> Result<Self, LoadError> {
        let fbank = Fbank::new(model.config().features.clone())?;
        let lexicon = lm.as_ref().map(|lm| {
            let words = lm.words().filter(|w| ![BOS, EOS, UNK].contains(w));
            Arc::new(Lexicon::new(words.map(|w| (w, lm.unigram_log10_prob(w))), model.vocabulary()))
        });
        Ok(Self {
            model: Arc::new(model),
            fbank,
            limits,
            decoding,
            lm: lm.map(Arc::new),
            lexicon,
            window_s: DEFAULT_WINDOW_S,
            punctuator: None,
        })
    }

    /// Writes transcripts with this punctuation and casing model.
    pub fn with_punctuator(self, punctuator: Punctuator) -> Self {
        Self { punctuator: Some(punctuator), ..self }
    }

    pub fn punctuator(&self) -> Option<&Punctuator> {
        self.punctuator.as_ref()
    }

    /// Cuts audio longer than `window_s` seconds at pauses into pieces at
    /// most that long ([`DEFAULT_WINDOW_S`] unless set here).
    ///
    /// # Panics
    /// When `window_s` is not a positive number of seconds.
    pub fn with_window_s(self, window_s: f64) -> Self {
        assert!(window_s > 0.0 && window_s.is_finite(), "a window of {window_s} s");
        Self { window_s, ..self }
    }

    /// How long the pieces of long audio are at most.
    pub fn window_s(&self) -> f64 {
        self.window_s
    }

    /// Loads a model directory with its `decoder.json`, language model and
    /// punctuation model (`punctuation/`), or the embedded default when
    /// `dir` is None. `lm` replaces the directory's language model and makes
    /// beam search the default.
    pub fn load(dir: Option<&Path>, limits: AudioLimits, lm: Option<&Path>) -> Result<Self, LoadError> {
        let (model, mut decoding) = match dir {
            Some(dir) => (AcousticModel::load_dir(dir)?, read_decoder_config(dir)?),
            None => {
                let path = PathBuf::from(format!("<built-in {DEFAULT_MODEL}>/decoder.json"));
                let decoding =
                    serde_json::from_slice(DEFAULT_DECODING.0).map_err(|e| LoadError::DecoderConfig { path, message: e.to_string() })?;
                (AcousticModel::load(&ModelFiles::embedded_default())?, decoding)
            }
        };
        let lm = match (lm, dir) {
            (Some(path), _) => {
                decoding.decoder = DecoderKind::Beam;
                Some(NgramLm::load(path)?)
            }
            (None, Some(dir)) => decoding.lm.as_ref().map(|file| NgramLm::load(&dir.join(file))).transpose()?,
            (None, None) => {
                let path = PathBuf::from(format!("<built-in {DEFAULT_MODEL}>/lm.bin"));
                decoding.lm.is_some().then(|| NgramLm::from_bytes(DEFAULT_DECODING.1, &path)).transpose()?
            }
        };
        let punctuator = match dir {
            Some(dir) => Punctuator::load_beside(dir)?,
            None => Some(Punctuator::load(&PunctuationFiles::embedded_default())?),
        };
        let recognizer = Self::new(model, limits, decoding, lm)?;
        Ok(match punctuator {
            Some(punctuator) => recognizer.with_punctuator(punctuator),
            None => recognizer,
        })
    }

    pub fn model(&self) -> &AcousticModel {
        &self.model
    }

    /// The acoustic model, for a server's scheduler to batch.
    pub fn shared_model(&self) -> Arc<AcousticModel> {
        self.model.clone()
    }

    /// How a request asks to be decoded and written, on top of the model's
    /// defaults.
    pub fn decoding(&self, options: &DecodeOptions) -> Result<Decoding, DecodeOptionsError> {
        let hotwords = options.hotwords.as_deref().map(hotwords::parse).transpose()?.unwrap_or_default();
        let written = (options.text_format.unwrap_or_default() == TextFormat::Written)
            .then(|| hotwords.iter().filter_map(|h| GivenForm::new(&h.written)).collect());
        Ok(Decoding { decoder: self.decoder(options, &hotwords)?.into(), written })
    }

    fn decoder(&self, options: &DecodeOptions, hotwords: &[Hotword]) -> Result<Box<dyn CtcDecoder>, DecodeOptionsError> {
        let d = &self.decoding;
        // Asking for what only beam search does implies beam search.
        let beam_only = [
            ("hotwords", !hotwords.is_empty()),
            ("beam_size", options.beam_size.is_some()),
            ("alternatives", options.alternatives.is_some_and(|n| n > 1)),
            ("lm_weight", options.lm_weight.is_some()),
            ("word_bonus", options.word_bonus.is_some()),
            ("blank_penalty", options.blank_penalty.is_some()),
            ("oov_penalty", options.oov_penalty.is_some()),
        ];
        let alternatives = options.alternatives.unwrap_or(1);
        check_range("alternatives", alternatives as f32, 1.0, 20.0)?;
        let wants_beam = beam_only.iter().any(|(_, set)| *set);
        let kind = options.decoder.unwrap_or(if wants_beam { DecoderKind::Beam } else { d.decoder });
        if kind == DecoderKind::Greedy {
            if let Some((name, _)) = beam_only.iter().find(|(_, set)| *set) {
                return Err(DecodeOptionsError::NeedsBeam(name));
            }
            return Ok(Box::new(GreedyDecoder));
        }
        let beam_size = options.beam_size.unwrap_or(d.beam_size);
        check_range("beam_size", beam_size as f32, 1.0, 256.0)?;
        for (name, value) in [
            ("lm_weight", options.lm_weight),
            ("word_bonus", options.word_bonus),
            ("blank_penalty", options.blank_penalty),
            ("oov_penalty", options.oov_penalty),
        ] {
            if value.is_some() && self.lm.is_none() {
                return Err(DecodeOptionsError::NeedsLm(name));
            }
        }
        let lm_weight = options.lm_weight.unwrap_or(d.lm_weight);
        let word_bonus = options.word_bonus.unwrap_or(d.word_bonus);
        let blank_penalty = options.blank_penalty.unwrap_or(d.blank_penalty);
        let oov_penalty = options.oov_penalty.unwrap_or(d.oov_penalty);
        check_range("lm_weight", lm_weight, 0.0, 5.0)?;
        check_range("word_bonus", word_bonus, -10.0, 10.0)?;
        check_range("blank_penalty", blank_penalty, 0.0, 5.0)?;
        check_range("oov_penalty", oov_penalty, 0.0, 50.0)?;
        Ok(Box::new(BeamSearchDecoder {
            options: BeamOptions {
                beam_size,
                token_min_log_prob: d.token_min_log_prob,
                token_top_k: d.token_top_k,
                beam_prune_log_prob: BeamOptions::default().beam_prune_log_prob,
                alternatives,
            },
            lm: self.lm.clone().map(|lm| LmFusion { lm, weight: lm_weight, word_bonus, blank_penalty }),
            hotwords: Hotwords::new(hotwords, self.model.vocabulary())?,
            lexicon: self.lexicon.clone().filter(|_| oov_penalty > 0.0).map(|l| (l, oov_penalty)),
        }))
    }

    /// Decodes an audio file and recognizes it.
    pub fn transcribe_bytes(&self, bytes: &[u8], decoding: &Decoding) -> Result<Transcript, RecognizeError> {
        self.transcribe(&self.read_audio(bytes)?, decoding)
    }

    /// The duration of an audio file from its header, within this
    /// recognizer's limits, when the format states it reliably (WAV).
    pub fn header_duration_s(&self, bytes: &[u8]) -> Result<Option<f64>, RecognizeError> {
        Ok(audio::header_duration_s(bytes, &self.limits)?)
    }

    /// The memory a recording of `duration_s` seconds holds while it is
    /// recognized (its 16 kHz samples and its features), or one of the
    /// longest allowed when its duration is not known before decoding.
    /// Decoding mixes channels down as it goes, so this is all a file's
    /// decoded audio costs whatever its channels or rate.
    pub fn working_bytes(&self, duration_s: Option<f64>) -> usize {
        let seconds = duration_s.unwrap_or(self.limits.max_duration_s).clamp(0.0, self.limits.max_duration_s);
        let samples = (seconds * f64::from(SAMPLE_RATE_HZ)).ceil() as usize;
        let features = self.fbank.num_frames(samples) * self.model.config().features.num_bins;
        (samples + features) * std::mem::size_of::<f32>()
    }

    /// Decodes an audio file of any supported format within this
    /// recognizer's limits.
    pub fn read_audio(&self, bytes: &[u8]) -> Result<Waveform, RecognizeError> {
        Ok(audio::decode(bytes, &self.limits)?)
    }

    /// Recognizes 16 kHz mono audio: [`Self::cut`], [`Self::hear`],
    /// [`Self::transcript`].
    pub fn transcribe(&self, waveform: &Waveform, decoding: &Decoding) -> Result<Transcript, RecognizeError> {
        Ok(self.transcript(self.hear(self.cut(waveform)), decoding))
    }

    /// Aligns the words of `text` to 16 kHz mono audio ([`crate::align`]).
    pub fn align(&self, waveform: &Waveform, text: &AlignText, options: &AlignOptions) -> Result<Alignment, AlignError> {
        self.align_heard(self.hear(self.cut(waveform)), text, options)
    }

    /// The text to align, in this model's alphabet.
    pub fn align_text(&self, text: &str) -> Result<AlignText, AlignError> {
        AlignText::new(text, self.model.vocabulary())
    }

    /// Cuts audio longer than the window ([`Self::with_window_s`]) at pauses
    /// ([`vad::cut`]) and computes each piece's features.
    pub fn cut(&self, waveform: &Waveform) -> Cut {
        let ranges = vad::cut(waveform.samples(), self.window_s);
        let pieces = if ranges.len() == 1 {
            vec![(0.0, self.features(waveform))]
        } else {
            ranges
                .into_iter()
                .map(|range| {
                    let start_s = range.start as f64 / f64::from(SAMPLE_RATE_HZ);
                    (start_s, self.features(&Waveform::from_samples(waveform.samples()[range].to_vec())))
                })
                .collect()
        };
        Cut::new(pieces, waveform.duration_s(), Loudness::of(waveform.samples()))
    }

    /// Runs the network over a cut's pieces, a few at a time (the service
    /// runs them through its scheduler instead: [`crate::pipeline`]).
    pub fn hear(&self, cut: Cut) -> Heard {
        let (features, placement) = cut.into_parts();
        let mut outputs = Vec::with_capacity(features.len());
        for batch in features.chunks(PIECES_PER_BATCH) {
            outputs.extend(self.model.forward_batch(&batch.iter().collect::<Vec<_>>()));
        }
        placement.place(outputs)
    }

    /// The transcript of a recording (or an utterance of a live stream) as
    /// the network heard it: word times are placed in the whole recording,
    /// and segments break at the cuts. The n-best list is kept for audio
    /// recognized in one piece.
    pub fn transcript(&self, heard: Heard, decoding: &Decoding) -> Transcript {
        let duration_s = heard.duration_s();
        let pieces = heard.into_pieces();
        let shift =
            |words: Vec<Word>, by_s: f64| words.into_iter().map(move |w| Word { start_s: w.start_s + by_s, end_s: w.end_s + by_s, ..w });
        let mut transcript = if let [(start_s, log_probs)] = pieces.as_slice() {
            let mut transcript = self.decode(log_probs, duration_s, decoding);
            transcript.words = shift(std::mem::take(&mut transcript.words), *start_s).collect();
            transcript
        } else {
            let mut words: Vec<Word> = Vec::new();
            for (start_s, log_probs) in &pieces {
                let best =
                    decoding.decoder.decode(log_probs, self.model.vocabulary()).into_iter().next().map(|h| h.words).unwrap_or_default();
                words.extend(shift(best, *start_s));
            }
            let mut transcript = Transcript::new(words, duration_s);
            transcript.cuts_s = pieces.iter().skip(1).map(|(start_s, _)| *start_s).collect();
            transcript
        };
        self.write(&mut transcript, decoding);
        transcript
    }

    /// Writes a transcript's text, and its alternatives', as the request
    /// asks ([`written::write`]), punctuated in one batch.
    fn write(&self, transcript: &mut Transcript, decoding: &Decoding) {
        let Some(given) = &decoding.written else { return };
        let texts: Vec<Vec<&str>> = std::iter::once(transcript.words.iter().map(|w| w.word.as_str()).collect())
            .chain(transcript.alternatives.iter().map(|a| a.text.split_whitespace().collect()))
            .collect();
        let slices: Vec<&[&str]> = texts.iter().map(Vec::as_slice).collect();
        let punctuated = self.punctuator.as_ref().map(|p| p.punctuate(&slices));
        let starts = transcript.phrase_starts();
        let written: Vec<Vec<WrittenToken>> = slices
            .iter()
            .enumerate()
            .map(|(i, words)| {
                // The alternatives have no times: one phrase each.
                let breaks = if i == 0 { starts.as_slice() } else { &[] };
                written::write(words, breaks, punctuated.as_ref().map(|p| p[i].as_slice()), given)
            })
            .collect();
        let mut written = written.into_iter();
        let first = written.next().unwrap_or_default();
        for (alternative, tokens) in transcript.alternatives.iter_mut().zip(written) {
            alternative.text = tokens.into_iter().map(|t| t.text).collect::<Vec<_>>().join(" ");
        }
        transcript.write(first);
    }

    /// Aligns `text` to a recording as the network heard it.
    pub fn align_heard(&self, heard: Heard, text: &AlignText, options: &AlignOptions) -> Result<Alignment, AlignError> {
        let vocabulary = self.model.vocabulary();
        let (duration_s, loudness) = (heard.duration_s(), heard.loudness().clone());
        let pieces: Vec<AlignPiece> = heard
            .into_pieces()
            .into_iter()
            .map(|(start_s, log_probs)| {
                let best = GreedyDecoder.decode(&log_probs, vocabulary).into_iter().next();
                let recognized = best.map(|h| h.words.into_iter().map(|w| w.word).collect()).unwrap_or_default();
                AlignPiece { start_s, log_probs, recognized }
            })
            .collect();
        align::align(&pieces, &loudness, duration_s, text, vocabulary, options)
    }

    /// The acoustic model's output for 16 kHz mono audio.
    pub fn log_probs(&self, waveform: &Waveform) -> Result<LogProbs, RecognizeError> {
        Ok(self.model.forward(&self.features(waveform)))
    }

    /// The model's input features for 16 kHz mono audio.
    pub fn features(&self, waveform: &Waveform) -> Features {
        self.fbank.compute(waveform)
    }

    /// The spoken transcript of the acoustic model's output for `duration_s`
    /// of audio (what [`Self::transcript`] then writes as the request asks).
    pub fn decode(&self, log_probs: &LogProbs, duration_s: f64, decoding: &Decoding) -> Transcript {
        let hypotheses = decoding.decoder.decode(log_probs, self.model.vocabulary());
        let alternatives = if hypotheses.len() > 1 {
            hypotheses.iter().map(|h| Alternative { text: text_of(&h.words), score: h.score }).collect()
        } else {
            Vec::new()
        };
        let best = hypotheses.into_iter().next().map(|h| h.words).unwrap_or_default();
        let mut transcript = Transcript::new(best, duration_s);
        transcript.alternatives = alternatives;
        transcript
    }
}

fn read_decoder_config(dir: &Path) -> Result<DecoderConfig, LoadError> {
    let path = dir.join("decoder.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| LoadError::DecoderConfig { path, message: e.to_string() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DecoderConfig::default()),
        Err(e) => Err(LoadError::DecoderConfig { path, message: e.to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits() -> Recognizer {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/fsdd-digits");
        Recognizer::load(Some(&dir), AudioLimits::default(), None).unwrap()
    }

    fn greedy(r: &Recognizer) -> Decoding {
        r.decoding(&DecodeOptions { decoder: Some(DecoderKind::Greedy), ..Default::default() }).unwrap()
    }

    #[test]
    fn audio_shorter_than_one_network_step_gives_an_empty_transcript() {
        let r = digits();
        let transcript = r.transcribe(&Waveform::from_samples(vec![0.0; 300]), &greedy(&r)).unwrap();
        assert_eq!(transcript.text, "");
        assert!(transcript.words.is_empty());
        assert!((transcript.duration_s - 300.0 / 16_000.0).abs() < 1e-9);
    }

    #[test]
    fn long_audio_is_cut_into_pieces_no_longer_than_the_window() {
        let take = audio::decode(include_bytes!("../../../tests/data/formats/7_jackson_1.flac"), &AudioLimits::default()).unwrap();
        let pause = vec![0.0; 16_000];
        let samples: Vec<f32> = (0..30).flat_map(|_| [take.samples(), &pause].concat()).collect();
        let waveform = Waveform::from_samples(samples);
        assert!(waveform.duration_s() > 40.0);
        for window_s in [DEFAULT_WINDOW_S, 5.0] {
            let cut = digits().with_window_s(window_s).cut(&waveform);
            let ends: Vec<f64> = cut.starts_s().iter().skip(1).copied().chain([waveform.duration_s()]).collect();
            assert!(cut.starts_s().len() >= (waveform.duration_s() / window_s) as usize, "{window_s} s: {:?}", cut.starts_s());
            assert!(
                cut.starts_s().iter().zip(&ends).all(|(start, end)| end - start <= window_s + 1e-9),
                "{window_s} s: {:?}",
                cut.starts_s()
            );
        }
    }

    #[test]
    fn audio_errors_pass_through_unchanged() {
        let r = digits();
        let err = r.transcribe_bytes(b"not audio at all", &greedy(&r)).unwrap_err();
        assert!(matches!(err, RecognizeError::Audio(AudioError::UnknownFormat { .. })), "{err}");
    }

    #[test]
    fn the_embedded_default_model_loads_with_its_decoder_and_language_model() {
        let recognizer = Recognizer::load(None, AudioLimits::default(), None).unwrap();
        assert_eq!(recognizer.model().config().name, crate::model::DEFAULT_MODEL);
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models").join(crate::model::DEFAULT_MODEL);
        let from_dir = Recognizer::load(Some(&dir), AudioLimits::default(), None).unwrap();
        assert_eq!(recognizer.decoding, from_dir.decoding);
        assert_eq!(recognizer.decoding.decoder, DecoderKind::Beam);
        assert!(recognizer.lm.is_some());
        assert!(recognizer.punctuator().is_some() && from_dir.punctuator().is_some());
        let negative = DecodeOptions { blank_penalty: Some(-1.0), ..Default::default() };
        assert!(matches!(recognizer.decoding(&negative).err(), Some(DecodeOptionsError::OutOfRange { name: "blank_penalty", .. })));
        assert!(recognizer.decoding(&DecodeOptions { blank_penalty: Some(0.0), ..Default::default() }).is_ok());
    }

    #[test]
    fn beam_only_options_imply_beam_search_and_are_refused_with_greedy() {
        let r = digits();
        assert!(r.decoding(&DecodeOptions { hotwords: Some("nine".into()), ..Default::default() }).is_ok());
        let greedy_with_hotwords =
            DecodeOptions { decoder: Some(DecoderKind::Greedy), hotwords: Some("nine".into()), ..Default::default() };
        assert_eq!(r.decoding(&greedy_with_hotwords).err(), Some(DecodeOptionsError::NeedsBeam("hotwords")));
        let too_wide = DecodeOptions { beam_size: Some(1000), ..Default::default() };
        assert!(matches!(r.decoding(&too_wide).err(), Some(DecodeOptionsError::OutOfRange { name: "beam_size", .. })));
        let no_lm = DecodeOptions { lm_weight: Some(0.5), ..Default::default() };
        assert_eq!(r.decoding(&no_lm).err(), Some(DecodeOptionsError::NeedsLm("lm_weight")));
        let no_lm = DecodeOptions { blank_penalty: Some(1.0), ..Default::default() };
        assert_eq!(r.decoding(&no_lm).err(), Some(DecodeOptionsError::NeedsLm("blank_penalty")));
        for decoder in [None, Some(DecoderKind::Greedy), Some(DecoderKind::Beam)] {
            let none = DecodeOptions { decoder, alternatives: Some(0), ..Default::default() };
            assert!(matches!(r.decoding(&none).err(), Some(DecodeOptionsError::OutOfRange { name: "alternatives", .. })), "{decoder:?}");
        }
    }

    #[test]
    fn alternatives_list_the_n_best_with_the_transcript_first() {
        let r = digits();
        // An FSDD take kept in the repository, so unit tests need no shared data.
        let wav = include_bytes!("../../../tests/data/formats/7_jackson_1.flac");
        let decoding = r.decoding(&DecodeOptions { alternatives: Some(3), ..Default::default() }).unwrap();
        let t = r.transcribe_bytes(wav, &decoding).unwrap();
        assert_eq!(t.alternatives.len(), 3);
        assert_eq!(t.alternatives[0].text, t.text);
        assert!(t.alternatives.windows(2).all(|w| w[0].score >= w[1].score && w[0].text != w[1].text));
    }
}
