//! WAV, read without a demuxer: the common case, kept fast.
//!
//! Integer PCM of 8 to 32 bits, IEEE float (plain or WAVE_FORMAT_EXTENSIBLE)
//! and G.711 μ-law and A-law, which telephone systems such as Asterisk
//! record, are converted straight from the bytes, a block of frames at a
//! time, and mixed down as they go.
//!
//! The RIFF chunks are walked first so that a bad upload gets an error naming
//! what is wrong with it: which codec it really holds, or how many bytes the
//! header promised against how many arrived.

use super::{check_rate, AudioError, AudioLimits, Mixdown, Waveform, MAX_CHANNELS};

fn malformed(message: String) -> AudioError {
    AudioError::Malformed { container: "WAV", message }
}

const WAVE_FORMAT_PCM: u16 = 0x0001;
const WAVE_FORMAT_IEEE_FLOAT: u16 = 0x0003;
const WAVE_FORMAT_ALAW: u16 = 0x0006;
const WAVE_FORMAT_MULAW: u16 = 0x0007;
const WAVE_FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// Names of the codecs people actually find inside WAV files, for errors.
fn codec_name(tag: u16) -> &'static str {
    match tag {
        0x0002 => "Microsoft ADPCM",
        0x0011 => "IMA ADPCM",
        0x0031 => "GSM 6.10",
        0x0040 => "G.721 ADPCM",
        0x0050 => "MPEG audio",
        0x0055 => "MP3",
        0x0092 => "Dolby AC-3",
        0x0161..=0x0163 => "Windows Media Audio",
        0x00FF | 0x1610 => "AAC",
        0x2000 => "AC-3",
        0xF1AC => "FLAC",
        _ => "an unknown codec",
    }
}

/// Whether the bytes are a RIFF/WAVE file.
pub(super) fn is_wav(bytes: &[u8]) -> bool {
    bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WAVE"
}

/// What the `fmt ` chunk says, with the extensible sub-format resolved.
#[derive(Debug, Clone, Copy)]
struct WavFormat {
    tag: u16,
    channels: u16,
    rate_hz: u32,
    bits_per_sample: u16,
}

/// Walks the RIFF chunks: checks every declared size against the body and
/// returns the format with the byte range of the `data` chunk.
fn parse_chunks(bytes: &[u8]) -> Result<(WavFormat, std::ops::Range<usize>), AudioError> {
    let mut format = None;
    let mut offset = 12usize;
    while offset + 8 <= bytes.len() {
        let id = &bytes[offset..offset + 4];
        let size = u32::from_le_bytes(bytes[offset + 4..offset + 8].try_into().expect("4 bytes")) as usize;
        let body = offset + 8;
        let available = bytes.len() - body;
        // Recorders writing to a pipe cannot seek back to fill in the size,
        // and leave it at the maximum: the data runs to the end of the file.
        if id == b"data" && size == u32::MAX as usize {
            let format = format.ok_or_else(|| malformed("the 'data' chunk comes before any 'fmt ' chunk".into()))?;
            return Ok((format, body..bytes.len()));
        }
        if size > available {
            return Err(AudioError::Truncated {
                chunk: String::from_utf8_lossy(id).trim_end().to_string(),
                declared: size as u64,
                available: available as u64,
            });
        }
        match id {
            b"fmt " => format = Some(parse_fmt(&bytes[body..body + size])?),
            b"data" => {
                let format = format.ok_or_else(|| malformed("the 'data' chunk comes before any 'fmt ' chunk".into()))?;
                return Ok((format, body..body + size));
            }
            _ => {}
        }
        // Chunks are padded to an even length.
        offset = body + size + (size & 1);
    }
    Err(match format {
        None => malformed("no 'fmt ' chunk".into()),
        Some(_) => AudioError::NoSamples { container: "WAV" },
    })
}

fn parse_fmt(chunk: &[u8]) -> Result<WavFormat, AudioError> {
    if chunk.len() < 16 {
        return Err(malformed(format!("the 'fmt ' chunk is {} bytes, at least 16 are needed", chunk.len())));
    }
    let u16_at = |i: usize| u16::from_le_bytes([chunk[i], chunk[i + 1]]);
    let mut tag = u16_at(0);
    if tag == WAVE_FORMAT_EXTENSIBLE {
        if chunk.len() < 40 {
            return Err(malformed("WAVE_FORMAT_EXTENSIBLE 'fmt ' chunk is shorter than 40 bytes".into()));
        }
        // The sub-format GUID starts with the plain format tag.
        tag = u16_at(24);
    }
    Ok(WavFormat {
        tag,
        channels: u16_at(2),
        rate_hz: u32::from_le_bytes(chunk[4..8].try_into().expect("4 bytes")),
        bits_per_sample: u16_at(14),
    })
}

/// The duration of a WAV file from its header alone, checked as
/// [`decode`] checks it: cheap enough to decide whether to take on the
/// work of decoding it.
pub(super) fn duration_s(bytes: &[u8], limits: &AudioLimits) -> Result<f64, AudioError> {
    let (format, data) = check_header(bytes, limits)?;
    Ok((data.len() / bytes_per_frame(&format)) as f64 / f64::from(format.rate_hz))
}

fn bytes_per_frame(format: &WavFormat) -> usize {
    usize::from(format.channels) * usize::from(format.bits_per_sample).div_ceil(8).max(1)
}

/// The format and data range of a WAV file hark can decode within `limits`.
fn check_header(bytes: &[u8], limits: &AudioLimits) -> Result<(WavFormat, std::ops::Range<usize>), AudioError> {
    let (format, data) = parse_chunks(bytes)?;
    match format.tag {
        WAVE_FORMAT_PCM | WAVE_FORMAT_IEEE_FLOAT | WAVE_FORMAT_ALAW | WAVE_FORMAT_MULAW => {}
        tag => {
            return Err(AudioError::UnsupportedCodec {
                container: "WAV",
                codec: format!("{} (format tag 0x{tag:04x})", codec_name(tag)),
                advice: "send PCM, IEEE float, μ-law or A-law WAV, or a compressed format hark reads",
            })
        }
    }
    if format.channels == 0 {
        return Err(malformed("the 'fmt ' chunk declares 0 channels".into()));
    }
    // The sample width decides how the data chunk is read and how long the
    // header says the audio is: both must agree with what is decoded.
    let widths: &[u16] = match format.tag {
        WAVE_FORMAT_PCM => &[8, 16, 24, 32],
        WAVE_FORMAT_IEEE_FLOAT => &[32],
        _ => &[8],
    };
    if !widths.contains(&format.bits_per_sample) {
        return Err(malformed(format!("{} bits per sample, which this codec does not have", format.bits_per_sample)));
    }
    if usize::from(format.channels) > MAX_CHANNELS {
        return Err(AudioError::TooManyChannels { channels: usize::from(format.channels), max: MAX_CHANNELS });
    }
    check_rate(format.rate_hz)?;
    // Refuse long audio from the header, before spending time decoding it.
    let frames = data.len() / bytes_per_frame(&format);
    let duration_s = frames as f64 / f64::from(format.rate_hz);
    if duration_s > limits.max_duration_s {
        return Err(AudioError::TooLong { duration_s, max_s: limits.max_duration_s });
    }
    if frames == 0 {
        return Err(AudioError::NoSamples { container: "WAV" });
    }
    Ok((format, data))
}

/// Frames converted and mixed down at a time.
const BLOCK_FRAMES: usize = 4096;

/// Decodes a WAV file into 16 kHz mono audio, a block at a time.
pub(super) fn decode(bytes: &[u8], limits: &AudioLimits) -> Result<Waveform, AudioError> {
    let (format, data) = check_header(bytes, limits)?;
    let channels = usize::from(format.channels);
    let frame_bytes = bytes_per_frame(&format);
    // Whole frames only: a recorder killed mid-write leaves half of one.
    let data = &bytes[data.start..data.start + data.len() / frame_bytes * frame_bytes];
    let mut mixdown = Mixdown::new("WAV", format.rate_hz)?;
    match (format.tag, format.bits_per_sample) {
        (WAVE_FORMAT_MULAW, _) => mix_blocks(data, channels, &mut mixdown, |[b]: [u8; 1]| mulaw_to_linear(b))?,
        (WAVE_FORMAT_ALAW, _) => mix_blocks(data, channels, &mut mixdown, |[b]: [u8; 1]| alaw_to_linear(b))?,
        (WAVE_FORMAT_IEEE_FLOAT, _) => mix_blocks(data, channels, &mut mixdown, f32::from_le_bytes)?,
        (_, 8) => mix_blocks(data, channels, &mut mixdown, |[b]: [u8; 1]| (f32::from(b) - 128.0) / 128.0)?,
        (_, 16) => mix_blocks(data, channels, &mut mixdown, |b| f32::from(i16::from_le_bytes(b)) / 32_768.0)?,
        (_, 24) => {
            mix_blocks(data, channels, &mut mixdown, |[a, b, c]: [u8; 3]| (i32::from_le_bytes([0, a, b, c]) >> 8) as f32 / 8_388_608.0)?
        }
        _ => mix_blocks(data, channels, &mut mixdown, |b| i32::from_le_bytes(b) as f32 / 2_147_483_648.0)?,
    }
    mixdown.finish()
}

/// Converts whole frames of `N`-byte little-endian samples with `convert`
/// and mixes them down, a block at a time (generic, so each conversion is
/// inlined into its loop).
fn mix_blocks<const N: usize>(
    data: &[u8],
    channels: usize,
    mixdown: &mut Mixdown,
    convert: impl Fn([u8; N]) -> f32,
) -> Result<(), AudioError> {
    let mut block = Vec::with_capacity(BLOCK_FRAMES * channels);
    for chunk in data.chunks(BLOCK_FRAMES * channels * N) {
        block.clear();
        block.extend(chunk.chunks_exact(N).map(|sample| convert(sample.try_into().expect("N bytes"))));
        mixdown.push(&block, channels)?;
    }
    Ok(())
}

/// ITU-T G.711 μ-law expansion, scaled to [-1, 1].
fn mulaw_to_linear(code: u8) -> f32 {
    let code = !code;
    let sign = code & 0x80;
    let exponent = (code >> 4) & 0x07;
    let mantissa = i32::from(code & 0x0F);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    let value = if sign != 0 { -magnitude } else { magnitude };
    value as f32 / 32768.0
}

/// ITU-T G.711 A-law expansion, scaled to [-1, 1].
fn alaw_to_linear(code: u8) -> f32 {
    let code = code ^ 0x55;
    let sign = code & 0x80;
    let exponent = (code >> 4) & 0x07;
    let mantissa = i32::from(code & 0x0F);
    let magnitude = match exponent {
        0 => (mantissa << 4) + 8,
        e => ((mantissa << 4) + 0x108) << (e - 1),
    };
    // In A-law a set sign bit means a positive sample.
    let value = if sign != 0 { magnitude } else { -magnitude };
    value as f32 / 32768.0
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use hark_testkit::wav_bytes;

    fn hound_wav(spec: hound::WavSpec, write: impl FnOnce(&mut hound::WavWriter<&mut Cursor<Vec<u8>>>)) -> Vec<u8> {
        let mut cursor = Cursor::new(Vec::new());
        let mut writer = hound::WavWriter::new(&mut cursor, spec).expect("writer");
        write(&mut writer);
        writer.finalize().expect("finalize");
        cursor.into_inner()
    }

    fn sine(rate_hz: u32, seconds: f64, freq_hz: f64) -> Vec<f64> {
        let n = (f64::from(rate_hz) * seconds) as usize;
        (0..n).map(|i| 0.5 * (2.0 * std::f64::consts::PI * freq_hz * i as f64 / f64::from(rate_hz)).sin()).collect()
    }

    #[test]
    fn pcm16_stereo_is_mixed_to_mono() {
        let spec = hound::WavSpec { channels: 2, sample_rate: 16_000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
        let bytes = hound_wav(spec, |w| {
            // Several blocks' worth.
            for _ in 0..10_000 {
                w.write_sample(16384i16).unwrap();
                w.write_sample(0i16).unwrap();
            }
        });
        let wave = decode(&bytes, &AudioLimits::default()).unwrap();
        assert_eq!(wave.samples().len(), 10_000);
        assert!(wave.samples().iter().all(|&s| (s - 0.25).abs() < 1e-6));
    }

    #[test]
    fn every_integer_width_and_float_decode_to_the_same_signal() {
        let signal = sine(16_000, 0.1, 440.0);
        let decode = |bits: u16, format: hound::SampleFormat| {
            let spec = hound::WavSpec { channels: 1, sample_rate: 16_000, bits_per_sample: bits, sample_format: format };
            let bytes = hound_wav(spec, |w| {
                for &s in &signal {
                    match (format, bits) {
                        (hound::SampleFormat::Float, _) => w.write_sample(s as f32).unwrap(),
                        (_, 8) => w.write_sample((s * 127.0).round() as i8).unwrap(),
                        (_, 16) => w.write_sample((s * 32767.0).round() as i16).unwrap(),
                        (_, b) => w.write_sample((s * ((1i64 << (b - 1)) - 1) as f64).round() as i32).unwrap(),
                    }
                }
            });
            decode(&bytes, &AudioLimits::default()).unwrap()
        };
        for (bits, format, tolerance) in [
            (8, hound::SampleFormat::Int, 1.0 / 100.0),
            (16, hound::SampleFormat::Int, 1e-4),
            (24, hound::SampleFormat::Int, 1e-6),
            (32, hound::SampleFormat::Int, 1e-6),
            (32, hound::SampleFormat::Float, 1e-7),
        ] {
            let wave = decode(bits, format);
            assert_eq!(wave.samples().len(), signal.len());
            for (got, want) in wave.samples().iter().zip(&signal) {
                assert!((f64::from(*got) - want).abs() <= tolerance, "{bits}-bit {format:?}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn extensible_pcm_is_read() {
        let samples: Vec<u8> = (0..800i16).flat_map(|i| (i * 10).to_le_bytes()).collect();
        let mut bytes = wav_bytes(WAVE_FORMAT_EXTENSIBLE, 1, 16_000, 16, &samples);
        // Grow 'fmt ' to the 40-byte extensible layout: cbSize, valid bits, channel mask, GUID.
        let mut ext = Vec::new();
        ext.extend_from_slice(&22u16.to_le_bytes());
        ext.extend_from_slice(&16u16.to_le_bytes());
        ext.extend_from_slice(&4u32.to_le_bytes());
        ext.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71]);
        bytes.splice(36..36, ext);
        bytes[16..20].copy_from_slice(&40u32.to_le_bytes());
        let riff_size = (bytes.len() - 8) as u32;
        bytes[4..8].copy_from_slice(&riff_size.to_le_bytes());
        let wave = decode(&bytes, &AudioLimits::default()).unwrap();
        assert_eq!(wave.samples().len(), 800);
        assert!((wave.samples()[100] - 1000.0 / 32768.0).abs() < 1e-6);
    }

    #[test]
    fn g711_tables_match_the_reference_values() {
        // Reference points from ITU-T G.711 (in 16-bit linear units).
        assert_eq!(mulaw_to_linear(0xFF) * 32768.0, 0.0);
        assert_eq!(mulaw_to_linear(0x7F) * 32768.0, 0.0);
        assert_eq!(mulaw_to_linear(0x80) * 32768.0, 32124.0);
        assert_eq!(mulaw_to_linear(0x00) * 32768.0, -32124.0);
        assert_eq!(alaw_to_linear(0xD5) * 32768.0, 8.0);
        assert_eq!(alaw_to_linear(0x55) * 32768.0, -8.0);
        assert_eq!(alaw_to_linear(0xAA) * 32768.0, 32256.0);
        assert_eq!(alaw_to_linear(0x2A) * 32768.0, -32256.0);
    }

    #[test]
    fn mulaw_and_alaw_wavs_decode_at_8k_and_resample() {
        for tag in [WAVE_FORMAT_MULAW, WAVE_FORMAT_ALAW] {
            let data: Vec<u8> = (0..8000).map(|i| if tag == WAVE_FORMAT_MULAW { 0x80 + (i % 2) as u8 } else { 0xAA }).collect();
            let wave = decode(&wav_bytes(tag, 1, 8000, 8, &data), &AudioLimits::default()).unwrap();
            assert!((wave.duration_s() - 1.0).abs() < 0.01, "tag {tag}: {} s", wave.duration_s());
        }
    }

    #[test]
    fn resampling_keeps_duration_and_pitch() {
        for rate in [8_000u32, 11_025, 22_050, 44_100, 48_000] {
            let spec = hound::WavSpec { channels: 1, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
            let signal = sine(rate, 1.0, 1000.0);
            let bytes = hound_wav(spec, |w| signal.iter().for_each(|&s| w.write_sample((s * 32767.0) as i16).unwrap()));
            let wave = decode(&bytes, &AudioLimits::default()).unwrap();
            assert!((wave.duration_s() - 1.0).abs() < 0.002, "{rate} Hz → {} s", wave.duration_s());
            // A 1 kHz tone at 16 kHz crosses zero 2000 times a second.
            let mid = &wave.samples()[1000..15000];
            let crossings = mid.windows(2).filter(|w| (w[0] < 0.0) != (w[1] < 0.0)).count();
            assert!((crossings as i64 - 1750).abs() <= 3, "{rate} Hz: {crossings} zero crossings");
        }
    }

    #[test]
    fn bad_inputs_name_the_problem() {
        let limits = AudioLimits::default();

        let mut truncated = wav_bytes(WAVE_FORMAT_PCM, 1, 16_000, 16, &[0; 3200]);
        truncated.truncate(1000);
        let err = decode(&truncated, &limits).unwrap_err();
        assert_eq!(err, AudioError::Truncated { chunk: "data".into(), declared: 3200, available: 956 });
        assert!(err.to_string().contains("3200"));

        let err = decode(&wav_bytes(0x0011, 1, 16_000, 4, &[0; 100]), &limits).unwrap_err();
        assert!(err.to_string().contains("IMA ADPCM"), "{err}");
        let err = decode(&wav_bytes(0x0055, 1, 16_000, 0, &[0; 100]), &limits).unwrap_err();
        assert!(err.to_string().contains("MP3"), "{err}");

        // A width the codec does not have would make the header's duration
        // disagree with the samples decoded (found by fuzz/: A-law "256 bits").
        for (tag, bits) in [(WAVE_FORMAT_ALAW, 256), (WAVE_FORMAT_MULAW, 16), (WAVE_FORMAT_PCM, 12), (WAVE_FORMAT_IEEE_FLOAT, 64)] {
            let err = decode(&wav_bytes(tag, 2, 32_000, bits, &[0; 640]), &limits).unwrap_err();
            assert!(matches!(err, AudioError::Malformed { .. }), "tag {tag}, {bits} bits: {err}");
        }

        let err = decode(&wav_bytes(WAVE_FORMAT_PCM, 1, 16_000, 16, &[]), &limits).unwrap_err();
        assert_eq!(err, AudioError::NoSamples { container: "WAV" });

        let err = decode(&wav_bytes(WAVE_FORMAT_PCM, 1, 96_000, 16, &[0; 10]), &limits).unwrap_err();
        assert_eq!(err, AudioError::UnsupportedSampleRate { rate_hz: 96_000 });

        // Found in whichever block it is in, and placed in the file.
        for (rate_hz, bad, at) in
            [(8_000, f32::NAN, 700), (16_000, f32::NAN, 700), (16_000, f32::INFINITY, 700), (16_000, f32::NAN, 20_001)]
        {
            let data: Vec<u8> = (0..24_000).flat_map(|i| if i == at { bad } else { 0.1 }.to_le_bytes()).collect();
            let err = decode(&wav_bytes(WAVE_FORMAT_IEEE_FLOAT, 2, rate_hz, 32, &data), &limits).unwrap_err();
            assert_eq!(err, AudioError::NonFiniteSample { container: "WAV", frame: at / 2 }, "{rate_hz} Hz, {bad} at {at}");
        }

        let short = AudioLimits { max_duration_s: 0.5 };
        let err = decode(&wav_bytes(WAVE_FORMAT_PCM, 1, 16_000, 16, &[0; 32_000]), &short).unwrap_err();
        assert_eq!(err, AudioError::TooLong { duration_s: 1.0, max_s: 0.5 });
    }

    #[test]
    fn a_data_size_left_at_the_maximum_reads_to_the_end() {
        let mut piped = wav_bytes(WAVE_FORMAT_PCM, 1, 16_000, 16, &[0; 3200]);
        piped[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
        piped[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&piped, &AudioLimits::default()).unwrap().samples().len(), 1600);
        // An odd byte at the end is half a sample, not an error.
        piped.push(0);
        assert_eq!(duration_s(&piped, &AudioLimits::default()), Ok(0.1));
        let mut float = wav_bytes(WAVE_FORMAT_IEEE_FLOAT, 1, 16_000, 32, &[0; 6400]);
        float[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
        float.extend_from_slice(&[0; 3]);
        assert_eq!(decode(&float, &AudioLimits::default()).unwrap().samples().len(), 1600);
    }

    #[test]
    fn the_header_gives_the_duration_and_the_same_refusals_as_decoding() {
        let limits = AudioLimits::default();
        let stereo_8k = wav_bytes(WAVE_FORMAT_PCM, 2, 8_000, 16, &[0; 32_000]);
        assert_eq!(duration_s(&stereo_8k, &limits), Ok(1.0));
        let short = AudioLimits { max_duration_s: 0.5 };
        assert_eq!(duration_s(&stereo_8k, &short), Err(AudioError::TooLong { duration_s: 1.0, max_s: 0.5 }));
    }
}
