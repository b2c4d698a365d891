//! Compressed and non-WAV containers, decoded by symphonia (pure Rust):
//! FLAC, MP3, Ogg Vorbis, MP4/M4A with AAC or ALAC, AIFF, CAF, Matroska/WebM.
//!
//! Each packet is decoded, mixed to mono and resampled as it comes, so a
//! file's memory is its 16 kHz mono output, and decoding stops the moment
//! the output passes the duration limit.

use std::io::Cursor;

use symphonia::core::codecs::audio::well_known::{CODEC_ID_AC3, CODEC_ID_DCA, CODEC_ID_EAC3, CODEC_ID_OPUS, CODEC_ID_SPEEX, CODEC_ID_WMA};
use symphonia::core::codecs::audio::{AudioCodecId, AudioDecoderOptions};
use symphonia::core::codecs::CodecParameters;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;

use super::resample::StreamResampler;
use super::{mix_to_mono, sniff, AudioError, AudioLimits, Waveform, SAMPLE_RATE_HZ};

/// Codecs people send that have no pure-Rust decoder, by name.
fn codec_name(id: AudioCodecId) -> String {
    match id {
        CODEC_ID_OPUS => "Opus".into(),
        CODEC_ID_SPEEX => "Speex".into(),
        CODEC_ID_AC3 => "AC-3".into(),
        CODEC_ID_EAC3 => "E-AC-3".into(),
        CODEC_ID_DCA => "DTS".into(),
        CODEC_ID_WMA => "Windows Media Audio".into(),
        other => format!("codec {other}"),
    }
}

pub(super) fn decode(bytes: &[u8], limits: &AudioLimits) -> Result<Waveform, AudioError> {
    let source = MediaSourceStream::new(Box::new(Cursor::new(bytes)), MediaSourceStreamOptions::default());
    let mut reader = symphonia::default::get_probe()
        .probe(&Hint::new(), source, FormatOptions::default(), MetadataOptions::default())
        .map_err(|_| AudioError::UnknownFormat { detected: sniff(bytes) })?;
    let container = reader.format_info().short_name;
    let malformed = |e: SymphoniaError| AudioError::Malformed { container, message: e.to_string() };
    let track = reader.default_track(TrackType::Audio).ok_or(AudioError::NoSamples { container })?;
    let track_id = track.id;
    let Some(CodecParameters::Audio(params)) = track.codec_params.clone() else {
        return Err(AudioError::NoSamples { container });
    };
    let mut decoder = symphonia::default::get_codecs().make_audio_decoder(&params, &AudioDecoderOptions::default()).map_err(|_| {
        AudioError::UnsupportedCodec {
            container,
            codec: codec_name(params.codec),
            advice: "it has no pure-Rust decoder; send FLAC, MP3, Vorbis, AAC or WAV",
        }
    })?;
    let max_samples = (limits.max_duration_s * f64::from(SAMPLE_RATE_HZ)).ceil() as usize;
    let too_long =
        |samples: usize| AudioError::TooLong { duration_s: samples as f64 / f64::from(SAMPLE_RATE_HZ), max_s: limits.max_duration_s };
    let mut resampler: Option<(u32, StreamResampler)> = None;
    let (mut interleaved, mut samples) = (Vec::new(), Vec::new());
    while let Some(packet) = reader.next_packet().map_err(malformed)? {
        if packet.track_id != track_id {
            continue;
        }
        let buffer = match decoder.decode(&packet) {
            Ok(buffer) => buffer,
            // A corrupt packet is skipped, as players do; the rest still decodes.
            Err(SymphoniaError::DecodeError(_)) => continue,
            Err(e) => return Err(malformed(e)),
        };
        let (rate_hz, channels) = (buffer.spec().rate(), buffer.spec().channels().count());
        if channels == 0 || buffer.frames() == 0 {
            continue;
        }
        let resampler = match &mut resampler {
            Some((rate, resampler)) if *rate == rate_hz => resampler,
            Some(_) => {
                return Err(AudioError::Malformed { container, message: "the sample rate changes in the middle of the stream".into() })
            }
            None => &mut resampler.insert((rate_hz, StreamResampler::new(rate_hz)?)).1,
        };
        buffer.copy_to_vec_interleaved(&mut interleaved);
        resampler.push(&mix_to_mono(&interleaved, channels), &mut samples)?;
        if samples.len() > max_samples {
            return Err(too_long(samples.len()));
        }
    }
    let Some((_, resampler)) = resampler else {
        return Err(AudioError::NoSamples { container });
    };
    resampler.finish(&mut samples)?;
    if samples.len() > max_samples {
        return Err(too_long(samples.len()));
    }
    Ok(Waveform::from_samples(samples))
}
