//! The reference forward pass: the same network built from candle-nn's
//! LSTM, one tensor op at a time, exactly as its documentation would have
//! it. It is slow (about fifteen allocated tensor ops per step) and plainly
//! right, which makes it the yardstick: tests hold the fast path in
//! [`super::lstm`] to it within 1e-4, and the benchmark runs both.

use candle_core::{DType, Device, IndexOp, Tensor, D};
use candle_nn::rnn::{Direction, LSTMConfig, LSTM, RNN};
use candle_nn::{Linear, Module, VarBuilder};

use super::{ModelConfig, ModelError, ModelFiles};
use crate::features::Features;

/// A model loaded for the reference path.
pub struct ReferenceModel {
    config: ModelConfig,
    layers: Vec<(LSTM, LSTM)>,
    out: Linear,
}

impl ReferenceModel {
    pub fn load(files: &ModelFiles<'_>) -> Result<Self, ModelError> {
        let config: ModelConfig = serde_json::from_slice(&files.config_json).map_err(|e| ModelError::Config(e.to_string()))?;
        let vb = VarBuilder::from_slice_safetensors(&files.safetensors, DType::F32, &Device::Cpu)
            .map_err(|e| ModelError::Safetensors(e.to_string()))?;
        let tensor_error = |e: candle_core::Error| ModelError::Safetensors(e.to_string());
        let h = config.hidden;
        let mut layers = Vec::new();
        for layer_idx in 0..config.layers {
            let input = if layer_idx == 0 { config.stack * config.features.num_bins } else { 2 * h };
            let lstm = |direction| {
                let lstm_config = LSTMConfig { layer_idx, direction, ..Default::default() };
                candle_nn::rnn::lstm(input, h, lstm_config, vb.pp("lstm")).map_err(tensor_error)
            };
            layers.push((lstm(Direction::Forward)?, lstm(Direction::Backward)?));
        }
        let out = candle_nn::linear(2 * h, config.vocab, vb.pp("out")).map_err(tensor_error)?;
        Ok(Self { config, layers, out })
    }

    /// Log-probabilities, steps × vocab, row-major.
    pub fn forward(&self, features: &Features) -> candle_core::Result<Vec<f32>> {
        let stacked_dim = self.config.stack * features.num_bins();
        let steps = features.num_frames() / self.config.stack;
        let mut x = Tensor::from_slice(&features.data()[..steps * stacked_dim], (1, steps, stacked_dim), &Device::Cpu)?;
        for (forward, backward) in &self.layers {
            let fwd = forward.states_to_tensor(&forward.seq(&x)?)?;
            // candle-nn's LSTM runs forward only: reverse time around it.
            let reversed = reverse_time(&x)?;
            let bwd = reverse_time(&backward.states_to_tensor(&backward.seq(&reversed)?)?)?;
            x = Tensor::cat(&[fwd, bwd], D::Minus1)?;
        }
        let log_probs = candle_nn::ops::log_softmax(&self.out.forward(&x)?, D::Minus1)?;
        log_probs.i(0)?.flatten_all()?.to_vec1()
    }
}

fn reverse_time(x: &Tensor) -> candle_core::Result<Tensor> {
    let steps = x.dim(1)?;
    let index = Tensor::from_vec((0..steps as u32).rev().collect::<Vec<_>>(), steps, x.device())?;
    x.index_select(&index, 1)
}
