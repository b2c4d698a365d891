//! Compressed and non-WAV containers, demuxed by symphonia (pure Rust):
//! FLAC, MP3, Ogg, MP4/M4A, AIFF, CAF, Matroska/WebM, with symphonia's
//! decoders (Vorbis, AAC, ALAC, PCM) or, for Opus, [`super::opus`].
//!
//! Each packet is decoded, mixed to mono and resampled as it comes, so a
//! file's memory is its 16 kHz mono output, and decoding stops the moment
//! the output passes the duration limit.

use std::io::Cursor;

use symphonia::core::codecs::audio::well_known::{CODEC_ID_AC3, CODEC_ID_DCA, CODEC_ID_EAC3, CODEC_ID_OPUS, CODEC_ID_SPEEX, CODEC_ID_WMA};
use symphonia::core::codecs::audio::{AudioCodecId, AudioDecoder, AudioDecoderOptions};
use symphonia::core::codecs::CodecParameters;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;

use super::opus::OpusPackets;
use super::{claimed_container, sniff, AudioError, AudioLimits, Mixdown, Waveform, MAX_CHANNELS, SAMPLE_RATE_HZ};

/// Codecs people send that have no pure-Rust decoder, by name.
fn codec_name(id: AudioCodecId) -> String {
    match id {
        CODEC_ID_SPEEX => "Speex".into(),
        CODEC_ID_AC3 => "AC-3".into(),
        CODEC_ID_EAC3 => "E-AC-3".into(),
        CODEC_ID_DCA => "DTS".into(),
        CODEC_ID_WMA => "Windows Media Audio".into(),
        other => format!("codec {other}"),
    }
}

/// A file's reader positioned at its audio track, with the track's codec
/// parameters and length as the container states them.
struct Opened<'a> {
    reader: Box<dyn symphonia::core::formats::FormatReader + 'a>,
    container: &'static str,
    track_id: u32,
    params: symphonia::core::codecs::audio::AudioCodecParameters,
    num_frames: Option<u64>,
    /// Samples the decoder must drop from the start (Opus's pre-skip).
    delay: u32,
}

/// The channel count an AIFF file's COMM chunk declares. Checked before
/// symphonia sees the file: its AIFF reader computes the frame size in 16
/// bits and overflows on a header that claims tens of thousands.
fn aiff_channels(bytes: &[u8]) -> Option<usize> {
    if bytes.len() < 12 || &bytes[..4] != b"FORM" || !matches!(&bytes[8..12], b"AIFF" | b"AIFC") {
        return None;
    }
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes")) as usize;
        if &bytes[at..at + 4] == b"COMM" {
            return bytes.get(at + 8..at + 10).map(|n| usize::from(u16::from_be_bytes([n[0], n[1]])));
        }
        at = at.saturating_add(8).saturating_add(size).saturating_add(size & 1);
    }
    None
}

fn open(bytes: &[u8]) -> Result<Opened<'_>, AudioError> {
    if let Some(channels) = aiff_channels(bytes).filter(|&n| n > MAX_CHANNELS) {
        return Err(AudioError::TooManyChannels { channels, max: MAX_CHANNELS });
    }
    let source = MediaSourceStream::new(Box::new(Cursor::new(bytes)), MediaSourceStreamOptions::default());
    let reader = symphonia::default::get_probe()
        .probe(&Hint::new(), source, FormatOptions::default(), MetadataOptions::default())
        .map_err(|e| match claimed_container(bytes) {
            Some(container) => AudioError::Malformed { container, message: format!("it starts like {container} but cannot be read ({e})") },
            None => AudioError::UnknownFormat { detected: sniff(bytes) },
        })?;
    let container = reader.format_info().short_name;
    let track = reader.default_track(TrackType::Audio).ok_or(AudioError::NoSamples { container })?;
    // A fragmented MP4 (as a recorder writes it) states a length of 0 up
    // front and its fragments follow: unknown, not empty.
    let (track_id, num_frames, delay) = (track.id, track.num_frames.filter(|&n| n > 0), track.delay.unwrap_or(0));
    let Some(CodecParameters::Audio(params)) = track.codec_params.clone() else {
        return Err(AudioError::NoSamples { container });
    };
    if let Some(channels) = params.channels.as_ref().map(|c| c.count()).filter(|&n| n > MAX_CHANNELS) {
        return Err(AudioError::TooManyChannels { channels, max: MAX_CHANNELS });
    }
    Ok(Opened { reader, container, track_id, params, num_frames, delay })
}

/// Runs symphonia (or the Opus decoder) on untrusted bytes. Its demuxers
/// and decoders are not hardened against every crafted stream (fuzz/ found
/// a Vorbis floor that divides by zero): a panic inside them means a broken
/// file, answered as one, not a failed server.
pub(super) fn guarded<T>(work: impl FnOnce() -> Result<T, AudioError> + std::panic::UnwindSafe) -> Result<T, AudioError> {
    std::panic::catch_unwind(work)
        .unwrap_or_else(|_| Err(AudioError::Malformed { container: "audio", message: "the decoder failed on this stream".into() }))
}

/// The duration the container states, when it states one, checked against
/// the limit: lets a request be admitted, or refused, before its audio is
/// decoded.
pub(super) fn duration_s(bytes: &[u8], limits: &AudioLimits) -> Result<Option<f64>, AudioError> {
    guarded(|| stated_duration_s(bytes, limits))
}

fn stated_duration_s(bytes: &[u8], limits: &AudioLimits) -> Result<Option<f64>, AudioError> {
    let opened = open(bytes)?;
    let Some(rate_hz) = opened.params.sample_rate.filter(|&r| r > 0) else { return Ok(None) };
    let Some(duration_s) = opened.num_frames.map(|n| n as f64 / f64::from(rate_hz)) else { return Ok(None) };
    if duration_s > limits.max_duration_s {
        return Err(AudioError::TooLong { duration_s, max_s: limits.max_duration_s });
    }
    Ok(Some(duration_s))
}

fn is_cut_short(e: &SymphoniaError) -> bool {
    matches!(e, SymphoniaError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof)
}

pub(super) fn decode(bytes: &[u8], limits: &AudioLimits) -> Result<Waveform, AudioError> {
    guarded(|| decode_unguarded(bytes, limits))
}

/// A track's decoder: symphonia's for most codecs, hark's wrapper for Opus.
enum Packets {
    Symphonia(Box<dyn AudioDecoder>),
    Opus(Box<OpusPackets>),
}

impl Packets {
    fn new(opened: &Opened<'_>) -> Result<Self, AudioError> {
        let Opened { container, params, delay, num_frames, .. } = opened;
        let container = *container;
        if params.codec == CODEC_ID_OPUS {
            let channels = params.channels.as_ref().map_or(1, |c| c.count());
            if channels > 2 {
                return Err(AudioError::UnsupportedCodec {
                    container,
                    codec: format!("Opus with {channels} channels (surround)"),
                    advice: "send mono or stereo Opus",
                });
            }
            // The pre-skip: the container's, or the Opus header's (which
            // Matroska carries as the codec's private data, and MP4 in its
            // `dOps` box, whose fields are big-endian as all of MP4's are).
            let head = params.extra_data.as_deref().filter(|head| head.len() >= 12 && head.starts_with(b"OpusHead"));
            let read_u16 = if container == "isomp4" { u16::from_be_bytes } else { u16::from_le_bytes };
            let pre_skip = match (*delay, head) {
                (0, Some(head)) => u32::from(read_u16([head[10], head[11]])),
                (delay, _) => delay,
            };
            // Opus is timed at 48 kHz whatever the input rate was; the
            // stated length counts the pre-skip.
            let frames = num_frames.filter(|_| params.sample_rate == Some(48_000)).map(|n| n.saturating_sub(u64::from(pre_skip)));
            let opus =
                OpusPackets::new(pre_skip, frames).map_err(|e| AudioError::Malformed { container, message: format!("Opus: {e}") })?;
            return Ok(Self::Opus(Box::new(opus)));
        }
        let decoder = symphonia::default::get_codecs().make_audio_decoder(params, &AudioDecoderOptions::default()).map_err(|_| {
            AudioError::UnsupportedCodec {
                container,
                codec: codec_name(params.codec),
                advice: "it has no pure-Rust decoder; send Opus, FLAC, MP3, Vorbis, AAC or WAV",
            }
        })?;
        Ok(Self::Symphonia(decoder))
    }
}

fn decode_unguarded(bytes: &[u8], limits: &AudioLimits) -> Result<Waveform, AudioError> {
    let opened = open(bytes)?;
    let mut decoder = Packets::new(&opened)?;
    let Opened { mut reader, container, track_id, .. } = opened;
    let malformed = |e: SymphoniaError| AudioError::Malformed { container, message: e.to_string() };
    let max_samples = (limits.max_duration_s * f64::from(SAMPLE_RATE_HZ)).ceil() as usize;
    let too_long =
        |samples: usize| AudioError::TooLong { duration_s: samples as f64 / f64::from(SAMPLE_RATE_HZ), max_s: limits.max_duration_s };
    let mut mixdown: Option<Mixdown> = None;
    let mut interleaved = Vec::new();
    let mut packets = 0usize;
    loop {
        let packet = match reader.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            // A file cut short (an upload that stopped, a recorder killed):
            // what was decoded is kept, as players do.
            Err(e) if is_cut_short(&e) && mixdown.is_some() => break,
            Err(e) => return Err(malformed(e)),
        };
        if packet.track_id != track_id {
            continue;
        }
        packets += 1;
        let (rate_hz, channels) = match &mut decoder {
            Packets::Symphonia(decoder) => {
                let buffer = match decoder.decode(&packet) {
                    Ok(buffer) => buffer,
                    // A corrupt packet is skipped, as players do; the rest still decodes.
                    Err(SymphoniaError::DecodeError(_)) => continue,
                    Err(e) if is_cut_short(&e) && mixdown.is_some() => break,
                    Err(e) => return Err(malformed(e)),
                };
                buffer.copy_to_vec_interleaved(&mut interleaved);
                (buffer.spec().rate(), buffer.spec().channels().count())
            }
            Packets::Opus(decoder) => {
                interleaved.clear();
                // Opus cannot tell a damaged packet from a valid one except
                // by its framing: one that breaks it is a broken file.
                decoder
                    .decode(&packet.data, &mut interleaved)
                    .map_err(|e| AudioError::Malformed { container, message: format!("Opus packet {packets} cannot be decoded ({e})") })?;
                (SAMPLE_RATE_HZ, 1)
            }
        };
        if channels == 0 || interleaved.is_empty() {
            continue;
        }
        if channels > MAX_CHANNELS {
            return Err(AudioError::TooManyChannels { channels, max: MAX_CHANNELS });
        }
        let mixdown = match &mut mixdown {
            Some(mixdown) if mixdown.rate_hz == rate_hz => mixdown,
            Some(_) => {
                return Err(AudioError::Malformed { container, message: "the sample rate changes in the middle of the stream".into() })
            }
            None => mixdown.insert(Mixdown::new(container, rate_hz)?),
        };
        mixdown.push(&interleaved, channels)?;
        if mixdown.len() > max_samples {
            return Err(too_long(mixdown.len()));
        }
    }
    let waveform = mixdown.ok_or(AudioError::NoSamples { container })?.finish()?;
    if waveform.samples().len() > max_samples {
        return Err(too_long(waveform.samples().len()));
    }
    Ok(waveform)
}
