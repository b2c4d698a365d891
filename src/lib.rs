//! hark: speech to text on a bidirectional LSTM with CTC decoding.
//!
//! Data flows one way through the modules:
//! bytes ──[`audio`]──▶ Waveform ──[`features`]──▶ Features ──[`model`]──▶
//! LogProbs ──[`ctc`]──▶ [`transcript::Transcript`] ──[`server`] / CLI──▶ JSON, text, subtitles.
//! [`recognizer`] runs the whole pipeline, cutting long audio at the pauses
//! [`vad`] finds; [`eval`] measures it. In the
//! service, [`scheduler`] batches the model's work across requests and
//! [`metrics`] counts it.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod audio;
pub mod bench;
pub mod ctc;
pub mod eval;
pub mod features;
pub mod lm;
pub mod metrics;
pub mod model;
pub mod recognizer;
pub mod scheduler;
pub mod server;
pub mod stream;
pub mod text;
pub mod transcript;
pub mod vad;
