//! The recognizer: audio bytes → [`Transcript`], the whole pipeline behind
//! one call. It knows nothing of HTTP; the server and the command line are
//! thin adapters over it.

use crate::audio::{decode_wav, AudioError, AudioLimits, Waveform};
use crate::ctc::CtcDecoder;
use crate::features::{FeatureConfigError, Fbank};
use crate::model::{AcousticModel, ModelError, ModelFiles};
use crate::transcript::Transcript;

/// Why a recognizer could not be built.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("the model's feature settings cannot be served: {0}")]
    Features(#[from] FeatureConfigError),
}

/// Why one request could not be recognized.
#[derive(Debug, thiserror::Error)]
pub enum RecognizeError {
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error("the acoustic model failed: {0}")]
    Model(#[from] candle_core::Error),
}

/// A loaded model with its feature extractor; shared by all requests.
#[derive(Debug)]
pub struct Recognizer {
    model: AcousticModel,
    fbank: Fbank,
    limits: AudioLimits,
}

impl Recognizer {
    pub fn new(model: AcousticModel, limits: AudioLimits) -> Result<Self, LoadError> {
        let fbank = Fbank::new(model.config().features.clone())?;
        Ok(Self { model, fbank, limits })
    }

    /// Loads a model directory, or the embedded default when `dir` is None.
    pub fn load(dir: Option<&std::path::Path>, limits: AudioLimits) -> Result<Self, LoadError> {
        let model = match dir {
            Some(dir) => AcousticModel::load_dir(dir)?,
            None => AcousticModel::load(&ModelFiles::embedded_default())?,
        };
        Self::new(model, limits)
    }

    pub fn model(&self) -> &AcousticModel {
        &self.model
    }

    /// Decodes a WAV file and recognizes it.
    pub fn transcribe_wav(&self, bytes: &[u8], decoder: &dyn CtcDecoder) -> Result<Transcript, RecognizeError> {
        let waveform = decode_wav(bytes, &self.limits)?;
        self.transcribe(&waveform, decoder)
    }

    /// Recognizes 16 kHz mono audio.
    pub fn transcribe(&self, waveform: &Waveform, decoder: &dyn CtcDecoder) -> Result<Transcript, RecognizeError> {
        let features = self.fbank.compute(waveform);
        let log_probs = self.model.forward(&features)?;
        let best = decoder
            .decode(&log_probs, self.model.vocabulary())
            .into_iter()
            .next()
            .map(|h| h.words)
            .unwrap_or_default();
        Ok(Transcript::new(best, waveform.duration_s()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctc::GreedyDecoder;

    fn digits() -> Recognizer {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fsdd-digits");
        Recognizer::load(Some(&dir), AudioLimits::default()).unwrap()
    }

    #[test]
    fn audio_shorter_than_one_network_step_gives_an_empty_transcript() {
        let transcript = digits().transcribe(&Waveform::from_samples(vec![0.0; 300]), &GreedyDecoder).unwrap();
        assert_eq!(transcript.text, "");
        assert!(transcript.words.is_empty());
        assert!((transcript.duration_s - 300.0 / 16_000.0).abs() < 1e-9);
    }

    #[test]
    fn audio_errors_pass_through_unchanged() {
        let err = digits().transcribe_wav(b"not audio at all", &GreedyDecoder).unwrap_err();
        assert!(matches!(err, RecognizeError::Audio(AudioError::NotWav { .. })), "{err}");
    }

    #[test]
    fn the_embedded_default_model_loads() {
        let recognizer = Recognizer::load(None, AudioLimits::default()).unwrap();
        assert_eq!(recognizer.model().config().name, crate::model::DEFAULT_MODEL);
    }
}
