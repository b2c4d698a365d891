//! hark's filterbank against kaldi-native-fbank's golden values
//! (tests/fixtures/fbank_golden.safetensors, from training/golden_features.py).
//!
//! The speech clip carries a -60 dBFS noise floor, as every microphone
//! recording does: espeak-ng's raw output has nothing below 100 Hz, which
//! puts the lowest mel bins ~100 dB under the frame's peak, where
//! kaldi-native-fbank's own f32 FFT is off by more than 1e-3.

mod common;

use hark_core::audio::{decode, AudioLimits};
use hark_core::features::{Fbank, FbankOptions};

fn options_from_golden(kind: &str) -> FbankOptions {
    let bytes = std::fs::read(common::fixture("fbank_golden.safetensors")).unwrap();
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let json = metadata.metadata().as_ref().unwrap().get(kind).unwrap().clone();
    serde_json::from_str(&json).unwrap()
}

#[test]
fn features_match_kaldi_native_fbank_within_1e_3() {
    let golden = common::read_tensors(&common::fixture("fbank_golden.safetensors"));
    for kind in ["default", "variant"] {
        let fbank = Fbank::new(options_from_golden(kind)).unwrap();
        for audio in ["hello-16k.wav", "chirp-noise-16k.wav"] {
            let wave = decode(&std::fs::read(common::test_audio(audio)).unwrap(), &AudioLimits::default()).unwrap();
            let ours = fbank.compute(&wave);
            let (shape, want) = &golden[&format!("{audio}/{kind}")];
            assert_eq!([ours.num_frames(), ours.num_bins()], shape[..], "{audio} {kind}: frame count");
            let max_diff = ours.data().iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(max_diff <= 1e-3, "{audio} {kind}: max abs difference {max_diff}");
        }
    }
}

#[test]
fn the_default_golden_options_are_hark_defaults() {
    assert_eq!(options_from_golden("default"), FbankOptions::default());
}
