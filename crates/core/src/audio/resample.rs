//! Any input rate → 16 kHz, with rubato's FFT resampler, in blocks.
//!
//! Working in blocks keeps memory flat for long compressed files (each
//! decoded packet is resampled and dropped) and serves live streams, whose
//! audio arrives a few milliseconds at a time.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};

use super::{check_rate, AudioError, SAMPLE_RATE_HZ};

/// Input frames per resampler call.
const BLOCK: usize = 1024;

/// Resamples mono audio arriving in pieces of any size to 16 kHz; the output
/// equals resampling the whole signal at once.
pub struct StreamResampler {
    /// None when the input is already at 16 kHz.
    fft: Option<Fft<f32>>,
    /// Input not yet making a whole block.
    pending: Vec<f32>,
    /// Leading output frames still to drop: the resampler's delay.
    to_trim: usize,
    ratio: f64,
    consumed: usize,
    produced: usize,
}

fn resample_error(e: &dyn std::fmt::Display) -> AudioError {
    AudioError::Malformed { container: "audio", message: format!("resampling failed: {e}") }
}

impl StreamResampler {
    /// A resampler from `rate_hz` (8–48 kHz) to 16 kHz.
    pub fn new(rate_hz: u32) -> Result<Self, AudioError> {
        check_rate(rate_hz)?;
        let fft = if rate_hz == SAMPLE_RATE_HZ {
            None
        } else {
            Some(Fft::<f32>::new(rate_hz as usize, SAMPLE_RATE_HZ as usize, BLOCK, 1, FixedSync::Input).map_err(|e| resample_error(&e))?)
        };
        let to_trim = fft.as_ref().map_or(0, Resampler::output_delay);
        let ratio = f64::from(SAMPLE_RATE_HZ) / f64::from(rate_hz);
        Ok(Self { fft, pending: Vec::new(), to_trim, ratio, consumed: 0, produced: 0 })
    }

    /// Resamples `input`, appending to `out` what is ready.
    pub fn push(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<(), AudioError> {
        self.consumed += input.len();
        if self.fft.is_none() {
            out.extend_from_slice(input);
            self.produced += input.len();
            return Ok(());
        }
        self.pending.extend_from_slice(input);
        let whole = self.pending.len() / BLOCK * BLOCK;
        for start in (0..whole).step_by(BLOCK) {
            self.run(start, None, out)?;
        }
        self.pending.drain(..whole);
        Ok(())
    }

    /// Flushes what is still inside the resampler; `out` then holds the
    /// whole signal at 16 kHz.
    pub fn finish(mut self, out: &mut Vec<f32>) -> Result<(), AudioError> {
        if self.fft.is_none() {
            return Ok(());
        }
        let expected = (self.ratio * self.consumed as f64).round() as usize;
        let mut partial = self.pending.len();
        while self.produced < expected {
            self.pending.resize(BLOCK, 0.0);
            self.run(0, Some(partial), out)?;
            partial = 0;
        }
        out.truncate(out.len() - (self.produced - expected));
        Ok(())
    }

    /// Resamples the block at `start` in `pending` (of which only `partial`
    /// frames are real, when given).
    fn run(&mut self, start: usize, partial: Option<usize>, out: &mut Vec<f32>) -> Result<(), AudioError> {
        let fft = self.fft.as_mut().expect("only called when resampling");
        let input = InterleavedSlice::new(&self.pending[start..start + BLOCK], 1, BLOCK).map_err(|e| resample_error(&e))?;
        let indexing = Indexing { input_offset: 0, output_offset: 0, partial_len: partial, active_channels_mask: None };
        let block = fft.process(&input, Some(&indexing)).map_err(|e| resample_error(&e))?.take_data();
        let trim = self.to_trim.min(block.len());
        self.to_trim -= trim;
        out.extend_from_slice(&block[trim..]);
        self.produced += block.len() - trim;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_of_any_size_give_the_same_output_as_the_whole() {
        let rate = 44_100;
        let signal: Vec<f32> = (0..rate * 2).map(|i| (i as f32 * 0.05).sin() * 0.5).collect();
        let resample = |piece_len: usize| {
            let mut resampler = StreamResampler::new(rate as u32).unwrap();
            let mut out = Vec::new();
            for piece in signal.chunks(piece_len) {
                resampler.push(piece, &mut out).unwrap();
            }
            resampler.finish(&mut out).unwrap();
            out
        };
        let whole = resample(signal.len());
        assert_eq!(whole.len(), 32_000);
        let pieces = resample(333);
        assert_eq!(pieces.len(), whole.len());
        assert!(pieces.iter().zip(&whole).all(|(a, b)| (a - b).abs() < 1e-6));
    }

    #[test]
    fn rates_outside_the_accepted_range_are_refused() {
        assert!(matches!(StreamResampler::new(96_000), Err(AudioError::UnsupportedSampleRate { rate_hz: 96_000 })));
        assert!(StreamResampler::new(16_000).is_ok());
    }
}
