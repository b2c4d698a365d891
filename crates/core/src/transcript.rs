//! What recognition produces: words with times and confidences, their
//! written form, and the segments and subtitle formats (SRT, WebVTT) built
//! from them.

use std::borrow::Cow;
use std::ops::Range;

use serde::{Serialize, Serializer};

use crate::written::WrittenToken;

/// Seconds as a person reads them: to the millisecond (0.93, not
/// 0.9299999999999999). Times come from 10 ms frames, so nothing is lost.
pub fn to_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// Serializes seconds with [`to_ms`].
pub fn serialize_ms<S: Serializer>(seconds: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(to_ms(*seconds))
}

/// Serializes a confidence to three decimals (0.964, not the f32's
/// 0.9641161561012268 widened).
fn serialize_confidence<S: Serializer>(confidence: &f32, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64((f64::from(*confidence) * 1000.0).round() / 1000.0)
}

/// One recognized word.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Word {
    pub word: String,
    /// Seconds from the start of the audio.
    #[serde(rename = "start", serialize_with = "serialize_ms")]
    pub start_s: f64,
    #[serde(rename = "end", serialize_with = "serialize_ms")]
    pub end_s: f64,
    /// In [0, 1]: the geometric mean of its letters' posteriors where they were emitted,
    /// times (in beam search) the share of the final beams that agree on it.
    #[serde(serialize_with = "serialize_confidence")]
    pub confidence: f32,
}

/// A token of the written text ("$25", "London,"), timed by the spoken
/// words it stands for: from the start of its first to the end of its last.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Token {
    pub text: String,
    #[serde(rename = "start", serialize_with = "serialize_ms")]
    pub start_s: f64,
    #[serde(rename = "end", serialize_with = "serialize_ms")]
    pub end_s: f64,
    /// The lowest of its spoken words' confidences.
    #[serde(serialize_with = "serialize_confidence")]
    pub confidence: f32,
    /// Its spoken words: indices into the transcript's `words`.
    #[serde(serialize_with = "serialize_indices")]
    pub words: Range<usize>,
}

fn serialize_indices<S: Serializer>(range: &Range<usize>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(range.clone())
}

/// The result of recognizing one utterance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transcript {
    /// Written (with punctuation, capitals and numbers as digits: `tokens`),
    /// or the spoken words as the model spells them.
    pub text: String,
    #[serde(rename = "duration", serialize_with = "serialize_ms")]
    pub duration_s: f64,
    /// The spoken words.
    pub words: Vec<Word>,
    /// The written text token by token, when it was written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<Token>,
    /// The n-best list, best first (the transcript itself included), when
    /// more than one hypothesis was asked for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<Alternative>,
    /// Where long audio was cut into separately recognized pieces, in
    /// seconds: a segment never spans one.
    #[serde(skip)]
    pub cuts_s: Vec<f64>,
}

/// One of the n best transcripts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alternative {
    pub text: String,
    /// The decoder's log score (natural log; higher is better).
    pub score: f32,
}

/// Words joined by single spaces.
pub fn text_of(words: &[Word]) -> String {
    words.iter().map(|w| w.word.as_str()).collect::<Vec<_>>().join(" ")
}

impl Transcript {
    pub fn new(words: Vec<Word>, duration_s: f64) -> Self {
        Self { text: text_of(&words), duration_s, words, tokens: Vec::new(), alternatives: Vec::new(), cuts_s: Vec::new() }
    }

    /// Makes the written form of this transcript's words its text.
    pub fn write(&mut self, written: Vec<WrittenToken>) {
        self.tokens = written
            .into_iter()
            .map(|t| {
                let words = &self.words[t.spoken.clone()];
                Token {
                    text: t.text,
                    start_s: words[0].start_s,
                    end_s: words[words.len() - 1].end_s,
                    confidence: words.iter().map(|w| w.confidence).fold(1.0, f32::min),
                    words: t.spoken,
                }
            })
            .collect();
        self.text = self.tokens.iter().map(|t| t.text.as_str()).collect::<Vec<_>>().join(" ");
    }

    /// What segments and subtitles are made of: the written tokens (as
    /// words) when the text was written, else the spoken words.
    pub fn units(&self) -> Cow<'_, [Word]> {
        if self.tokens.is_empty() {
            return Cow::Borrowed(&self.words);
        }
        Cow::Owned(
            self.tokens
                .iter()
                .map(|t| Word { word: t.text.clone(), start_s: t.start_s, end_s: t.end_s, confidence: t.confidence })
                .collect(),
        )
    }

    /// Whether a pause of at least `min_pause_s`, or a cut, lies between
    /// two consecutive words (or tokens).
    fn apart(&self, before: &Word, after: &Word, min_pause_s: f64) -> bool {
        after.start_s - before.end_s >= min_pause_s || self.cuts_s.iter().any(|&cut| before.start_s < cut && cut <= after.start_s)
    }

    /// The indices of the words that start a phrase: after a pause that
    /// breaks a segment by default, or a cut. Written tokens never span one.
    pub fn phrase_starts(&self) -> Vec<usize> {
        let min_pause_s = SegmentRules::default().min_pause_s;
        (1..self.words.len()).filter(|&i| self.apart(&self.words[i - 1], &self.words[i], min_pause_s)).collect()
    }

    /// Groups the words (the written tokens, when written: [`Self::units`])
    /// into segments, breaking at pauses of at least `rules.min_pause_s`,
    /// after `rules.max_words` words, and where the audio was cut.
    pub fn segments(&self, rules: SegmentRules) -> Vec<Segment> {
        let units = self.units();
        let mut segments: Vec<Segment> = Vec::new();
        let mut first = 0;
        for i in 0..units.len() {
            let chars = |words: &[Word]| words.iter().map(|w| w.word.chars().count() + 1).sum::<usize>() - 1;
            let last_in_segment = i + 1 == units.len()
                || i + 1 - first >= rules.max_words
                || chars(&units[first..=i + 1]) > rules.max_chars
                || units[i + 1].end_s - units[first].start_s > rules.max_duration_s
                || self.apart(&units[i], &units[i + 1], rules.min_pause_s);
            if last_in_segment {
                let words = &units[first..=i];
                segments.push(Segment {
                    id: segments.len(),
                    start_s: words[0].start_s,
                    end_s: words[words.len() - 1].end_s,
                    text: text_of(words),
                    words: words.to_vec(),
                });
                first = i + 1;
            }
        }
        segments
    }
}

/// Where segments break: at a pause, or before a segment would hold too
/// many words, too many characters (a subtitle line) or too long a time.
#[derive(Debug, Clone, Copy)]
pub struct SegmentRules {
    pub min_pause_s: f64,
    pub max_words: usize,
    pub max_chars: usize,
    pub max_duration_s: f64,
}

impl Default for SegmentRules {
    fn default() -> Self {
        Self { min_pause_s: 0.5, max_words: 15, max_chars: usize::MAX, max_duration_s: f64::INFINITY }
    }
}

impl SegmentRules {
    /// Subtitle cues: at most 42 characters (a line at the BBC's and
    /// Netflix's limit) and 7 seconds.
    pub fn subtitles() -> Self {
        Self { max_chars: 42, max_duration_s: 7.0, ..Self::default() }
    }
}

/// A run of words between pauses: a subtitle cue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Segment {
    pub id: usize,
    #[serde(rename = "start", serialize_with = "serialize_ms")]
    pub start_s: f64,
    #[serde(rename = "end", serialize_with = "serialize_ms")]
    pub end_s: f64,
    pub text: String,
    /// Its words, or written tokens (as words) when the text was written;
    /// listed once, in the transcript.
    #[serde(skip)]
    pub words: Vec<Word>,
}

/// `HH:MM:SS{sep}mmm`, as SRT (`,`) and WebVTT (`.`) write times.
fn timestamp(seconds: f64, separator: char) -> String {
    let millis = (seconds.max(0.0) * 1000.0).round() as u64;
    let (h, rest) = (millis / 3_600_000, millis % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let (s, ms) = (rest / 1000, rest % 1000);
    format!("{h:02}:{m:02}:{s:02}{separator}{ms:03}")
}

/// SubRip subtitles.
pub fn to_srt(segments: &[Segment]) -> String {
    segments
        .iter()
        .map(|s| format!("{}\n{} --> {}\n{}\n\n", s.id + 1, timestamp(s.start_s, ','), timestamp(s.end_s, ','), s.text))
        .collect()
}

/// WebVTT subtitles.
pub fn to_vtt(segments: &[Segment]) -> String {
    let cues: String =
        segments.iter().map(|s| format!("{} --> {}\n{}\n\n", timestamp(s.start_s, '.'), timestamp(s.end_s, '.'), s.text)).collect();
    format!("WEBVTT\n\n{cues}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(word: &str, start_s: f64, end_s: f64) -> Word {
        Word { word: word.into(), start_s, end_s, confidence: 0.9 }
    }

    #[test]
    fn segments_break_at_long_pauses_and_after_max_words() {
        let words = vec![word("one", 0.0, 0.3), word("two", 0.4, 0.7), word("three", 1.3, 1.6), word("four", 1.7, 2.0)];
        let t = Transcript::new(words, 2.0);
        assert_eq!(t.text, "one two three four");
        let segments = t.segments(SegmentRules::default());
        assert_eq!(segments.iter().map(|s| s.text.as_str()).collect::<Vec<_>>(), ["one two", "three four"]);
        assert_eq!((segments[1].start_s, segments[1].end_s), (1.3, 2.0));
        let by_count = t.segments(SegmentRules { min_pause_s: 10.0, max_words: 3, ..SegmentRules::default() });
        assert_eq!(by_count.iter().map(|s| s.words.len()).collect::<Vec<_>>(), [3, 1]);
    }

    #[test]
    fn segments_never_span_a_cut() {
        let mut t = Transcript::new(vec![word("one", 0.0, 0.3), word("two", 0.4, 0.7), word("three", 0.8, 1.0)], 1.0);
        t.cuts_s = vec![0.75];
        let segments = t.segments(SegmentRules::default());
        assert_eq!(segments.iter().map(|s| s.text.as_str()).collect::<Vec<_>>(), ["one two", "three"]);
    }

    #[test]
    fn subtitles_have_the_standard_layout() {
        let t = Transcript::new(vec![word("hello", 0.0, 0.5), word("world", 3661.25, 3662.0)], 3663.0);
        let segments = t.segments(SegmentRules::default());
        assert_eq!(to_srt(&segments), "1\n00:00:00,000 --> 00:00:00,500\nhello\n\n2\n01:01:01,250 --> 01:01:02,000\nworld\n\n");
        assert_eq!(to_vtt(&segments), "WEBVTT\n\n00:00:00.000 --> 00:00:00.500\nhello\n\n01:01:01.250 --> 01:01:02.000\nworld\n\n");
    }

    #[test]
    fn times_are_written_to_the_millisecond() {
        let mut t = Transcript::new(vec![word("three", 31.0 * 0.03, 0.1 + 0.2)], 1.2345625);
        t.words[0].confidence = 0.964_116_16;
        let json = serde_json::to_string(&t).unwrap();
        assert!(json.contains(r#""start":0.93,"end":0.3,"confidence":0.964"#) && json.contains(r#""duration":1.235"#), "{json}");
        let segments = serde_json::to_string(&t.segments(SegmentRules::default())).unwrap();
        assert!(segments.contains(r#""start":0.93,"end":0.3"#), "{segments}");
    }

    #[test]
    fn an_empty_transcript_has_no_segments() {
        let t = Transcript::new(Vec::new(), 1.0);
        assert_eq!(t.text, "");
        assert!(t.segments(SegmentRules::default()).is_empty());
        assert_eq!(to_srt(&[]), "");
    }
}
