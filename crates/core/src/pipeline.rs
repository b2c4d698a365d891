//! One recording's way through recognition, as the values it passes
//! through: a [`Cut`] (the audio cut at pauses into pieces the network can
//! take, each with its features), then [`Heard`] (each piece's network
//! output, placed in the recording), then a transcript or an alignment.
//!
//! The [`Recognizer`](crate::recognizer::Recognizer) makes every step
//! (`cut`, `hear`, `transcript`, `align_heard`), and every entry point
//! (the service's routes, `hark transcribe`, `eval`, `bench`) goes through
//! them. Only the network step differs: the recognizer runs one recording's
//! pieces in batches of its own, the service's scheduler batches pieces of
//! many requests together. So a cut hands its features out and a
//! [`Placement`] takes the outputs back ([`Cut::into_parts`]); what runs
//! the network in between is the caller's choice.

use crate::features::Features;
use crate::model::LogProbs;
use crate::vad::Loudness;

/// A recording cut into pieces, each with its features and where it starts.
#[derive(Debug)]
pub struct Cut {
    starts_s: Vec<f64>,
    features: Vec<Features>,
    duration_s: f64,
    loudness: Loudness,
}

impl Cut {
    /// Pieces of a recording of `duration_s` seconds, each starting where
    /// its `f64` says, and the whole recording's loudness.
    pub(crate) fn new(pieces: Vec<(f64, Features)>, duration_s: f64, loudness: Loudness) -> Self {
        let (starts_s, features) = pieces.into_iter().unzip();
        Self { starts_s, features, duration_s, loudness }
    }

    /// One utterance of a live stream, recognized whole: it starts at
    /// `start_s` in the stream and lasts `duration_s`.
    pub fn whole(start_s: f64, features: Features, duration_s: f64) -> Self {
        Self { starts_s: vec![start_s], features: vec![features], duration_s, loudness: Loudness::default() }
    }

    /// Where each piece starts in the recording.
    pub fn starts_s(&self) -> &[f64] {
        &self.starts_s
    }

    pub fn duration_s(&self) -> f64 {
        self.duration_s
    }

    /// The pieces' features in order, for the network, and the placement
    /// that puts its outputs back where the pieces were.
    pub fn into_parts(self) -> (Vec<Features>, Placement) {
        (self.features, Placement { starts_s: self.starts_s, duration_s: self.duration_s, loudness: self.loudness })
    }
}

/// Where a cut's pieces were: takes the network's outputs back.
#[derive(Debug)]
pub struct Placement {
    starts_s: Vec<f64>,
    duration_s: f64,
    loudness: Loudness,
}

impl Placement {
    /// The network's outputs, one per piece in the cut's order, placed in
    /// the recording.
    ///
    /// # Panics
    /// When there is not one output per piece: a network that drops or adds
    /// outputs is a bug of the caller's.
    pub fn place(self, outputs: Vec<LogProbs>) -> Heard {
        assert_eq!(outputs.len(), self.starts_s.len(), "one network output per piece");
        Heard::new(self.starts_s.into_iter().zip(outputs).collect(), self.duration_s, self.loudness)
    }
}

/// A recording as the network heard it: each piece's output with where the
/// piece starts, and the recording's loudness (where sounds begin and end,
/// finer than the network's steps).
#[derive(Debug, Clone)]
pub struct Heard {
    pieces: Vec<(f64, LogProbs)>,
    duration_s: f64,
    loudness: Loudness,
}

impl Heard {
    /// Network outputs of a recording of `duration_s` seconds, each with
    /// where its piece starts (in order), and the recording's loudness.
    pub fn new(pieces: Vec<(f64, LogProbs)>, duration_s: f64, loudness: Loudness) -> Self {
        Self { pieces, duration_s, loudness }
    }

    pub fn pieces(&self) -> &[(f64, LogProbs)] {
        &self.pieces
    }

    pub fn duration_s(&self) -> f64 {
        self.duration_s
    }

    pub fn loudness(&self) -> &Loudness {
        &self.loudness
    }

    pub(crate) fn into_pieces(self) -> Vec<(f64, LogProbs)> {
        self.pieces
    }
}
