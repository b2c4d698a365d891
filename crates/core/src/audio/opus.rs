//! Opus packets, as symphonia's demuxers hand them over from Ogg,
//! WebM/Matroska, MP4 and CAF, decoded by `opus-pure`, a pure-Rust Opus
//! codec without dependencies.
//!
//! Opus decodes at any of its rates: asked for 16 kHz mono, the decoder
//! mixes the channels and runs at the rate the model hears, so no resampler
//! stands between the packets and the features. (`opus-pure` was chosen
//! over `opus-decoder` because at 16 kHz its samples match libopus's
//! (`opusdec --rate 16000`, 40 dB SNR on a 6 kb/s SILK stream, where
//! `opus-decoder`'s did not correlate at all) and it decodes 2.5× faster;
//! `tests/opus.rs` holds it to libopus.)

use opus_pure::{Error as OpusError, OpusDecoder};

use super::SAMPLE_RATE_HZ;

/// The rate Opus timestamps and pre-skip are counted in.
const OPUS_CLOCK_HZ: u32 = 48_000;

/// The most audio one packet holds: 120 ms.
const MAX_PACKET_S: f64 = 0.12;

/// A stream's decoder, with what is left of its pre-skip (the encoder's
/// look-ahead, to be dropped from the start) and of its length (the last
/// packet is padded past the end).
pub(super) struct OpusPackets {
    decoder: OpusDecoder,
    pcm: Vec<f32>,
    skip: usize,
    left: Option<usize>,
}

impl OpusPackets {
    /// A decoder for a stream whose header asks to drop `pre_skip` samples
    /// at 48 kHz, and whose container states its length (`frames` at 48
    /// kHz, pre-skip and padding excluded) when it knows it.
    pub(super) fn new(pre_skip: u32, frames: Option<u64>) -> Result<Self, OpusError> {
        let decoder = OpusDecoder::new(SAMPLE_RATE_HZ as i32, 1)?;
        let pcm = vec![0.0; (MAX_PACKET_S * f64::from(SAMPLE_RATE_HZ)).ceil() as usize];
        let at_16k = |n: u64| (n * u64::from(SAMPLE_RATE_HZ)).div_ceil(u64::from(OPUS_CLOCK_HZ)) as usize;
        Ok(Self { decoder, pcm, skip: at_16k(u64::from(pre_skip)), left: frames.map(at_16k) })
    }

    /// Decodes one packet, appending its 16 kHz mono samples to `out`.
    pub(super) fn decode(&mut self, packet: &[u8], out: &mut Vec<f32>) -> Result<(), OpusError> {
        let n = self.decoder.decode(packet, self.pcm.len(), &mut self.pcm)?;
        let skipped = self.skip.min(n);
        self.skip -= skipped;
        let mut kept = &self.pcm[skipped..n];
        if let Some(left) = &mut self.left {
            kept = &kept[..kept.len().min(*left)];
            *left -= kept.len();
        }
        out.extend_from_slice(kept);
        Ok(())
    }
}
