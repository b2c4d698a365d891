//! Live streams: results while the audio is still arriving.
//!
//! The acoustic model is bidirectional, so every output step depends on the
//! whole utterance and nothing can be emitted frame by frame. A stream
//! instead keeps the utterance in progress and asks for it to be recognized
//! again every `partial_interval_s` of new audio (a *partial* result: the
//! audio received so far is its only right context, so its last word may
//! still change); when the [`Endpointer`] hears a pause of
//! `endpoint_silence_s` after speech, the utterance's speech (with 0.1 s of
//! pause around it, as long audio's pieces have) is recognized once more as
//! the *final* result, and the next utterance begins. An utterance that runs on without a pause is ended at
//! `max_utterance_s`, the longest the network hears at once.
//!
//! This module only decides *what* to recognize and when; running the
//! network and the decoder is the caller's (the server batches them with
//! other requests).

use std::ops::Range;

use serde::Serialize;

use crate::audio::{AudioError, Container, LiveOpus, StreamResampler, Waveform, SAMPLE_RATE_HZ};
use crate::error::{Coded, ErrorKind};
use crate::recognizer::DEFAULT_WINDOW_S;
use crate::vad::Endpointer;

/// Audio kept while nothing is said: enough for the pause the endpointer
/// keeps before speech (0.1 s, as long audio's pieces have), and the frame
/// the speech begins in.
const LEAD_IN_S: f64 = 0.2;

/// When a stream's results come.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamConfig {
    /// Seconds of new audio between two partial results.
    pub partial_interval_s: f64,
    /// A pause this long ends an utterance.
    pub endpoint_silence_s: f64,
    /// An utterance is ended here even without a pause.
    pub max_utterance_s: f64,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self { partial_interval_s: 0.5, endpoint_silence_s: 0.6, max_utterance_s: DEFAULT_WINDOW_S }
    }
}

/// Partial (may still change) or final (settled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResultKind {
    Partial,
    Final,
}

/// Audio to recognize for one result.
#[derive(Debug, Clone)]
pub struct Utterance {
    pub kind: ResultKind,
    /// Where the audio starts in the stream, in seconds.
    pub start_s: f64,
    pub waveform: Waveform,
}

/// Why a stream could not start.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StreamError {
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error("endpoint_silence_s must be between 0.2 and 5, not {0}")]
    EndpointSilence(f64),
}

impl Coded for StreamError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Audio(e) => e.kind(),
            Self::EndpointSilence(_) => ErrorKind::Invalid,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Audio(e) => e.code(),
            Self::EndpointSilence(_) => "invalid_stream_options",
        }
    }
}

/// What a stream's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFormat {
    /// Little-endian signed 16-bit mono PCM at this rate (8–48 kHz).
    Pcm16 { sample_rate_hz: u32 },
    /// Opus in a container, as a browser's `MediaRecorder` writes it.
    Opus(Container),
}

/// The bytes-to-samples stage of a stream.
enum Input {
    Pcm16 {
        resampler: Box<StreamResampler>,
        /// An odd byte left from the last chunk (half a sample).
        odd_byte: Option<u8>,
    },
    Opus(Box<LiveOpus>),
}

impl Input {
    fn new(format: StreamFormat) -> Result<Self, AudioError> {
        Ok(match format {
            StreamFormat::Pcm16 { sample_rate_hz } => {
                Self::Pcm16 { resampler: Box::new(StreamResampler::new(sample_rate_hz)?), odd_byte: None }
            }
            StreamFormat::Opus(container) => Self::Opus(Box::new(LiveOpus::new(container))),
        })
    }

    /// The 16 kHz samples that `bytes` complete.
    fn push(&mut self, bytes: &[u8]) -> Result<Vec<f32>, AudioError> {
        let mut out = Vec::new();
        match self {
            Self::Pcm16 { resampler, odd_byte } => {
                let mut joined = Vec::with_capacity(bytes.len() + 1);
                joined.extend(odd_byte.take());
                joined.extend_from_slice(bytes);
                if joined.len() % 2 == 1 {
                    *odd_byte = joined.pop();
                }
                let samples: Vec<f32> = joined.chunks_exact(2).map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0).collect();
                out.reserve(samples.len() * 3);
                resampler.push(&samples, &mut out)?;
            }
            Self::Opus(live) => live.push(bytes, &mut out)?,
        }
        Ok(out)
    }

    /// The samples still held back at the end of the stream.
    fn finish(self) -> Result<Vec<f32>, AudioError> {
        let mut tail = Vec::new();
        match self {
            Self::Pcm16 { resampler, .. } => resampler.finish(&mut tail)?,
            Self::Opus(live) => live.finish()?,
        }
        Ok(tail)
    }
}

/// One live stream: audio bytes in, [`Utterance`]s to recognize out.
pub struct Stream {
    config: StreamConfig,
    /// None once the stream has finished.
    input: Option<Input>,
    endpointer: Endpointer,
    /// The utterance in progress at 16 kHz, and where it starts in the stream.
    buffer: Vec<f32>,
    buffer_start: usize,
    /// 16 kHz samples since the last partial result.
    since_partial: usize,
}

impl Stream {
    /// A stream of audio in `format`.
    pub fn new(format: StreamFormat, config: StreamConfig) -> Result<Self, StreamError> {
        if !(0.2..=5.0).contains(&config.endpoint_silence_s) {
            return Err(StreamError::EndpointSilence(config.endpoint_silence_s));
        }
        Ok(Self {
            config,
            input: Some(Input::new(format)?),
            endpointer: Endpointer::new(config.endpoint_silence_s),
            buffer: Vec::new(),
            buffer_start: 0,
            since_partial: 0,
        })
    }

    /// Takes the stream's next bytes (a chunk may end anywhere, mid-sample
    /// or mid-packet); returns what is now due for recognition, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Utterance>, StreamError> {
        let samples = self.input.as_mut().expect("a finished stream takes no audio").push(bytes)?;
        Ok(self.push_samples(samples))
    }

    fn push_samples(&mut self, samples: Vec<f32>) -> Vec<Utterance> {
        let mut due = Vec::new();
        let ended = self.endpointer.push(&samples);
        self.since_partial += samples.len();
        self.buffer.extend(samples);
        for speech in ended {
            due.push(self.take(speech));
        }
        match self.endpointer.speech() {
            None => {
                // Nothing said yet: only the lead-in is worth keeping.
                let end = self.buffer_start + self.buffer.len();
                self.discard_until(end.saturating_sub(seconds_to_samples(LEAD_IN_S)));
                self.since_partial = 0;
            }
            Some(speech) => {
                self.discard_until(speech.start);
                if self.buffer.len() >= seconds_to_samples(self.config.max_utterance_s) {
                    due.push(self.take(self.buffer_start..self.buffer_start + self.buffer.len()));
                } else if self.since_partial >= seconds_to_samples(self.config.partial_interval_s) {
                    self.since_partial = 0;
                    due.push(Utterance {
                        kind: ResultKind::Partial,
                        start_s: self.start_s(),
                        waveform: Waveform::from_samples(self.buffer.clone()),
                    });
                }
            }
        }
        due
    }

    /// The end of the stream: the final results still due (the utterance
    /// in progress among them, if speech was heard in it).
    pub fn finish(mut self) -> Result<Vec<Utterance>, StreamError> {
        let tail = self.input.take().expect("a stream finishes once").finish()?;
        let mut due = self.push_samples(tail);
        if let Some(speech) = self.endpointer.speech() {
            due.push(self.take(speech));
        }
        due.retain(|u| u.kind == ResultKind::Final);
        Ok(due)
    }

    /// Ends the utterance in progress with the audio of `span` (samples in
    /// the stream), as a final result; what follows it begins the next.
    fn take(&mut self, span: Range<usize>) -> Utterance {
        self.discard_until(span.start);
        let len = span.end.saturating_sub(self.buffer_start).min(self.buffer.len());
        let utterance = Utterance {
            kind: ResultKind::Final,
            start_s: self.start_s(),
            waveform: Waveform::from_samples(self.buffer.drain(..len).collect()),
        };
        self.buffer_start += len;
        self.since_partial = 0;
        utterance
    }

    /// Drops the buffered audio before sample `position` of the stream.
    fn discard_until(&mut self, position: usize) {
        let drop = position.saturating_sub(self.buffer_start).min(self.buffer.len());
        self.buffer.drain(..drop);
        self.buffer_start += drop;
    }

    fn start_s(&self) -> f64 {
        self.buffer_start as f64 / f64::from(SAMPLE_RATE_HZ)
    }
}

fn seconds_to_samples(seconds: f64) -> usize {
    (seconds * f64::from(SAMPLE_RATE_HZ)).round() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Little-endian PCM16 of tone bursts ("speech") and faint noise ("pauses").
    fn pcm(pattern: &[(bool, f64)], rate_hz: u32) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut seed = 7u32;
        for &(loud, seconds) in pattern {
            for i in 0..(seconds * f64::from(rate_hz)) as usize {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let noise = ((seed >> 9) as f32 / (1 << 23) as f32 - 0.5) * 0.002;
                let tone = if loud { 0.3 * (i as f32 * 2.0 * std::f32::consts::PI * 220.0 / rate_hz as f32).sin() } else { 0.0 };
                bytes.extend_from_slice(&(((tone + noise) * 32767.0) as i16).to_le_bytes());
            }
        }
        bytes
    }

    fn run(bytes: &[u8], rate_hz: u32, chunk: usize, config: StreamConfig) -> Vec<Utterance> {
        let mut stream = Stream::new(StreamFormat::Pcm16 { sample_rate_hz: rate_hz }, config).unwrap();
        let mut due = Vec::new();
        for piece in bytes.chunks(chunk) {
            due.extend(stream.push(piece).unwrap());
        }
        due.extend(stream.finish().unwrap());
        due
    }

    fn finals(due: &[Utterance]) -> Vec<(f64, f64)> {
        due.iter().filter(|u| u.kind == ResultKind::Final).map(|u| (u.start_s, u.start_s + u.waveform.duration_s())).collect()
    }

    #[test]
    fn utterances_end_at_pauses_with_partials_between() {
        // 2 s of noise, 2 s "speech", 1 s pause, 1.5 s speech, 0.2 s pause, end.
        let bytes = pcm(&[(false, 2.0), (true, 2.0), (false, 1.0), (true, 1.5), (false, 0.2)], 16_000);
        // Odd chunk sizes split samples between chunks.
        let due = run(&bytes, 16_000, 1_601, StreamConfig::default());
        let finals = finals(&due);
        assert_eq!(finals.len(), 2, "{finals:?}");
        // Each is its speech with 0.1 s of pause around it.
        let near = |a: f64, b: f64| (a - b).abs() < 0.015;
        assert!(near(finals[0].0, 1.9) && near(finals[0].1, 4.1), "{finals:?}");
        assert!(near(finals[1].0, 4.9) && near(finals[1].1, 6.6), "{finals:?}");
        // Partials every 0.5 s of speech, none in the leading noise; each
        // holds the utterance so far.
        let partials: Vec<&Utterance> = due.iter().filter(|u| u.kind == ResultKind::Partial).collect();
        assert!((5..=10).contains(&partials.len()), "{} partials", partials.len());
        assert!(partials.iter().all(|p| p.start_s >= 1.8), "a partial in the leading noise");
        let first_utterance: Vec<f64> = partials.iter().filter(|p| p.start_s == finals[0].0).map(|p| p.waveform.duration_s()).collect();
        assert!(first_utterance.windows(2).all(|w| w[1] > w[0]), "{first_utterance:?}");
    }

    #[test]
    fn silence_alone_gives_no_result_and_speech_without_pause_is_cut_at_the_maximum() {
        assert!(run(&pcm(&[(false, 5.0)], 16_000), 16_000, 3_200, StreamConfig::default()).is_empty());
        let config = StreamConfig { max_utterance_s: 2.0, ..StreamConfig::default() };
        let finals = finals(&run(&pcm(&[(true, 5.0)], 16_000), 16_000, 3_200, config));
        assert_eq!(finals.len(), 3, "{finals:?}");
        assert!(finals[..2].iter().all(|(start, end)| (end - start - 2.0).abs() < 1e-9), "{finals:?}");
    }

    #[test]
    fn other_rates_are_resampled_to_the_same_timeline() {
        let pattern = [(false, 1.0), (true, 1.0), (false, 1.0)];
        let at_16k = finals(&run(&pcm(&pattern, 16_000), 16_000, 640, StreamConfig::default()));
        let at_8k = finals(&run(&pcm(&pattern, 8_000), 8_000, 320, StreamConfig::default()));
        assert_eq!((at_16k.len(), at_8k.len()), (1, 1));
        assert!((at_16k[0].0 - at_8k[0].0).abs() < 0.03 && (at_16k[0].1 - at_8k[0].1).abs() < 0.03, "{at_16k:?} {at_8k:?}");
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(matches!(
            Stream::new(StreamFormat::Pcm16 { sample_rate_hz: 4_000 }, StreamConfig::default()),
            Err(StreamError::Audio(AudioError::UnsupportedSampleRate { .. }))
        ));
        let config = StreamConfig { endpoint_silence_s: 0.05, ..StreamConfig::default() };
        assert_eq!(Stream::new(StreamFormat::Pcm16 { sample_rate_hz: 16_000 }, config).err(), Some(StreamError::EndpointSilence(0.05)));
    }
}
