//! hark's recognizer: speech to text on a bidirectional LSTM with CTC
//! decoding, free of any server or command-line code.
//!
//! Data flows one way through the modules:
//! bytes ──[`audio`]──▶ Waveform ──[`features`]──▶ Features ──[`model`]──▶
//! LogProbs ──[`ctc`]──▶ spoken words ──[`punctuation`], [`written`]──▶
//! [`transcript::Transcript`] ──▶ JSON, text, subtitles.
//! [`recognizer`] runs the whole pipeline, cutting long audio at the pauses
//! [`vad`] finds, through the steps [`pipeline`] names; [`stream`] turns live audio into utterances; [`eval`]
//! measures it. The service around it is the `hark-server` crate.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod align;
pub mod audio;
pub mod ctc;
pub mod error;
pub mod eval;
pub mod features;
pub mod lm;
pub mod model;
pub mod pipeline;
pub mod punctuation;
pub mod recognizer;
pub mod stream;
pub mod text;
pub mod transcript;
pub mod vad;
pub mod written;
