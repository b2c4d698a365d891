//! Forced alignment: audio and the text that was said in, each written word
//! with its time out.
//!
//! The text is kept as it was written (case, punctuation, digits); each
//! written word is normalized to the model's alphabet ("1998" → "nineteen
//! ninety eight", "Mr." → "mr", "—" → nothing) and the spoken words are
//! aligned by Viterbi over the CTC trellis: each word's letters in order,
//! blanks between letters (required between a repeated letter), the word
//! separator optional between words. Two escapes keep a mismatch between
//! text and audio local:
//! - a word may be skipped, at a price: one the speaker left out is
//!   reported `aligned: false` instead of being squeezed between its
//!   neighbours;
//! - between words (and before the first, after the last) a garbage state
//!   absorbs speech the text does not hold (an aside, applause, a name
//!   read differently), scored as the best any token explains the frame,
//!   less a price per frame, as the aligners of Kaldi's lineage do with
//!   their garbage phone.
//!
//! Long audio is aligned piece by piece in bounded memory: it is cut at
//! pauses as for recognition, each piece is recognized (greedy), the
//! recognized words are matched to the text's by edit distance, and each
//! text word goes to the piece its matched (or substituted) word is in;
//! each piece is then aligned with its share of the text. Time and memory
//! grow with the pieces, not with the square of the audio.

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use crate::error::{Coded, ErrorKind};
use crate::model::{LogProbs, Vocabulary, BLANK};
use crate::text::normalize;
use crate::transcript::{to_ms, Segment, SegmentRules, Transcript, Word};
use crate::vad::Loudness;

/// Prices of the escapes, in nats of log probability.
#[derive(Debug, Clone, Copy)]
pub struct AlignOptions {
    /// Leaving a word of the text unaligned...
    pub skip_penalty: f32,
    /// ... and each further word of the same run: a sentence the speaker
    /// left out is one event, not one per word (priced per word, a long
    /// run's words would rather be squeezed into its neighbours' audio).
    pub skip_run_penalty: f32,
    /// Entering the garbage state, and each frame spent in it.
    pub garbage_entry_penalty: f32,
    pub garbage_frame_penalty: f32,
    /// Report each letter's time too.
    pub characters: bool,
    /// Every word said, in order, and nothing else: the plain CTC graph
    /// over the text's letters with a word separator between words (the
    /// graph of the CTC loss and of torchaudio's `forced_align`), without
    /// skips or garbage.
    pub strict: bool,
}

impl Default for AlignOptions {
    fn default() -> Self {
        Self {
            skip_penalty: 8.0,
            skip_run_penalty: 3.0,
            garbage_entry_penalty: 2.0,
            garbage_frame_penalty: 1.0,
            characters: false,
            strict: false,
        }
    }
}

/// Why a text cannot be aligned.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AlignError {
    #[error("the text is empty: send the words that were said")]
    EmptyText,
    #[error("nothing in the text can be spoken in the model's alphabet (letters a–z, apostrophes, numbers)")]
    NothingAlignable,
    #[error("the text needs at least {labels} frames of audio ({seconds:.2} s), the audio has {frames}")]
    TextTooLong { labels: usize, frames: usize, seconds: f64 },
}

impl Coded for AlignError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Unprocessable
    }

    fn code(&self) -> &'static str {
        match self {
            Self::EmptyText => "empty_text",
            Self::NothingAlignable => "no_alignable_text",
            Self::TextTooLong { .. } => "text_too_long",
        }
    }
}

/// The text to align: its written words, and the spoken words (token ids)
/// each becomes.
#[derive(Debug, Clone)]
pub struct AlignText {
    written: Vec<String>,
    /// For each spoken word: its written word and its tokens.
    spoken: Vec<(usize, String, Vec<usize>)>,
}

impl AlignText {
    /// Splits `text` at whitespace into written words and normalizes each.
    /// A written word with nothing to say (a dash, a bullet) joins the one
    /// before it (the first word, the one after).
    pub fn new(text: &str, vocabulary: &Vocabulary) -> Result<Self, AlignError> {
        let mut written: Vec<String> = Vec::new();
        let mut spoken = Vec::new();
        let mut pending_prefix = String::new();
        for token in text.split_whitespace() {
            let words: Vec<Vec<usize>> = normalize(token)
                .split(' ')
                .filter(|w| !w.is_empty())
                .map(|w| w.chars().filter_map(|c| vocabulary.id(&c.to_string())).collect::<Vec<usize>>())
                .filter(|ids| !ids.is_empty())
                .collect();
            if words.is_empty() {
                match written.last_mut() {
                    Some(last) => {
                        last.push(' ');
                        last.push_str(token);
                    }
                    None => {
                        pending_prefix.push_str(token);
                        pending_prefix.push(' ');
                    }
                }
                continue;
            }
            let index = written.len();
            written.push(format!("{}{token}", std::mem::take(&mut pending_prefix)));
            for ids in words {
                let text = ids.iter().map(|&id| vocabulary.token(id)).collect::<String>();
                spoken.push((index, text, ids));
            }
        }
        if text.trim().is_empty() {
            return Err(AlignError::EmptyText);
        }
        if spoken.is_empty() {
            return Err(AlignError::NothingAlignable);
        }
        Ok(Self { written, spoken })
    }

    /// The fewest frames the spoken words take: a frame per letter, and a
    /// blank between a letter and its repeat.
    fn min_frames(&self) -> usize {
        self.spoken.iter().map(|(_, _, ids)| ids.len() + ids.windows(2).filter(|w| w[0] == w[1]).count()).sum()
    }

    /// The spoken words, for matching against recognized ones.
    fn spoken_words(&self) -> Vec<&str> {
        self.spoken.iter().map(|(_, text, _)| text.as_str()).collect()
    }
}

/// One letter's time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CharTime {
    #[serde(rename = "char")]
    pub character: String,
    #[serde(rename = "start", serialize_with = "crate::transcript::serialize_ms")]
    pub start_s: f64,
    #[serde(rename = "end", serialize_with = "crate::transcript::serialize_ms")]
    pub end_s: f64,
}

/// Where a word was said, when it was.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    pub start_s: f64,
    pub end_s: f64,
    /// In [0, 1]: the geometric mean of its letters' posteriors at their peaks.
    pub score: f32,
}

/// A written word of the text and where it was said; `span` is None for a
/// word the speaker skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct AlignedWord {
    pub word: String,
    pub span: Option<Span>,
    pub characters: Vec<CharTime>,
}

impl Serialize for AlignedWord {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("AlignedWord", 6)?;
        s.serialize_field("word", &self.word)?;
        s.serialize_field("start", &self.span.map(|span| to_ms(span.start_s)))?;
        s.serialize_field("end", &self.span.map(|span| to_ms(span.end_s)))?;
        s.serialize_field("score", &self.span.map(|span| (f64::from(span.score) * 1000.0).round() / 1000.0))?;
        s.serialize_field("aligned", &self.span.is_some())?;
        if !self.characters.is_empty() {
            s.serialize_field("characters", &self.characters)?;
        }
        s.end()
    }
}

/// The text's words with their times.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alignment {
    #[serde(rename = "duration", serialize_with = "crate::transcript::serialize_ms")]
    pub duration_s: f64,
    pub words: Vec<AlignedWord>,
}

impl Alignment {
    /// The aligned words grouped as subtitle cues by `rules`; a word the
    /// speaker skipped is shown with the word before it (or after it).
    pub fn segments(&self, rules: SegmentRules) -> Vec<Segment> {
        let mut words: Vec<Word> = Vec::new();
        let mut waiting = String::new();
        for word in &self.words {
            match (word.span, words.last_mut()) {
                (Some(span), _) => {
                    let text = format!("{waiting}{}", word.word);
                    waiting.clear();
                    words.push(Word { word: text, start_s: span.start_s, end_s: span.end_s, confidence: span.score });
                }
                (None, Some(last)) => {
                    last.word.push(' ');
                    last.word.push_str(&word.word);
                }
                (None, None) => {
                    waiting.push_str(&word.word);
                    waiting.push(' ');
                }
            }
        }
        Transcript::new(words, self.duration_s).segments(rules)
    }

    /// A Praat TextGrid (long text format): a `words` tier, and a `chars`
    /// tier when letters were timed; silence and skipped words are empty
    /// intervals, as the Montreal Forced Aligner writes them.
    pub fn to_textgrid(&self) -> String {
        let words: Vec<(f64, f64, &str)> =
            self.words.iter().filter_map(|w| w.span.map(|s| (s.start_s, s.end_s, w.word.as_str()))).collect();
        let chars: Vec<(f64, f64, &str)> =
            self.words.iter().flat_map(|w| &w.characters).map(|c| (c.start_s, c.end_s, c.character.as_str())).collect();
        let mut tiers = vec![("words", words)];
        if !chars.is_empty() {
            tiers.push(("chars", chars));
        }
        let end = to_ms(self.duration_s);
        let mut out = format!(
            "File type = \"ooTextFile\"\nObject class = \"TextGrid\"\n\nxmin = 0\nxmax = {end}\ntiers? <exists>\nsize = {}\nitem []:\n",
            tiers.len()
        );
        for (n, (name, marks)) in tiers.iter().enumerate() {
            let intervals = tile(marks, self.duration_s);
            out += &format!(
                "    item [{}]:\n        class = \"IntervalTier\"\n        name = \"{name}\"\n        xmin = 0\n        xmax = {end}\n        intervals: size = {}\n",
                n + 1,
                intervals.len()
            );
            for (i, (start, stop, text)) in intervals.iter().enumerate() {
                out += &format!(
                    "        intervals [{}]:\n            xmin = {}\n            xmax = {}\n            text = \"{}\"\n",
                    i + 1,
                    to_ms(*start),
                    to_ms(*stop),
                    text.replace('"', "\"\"")
                );
            }
        }
        out
    }
}

/// Intervals that tile 0..`duration_s`: the marks, in order, with empty
/// ones in the gaps (a TextGrid tier leaves no time uncovered).
fn tile<'a>(marks: &[(f64, f64, &'a str)], duration_s: f64) -> Vec<(f64, f64, &'a str)> {
    let mut out = Vec::with_capacity(marks.len() * 2 + 1);
    let mut at = 0.0;
    for &(start, end, text) in marks {
        let start = start.max(at);
        if to_ms(start) > to_ms(at) {
            out.push((at, start, ""));
        }
        let end = end.max(start).min(duration_s.max(start));
        out.push((start, end, text));
        at = end;
    }
    if to_ms(duration_s) > to_ms(at) {
        out.push((at, duration_s, ""));
    }
    out
}

/// A piece of the audio: where it starts, and the network's output for it.
pub struct AlignPiece {
    pub start_s: f64,
    pub log_probs: LogProbs,
    /// The words recognized in it (greedy), to anchor the text.
    pub recognized: Vec<String>,
}

/// Aligns `text` to the pieces of a recording of `duration_s`; word edges
/// next to a pause follow the recording's `loudness` ([`refine_edges`]).
pub fn align(
    pieces: &[AlignPiece],
    loudness: &Loudness,
    duration_s: f64,
    text: &AlignText,
    vocabulary: &Vocabulary,
    options: &AlignOptions,
) -> Result<Alignment, AlignError> {
    let frames: usize = pieces.iter().map(|p| p.log_probs.num_steps()).sum();
    let labels = text.min_frames();
    if labels > frames {
        let step_s = pieces.first().map_or(0.01, |p| p.log_probs.step_s());
        return Err(AlignError::TextTooLong { labels, frames, seconds: labels as f64 * step_s });
    }
    let owners = assign_to_pieces(pieces, &text.spoken_words());
    let mut spans: Vec<Option<(Span, Vec<CharTime>)>> = vec![None; text.spoken.len()];
    for chunk in chunks(pieces) {
        let mine: Vec<usize> = (0..text.spoken.len()).filter(|&k| chunk.pieces.contains(&owners[k])).collect();
        if mine.is_empty() {
            continue;
        }
        let words: Vec<&[usize]> = mine.iter().map(|&k| text.spoken[k].2.as_slice()).collect();
        let trellis = if options.strict { Trellis::plain } else { Trellis::new }(&words, vocabulary.word_separator());
        let found = trellis.viterbi(&chunk.log_probs, options);
        for (&k, found) in mine.iter().zip(found) {
            spans[k] = found.map(|f| f.placed(&chunk.times, chunk.log_probs.step_s(), &text.spoken[k].2, vocabulary, options.characters));
        }
    }
    refine_edges(&mut spans, loudness);
    // A written word spans its spoken words; it is aligned when all are.
    let mut words: Vec<AlignedWord> =
        text.written.iter().map(|w| AlignedWord { word: w.clone(), span: None, characters: Vec::new() }).collect();
    let mut complete = vec![true; words.len()];
    for ((index, _, _), found) in text.spoken.iter().zip(spans) {
        let word = &mut words[*index];
        match found {
            None => complete[*index] = false,
            Some((span, characters)) => {
                word.span = Some(match word.span {
                    None => span,
                    Some(before) => Span { start_s: before.start_s, end_s: span.end_s, score: before.score.min(span.score) },
                });
                word.characters.extend(characters);
            }
        }
    }
    for (word, complete) in words.iter_mut().zip(complete) {
        if !complete {
            word.span = None;
            word.characters.clear();
        }
    }
    Ok(Alignment { duration_s, words })
}

/// How far a word edge may move from where the network placed it.
const MAX_EDGE_SHIFT_S: f64 = 0.3;
/// A 10 ms frame this far below the loudest of a word is outside the word.
const EDGE_DROP_DB: f32 = 35.0;
/// ... and this far above the background around it.
const OVER_BACKGROUND_DB: f32 = 10.0;
/// Edges are moved only where the word stands this far above the
/// background around it; in noisier audio the network's edges stay.
const MIN_EDGE_RANGE_DB: f32 = 15.0;
/// How far around a word its background is measured.
const BACKGROUND_S: f64 = 1.0;

/// Moves word edges (and the first and last letters') to where the sound
/// begins and ends. A CTC network fires each letter's spike somewhere
/// inside its sound: the first often tens of milliseconds after the word
/// begins, the last before it ends, and on steps of 30 ms. So from the
/// network's edge, a start moves back through frames still loud (within
/// [`EDGE_DROP_DB`] of the word's loudest) to the pause before them, and
/// an end forward to the pause after them; or inward past quiet frames.
/// Never into a neighbour's span, never more than [`MAX_EDGE_SHIFT_S`],
/// and not at all where no pause is within reach (words spoken without
/// one: where one ends and the next begins the loudness does not tell),
/// where the background is too close to the speech to tell, or where the
/// loudness is unknown.
fn refine_edges(spans: &mut [Option<(Span, Vec<CharTime>)>], loudness: &Loudness) {
    let db = loudness.frames_db();
    if db.is_empty() {
        return;
    }
    let frame = |t: f64| ((t / Loudness::FRAME_S).round().max(0.0) as usize).min(db.len());
    let found: Vec<usize> = (0..spans.len()).filter(|&k| spans[k].is_some()).collect();
    let mut previous_end_s = 0.0;
    for (n, &k) in found.iter().enumerate() {
        let next_start_s = found.get(n + 1).and_then(|&j| spans[j].as_ref()).map_or(f64::INFINITY, |(span, _)| span.start_s);
        let (span, characters) = spans[k].as_mut().expect("found");
        let (first, last) = (frame(span.start_s), frame(span.end_s));
        let around = &db[frame(span.start_s - BACKGROUND_S)..frame(span.end_s + BACKGROUND_S)];
        let Some(peak) = db[first..last].iter().copied().max_by(f32::total_cmp) else {
            previous_end_s = span.end_s;
            continue;
        };
        let mut levels = around.to_vec();
        let at = levels.len() / 10;
        let background = *levels.select_nth_unstable_by(at, f32::total_cmp).1;
        if peak - background < MIN_EDGE_RANGE_DB {
            previous_end_s = span.end_s;
            continue;
        }
        let threshold = (peak - EDGE_DROP_DB).max(background + OVER_BACKGROUND_DB);
        let loud = |f: usize| db[f] >= threshold;
        // The start: back through loud frames to the pause before them, or
        // forward past quiet ones.
        let earliest = frame(previous_end_s.max(span.start_s - MAX_EDGE_SHIFT_S)).min(first);
        let start = if loud(first) {
            (earliest..first).rev().find(|&f| !loud(f)).map_or(first, |quiet| quiet + 1)
        } else {
            (first..last).find(|&f| loud(f)).unwrap_or(first)
        };
        // The end: forward through loud frames to the pause after them, or
        // back past quiet ones.
        let latest = frame(next_start_s.min(span.end_s + MAX_EDGE_SHIFT_S)).max(last);
        let end = if loud(last - 1) {
            (last..latest).find(|&f| !loud(f)).unwrap_or(last)
        } else {
            (start + 1..last).rev().find(|&f| loud(f - 1)).unwrap_or(last)
        };
        span.start_s = start as f64 * Loudness::FRAME_S;
        span.end_s = end as f64 * Loudness::FRAME_S;
        if let Some(c) = characters.first_mut() {
            c.start_s = span.start_s;
        }
        if let Some(c) = characters.last_mut() {
            c.end_s = span.end_s;
        }
        previous_end_s = span.end_s;
    }
}

/// The most frames aligned in one trellis: about a minute at 30 ms a
/// frame. Its memory (a byte per frame and state) stays a few MB.
const MAX_CHUNK_FRAMES: usize = 2000;

/// Consecutive pieces aligned together, their outputs joined, with each
/// frame's time in the recording.
struct Chunk {
    pieces: std::ops::Range<usize>,
    log_probs: LogProbs,
    times: Vec<f64>,
}

/// The pieces joined into chunks of at most [`MAX_CHUNK_FRAMES`] (a piece
/// longer than that is a chunk of its own): fewer boundaries for the
/// text's share-out to get wrong, at a bounded cost.
fn chunks(pieces: &[AlignPiece]) -> Vec<Chunk> {
    let mut out: Vec<Chunk> = Vec::new();
    for (p, piece) in pieces.iter().enumerate() {
        let (steps, step_s, vocab) = (piece.log_probs.num_steps(), piece.log_probs.step_s(), piece.log_probs.vocab());
        let times = (0..steps).map(|t| piece.start_s + t as f64 * step_s);
        match out.last_mut() {
            Some(chunk) if chunk.times.len() + steps <= MAX_CHUNK_FRAMES => {
                let mut data = std::mem::replace(&mut chunk.log_probs, LogProbs::new(Vec::new(), vocab, step_s)).data().to_vec();
                data.extend_from_slice(piece.log_probs.data());
                chunk.log_probs = LogProbs::new(data, vocab, step_s);
                chunk.times.extend(times);
                chunk.pieces.end = p + 1;
            }
            _ => out.push(Chunk { pieces: p..p + 1, log_probs: piece.log_probs.clone(), times: times.collect() }),
        }
    }
    out
}

/// Which piece each spoken word of the text belongs to: that of the
/// recognized word it is matched or substituted with by edit distance, or
/// for a word the recognizer missed, that of the word before it (the first
/// ones: the first piece).
fn assign_to_pieces(pieces: &[AlignPiece], spoken: &[&str]) -> Vec<usize> {
    if pieces.len() <= 1 {
        return vec![0; spoken.len()];
    }
    let recognized: Vec<(usize, &str)> =
        pieces.iter().enumerate().flat_map(|(p, piece)| piece.recognized.iter().map(move |w| (p, w.as_str()))).collect();
    let (n, m) = (spoken.len(), recognized.len());
    // cost[i][j]: spoken[..i] against recognized[..j]; moves: 0 pair, 1 skip spoken, 2 skip recognized.
    let mut previous: Vec<u32> = (0..=m as u32).collect();
    let mut moves = vec![0u8; (n + 1) * (m + 1)];
    moves[1..=m].fill(2);
    for i in 1..=n {
        let mut row = vec![i as u32; m + 1];
        moves[i * (m + 1)] = 1;
        for j in 1..=m {
            let pair = previous[j - 1] + u32::from(spoken[i - 1] != recognized[j - 1].1);
            let (skip_spoken, skip_recognized) = (previous[j] + 1, row[j - 1] + 1);
            let (cost, step) = if pair <= skip_spoken && pair <= skip_recognized {
                (pair, 0)
            } else if skip_spoken <= skip_recognized {
                (skip_spoken, 1)
            } else {
                (skip_recognized, 2)
            };
            row[j] = cost;
            moves[i * (m + 1) + j] = step;
        }
        previous = row;
    }
    let mut owner: Vec<Option<usize>> = vec![None; n];
    let (mut i, mut j) = (n, m);
    while i > 0 || j > 0 {
        match moves[i * (m + 1) + j] {
            0 => {
                owner[i - 1] = Some(recognized[j - 1].0);
                i -= 1;
                j -= 1;
            }
            1 => i -= 1,
            _ => j -= 1,
        }
    }
    let mut last = owner.iter().flatten().next().copied().unwrap_or(0);
    owner
        .into_iter()
        .map(|o| {
            last = o.unwrap_or(last);
            last
        })
        .collect()
}

/// What the Viterbi path says of one spoken word: the frames of each of its
/// letters (first, last) and the letters' peak log probabilities.
#[derive(Debug, Clone)]
struct Found {
    letters: Vec<(usize, usize, f32)>,
}

impl Found {
    /// The word's times, given each frame's time in the recording.
    fn placed(&self, times: &[f64], step_s: f64, ids: &[usize], vocabulary: &Vocabulary, characters: bool) -> (Span, Vec<CharTime>) {
        let time = |frame: usize| times[frame];
        let mean = self.letters.iter().map(|l| l.2).sum::<f32>() / self.letters.len() as f32;
        let span =
            Span { start_s: time(self.letters[0].0), end_s: time(self.letters[self.letters.len() - 1].1) + step_s, score: mean.exp() };
        let chars = if characters {
            self.letters
                .iter()
                .zip(ids)
                .map(|(&(first, last, _), &id)| CharTime {
                    character: vocabulary.token(id).to_string(),
                    start_s: time(first),
                    end_s: time(last) + step_s,
                })
                .collect()
        } else {
            Vec::new()
        };
        (span, chars)
    }
}

/// What a state emits.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Emits {
    Blank,
    Token(usize),
    Garbage,
}

/// What a move into a state costs: nothing, or entering the garbage state
/// ([`AlignOptions`] sets the prices). Skipping words is a move of its own
/// ([`Trellis::viterbi`]).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Move {
    Free,
    EnterGarbage,
}

impl Move {
    fn log_price(self, options: &AlignOptions) -> f32 {
        match self {
            Self::Free => 0.0,
            Self::EnterGarbage => -options.garbage_entry_penalty,
        }
    }
}

/// The back pointer of a state entered by skipping words.
const SKIPPED: u8 = u8::MAX - 1;

/// What leaving `words` consecutive words unaligned costs, in nats.
fn skip_price(words: usize, options: &AlignOptions) -> f32 {
    match words {
        0 => 0.0,
        n => options.skip_penalty + (n - 1) as f32 * options.skip_run_penalty,
    }
}

/// A state and where it may come from, each with the kind of move.
#[derive(Debug, Clone)]
struct State {
    emits: Emits,
    from: Vec<(usize, Move)>,
    /// The spoken word and letter a letter state is.
    letter: Option<(usize, usize)>,
    /// The gap a blank or garbage state between words is in: it may also
    /// be entered by skipping the words before it.
    skip_into: Option<usize>,
}

/// The alignment graph of a piece's words: gap states (blank, separator,
/// garbage) before, between and after the words; each word's letters with
/// the blanks between them.
struct Trellis {
    states: Vec<State>,
    /// Each gap's blank, separator and garbage states.
    gaps: Vec<[usize; 3]>,
    /// Where each path may start and end, with the words an end leaves unsaid.
    starts: Vec<usize>,
    ends: Vec<(usize, usize)>,
    words: usize,
}

impl Trellis {
    /// The plain CTC graph: blank, then each token of the words with the
    /// separator between words, each followed by a blank; a token follows
    /// the one before it directly unless they are the same.
    fn plain(words: &[&[usize]], separator: usize) -> Self {
        let mut tokens: Vec<(usize, Option<(usize, usize)>)> = Vec::new();
        for (g, word) in words.iter().enumerate() {
            if g > 0 {
                tokens.push((separator, None));
            }
            tokens.extend(word.iter().enumerate().map(|(j, &token)| (token, Some((g, j)))));
        }
        let blank = |from| State { emits: Emits::Blank, from, letter: None, skip_into: None };
        let mut states = vec![blank(vec![(0, Move::Free)])];
        for (i, &(token, letter)) in tokens.iter().enumerate() {
            let (s, previous_token) = (states.len(), (i > 0).then(|| tokens[i - 1].0));
            let mut from = vec![(s, Move::Free), (s - 1, Move::Free)];
            if previous_token.is_some_and(|p| p != token) {
                from.push((s - 2, Move::Free));
            }
            states.push(State { emits: Emits::Token(token), from, letter, skip_into: None });
            states.push(blank(vec![(s + 1, Move::Free), (s, Move::Free)]));
        }
        let last = states.len() - 1;
        Self { states, gaps: Vec::new(), starts: vec![0, 1], ends: vec![(last - 1, 0), (last, 0)], words: words.len() }
    }

    fn new(words: &[&[usize]], separator: usize) -> Self {
        let mut states: Vec<State> = Vec::new();
        let add = |states: &mut Vec<State>, emits, letter| {
            states.push(State { emits, from: Vec::new(), letter, skip_into: None });
            states.len() - 1
        };
        // Gap g: before word g (g = words.len(): after the last).
        let mut gaps: Vec<[usize; 3]> = Vec::new();
        let mut letters: Vec<Vec<usize>> = Vec::new();
        for g in 0..=words.len() {
            let blank = add(&mut states, Emits::Blank, None);
            let separator_state = add(&mut states, Emits::Token(separator), None);
            let garbage = add(&mut states, Emits::Garbage, None);
            gaps.push([blank, separator_state, garbage]);
            if let Some(word) = words.get(g) {
                let mut ids = Vec::new();
                for (j, &token) in word.iter().enumerate() {
                    if j > 0 {
                        add(&mut states, Emits::Blank, None);
                    }
                    ids.push(add(&mut states, Emits::Token(token), Some((g, j))));
                }
                letters.push(ids);
            }
        }
        let trellis = Self { states, gaps: Vec::new(), starts: Vec::new(), ends: Vec::new(), words: words.len() };
        let mut trellis = trellis.connect(words, &gaps, &letters);
        trellis.gaps = gaps;
        trellis
    }

    fn connect(mut self, words: &[&[usize]], gaps: &[[usize; 3]], letters: &[Vec<usize>]) -> Self {
        let last_letter = |g: usize| letters[g][letters[g].len() - 1];
        for (g, &[blank, separator, garbage]) in gaps.iter().enumerate() {
            let inner = g > 0 && g < words.len();
            let mut into_gap = vec![(blank, Move::Free), (garbage, Move::Free)];
            if inner {
                into_gap.push((separator, Move::Free));
            }
            if g > 0 {
                into_gap.push((last_letter(g - 1), Move::Free));
            }
            self.states[blank].from = into_gap.clone();
            self.states[garbage].from =
                into_gap.iter().map(|&(s, _)| (s, if s == garbage { Move::Free } else { Move::EnterGarbage })).collect();
            if inner {
                self.states[separator].from = into_gap.clone();
            }
            if g > 0 {
                self.states[blank].skip_into = Some(g);
                self.states[garbage].skip_into = Some(g);
            }
            if let Some(ids) = letters.get(g) {
                let first = ids[0];
                let mut from = vec![(first, Move::Free), (blank, Move::Free), (garbage, Move::Free)];
                if inner {
                    from.push((separator, Move::Free));
                }
                if g > 0 && words[g - 1][words[g - 1].len() - 1] != words[g][0] {
                    from.push((last_letter(g - 1), Move::Free));
                }
                self.states[first].from = from;
                for j in 1..ids.len() {
                    let (letter, between, before) = (ids[j], ids[j] - 1, ids[j - 1]);
                    self.states[between].from = vec![(between, Move::Free), (before, Move::Free)];
                    let mut from = vec![(letter, Move::Free), (between, Move::Free)];
                    if words[g][j] != words[g][j - 1] {
                        from.push((before, Move::Free));
                    }
                    self.states[letter].from = from;
                }
            }
        }
        let [b0, _, r0] = gaps[0];
        self.starts = vec![b0, r0, letters[0][0]];
        let n = words.len();
        self.ends = vec![(last_letter(n - 1), 0)];
        for (g, &[b, s, r]) in gaps.iter().enumerate() {
            // Ending in an earlier gap leaves the words after it unsaid.
            let unsaid = n - g;
            self.ends.extend([(b, unsaid), (r, unsaid)]);
            if g > 0 && g < n {
                self.ends.push((s, unsaid));
            }
        }
        self
    }

    /// For each gap g, the best way into it by skipping the words before it
    /// (the run g-k … g-1 for any k), with the state skipped from: a run
    /// one word longer is the run into g-1 plus a word, or a new run from
    /// gap g-1, so each frame takes one pass over the gaps, not one per
    /// run length.
    fn best_skips(&self, score: &[f32], options: &AlignOptions, skip: &mut [(f32, usize)]) {
        for g in 1..self.gaps.len() {
            let source = self.gaps[g - 1].into_iter().max_by(|&a, &b| score[a].total_cmp(&score[b])).expect("three states a gap");
            let new_run = (score[source] - options.skip_penalty, source);
            let longer = (skip[g - 1].0 - options.skip_run_penalty, skip[g - 1].1);
            skip[g] = if longer.0 > new_run.0 { longer } else { new_run };
        }
    }

    /// The best path through the piece's frames; for each word, its
    /// letters' frames, or None when the path skips it.
    fn viterbi(&self, log_probs: &LogProbs, options: &AlignOptions) -> Vec<Option<Found>> {
        let (steps, count) = (log_probs.num_steps(), self.states.len());
        if steps == 0 {
            return vec![None; self.words];
        }
        let emit = |state: &State, t: usize| {
            let frame = log_probs.step(t);
            match state.emits {
                Emits::Blank => frame[BLANK],
                Emits::Token(id) => frame[id],
                Emits::Garbage => frame.iter().copied().fold(f32::NEG_INFINITY, f32::max) - options.garbage_frame_penalty,
            }
        };
        let mut score = vec![f32::NEG_INFINITY; count];
        for &s in &self.starts {
            let entry = if self.states[s].emits == Emits::Garbage { -options.garbage_entry_penalty } else { 0.0 };
            score[s] = entry + emit(&self.states[s], 0);
        }
        // The predecessor chosen for each state at each frame: an index into
        // its `from`, or SKIPPED with the state skipped from kept per gap.
        let mut back = vec![u8::MAX; steps * count];
        let gaps = self.gaps.len();
        let mut skipped_from = vec![0u32; steps * gaps];
        let mut skip = vec![(f32::NEG_INFINITY, 0usize); gaps];
        let mut next = vec![f32::NEG_INFINITY; count];
        for t in 1..steps {
            self.best_skips(&score, options, &mut skip);
            for (s, state) in self.states.iter().enumerate() {
                let mut best = (f32::NEG_INFINITY, u8::MAX);
                for (k, &(p, cost)) in state.from.iter().enumerate() {
                    let candidate = score[p] + cost.log_price(options);
                    if candidate > best.0 {
                        best = (candidate, k as u8);
                    }
                }
                if let Some(g) = state.skip_into {
                    let (price, source) = skip[g];
                    if price > best.0 {
                        best = (price, SKIPPED);
                        skipped_from[t * gaps + g] = source as u32;
                    }
                }
                next[s] = best.0 + emit(state, t);
                back[t * count + s] = best.1;
            }
            std::mem::swap(&mut score, &mut next);
        }
        let end = self
            .ends
            .iter()
            .map(|&(s, unsaid)| (score[s] - skip_price(unsaid, options), s))
            .fold((f32::NEG_INFINITY, usize::MAX), |a, b| if b.0 > a.0 { b } else { a });
        if end.0 == f32::NEG_INFINITY {
            return vec![None; self.words];
        }
        let mut path = vec![end.1; steps];
        for t in (1..steps).rev() {
            let state = &self.states[path[t]];
            path[t - 1] = match back[t * count + path[t]] {
                SKIPPED => skipped_from[t * gaps + state.skip_into.expect("only gap states are skipped into")] as usize,
                k => state.from[usize::from(k)].0,
            };
        }
        // Each letter's first and last frame and its peak log probability.
        let mut found: Vec<Option<Found>> = vec![None; self.words];
        for (t, &s) in path.iter().enumerate() {
            let Some((word, letter)) = self.states[s].letter else { continue };
            let logp = emit(&self.states[s], t);
            let letters = &mut found[word].get_or_insert_with(|| Found { letters: Vec::new() }).letters;
            match letters.get_mut(letter) {
                Some(l) => {
                    l.1 = t;
                    l.2 = l.2.max(logp);
                }
                None => letters.push((t, t, logp)),
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocabulary() -> Vocabulary {
        let mut tokens = vec!["<blank>".to_string(), "|".into(), "'".into()];
        tokens.extend(('a'..='z').map(String::from));
        Vocabulary::parse(&tokens.join("\n")).unwrap()
    }

    /// Network output that hears `frames`, one token a 10 ms frame ("_" a
    /// blank, " " the separator), each with probability 0.9.
    fn heard(frames: &str) -> LogProbs {
        let vocabulary = vocabulary();
        let mut data = Vec::new();
        for c in frames.chars() {
            let id = match c {
                '_' => BLANK,
                ' ' => vocabulary.word_separator(),
                c => vocabulary.id(&c.to_string()).unwrap(),
            };
            let mut frame = vec![(0.1f32 / (vocabulary.len() - 1) as f32).ln(); vocabulary.len()];
            frame[id] = 0.9f32.ln();
            data.extend(frame);
        }
        LogProbs::new(data, vocabulary.len(), 0.01)
    }

    fn aligned(frames: &str, text: &str) -> Alignment {
        let vocabulary = vocabulary();
        let piece = AlignPiece { start_s: 0.0, log_probs: heard(frames), recognized: Vec::new() };
        let text = AlignText::new(text, &vocabulary).unwrap();
        align(&[piece], &Loudness::default(), frames.len() as f64 * 0.01, &text, &vocabulary, &AlignOptions::default()).unwrap()
    }

    fn times(alignment: &Alignment) -> Vec<(String, Option<(f64, f64)>)> {
        alignment.words.iter().map(|w| (w.word.clone(), w.span.map(|s| (to_ms(s.start_s), to_ms(s.end_s))))).collect()
    }

    #[test]
    fn edges_next_to_a_pause_move_to_where_the_sound_begins_and_ends() {
        // Silence, a sound 0.4–0.7 s, silence, a sound 0.9–1.4 s holding two
        // words without a pause between them, silence to 2 s.
        let sound = |t: f64| (0.4..0.7).contains(&t) || (0.9..1.4).contains(&t);
        let samples: Vec<f32> =
            (0..32_000).map(|i| i as f64 / 16_000.0).map(|t| if sound(t) { 0.3 * (t * 2_000.0).sin() as f32 } else { 0.0 }).collect();
        let span = |start_s, end_s| Some((Span { start_s, end_s, score: 1.0 }, Vec::new()));
        let network = [span(0.45, 0.63), None, span(0.96, 1.05), span(1.14, 1.32)];
        let edges = |spans: &[Option<(Span, Vec<CharTime>)>]| -> Vec<Option<(f64, f64)>> {
            spans.iter().map(|s| s.as_ref().map(|(s, _)| (to_ms(s.start_s), to_ms(s.end_s)))).collect()
        };
        let mut spans = network.clone();
        refine_edges(&mut spans, &Loudness::of(&samples));
        // Where the two words meet, the loudness does not tell: those edges stay.
        assert_eq!(edges(&spans), [Some((0.4, 0.7)), None, Some((0.9, 1.05)), Some((1.14, 1.4))]);

        // Under noise nearly as loud as the sound, nothing moves.
        let noisy: Vec<f32> = samples.iter().enumerate().map(|(i, s)| s + if i % 2 == 0 { 0.1 } else { -0.1 }).collect();
        let mut spans = network.clone();
        refine_edges(&mut spans, &Loudness::of(&noisy));
        assert_eq!(edges(&spans), edges(&network));
    }

    #[test]
    fn words_get_the_frames_of_their_letters() {
        let got = aligned("__ca_at___  __dd_o_g____", "Cat dog.");
        assert_eq!(times(&got), vec![("Cat".into(), Some((0.02, 0.07))), ("dog.".into(), Some((0.14, 0.20)))]);
        assert!(got.words.iter().all(|w| w.span.unwrap().score > 0.85));
    }

    #[test]
    fn a_repeated_letter_needs_a_blank_between() {
        // "all" heard as a-l-_-l: both l's are used, the word ends at the second.
        let got = aligned("_al_l___", "all");
        assert_eq!(times(&got), vec![("all".into(), Some((0.01, 0.05)))]);
    }

    #[test]
    fn a_word_the_speaker_skipped_is_not_aligned_and_does_not_move_its_neighbours() {
        let got = aligned("__cat______emu____", "cat dog emu");
        assert_eq!(times(&got), vec![("cat".into(), Some((0.02, 0.05))), ("dog".into(), None), ("emu".into(), Some((0.11, 0.14)))]);
        assert_eq!(
            serde_json::to_value(&got.words[1]).unwrap(),
            serde_json::json!({"word": "dog", "start": null, "end": null, "score": null, "aligned": false})
        );
    }

    #[test]
    fn a_run_of_words_the_speaker_left_out_is_skipped_as_one() {
        // Priced one by one, each of the five one-letter words would rather
        // take a frame of the pause (a letter where a blank was heard costs
        // about 5.5 nats, less than a skip); as one run they are skipped.
        let got = aligned("__cat______emu____", "cat a b c d e emu");
        let expected =
            [("cat", Some((0.02, 0.05))), ("a", None), ("b", None), ("c", None), ("d", None), ("e", None), ("emu", Some((0.11, 0.14)))];
        assert_eq!(times(&got), expected.map(|(w, t)| (w.to_string(), t)));
    }

    #[test]
    fn speech_outside_the_text_is_absorbed_between_words() {
        let got = aligned("__cat__ x y z q w __dog__", "cat dog");
        assert_eq!(times(&got), vec![("cat".into(), Some((0.02, 0.05))), ("dog".into(), Some((0.20, 0.23)))]);
    }

    #[test]
    fn written_words_keep_their_form_and_span_their_spoken_words() {
        // "25" is said "twenty five"; the dash has nothing to say and joins "paid".
        let got = aligned("__paid___twenty__five___", "Paid — 25");
        assert_eq!(times(&got), vec![("Paid —".into(), Some((0.02, 0.06))), ("25".into(), Some((0.09, 0.21)))]);
    }

    #[test]
    fn texts_that_cannot_be_aligned_say_why() {
        let vocabulary = vocabulary();
        assert_eq!(AlignText::new("  \n", &vocabulary).err(), Some(AlignError::EmptyText));
        assert_eq!(AlignText::new("— !! …", &vocabulary).err(), Some(AlignError::NothingAlignable));
        let text = AlignText::new("a long sentence", &vocabulary).unwrap();
        let piece = AlignPiece { start_s: 0.0, log_probs: heard("__a__"), recognized: Vec::new() };
        let error = align(&[piece], &Loudness::default(), 0.05, &text, &vocabulary, &AlignOptions::default()).unwrap_err();
        assert_eq!((error.code(), error.kind()), ("text_too_long", ErrorKind::Unprocessable));
    }

    #[test]
    fn long_audio_gives_each_piece_the_words_recognized_in_it() {
        let piece = |recognized: &[&str]| AlignPiece {
            start_s: 0.0,
            log_probs: heard("_"),
            recognized: recognized.iter().map(|w| w.to_string()).collect(),
        };
        // The recognizer misheard "dog" as "dock" and missed "emu".
        let pieces = [piece(&["the", "cat"]), piece(&["a", "dock"]), piece(&["and", "fox"])];
        let owners = assign_to_pieces(&pieces, &["the", "cat", "a", "dog", "emu", "and", "fox"]);
        assert_eq!(owners, vec![0, 0, 1, 1, 1, 2, 2]);
    }

    #[test]
    fn pieces_place_words_in_the_whole_recording() {
        let vocabulary = vocabulary();
        let text = AlignText::new("cat dog", &vocabulary).unwrap();
        let pieces = vec![
            AlignPiece { start_s: 0.0, log_probs: heard("_cat_"), recognized: vec!["cat".into()] },
            AlignPiece { start_s: 10.0, log_probs: heard("__dog"), recognized: vec!["dog".into()] },
        ];
        let got =
            align(&pieces, &Loudness::default(), 10.05, &text, &vocabulary, &AlignOptions { characters: true, ..AlignOptions::default() })
                .unwrap();
        assert_eq!(times(&got), vec![("cat".into(), Some((0.01, 0.04))), ("dog".into(), Some((10.02, 10.05)))]);
        let letters: Vec<(&str, f64)> = got.words[1].characters.iter().map(|c| (c.character.as_str(), to_ms(c.start_s))).collect();
        assert_eq!(letters, vec![("d", 10.02), ("o", 10.03), ("g", 10.04)]);
    }

    #[test]
    fn a_textgrid_tier_covers_the_whole_recording() {
        let got = aligned("__cat______emu____", "cat dog \"emu\"");
        let grid = got.to_textgrid();
        assert!(grid.starts_with("File type = \"ooTextFile\"\nObject class = \"TextGrid\"\n\nxmin = 0\nxmax = 0.18\n"), "{grid}");
        assert!(grid.contains("intervals: size = 5\n"), "{grid}");
        assert!(grid.contains("xmin = 0.11\n            xmax = 0.14\n            text = \"\"\"emu\"\"\"\n"), "{grid}");
        // In a subtitle, the skipped word is shown with the one before it.
        let cues = got.segments(SegmentRules::subtitles());
        assert_eq!(
            cues.iter().map(|c| (c.text.as_str(), to_ms(c.start_s), to_ms(c.end_s))).collect::<Vec<_>>(),
            vec![("cat dog \"emu\"", 0.02, 0.14)]
        );
    }
}
