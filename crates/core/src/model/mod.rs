//! The acoustic model: [`Features`] → per-step log-probabilities over the
//! vocabulary ([`LogProbs`]).
//!
//! The network is `stack` consecutive frames concatenated (no overlap) → N
//! bidirectional LSTM layers → linear → log-softmax, exactly as
//! `training/hark_train/model.py` defines it in PyTorch. Weights keep
//! PyTorch's tensor names, so a trained network loads as it is.
//!
//! candle reads the weights; the forward pass is hark's own loop over them,
//! laid out once at load time ([`lstm`]): candle-nn's LSTM issues about
//! fifteen small tensor ops per step, which cost five times the arithmetic.
//! `reference` (feature `reference`, for tests and benchmarks) keeps that
//! op-by-op path as the yardstick the fast one is tested and benchmarked
//! against.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::features::{FbankOptions, Features};

mod lstm;
#[cfg(feature = "reference")]
pub mod reference;

use lstm::{Kernel, LstmDirection, Packed};

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
    Io { path: PathBuf, source: std::io::Error },
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
            std::fs::read(&path).map(std::borrow::Cow::Owned).map_err(|source| ModelError::Io { path, source })
        };
        Ok(Self { config_json: read("config.json")?, safetensors: read("model.safetensors")?, tokens_txt: read("tokens.txt")? })
    }
}

/// The default model's directory under `models/`: the one place it is named.
macro_rules! default_model_dir {
    () => {
        "hark-en"
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
                    &include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/", default_model_dir!(), "/", $file))[..],
                )
            };
        }
        Self { config_json: embed!("config.json"), safetensors: embed!("model.safetensors"), tokens_txt: embed!("tokens.txt") }
    }
}

/// The default model directory's `decoder.json` and language model
/// (`lm.bin`), compiled in with its network so that the binary alone decodes
/// the way the model directory does (beam search with the LM).
pub const DEFAULT_DECODING: (&[u8], &[u8]) = (
    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/", default_model_dir!(), "/decoder.json")),
    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/", default_model_dir!(), "/lm.bin")),
);

/// The default model directory's punctuation model (`punctuation/`:
/// config.json, model.safetensors, words.txt, mixed.txt), compiled in so
/// that the binary alone writes transcripts the way the directory does.
pub const DEFAULT_PUNCTUATION: [&[u8]; 4] = [
    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/", default_model_dir!(), "/punctuation/config.json")),
    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/", default_model_dir!(), "/punctuation/model.safetensors")),
    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/", default_model_dir!(), "/punctuation/words.txt")),
    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/", default_model_dir!(), "/punctuation/mixed.txt")),
];

struct BiLstmLayer {
    forward: LstmDirection,
    backward: LstmDirection,
}

impl BiLstmLayer {
    /// Both directions on two threads; the output rows are `[forward | backward]`.
    fn run(&self, x: &[f32], packed: &Packed, kernel: Kernel) -> Vec<f32> {
        let (fwd, bwd) = std::thread::scope(|s| {
            let fwd = s.spawn(|| self.forward.run(x, packed, false, kernel));
            let bwd = self.backward.run(x, packed, true, kernel);
            (fwd.join().expect("LSTM thread panicked"), bwd)
        });
        let h = self.forward.hidden();
        let mut out = Vec::with_capacity(2 * fwd.len());
        for (f, b) in fwd.chunks_exact(h).zip(bwd.chunks_exact(h)) {
            out.extend_from_slice(f);
            out.extend_from_slice(b);
        }
        out
    }
}

/// The tensors of a safetensors file, read by name and shape as f32 values
/// in row-major order (whatever float type they were stored in).
pub(crate) struct Weights {
    tensors: std::collections::HashMap<String, Tensor>,
    read: usize,
}

impl Weights {
    pub(crate) fn parse(safetensors: &[u8]) -> Result<Self, ModelError> {
        let tensors =
            candle_core::safetensors::load_buffer(safetensors, &Device::Cpu).map_err(|e| ModelError::Safetensors(e.to_string()))?;
        Ok(Self { tensors, read: 0 })
    }

    pub(crate) fn get(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
        let tensor = self.tensors.get(name).ok_or_else(|| ModelError::MissingTensor { name: name.into() })?;
        self.read += shape.iter().product::<usize>();
        as_f32(tensor, shape).map_err(candle_error(name))
    }

    /// Parameters read so far.
    pub(crate) fn parameters_read(&self) -> usize {
        self.read
    }
}

/// Stacked bidirectional LSTM layers on the fast path ([`lstm`]), named as
/// PyTorch's `nn.LSTM(bidirectional=True)` names them under `prefix`. The
/// acoustic model and the punctuation model both run on it.
pub(crate) struct BiLstm {
    layers: Vec<BiLstmLayer>,
    input: usize,
    hidden: usize,
    kernel: Kernel,
}

/// A [`BiLstm`]'s output for a batch: rows of `2 · hidden` values
/// (forward then backward), each sequence's rows together.
pub(crate) struct BiLstmOutput {
    pub(crate) rows: Vec<f32>,
    /// Per input sequence, in input order: its rows.
    pub(crate) spans: Vec<std::ops::Range<usize>>,
}

impl BiLstm {
    pub(crate) fn load(weights: &mut Weights, prefix: &str, input: usize, hidden: usize, layers: usize) -> Result<Self, ModelError> {
        let h = hidden;
        let mut stack = Vec::with_capacity(layers);
        for layer in 0..layers {
            let input = if layer == 0 { input } else { 2 * h };
            let mut direction = |suffix: &str| -> Result<LstmDirection, ModelError> {
                let name = |kind: &str| format!("{prefix}.{kind}_l{layer}{suffix}");
                let w_ih = weights.get(&name("weight_ih"), &[4 * h, input])?;
                let w_hh = weights.get(&name("weight_hh"), &[4 * h, h])?;
                let b_ih = weights.get(&name("bias_ih"), &[4 * h])?;
                let b_hh = weights.get(&name("bias_hh"), &[4 * h])?;
                Ok(LstmDirection::new(&w_ih, &w_hh, &b_ih, &b_hh, h))
            };
            stack.push(BiLstmLayer { forward: direction("")?, backward: direction("_reverse")? });
        }
        Ok(Self { layers: stack, input, hidden, kernel: Kernel::detect(hidden) })
    }

    pub(crate) fn hidden(&self) -> usize {
        self.hidden
    }

    /// Runs sequences of input rows (`input` values each) together: longest
    /// first, so that each pass over the weights serves every sequence still
    /// running. Empty sequences get no rows.
    pub(crate) fn run(&self, sequences: &[&[f32]]) -> BiLstmOutput {
        let steps: Vec<usize> = sequences.iter().map(|x| x.len() / self.input).collect();
        let mut order: Vec<usize> = (0..sequences.len()).filter(|&i| steps[i] > 0).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(steps[i]));
        let packed = Packed::new(order.iter().map(|&i| steps[i]).collect());
        let mut x = Vec::with_capacity(packed.rows() * self.input);
        for &i in &order {
            x.extend_from_slice(&sequences[i][..steps[i] * self.input]);
        }
        for layer in &self.layers {
            x = layer.run(&x, &packed, self.kernel);
        }
        let mut spans = vec![0..0; sequences.len()];
        for (k, &i) in order.iter().enumerate() {
            spans[i] = packed.offset(k)..packed.offset(k) + packed.length(k);
        }
        BiLstmOutput { rows: x, spans }
    }
}

/// `rows` (each `inputs` values) times a transposed weight matrix
/// (`inputs × outputs`) plus a bias: a linear layer's output, row by row.
pub(crate) fn linear(rows: &[f32], inputs: usize, w_t: &[f32], bias: &[f32]) -> Vec<f32> {
    let n = rows.len() / inputs;
    let mut out = Vec::with_capacity(n * bias.len());
    for _ in 0..n {
        out.extend_from_slice(bias);
    }
    lstm::matmul_acc(rows, n, inputs, w_t, bias.len(), &mut out);
    out
}

/// A weight matrix as stored (`outputs × inputs`), transposed for [`linear`].
pub(crate) fn transposed(w: &[f32], outputs: usize, inputs: usize) -> Vec<f32> {
    lstm::transpose(w, outputs, inputs)
}

/// A loaded BiLSTM-CTC acoustic model.
pub struct AcousticModel {
    config: ModelConfig,
    vocabulary: Vocabulary,
    lstm: BiLstm,
    /// Output weights transposed (2H × vocab) and bias.
    out_w_t: Vec<f32>,
    out_b: Vec<f32>,
    num_parameters: usize,
}

impl std::fmt::Debug for AcousticModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcousticModel").field("config", &self.config).finish_non_exhaustive()
    }
}

/// A tensor of the expected shape, as f32 values in row-major order
/// (whatever float type it was stored in).
fn as_f32(tensor: &Tensor, shape: &[usize]) -> candle_core::Result<Vec<f32>> {
    if tensor.dims() != shape {
        candle_core::bail!("shape mismatch: expected {shape:?}, got {:?}", tensor.dims());
    }
    tensor.to_dtype(DType::F32)?.flatten_all()?.to_vec1()
}

fn candle_error(name: &str) -> impl Fn(candle_core::Error) -> ModelError + '_ {
    move |e| ModelError::Tensor { name: name.to_string(), message: e.to_string().lines().next().unwrap_or_default().to_string() }
}

impl AcousticModel {
    pub fn load_dir(dir: &Path) -> Result<Self, ModelError> {
        Self::load(&ModelFiles::read_dir(dir)?)
    }

    pub fn load(files: &ModelFiles<'_>) -> Result<Self, ModelError> {
        let config: ModelConfig = serde_json::from_slice(&files.config_json).map_err(|e| ModelError::Config(e.to_string()))?;
        let tokens = std::str::from_utf8(&files.tokens_txt).map_err(|e| ModelError::Tokens(e.to_string()))?;
        let vocabulary = Vocabulary::parse(tokens)?;
        if vocabulary.len() != config.vocab {
            return Err(ModelError::Config(format!("vocab is {} but tokens.txt has {} tokens", config.vocab, vocabulary.len())));
        }
        if config.stack == 0 || config.layers == 0 || config.hidden == 0 {
            return Err(ModelError::Config("stack, layers and hidden must be positive".into()));
        }
        let mut weights = Weights::parse(&files.safetensors)?;
        let (h, input) = (config.hidden, config.stack * config.features.num_bins);
        let lstm = BiLstm::load(&mut weights, "lstm", input, h, config.layers)?;
        let out_w = weights.get("out.weight", &[config.vocab, 2 * h])?;
        let out_b = weights.get("out.bias", &[config.vocab])?;
        Ok(Self {
            out_w_t: transposed(&out_w, config.vocab, 2 * h),
            out_b,
            num_parameters: weights.parameters_read(),
            config,
            vocabulary,
            lstm,
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
    pub fn forward(&self, features: &Features) -> LogProbs {
        self.forward_batch(&[features]).pop().expect("one output per input")
    }

    /// Runs the network over several utterances at once, one output each,
    /// in order. Each output equals what [`forward`](Self::forward) gives
    /// for that utterance alone; together they share every pass over the
    /// weights, which is where a batch gains.
    pub fn forward_batch(&self, batch: &[&Features]) -> Vec<LogProbs> {
        let (stack, vocab, step_s) = (self.config.stack, self.config.vocab, self.config.step_s());
        let stacked_dim = stack * self.config.features.num_bins;
        let steps: Vec<usize> = batch
            .iter()
            .map(|f| {
                assert_eq!(f.num_bins(), self.config.features.num_bins, "features from another filterbank");
                f.num_frames() / stack
            })
            .collect();
        // A stack of frames is their concatenation, so an utterance's
        // network input is a prefix of its feature matrix.
        let inputs: Vec<&[f32]> = batch.iter().zip(&steps).map(|(f, &n)| &f.data()[..n * stacked_dim]).collect();
        let hidden = self.lstm.run(&inputs);
        let mut logits = linear(&hidden.rows, 2 * self.lstm.hidden(), &self.out_w_t, &self.out_b);
        for row in logits.chunks_exact_mut(vocab) {
            log_softmax(row);
        }
        hidden.spans.iter().map(|rows| LogProbs::new(logits[rows.start * vocab..rows.end * vocab].to_vec(), vocab, step_s)).collect()
    }
}

fn log_softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let log_sum = row.iter().map(|v| (v - max).exp()).sum::<f32>().ln() + max;
    for v in row {
        *v -= log_sum;
    }
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
}
