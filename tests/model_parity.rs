//! hark's BiLSTM forward pass against PyTorch's on the same weights and
//! features (tests/fixtures/parity.safetensors, from training/parity.py),
//! against candle-nn's op-by-op LSTM (the reference path), and batched
//! against one utterance at a time.

mod common;

use hark_core::audio::{decode, AudioLimits};
use hark_core::features::{Fbank, Features};
use hark_core::model::reference::ReferenceModel;
use hark_core::model::{AcousticModel, ModelFiles};

/// Features of real speech and of a tone sweep, for the English model.
fn english_features(model: &AcousticModel) -> Vec<Features> {
    let fbank = Fbank::new(model.config().features.clone()).unwrap();
    let ljspeech = common::shared_data().join("ljspeech-dev/LJ001-0001.wav");
    [ljspeech, common::test_audio("hello-16k.wav"), common::test_audio("chirp-noise-16k.wav")]
        .iter()
        .map(|path| fbank.compute(&decode(&std::fs::read(path).unwrap(), &AudioLimits::default()).unwrap()))
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max)
}

#[test]
fn the_fast_path_matches_candle_nns_lstm_within_1e_4() {
    for dir in [common::repo().join("models/hark-en"), common::fixture("fsdd-digits")] {
        let files = ModelFiles::read_dir(&dir).unwrap();
        let (fast, reference) = (AcousticModel::load(&files).unwrap(), ReferenceModel::load(&files).unwrap());
        for features in english_features(&fast) {
            let diff = max_abs_diff(fast.forward(&features).data(), &reference.forward(&features).unwrap());
            assert!(diff <= 1e-4, "{}: max abs difference {diff}", dir.display());
        }
    }
}

#[test]
fn a_batch_gives_each_utterance_what_it_gets_alone() {
    let model = AcousticModel::load_dir(&common::repo().join("models/hark-en")).unwrap();
    let mut features = english_features(&model);
    // Also a clip shorter than one network step, and one cut mid-way.
    features.push(Features::new(vec![0.0; 2 * 80], 80));
    let first = &features[0];
    features.push(Features::new(first.data()[..first.data().len() / 2 / 80 * 80].to_vec(), 80));
    let batch: Vec<&Features> = features.iter().rev().collect();
    let together = model.forward_batch(&batch);
    assert_eq!(together.len(), batch.len());
    for (alone, batched) in batch.iter().map(|f| model.forward(f)).zip(&together) {
        assert_eq!(alone.num_steps(), batched.num_steps());
        assert!(max_abs_diff(alone.data(), batched.data()) <= 1e-4);
    }
    assert_eq!(together[batch.len() - 1 - 3].num_steps(), 0);
}

#[test]
fn log_probs_match_pytorch_within_1e_4() {
    let model = AcousticModel::load_dir(&common::fixture("fsdd-digits")).unwrap();
    let golden = common::read_tensors(&common::fixture("parity.safetensors"));
    for audio in ["hello-16k.wav", "chirp-noise-16k.wav"] {
        let (shape, feats) = &golden[&format!("{audio}/features")];
        let (want_shape, want) = &golden[&format!("{audio}/log_probs")];
        let log_probs = model.forward(&Features::new(feats.clone(), shape[1]));
        assert_eq!([log_probs.num_steps(), log_probs.vocab()], want_shape[..]);
        let max_diff = log_probs.data().iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(max_diff <= 1e-4, "{audio}: max abs difference {max_diff}");
    }
}

/// Rewrites the fixture's safetensors with one tensor removed or reshaped.
fn broken_model(edit: impl Fn(&str, Vec<usize>) -> Option<Vec<usize>>) -> Result<AcousticModel, String> {
    let dir = common::fixture("fsdd-digits");
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut kept = Vec::new();
    for (name, view) in tensors.tensors() {
        if let Some(shape) = edit(&name, view.shape().to_vec()) {
            let elements: usize = shape.iter().product();
            let data = vec![0u8; elements * view.dtype().bitsize() / 8];
            kept.push((name, view.dtype(), shape, data));
        }
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> =
        kept.iter().map(|(n, d, s, data)| (n.clone(), safetensors::tensor::TensorView::new(*d, s.clone(), data).unwrap())).collect();
    let rewritten = safetensors::serialize(views, None).unwrap();
    let files = ModelFiles {
        config_json: std::fs::read(dir.join("config.json")).unwrap().into(),
        safetensors: rewritten.into(),
        tokens_txt: std::fs::read(dir.join("tokens.txt")).unwrap().into(),
    };
    AcousticModel::load(&files).map_err(|e| e.to_string())
}

#[test]
fn loading_errors_name_the_missing_or_misshaped_tensor() {
    let missing = broken_model(|name, shape| (name != "lstm.weight_hh_l1_reverse").then_some(shape)).unwrap_err();
    assert!(missing.contains("lstm.weight_hh_l1_reverse"), "{missing}");
    let misshaped = broken_model(|name, shape| Some(if name == "out.weight" { vec![shape[0] + 1, shape[1]] } else { shape })).unwrap_err();
    assert!(misshaped.contains("out.weight") && misshaped.contains("shape"), "{misshaped}");
    assert!(broken_model(|_, shape| Some(shape)).is_ok());
}

#[test]
fn f32_weights_load_and_give_the_same_output_as_f16() {
    let dir = common::fixture("fsdd-digits");
    let tensors = candle_core::safetensors::load(dir.join("model.safetensors"), &candle_core::Device::Cpu).unwrap();
    assert!(tensors.values().all(|t| t.dtype() == candle_core::DType::F16), "the fixture is stored as f16");
    let f32_tensors: std::collections::HashMap<String, candle_core::Tensor> =
        tensors.into_iter().map(|(k, t)| (k, t.to_dtype(candle_core::DType::F32).unwrap())).collect();
    let path = std::env::temp_dir().join(format!("hark-f32-{}.safetensors", std::process::id()));
    candle_core::safetensors::save(&f32_tensors, &path).unwrap();
    let files = ModelFiles {
        config_json: std::fs::read(dir.join("config.json")).unwrap().into(),
        safetensors: std::fs::read(&path).unwrap().into(),
        tokens_txt: std::fs::read(dir.join("tokens.txt")).unwrap().into(),
    };
    let f32_model = AcousticModel::load(&files).unwrap();
    let f16_model = AcousticModel::load_dir(&dir).unwrap();
    let golden = common::read_tensors(&common::fixture("parity.safetensors"));
    let (shape, feats) = &golden["hello-16k.wav/features"];
    let features = Features::new(feats.clone(), shape[1]);
    assert_eq!(f32_model.forward(&features), f16_model.forward(&features));
}
