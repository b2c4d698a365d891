//! Features: a [`Waveform`] → log-mel filterbank frames ([`Features`]).
//!
//! This follows Kaldi's `fbank` conventions step for step (frame extraction,
//! DC removal, pre-emphasis, Povey window, power spectrum, triangular mel bins
//! on the 1127·ln(1 + f/700) scale, log with a float-epsilon floor) because
//! training computes its features with kaldi-native-fbank: serving must see
//! exactly what training saw. `tests/fixtures/fbank_golden.safetensors`,
//! written by `training/golden_features.py`, holds the reference values.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};
use serde::{Deserialize, Serialize};

use crate::audio::{Waveform, SAMPLE_RATE_HZ};

/// Filterbank settings, named as kaldi-native-fbank names them, plus the two
/// steps hark adds around Kaldi's: the sample scale and the normalization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FbankOptions {
    pub sample_frequency: f32,
    pub frame_length_ms: f32,
    pub frame_shift_ms: f32,
    /// Must be 0: served features are deterministic.
    pub dither: f32,
    pub preemph_coeff: f32,
    pub remove_dc_offset: bool,
    /// `povey`, `hanning`, `hann`, `hamming`, `sine`, `rectangular` or `blackman`.
    pub window_type: String,
    pub round_to_power_of_two: bool,
    pub snip_edges: bool,
    pub num_bins: usize,
    pub low_freq: f32,
    /// Zero or negative means an offset from the Nyquist frequency.
    pub high_freq: f32,
    /// Must be false: the models take mel bins only.
    pub use_energy: bool,
    pub use_log_fbank: bool,
    pub use_power: bool,
    /// Samples in [-1, 1] are multiplied by this first; Kaldi expects the
    /// 16-bit range, so 32768.
    pub sample_scale: f32,
    /// `utterance_mean` subtracts each bin's mean over the utterance; `none`.
    pub normalize: Normalize,
}

/// How the finished frames are normalized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalize {
    None,
    UtteranceMean,
}

impl Default for FbankOptions {
    fn default() -> Self {
        Self {
            sample_frequency: 16_000.0,
            frame_length_ms: 25.0,
            frame_shift_ms: 10.0,
            dither: 0.0,
            preemph_coeff: 0.97,
            remove_dc_offset: true,
            window_type: "povey".into(),
            round_to_power_of_two: true,
            snip_edges: true,
            num_bins: 80,
            low_freq: 20.0,
            high_freq: 0.0,
            use_energy: false,
            use_log_fbank: true,
            use_power: true,
            sample_scale: 32_768.0,
            normalize: Normalize::UtteranceMean,
        }
    }
}

/// Why a feature configuration cannot be served.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FeatureConfigError {
    #[error("features.sample_frequency is {0} Hz but hark decodes audio to {SAMPLE_RATE_HZ} Hz")]
    SampleRate(f32),
    #[error("features.dither must be 0 for serving (got {0})")]
    Dither(f32),
    #[error("features.use_energy = true is not supported; hark models take mel bins only")]
    Energy,
    #[error("unknown features.window_type '{0}': use povey, hanning, hann, hamming, sine, rectangular or blackman")]
    Window(String),
    #[error("features: {0}")]
    Invalid(String),
}

/// Frames × bins of log-mel energies, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    data: Vec<f32>,
    num_bins: usize,
}

impl Features {
    pub fn new(data: Vec<f32>, num_bins: usize) -> Self {
        assert_eq!(data.len() % num_bins, 0, "feature data is not a whole number of frames");
        Self { data, num_bins }
    }

    pub fn num_frames(&self) -> usize {
        self.data.len() / self.num_bins
    }

    pub fn num_bins(&self) -> usize {
        self.num_bins
    }

    pub fn data(&self) -> &[f32] {
        &self.data
    }

    pub fn frame(&self, i: usize) -> &[f32] {
        &self.data[i * self.num_bins..(i + 1) * self.num_bins]
    }
}

/// One triangular mel filter: weights over a contiguous run of FFT bins.
#[derive(Debug, Clone)]
struct MelFilter {
    first_bin: usize,
    weights: Vec<f32>,
}

/// A filterbank extractor, built once per model and shared by all requests.
pub struct Fbank {
    options: FbankOptions,
    frame_length: usize,
    frame_shift: usize,
    window: Vec<f32>,
    /// f64: near-silent bins are tiny next to loud ones in the same frame,
    /// and f32 rounding there moves their log by more than 1e-3.
    fft: Arc<dyn RealToComplex<f64>>,
    filters: Vec<MelFilter>,
}

impl std::fmt::Debug for Fbank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fbank").field("options", &self.options).finish_non_exhaustive()
    }
}

fn mel_scale(freq_hz: f32) -> f32 {
    1127.0 * (1.0 + freq_hz / 700.0).ln()
}

impl Fbank {
    pub fn new(options: FbankOptions) -> Result<Self, FeatureConfigError> {
        if options.sample_frequency != SAMPLE_RATE_HZ as f32 {
            return Err(FeatureConfigError::SampleRate(options.sample_frequency));
        }
        if options.dither != 0.0 {
            return Err(FeatureConfigError::Dither(options.dither));
        }
        if options.use_energy {
            return Err(FeatureConfigError::Energy);
        }
        let samples_per_ms = options.sample_frequency / 1000.0;
        let frame_length = (options.frame_length_ms * samples_per_ms) as usize;
        let frame_shift = (options.frame_shift_ms * samples_per_ms) as usize;
        if frame_length == 0 || frame_shift == 0 || options.num_bins == 0 {
            return Err(FeatureConfigError::Invalid("frame_length_ms, frame_shift_ms and num_bins must be positive".into()));
        }
        let fft_size = if options.round_to_power_of_two { frame_length.next_power_of_two() } else { frame_length };
        let window = make_window(&options.window_type, frame_length)?;
        let filters = make_mel_filters(&options, fft_size)?;
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(fft_size);
        Ok(Self { options, frame_length, frame_shift, window, fft, filters })
    }

    /// Number of frames Kaldi produces for `num_samples` samples.
    pub fn num_frames(&self, num_samples: usize) -> usize {
        if self.options.snip_edges {
            if num_samples < self.frame_length {
                0
            } else {
                1 + (num_samples - self.frame_length) / self.frame_shift
            }
        } else {
            (num_samples + self.frame_shift / 2) / self.frame_shift
        }
    }

    /// Computes the features of a whole utterance.
    pub fn compute(&self, waveform: &Waveform) -> Features {
        let samples = waveform.samples();
        let num_frames = self.num_frames(samples.len());
        let num_bins = self.options.num_bins;
        let mut data = Vec::with_capacity(num_frames * num_bins);
        let mut frame = vec![0f32; self.frame_length];
        let mut fft_in = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = vec![0f64; spectrum.len()];
        for f in 0..num_frames {
            self.extract_frame(samples, f, &mut frame);
            self.process_frame(&mut frame);
            fft_in.iter_mut().zip(&frame).for_each(|(x, &f)| *x = f64::from(f));
            fft_in[self.frame_length..].fill(0.0);
            self.fft.process_with_scratch(&mut fft_in, &mut spectrum, &mut scratch).expect("buffers come from the planner");
            for (p, c) in power.iter_mut().zip(&spectrum) {
                let energy = c.norm_sqr();
                *p = if self.options.use_power { energy } else { energy.sqrt() };
            }
            for filter in &self.filters {
                let bins = &power[filter.first_bin..filter.first_bin + filter.weights.len()];
                let energy = bins.iter().zip(&filter.weights).map(|(p, &w)| p * f64::from(w)).sum::<f64>() as f32;
                data.push(if self.options.use_log_fbank { energy.max(f32::EPSILON).ln() } else { energy });
            }
        }
        if self.options.normalize == Normalize::UtteranceMean && num_frames > 0 {
            subtract_bin_means(&mut data, num_bins);
        }
        Features::new(data, num_bins)
    }

    /// Copies frame `f` out of the signal, scaled to Kaldi's sample range;
    /// without snip_edges the signal is reflected at both ends as Kaldi does.
    fn extract_frame(&self, samples: &[f32], f: usize, frame: &mut [f32]) {
        let scale = self.options.sample_scale;
        if self.options.snip_edges {
            let start = f * self.frame_shift;
            for (out, s) in frame.iter_mut().zip(&samples[start..start + self.frame_length]) {
                *out = s * scale;
            }
            return;
        }
        let n = samples.len() as i64;
        let start = (f * self.frame_shift + self.frame_shift / 2) as i64 - (self.frame_length / 2) as i64;
        for (i, out) in frame.iter_mut().enumerate() {
            let mut index = start + i as i64;
            while index < 0 || index >= n {
                index = if index < 0 { -index - 1 } else { 2 * n - 1 - index };
            }
            *out = samples[index as usize] * scale;
        }
    }

    /// Kaldi's ProcessWindow without dither and log-energy: DC offset,
    /// pre-emphasis, window.
    fn process_frame(&self, frame: &mut [f32]) {
        if self.options.remove_dc_offset {
            let mean = frame.iter().sum::<f32>() / frame.len() as f32;
            frame.iter_mut().for_each(|x| *x -= mean);
        }
        let coeff = self.options.preemph_coeff;
        if coeff != 0.0 {
            for i in (1..frame.len()).rev() {
                frame[i] -= coeff * frame[i - 1];
            }
            frame[0] -= coeff * frame[0];
        }
        frame.iter_mut().zip(&self.window).for_each(|(x, w)| *x *= w);
    }
}

fn subtract_bin_means(data: &mut [f32], num_bins: usize) {
    let num_frames = data.len() / num_bins;
    let mut means = vec![0f64; num_bins];
    for frame in data.chunks_exact(num_bins) {
        means.iter_mut().zip(frame).for_each(|(m, &x)| *m += f64::from(x));
    }
    let means: Vec<f32> = means.iter().map(|m| (m / num_frames as f64) as f32).collect();
    for frame in data.chunks_exact_mut(num_bins) {
        frame.iter_mut().zip(&means).for_each(|(x, m)| *x -= m);
    }
}

/// Window functions as kaldi-native-fbank defines them: `hanning` is
/// Kaldi's symmetric Hann window, `hann` the periodic one PyTorch uses.
fn make_window(kind: &str, length: usize) -> Result<Vec<f32>, FeatureConfigError> {
    let n = length as f64;
    let a = if kind == "hann" { 2.0 * std::f64::consts::PI / n } else { 2.0 * std::f64::consts::PI / (n - 1.0) };
    let blackman_coeff = 0.42;
    let w: fn(f64, f64, f64) -> f64 = match kind {
        "povey" => |a, i, _| (0.5 - 0.5 * (a * i).cos()).powf(0.85),
        "hann" | "hanning" => |a, i, _| 0.5 - 0.5 * (a * i).cos(),
        "hamming" => |a, i, _| 0.54 - 0.46 * (a * i).cos(),
        "sine" => |a, i, _| (0.5 * a * i).sin(),
        "blackman" => |a, i, c| c - 0.5 * (a * i).cos() + (0.5 - c) * (2.0 * a * i).cos(),
        "rectangular" => |_, _, _| 1.0,
        other => return Err(FeatureConfigError::Window(other.to_string())),
    };
    Ok((0..length).map(|i| w(a, i as f64, blackman_coeff) as f32).collect())
}

/// Kaldi's MelBanks: `num_bins` triangles equally spaced on the mel scale
/// between low_freq and high_freq, over the FFT bins below Nyquist.
fn make_mel_filters(options: &FbankOptions, fft_size: usize) -> Result<Vec<MelFilter>, FeatureConfigError> {
    let nyquist = 0.5 * options.sample_frequency;
    let high_freq = if options.high_freq > 0.0 { options.high_freq } else { nyquist + options.high_freq };
    if options.low_freq < 0.0 || options.low_freq >= high_freq || high_freq > nyquist {
        return Err(FeatureConfigError::Invalid(format!(
            "need 0 <= low_freq < high_freq <= {nyquist} Hz, got low_freq {} and high_freq {high_freq}",
            options.low_freq
        )));
    }
    let num_fft_bins = fft_size / 2;
    let fft_bin_width = options.sample_frequency / fft_size as f32;
    let mel_low = mel_scale(options.low_freq);
    let mel_high = mel_scale(high_freq);
    let mel_delta = (mel_high - mel_low) / (options.num_bins as f32 + 1.0);
    let filters = (0..options.num_bins)
        .map(|bin| {
            let left = mel_low + bin as f32 * mel_delta;
            let center = mel_low + (bin as f32 + 1.0) * mel_delta;
            let right = mel_low + (bin as f32 + 2.0) * mel_delta;
            let mut first_bin = None;
            let mut weights = Vec::new();
            for i in 0..num_fft_bins {
                let mel = mel_scale(fft_bin_width * i as f32);
                if mel > left && mel < right {
                    first_bin.get_or_insert(i);
                    weights.push(if mel <= center { (mel - left) / (center - left) } else { (right - mel) / (right - center) });
                }
            }
            MelFilter { first_bin: first_bin.unwrap_or(0), weights }
        })
        .collect();
    Ok(filters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_counts_follow_kaldi() {
        let fbank = Fbank::new(FbankOptions::default()).unwrap();
        assert_eq!(fbank.num_frames(399), 0);
        assert_eq!(fbank.num_frames(400), 1);
        assert_eq!(fbank.num_frames(16_000), 98);
        let unsnipped = Fbank::new(FbankOptions { snip_edges: false, ..Default::default() }).unwrap();
        assert_eq!(unsnipped.num_frames(16_000), 100);
    }

    #[test]
    fn mel_filters_cover_the_band_in_order() {
        let fbank = Fbank::new(FbankOptions::default()).unwrap();
        assert_eq!(fbank.filters.len(), 80);
        for pair in fbank.filters.windows(2) {
            assert!(pair[0].first_bin <= pair[1].first_bin);
        }
        for filter in &fbank.filters {
            assert!(!filter.weights.is_empty());
            assert!(filter.weights.iter().all(|&w| w > 0.0 && w <= 1.0));
        }
    }

    #[test]
    fn utterance_mean_normalization_zeroes_each_bin_mean() {
        let samples = (0..16_000).map(|i| ((i as f32) * 0.05).sin() * 0.3).collect();
        let features = Fbank::new(FbankOptions::default()).unwrap().compute(&Waveform::from_samples(samples));
        for bin in 0..80 {
            let mean: f32 = (0..features.num_frames()).map(|f| features.frame(f)[bin]).sum::<f32>() / features.num_frames() as f32;
            assert!(mean.abs() < 1e-4, "bin {bin} mean {mean}");
        }
    }

    #[test]
    fn unservable_options_are_refused_with_a_reason() {
        let dither = FbankOptions { dither: 1.0, ..Default::default() };
        assert_eq!(Fbank::new(dither).unwrap_err(), FeatureConfigError::Dither(1.0));
        let window = FbankOptions { window_type: "kaiser".into(), ..Default::default() };
        assert!(Fbank::new(window).unwrap_err().to_string().contains("kaiser"));
        let rate = FbankOptions { sample_frequency: 8000.0, ..Default::default() };
        assert_eq!(Fbank::new(rate).unwrap_err(), FeatureConfigError::SampleRate(8000.0));
    }

    #[test]
    fn options_parse_from_the_documented_json() {
        let json = r#"{"sample_frequency": 16000, "frame_length_ms": 25, "frame_shift_ms": 10,
            "dither": 0, "preemph_coeff": 0.97, "remove_dc_offset": true,
            "window_type": "povey", "round_to_power_of_two": true, "snip_edges": true,
            "num_bins": 80, "low_freq": 20, "high_freq": 0, "use_energy": false,
            "use_log_fbank": true, "use_power": true, "sample_scale": 32768,
            "normalize": "utterance_mean"}"#;
        let options: FbankOptions = serde_json::from_str(json).unwrap();
        assert_eq!(options, FbankOptions::default());
    }
}
