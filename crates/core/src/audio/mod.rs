//! Audio in: the bytes of an audio file → a 16 kHz mono [`Waveform`].
//!
//! The container is recognized from the bytes themselves, never from a file
//! name or a Content-Type, which callers get wrong. WAV takes its own fast
//! path ([`wav`]: PCM, float and G.711 read without a demuxer); FLAC, MP3,
//! Ogg Vorbis, MP4/M4A (AAC, ALAC), AIFF, CAF and Matroska/WebM are decoded
//! by symphonia ([`compressed`]). Every channel layout is mixed down to mono
//! and every rate from 8 to 48 kHz is resampled to 16 kHz ([`resample`]).
//!
//! The duration limit is enforced while decoding: a small compressed file can
//! hold hours of audio, so decoding stops as soon as the limit is passed.

mod compressed;
mod live;
mod opus;
mod resample;
mod wav;

pub use live::{Container, LiveOpus};
pub use resample::StreamResampler;

use crate::error::{Coded, ErrorKind};

/// The sample rate every later stage works at.
pub const SAMPLE_RATE_HZ: u32 = 16_000;
/// The lowest input rate accepted: narrow-band telephone audio.
pub const MIN_INPUT_RATE_HZ: u32 = 8_000;
/// The highest input rate accepted.
pub const MAX_INPUT_RATE_HZ: u32 = 48_000;

/// The most channels a file may have: 7.1 surround and third-order
/// ambisonics have 8 and 16; a header claiming thousands is an attack on
/// the decoder's memory.
const MAX_CHANNELS: usize = 32;

/// The formats named in errors, so a caller knows what to send instead.
const READABLE: &str = "WAV, FLAC, MP3, Ogg Vorbis, MP4/M4A (AAC, ALAC), AIFF, CAF or WebM/Matroska";

/// Mono audio at [`SAMPLE_RATE_HZ`], samples in [-1, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct Waveform {
    samples: Vec<f32>,
}

impl Waveform {
    /// Wraps 16 kHz mono samples in [-1, 1].
    pub fn from_samples(samples: Vec<f32>) -> Self {
        Self { samples }
    }

    pub fn samples(&self) -> &[f32] {
        &self.samples
    }

    pub fn duration_s(&self) -> f64 {
        self.samples.len() as f64 / f64::from(SAMPLE_RATE_HZ)
    }
}

/// What an upload may hold, set once at start-up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AudioLimits {
    /// Longer audio is refused (from a WAV header before decoding, or as
    /// soon as decoding passes it), so one request cannot hold the service
    /// for an hour of inference.
    pub max_duration_s: f64,
}

impl Default for AudioLimits {
    fn default() -> Self {
        Self { max_duration_s: 600.0 }
    }
}

/// Why an upload could not be turned into a [`Waveform`].
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AudioError {
    #[error("the body is empty: send the audio file's bytes")]
    Empty,
    #[error("unrecognized audio format: {detected}; send {READABLE}")]
    UnknownFormat { detected: String },
    #[error("truncated WAV: the header declares {declared} bytes of the '{chunk}' chunk but only {available} follow")]
    Truncated { chunk: String, declared: u64, available: u64 },
    #[error("malformed {container}: {message}")]
    Malformed { container: &'static str, message: String },
    #[error("unsupported codec in {container}: {codec}; {advice}")]
    UnsupportedCodec { container: &'static str, codec: String, advice: &'static str },
    #[error("unsupported sample rate {rate_hz} Hz; hark accepts {MIN_INPUT_RATE_HZ}–{MAX_INPUT_RATE_HZ} Hz")]
    UnsupportedSampleRate { rate_hz: u32 },
    #[error("the {container} file holds no audio samples")]
    NoSamples { container: &'static str },
    #[error("audio is over the {max_s:.1} s maximum (at least {duration_s:.1} s)")]
    TooLong { duration_s: f64, max_s: f64 },
    #[error("the file has {channels} channels; hark mixes at most {max}")]
    TooManyChannels { channels: usize, max: usize },
    #[error("the {container} file holds a sample that is not a finite number (NaN or infinity) at frame {frame}")]
    NonFiniteSample { container: &'static str, frame: usize },
}

impl Coded for AudioError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::UnknownFormat { .. } | Self::UnsupportedCodec { .. } | Self::UnsupportedSampleRate { .. } => ErrorKind::Unsupported,
            Self::Truncated { .. } | Self::Malformed { .. } | Self::NonFiniteSample { .. } | Self::TooManyChannels { .. } => {
                ErrorKind::Invalid
            }
            Self::Empty | Self::NoSamples { .. } | Self::TooLong { .. } => ErrorKind::Unprocessable,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::UnknownFormat { .. } => "unsupported_format",
            Self::UnsupportedCodec { .. } => "unsupported_codec",
            Self::UnsupportedSampleRate { .. } => "unsupported_sample_rate",
            Self::Truncated { .. } => "truncated_audio",
            Self::Malformed { .. } => "malformed_audio",
            Self::NonFiniteSample { .. } => "invalid_samples",
            Self::TooManyChannels { .. } => "too_many_channels",
            Self::Empty | Self::NoSamples { .. } => "no_samples",
            Self::TooLong { .. } => "audio_too_long",
        }
    }
}

/// Decodes an audio file of any supported format into 16 kHz mono.
pub fn decode(bytes: &[u8], limits: &AudioLimits) -> Result<Waveform, AudioError> {
    if bytes.is_empty() {
        return Err(AudioError::Empty);
    }
    if wav::is_wav(bytes) {
        wav::decode(bytes, limits)
    } else {
        compressed::decode(bytes, limits)
    }
}

/// The duration of an audio file as its header states it, checked as
/// [`decode`] checks it: cheap enough to decide whether to take on the work
/// of decoding it. None when the container does not say (MP3 without a
/// Xing header, live WebM), so the length is known only once decoded.
pub fn header_duration_s(bytes: &[u8], limits: &AudioLimits) -> Result<Option<f64>, AudioError> {
    if bytes.is_empty() {
        Err(AudioError::Empty)
    } else if wav::is_wav(bytes) {
        wav::duration_s(bytes, limits).map(Some)
    } else {
        compressed::duration_s(bytes, limits)
    }
}

/// The containers hark reads, by their first bytes: bytes that start like
/// one of these but cannot be parsed are a broken file (400), not an
/// unknown format (415).
const READ_MAGIC: [(&[u8], &str); 6] =
    [(b"fLaC", "FLAC"), (b"ID3", "MP3"), (b"FORM", "AIFF"), (b"caff", "CAF"), (b"\x1a\x45\xdf\xa3", "Matroska/WebM"), (b"OggS", "Ogg")];

/// The container the bytes claim to be, when hark reads it.
fn claimed_container(bytes: &[u8]) -> Option<&'static str> {
    if bytes.len() >= 8 && &bytes[4..8] == b"ftyp" {
        return Some("MP4");
    }
    READ_MAGIC.iter().find(|(magic, _)| bytes.starts_with(magic)).map(|(_, name)| *name)
}

/// Names what unreadable bytes look like, from their first bytes.
fn sniff(bytes: &[u8]) -> String {
    let named = [
        (&b"#!AMR"[..], "AMR audio, which hark does not read"),
        (b"RIFX", "big-endian RIFF, which hark does not read"),
        (b"RF64", "RF64 (64-bit WAV), which hark does not read"),
        (b"{", "JSON text"),
        (b"<", "HTML or XML text"),
    ];
    if let Some((_, name)) = named.iter().find(|(magic, _)| bytes.starts_with(magic)) {
        return format!("the bytes look like {name}");
    }
    if bytes.len() >= 2 && bytes[0] == 0xFF && bytes[1] & 0xE0 == 0xE0 {
        return "the bytes look like MPEG audio (MP3 or AAC)".into();
    }
    if bytes.starts_with(b"RIFF") {
        let form = String::from_utf8_lossy(&bytes[8.min(bytes.len())..12.min(bytes.len())]).into_owned();
        return format!("a RIFF file of form '{form}', not 'WAVE'");
    }
    let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("no known header (first bytes {})", head.join(" "))
}

/// Interleaved blocks in, 16 kHz mono out. Each block is checked for
/// non-finite samples, mixed down and resampled as it arrives, so a decoder
/// never holds more of a file than one block in all its channels: 32
/// channels of 8-bit audio held whole as f32 would take 128 times the
/// memory of their mono mix.
struct Mixdown {
    container: &'static str,
    rate_hz: u32,
    resampler: StreamResampler,
    /// Input frames pushed so far, to place a bad sample in the file.
    frames: usize,
    /// The mix of one block, reused.
    mono: Vec<f32>,
    samples: Vec<f32>,
}

impl Mixdown {
    fn new(container: &'static str, rate_hz: u32) -> Result<Self, AudioError> {
        Ok(Self { container, rate_hz, resampler: StreamResampler::new(rate_hz)?, frames: 0, mono: Vec::new(), samples: Vec::new() })
    }

    /// Takes the next frames, `channels` samples each.
    fn push(&mut self, interleaved: &[f32], channels: usize) -> Result<(), AudioError> {
        if let Some(i) = interleaved.iter().position(|s| !s.is_finite()) {
            return Err(AudioError::NonFiniteSample { container: self.container, frame: self.frames + i / channels });
        }
        self.frames += interleaved.len() / channels;
        if channels == 1 {
            return self.resampler.push(interleaved, &mut self.samples);
        }
        let scale = 1.0 / channels as f32;
        self.mono.clear();
        self.mono.extend(interleaved.chunks_exact(channels).map(|frame| frame.iter().sum::<f32>() * scale));
        self.resampler.push(&self.mono, &mut self.samples)
    }

    /// 16 kHz samples produced so far.
    fn len(&self) -> usize {
        self.samples.len()
    }

    fn finish(self) -> Result<Waveform, AudioError> {
        let mut samples = self.samples;
        self.resampler.finish(&mut samples)?;
        if samples.is_empty() {
            return Err(AudioError::NoSamples { container: self.container });
        }
        Ok(Waveform::from_samples(samples))
    }
}

fn check_rate(rate_hz: u32) -> Result<(), AudioError> {
    if (MIN_INPUT_RATE_HZ..=MAX_INPUT_RATE_HZ).contains(&rate_hz) {
        Ok(())
    } else {
        Err(AudioError::UnsupportedSampleRate { rate_hz })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_bytes_are_named_in_the_error() {
        let limits = AudioLimits::default();
        for (bytes, named) in [
            (&b"{\"audio\": 1}"[..], "JSON"),
            (b"<html><body>", "HTML"),
            (b"RIFF\x10\x00\x00\x00AVI LIST", "'AVI '"),
            (b"\x00\x01\x02\x03\x04\x05\x06\x07\x08", "00 01 02"),
        ] {
            match decode(bytes, &limits) {
                Err(AudioError::UnknownFormat { detected }) => assert!(detected.contains(named), "{detected} should name {named}"),
                other => panic!("{named}: {other:?}"),
            }
        }
        assert_eq!(decode(b"", &limits), Err(AudioError::Empty));
    }

    #[test]
    fn broken_files_of_a_known_format_are_malformed_not_unknown() {
        let limits = AudioLimits::default();
        for bytes in
            [&b"fLaC\x00\x00\x00\x22garbage"[..], b"OggS\x00\x02garbage", b"FORM\x00\x00\x00\x04AIFF", b"\x00\x00\x00\x18ftypM4A junk"]
        {
            match decode(bytes, &limits) {
                Err(AudioError::Malformed { .. }) => {}
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(bytes)),
            }
        }
    }
}
