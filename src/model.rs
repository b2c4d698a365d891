//! The acoustic model: [`Features`] → per-step log-probabilities over the
//! vocabulary ([`LogProbs`]).
//!
//! The network is `stack` consecutive frames concatenated (no overlap) → N
//! bidirectional LSTM layers → linear → log-softmax, exactly as
//! `training/hark_train/model.py` defines it in PyTorch. Weights keep
//! PyTorch's tensor names, so a trained network loads as it is.
//!
//! Tensors, loading and the dense products run on candle. The recurrence is a
//! plain loop over weights laid out once at load time: candle-nn's LSTM issues
//! about fifteen small tensor ops per step, which cost five times the
//! arithmetic (see the developers' guide).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use crate::features::{FbankOptions, Features};

/// `config.json` of a model directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Reported in responses and /v1/models.
    pub name: String,
    pub features: FbankOptions,
    /// Frames concatenated into one network step.
    pub stack: usize,
    /// Bidirectional LSTM layers.
    pub layers: usize,
    /// Units per direction.
    pub hidden: usize,
    /// Output classes; equals the number of lines of tokens.txt.
    pub vocab: usize,
}

impl ModelConfig {
    /// Seconds of audio per network step.
    pub fn step_s(&self) -> f64 {
        self.stack as f64 * f64::from(self.features.frame_shift_ms) / 1000.0
    }
}

/// The output alphabet, from `tokens.txt`.
#[derive(Debug, Clone, PartialEq)]
pub struct Vocabulary {
    tokens: Vec<String>,
    word_separator: usize,
}

/// The CTC blank is always the first token.
pub const BLANK: usize = 0;
const BLANK_TOKEN: &str = "<blank>";
const WORD_SEPARATOR_TOKEN: &str = "|";

impl Vocabulary {
    /// Parses tokens.txt: one token a line, `<blank>` first, `|` between words.
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        let tokens: Vec<String> = text.lines().map(str::trim_end).filter(|l| !l.is_empty()).map(String::from).collect();
        if tokens.first().map(String::as_str) != Some(BLANK_TOKEN) {
            return Err(ModelError::Tokens(format!("the first token must be {BLANK_TOKEN}")));
        }
        let word_separator = tokens
            .iter()
            .position(|t| t == WORD_SEPARATOR_TOKEN)
            .ok_or_else(|| ModelError::Tokens(format!("no word separator token '{WORD_SEPARATOR_TOKEN}'")))?;
        Ok(Self { tokens, word_separator })
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn token(&self, id: usize) -> &str {
        &self.tokens[id]
    }

    pub fn word_separator(&self) -> usize {
        self.word_separator
    }

    /// The id of a token, if the model has it.
    pub fn id(&self, token: &str) -> Option<usize> {
        self.tokens.iter().position(|t| t == token)
    }
}

/// Log-probabilities of every token at every network step, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct LogProbs {
    data: Vec<f32>,
    vocab: usize,
    step_s: f64,
}

impl LogProbs {
    pub fn new(data: Vec<f32>, vocab: usize, step_s: f64) -> Self {
        assert_eq!(data.len() % vocab, 0, "log-probabilities are not a whole number of steps");
        Self { data, vocab, step_s }
    }

    pub fn num_steps(&self) -> usize {
        self.data.len() / self.vocab
    }

    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// Seconds of audio per step.
    pub fn step_s(&self) -> f64 {
        self.step_s
    }

    pub fn step(&self, t: usize) -> &[f32] {
        &self.data[t * self.vocab..(t + 1) * self.vocab]
    }

    pub fn data(&self) -> &[f32] {
        &self.data
    }
}

/// Why a model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config.json: {0}")]
    Config(String),
    #[error("invalid tokens.txt: {0}")]
    Tokens(String),
    #[error("model.safetensors has no tensor '{name}'")]
    MissingTensor { name: String },
    #[error("model.safetensors tensor '{name}': {message}")]
    Tensor { name: String, message: String },
    #[error("model.safetensors is unreadable: {0}")]
    Safetensors(String),
}

/// The three files that make a model, wherever they came from (a directory
/// or the copy embedded in the binary).
pub struct ModelFiles<'a> {
    pub config_json: std::borrow::Cow<'a, [u8]>,
    pub safetensors: std::borrow::Cow<'a, [u8]>,
    pub tokens_txt: std::borrow::Cow<'a, [u8]>,
}

impl ModelFiles<'static> {
    pub fn read_dir(dir: &Path) -> Result<Self, ModelError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path)
                .map(std::borrow::Cow::Owned)
                .map_err(|source| ModelError::Io { path, source })
        };
        Ok(Self {
            config_json: read("config.json")?,
            safetensors: read("model.safetensors")?,
            tokens_txt: read("tokens.txt")?,
        })
    }
}

/// The default model's directory under `models/`: the one place it is named.
macro_rules! default_model_dir {
    () => {
        "fsdd-digits"
    };
}

/// Name of the model hark serves when no `--model` is given.
pub const DEFAULT_MODEL: &str = default_model_dir!();

impl ModelFiles<'static> {
    /// The default model, compiled into the binary so that hark works from
    /// any directory without a models/ folder beside it.
    pub fn embedded_default() -> Self {
        macro_rules! embed {
            ($file:literal) => {
                std::borrow::Cow::Borrowed(
                    &include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/models/", default_model_dir!(), "/", $file))[..],
                )
            };
        }
        Self {
            config_json: embed!("config.json"),
            safetensors: embed!("model.safetensors"),
            tokens_txt: embed!("tokens.txt"),
        }
    }
}

/// One direction of one LSTM layer.
struct LstmDirection {
    /// Input weights, 4H × input, applied to all steps in one product.
    w_ih_t: Tensor,
    /// b_ih + b_hh, folded once.
    bias: Tensor,
    /// Recurrent weights, 4H rows of H, row-major, gate order i, f, g, o.
    w_hh: Vec<f32>,
}

struct BiLstmLayer {
    forward: LstmDirection,
    backward: LstmDirection,
}

/// A loaded BiLSTM-CTC acoustic model.
pub struct AcousticModel {
    config: ModelConfig,
    vocabulary: Vocabulary,
    layers: Vec<BiLstmLayer>,
    out_w_t: Tensor,
    out_b: Tensor,
    num_parameters: usize,
}

impl std::fmt::Debug for AcousticModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcousticModel").field("config", &self.config).finish_non_exhaustive()
    }
}

fn candle_error(name: &str) -> impl Fn(candle_core::Error) -> ModelError + '_ {
    move |e| ModelError::Tensor {
        name: name.to_string(),
        message: e.to_string().lines().next().unwrap_or_default().to_string(),
    }
}

impl AcousticModel {
    pub fn load_dir(dir: &Path) -> Result<Self, ModelError> {
        Self::load(&ModelFiles::read_dir(dir)?)
    }

    pub fn load(files: &ModelFiles<'_>) -> Result<Self, ModelError> {
        let config: ModelConfig =
            serde_json::from_slice(&files.config_json).map_err(|e| ModelError::Config(e.to_string()))?;
        let tokens = std::str::from_utf8(&files.tokens_txt).map_err(|e| ModelError::Tokens(e.to_string()))?;
        let vocabulary = Vocabulary::parse(tokens)?;
        if vocabulary.len() != config.vocab {
            return Err(ModelError::Config(format!(
                "vocab is {} but tokens.txt has {} tokens",
                config.vocab,
                vocabulary.len()
            )));
        }
        if config.stack == 0 || config.layers == 0 || config.hidden == 0 {
            return Err(ModelError::Config("stack, layers and hidden must be positive".into()));
        }
        let vb = VarBuilder::from_slice_safetensors(&files.safetensors, DType::F32, &Device::Cpu)
            .map_err(|e| ModelError::Safetensors(e.to_string()))?;
        let mut num_parameters = 0;
        let mut get = |shape: &[usize], name: &str| -> Result<Tensor, ModelError> {
            if !vb.contains_tensor(name) {
                return Err(ModelError::MissingTensor { name: name.into() });
            }
            num_parameters += shape.iter().product::<usize>();
            vb.get(shape, name).map_err(candle_error(name))
        };
        let h = config.hidden;
        let mut layers = Vec::with_capacity(config.layers);
        for layer in 0..config.layers {
            let input = if layer == 0 {
                config.stack * config.features.num_bins
            } else {
                2 * h
            };
            let mut direction = |suffix: &str| -> Result<LstmDirection, ModelError> {
                let name = |kind: &str| format!("lstm.{kind}_l{layer}{suffix}");
                let w_ih = get(&[4 * h, input], &name("weight_ih"))?;
                let w_hh = get(&[4 * h, h], &name("weight_hh"))?;
                let b_ih = get(&[4 * h], &name("bias_ih"))?;
                let b_hh = get(&[4 * h], &name("bias_hh"))?;
                let name = name("weight_ih");
                Ok(LstmDirection {
                    w_ih_t: w_ih.t().and_then(|t| t.contiguous()).map_err(candle_error(&name))?,
                    bias: (b_ih + b_hh).map_err(candle_error(&name))?,
                    w_hh: w_hh.flatten_all().and_then(|t| t.to_vec1()).map_err(candle_error(&name))?,
                })
            };
            layers.push(BiLstmLayer {
                forward: direction("")?,
                backward: direction("_reverse")?,
            });
        }
        let out_w = get(&[config.vocab, 2 * h], "out.weight")?;
        let out_b = get(&[config.vocab], "out.bias")?;
        let out_w_t = out_w.t().and_then(|t| t.contiguous()).map_err(candle_error("out.weight"))?;
        Ok(Self {
            config,
            vocabulary,
            layers,
            out_w_t,
            out_b,
            num_parameters,
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn vocabulary(&self) -> &Vocabulary {
        &self.vocabulary
    }

    pub fn num_parameters(&self) -> usize {
        self.num_parameters
    }

    /// Runs the network over one utterance. Frames left over after the last
    /// whole stack are dropped, as in training.
    pub fn forward(&self, features: &Features) -> Result<LogProbs, candle_core::Error> {
        let step_s = self.config.step_s();
        let stacked_dim = self.config.stack * features.num_bins();
        let steps = features.num_frames() / self.config.stack;
        if steps == 0 {
            return Ok(LogProbs::new(Vec::new(), self.config.vocab, step_s));
        }
        let mut x = Tensor::from_slice(&features.data()[..steps * stacked_dim], (steps, stacked_dim), &Device::Cpu)?;
        for layer in &self.layers {
            x = self.bilstm(layer, &x, steps)?;
        }
        let logits = x.matmul(&self.out_w_t)?.broadcast_add(&self.out_b)?;
        let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        Ok(LogProbs::new(log_probs.flatten_all()?.to_vec1()?, self.config.vocab, step_s))
    }

    /// One bidirectional layer: both directions' input projections as one
    /// product each, then the two recurrences on two threads.
    fn bilstm(&self, layer: &BiLstmLayer, x: &Tensor, steps: usize) -> Result<Tensor, candle_core::Error> {
        let h = self.config.hidden;
        let project = |d: &LstmDirection| -> Result<Vec<f32>, candle_core::Error> {
            x.matmul(&d.w_ih_t)?.broadcast_add(&d.bias)?.flatten_all()?.to_vec1()
        };
        let gates_fwd = project(&layer.forward)?;
        let gates_bwd = project(&layer.backward)?;
        let (out_fwd, out_bwd) = std::thread::scope(|s| {
            let fwd = s.spawn(|| recur(&gates_fwd, &layer.forward.w_hh, h, steps, false));
            let bwd = recur(&gates_bwd, &layer.backward.w_hh, h, steps, true);
            (fwd.join().expect("LSTM thread panicked"), bwd)
        });
        let mut out = Vec::with_capacity(steps * 2 * h);
        for t in 0..steps {
            out.extend_from_slice(&out_fwd[t * h..(t + 1) * h]);
            out.extend_from_slice(&out_bwd[t * h..(t + 1) * h]);
        }
        Tensor::from_vec(out, (steps, 2 * h), &Device::Cpu)
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Dot product with eight independent accumulators, so the compiler keeps
/// them in vector registers.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (a_chunks, a_rest) = a.split_at(a.len() / 8 * 8);
    let (b_chunks, b_rest) = b.split_at(a_chunks.len());
    for (ca, cb) in a_chunks.chunks_exact(8).zip(b_chunks.chunks_exact(8)) {
        for k in 0..8 {
            acc[k] += ca[k] * cb[k];
        }
    }
    acc.iter().sum::<f32>() + a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum::<f32>()
}

/// The LSTM recurrence over precomputed input gates (steps × 4H, bias
/// included); returns the hidden states, steps × H, in time order.
fn recur(gates_x: &[f32], w_hh: &[f32], h: usize, steps: usize, reverse: bool) -> Vec<f32> {
    let mut hidden = vec![0f32; h];
    let mut cell = vec![0f32; h];
    let mut gates = vec![0f32; 4 * h];
    let mut out = vec![0f32; steps * h];
    for s in 0..steps {
        let t = if reverse { steps - 1 - s } else { s };
        for (r, g) in gates.iter_mut().enumerate() {
            *g = gates_x[t * 4 * h + r] + dot(&w_hh[r * h..(r + 1) * h], &hidden);
        }
        for j in 0..h {
            let i = sigmoid(gates[j]);
            let f = sigmoid(gates[h + j]);
            let g = gates[2 * h + j].tanh();
            let o = sigmoid(gates[3 * h + j]);
            cell[j] = f * cell[j] + i * g;
            hidden[j] = o * cell[j].tanh();
        }
        out[t * h..(t + 1) * h].copy_from_slice(&hidden);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_requires_blank_first_and_a_separator() {
        assert!(Vocabulary::parse("<blank>\n|\na\n").is_ok());
        assert!(Vocabulary::parse("|\n<blank>\na\n").unwrap_err().to_string().contains("first token"));
        assert!(Vocabulary::parse("<blank>\na\n").unwrap_err().to_string().contains("separator"));
    }

    #[test]
    fn dot_matches_a_plain_sum_for_any_length() {
        for n in [1, 7, 8, 9, 33] {
            let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
            let b: Vec<f32> = (0..n).map(|i| 1.0 - i as f32 * 0.25).collect();
            let want: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - want).abs() < 1e-4);
        }
    }
}
