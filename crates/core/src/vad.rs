//! Where speech pauses: an energy-based voice activity detector.
//!
//! Long recordings are cut at pauses ([`cut`]) so each piece is about one
//! sentence, fits the network's window, and rarely splits a word; live
//! streams end an utterance when a pause has lasted long enough
//! ([`Endpointer`]). Both judge a 10 ms frame silent by its loudness against
//! the recording's own levels ([`silence_threshold_db`]), so a quiet phone
//! call and a loud studio take are treated alike.

use std::ops::Range;

use crate::audio::SAMPLE_RATE_HZ;

/// Analysis frames per second: 10 ms frames.
const FRAMES_PER_S: f64 = 100.0;
/// Samples per analysis frame.
const FRAME: usize = SAMPLE_RATE_HZ as usize / FRAMES_PER_S as usize;
/// A pause shorter than this is the gap between words, not a place to cut.
const MIN_PAUSE_S: f64 = 0.2;
/// A pause this long ends a sentence: long audio is always cut there.
const SENTENCE_PAUSE_S: f64 = 0.5;
/// Pause kept at each end of a piece, so the network hears the speech
/// begin and end as in the sentences it was trained on.
const PAD_S: f64 = 0.1;
/// A piece is at least this long, unless the audio ends.
const MIN_PIECE_S: f64 = 1.0;

/// `seconds` in whole frames, to the nearest.
fn frames(seconds: f64) -> usize {
    (seconds * FRAMES_PER_S).round() as usize
}

/// Loudness of each whole 10 ms frame, in dB relative to full scale.
fn frame_db(samples: &[f32]) -> Vec<f32> {
    samples.chunks_exact(FRAME).map(|f| 10.0 * (f.iter().map(|s| s * s).sum::<f32>() / FRAME as f32 + 1e-10).log10()).collect()
}

/// A recording's loudness in 10 ms frames, in dB relative to full scale:
/// finer than the network's steps, so it tells where a sound begins and
/// ends between the steps a word is placed in ([`crate::align`]).
#[derive(Debug, Clone, Default)]
pub struct Loudness {
    db: Vec<f32>,
}

impl Loudness {
    /// Seconds per frame.
    pub const FRAME_S: f64 = 1.0 / FRAMES_PER_S;

    pub fn of(samples: &[f32]) -> Self {
        Self { db: frame_db(samples) }
    }

    /// Each whole frame's loudness in dB, from the start of the recording;
    /// empty when it is not known.
    pub fn frames_db(&self) -> &[f32] {
        &self.db
    }
}

/// Speech must stand this far above the background for the background to
/// be told apart from it.
const MIN_RANGE_DB: f32 = 12.0;
/// Frames quieter than this are pauses in any recording.
const QUIET_DB: f32 = -60.0;

/// The loudness below which a frame counts as a pause: a quarter of the way
/// from the background to the speech, and at least 6 dB over the
/// background. The background is the 3rd percentile of the frames' levels:
/// read speech pauses for 10–30 % of the time, yet a fast talker may leave
/// only a few percent, and a higher percentile would then land in speech.
fn silence_threshold_db(levels: &[f32]) -> f32 {
    if levels.is_empty() {
        return f32::NEG_INFINITY;
    }
    // Two selections, not a sort: a live stream asks again every 100 ms
    // over up to a minute of levels.
    let mut levels = levels.to_vec();
    let at = |q: f64| ((levels.len() - 1) as f64 * q) as usize;
    let (low, high) = (at(0.03), at(0.9));
    let (below, &mut speech, _) = levels.select_nth_unstable_by(high, f32::total_cmp);
    let floor = if low == high { speech } else { *below.select_nth_unstable_by(low, f32::total_cmp).1 };
    if speech - floor < MIN_RANGE_DB {
        // No quiet stretch stands out: only near-silence counts as a pause.
        return QUIET_DB;
    }
    floor + ((speech - floor) * 0.25).max(6.0)
}

/// Cuts audio into pieces of at most `max_s` seconds, in order, covering
/// all its speech (pauses are kept only [`PAD_S`] deep). Audio that fits
/// stays whole. Longer audio is cut in the
/// middle of every pause of at least [`SENTENCE_PAUSE_S`], so that each
/// piece is about one sentence, as the model was trained on; a piece still
/// too long is cut in the middle of its longest pause (of at least
/// [`MIN_PAUSE_S`]) within reach or, when speech runs on without one, at
/// the quietest frame of the window's second half.
pub fn cut(samples: &[f32], max_s: f64) -> Vec<Range<usize>> {
    let max_frames = frames(max_s).max(2);
    // Most requests fit: their levels are not even computed.
    if samples.len() / FRAME <= max_frames {
        return std::iter::once(0..samples.len()).collect();
    }
    let levels = frame_db(samples);
    let pauses = pauses(&levels, silence_threshold_db(&levels));
    let cuts = cut_points(&levels, &pauses, max_frames);
    pieces_between(&cuts, &pauses, levels.len(), samples.len())
}

/// Where long audio is cut, in frames: at the next sentence end while the
/// piece up to it fits, else at a pause within reach ([`cut_within`]).
fn cut_points(levels: &[f32], pauses: &[Range<usize>], max_frames: usize) -> Vec<usize> {
    let min_frames = frames(MIN_PIECE_S).min(max_frames / 2);
    // Each pause as (its middle, its length).
    let middles = |min_len: usize| -> Vec<(usize, usize)> {
        pauses.iter().filter(|p| p.len() >= min_len).map(|p| ((p.start + p.end) / 2, p.len())).collect()
    };
    let (sentence_ends, any_pause) = (middles(frames(SENTENCE_PAUSE_S)), middles(0));
    let mut cuts = Vec::new();
    let mut start = 0;
    while start < levels.len() {
        // The next sentence end, when the piece up to it is not too short.
        let next_sentence_end = sentence_ends.iter().map(|&(m, _)| m).find(|&m| m >= start + min_frames && m < levels.len());
        let at = match next_sentence_end {
            Some(m) if m - start <= max_frames => m,
            _ if levels.len() - start <= max_frames => break,
            _ => cut_within(levels, &any_pause, start..start + max_frames, min_frames),
        };
        cuts.push(at);
        start = at;
    }
    cuts
}

/// A cut in `window` (a piece's longest extent) where no sentence ends:
/// the middle of the longest pause at least `min_frames` in, or in speech
/// without any, the quietest frame of the window's second half.
fn cut_within(levels: &[f32], pauses: &[(usize, usize)], window: Range<usize>, min_frames: usize) -> usize {
    let reach = window.start + min_frames..window.end;
    if let Some(&(middle, _)) = pauses.iter().filter(|(m, _)| reach.contains(m)).max_by_key(|&&(m, len)| (len, m)) {
        return middle;
    }
    let second_half = window.start + window.len() / 2..window.end;
    second_half.min_by(|&a, &b| levels[a].total_cmp(&levels[b])).expect("the window is not empty")
}

/// The pieces between the cuts, in samples. A piece inside one pause holds
/// nothing to recognize (and the network would make words of its noise):
/// it is left out. The others keep only [`PAD_S`] of the pauses at their
/// ends.
fn pieces_between(cuts: &[usize], pauses: &[Range<usize>], num_frames: usize, num_samples: usize) -> Vec<Range<usize>> {
    let pad = frames(PAD_S);
    let bounds: Vec<usize> = std::iter::once(0).chain(cuts.iter().copied()).chain(std::iter::once(num_frames)).collect();
    bounds
        .windows(2)
        .filter(|w| !pauses.iter().any(|p| p.start <= w[0] && w[1] <= p.end))
        .map(|w| {
            let start = pauses.iter().find(|p| p.contains(&w[0])).map_or(w[0], |p| w[0].max(p.end.saturating_sub(pad)));
            let end = pauses.iter().find(|p| p.contains(&(w[1] - 1))).map_or(w[1], |p| w[1].min(p.start + pad));
            start * FRAME..if end == num_frames { num_samples } else { end * FRAME }
        })
        .collect()
}

/// Finds the utterances of a live stream: speech, up to a pause of at least
/// the configured length.
#[derive(Debug)]
pub struct Endpointer {
    silence_frames: usize,
    /// Recent frame levels, for the threshold (the last minute at most).
    history: Vec<f32>,
    /// Samples not yet making a whole frame.
    partial: Vec<f32>,
    /// Whole frames heard since the stream began.
    frames: usize,
    trailing_silent: usize,
    /// The first frame of speech in the utterance in progress.
    onset: Option<usize>,
    /// The pause threshold, refreshed every [`THRESHOLD_REFRESH_FRAMES`].
    threshold: f32,
}

/// How many frames of history set the threshold.
const HISTORY_FRAMES: usize = 6000;
/// How often the threshold follows the history: every 100 ms, since a
/// minute of levels moves it slowly, and working it out every 10 ms frame
/// cost a stream more than a millisecond per second of audio.
const THRESHOLD_REFRESH_FRAMES: usize = 10;

impl Endpointer {
    pub fn new(silence_s: f64) -> Self {
        Self {
            silence_frames: frames(silence_s).max(1),
            history: Vec::new(),
            partial: Vec::new(),
            frames: 0,
            trailing_silent: 0,
            onset: None,
            threshold: QUIET_DB,
        }
    }

    /// Takes the next 16 kHz samples; returns the utterances that a pause
    /// has ended, each as its speech (in samples from the start of the
    /// stream) with [`PAD_S`] of the pauses around it, as [`cut`] keeps.
    pub fn push(&mut self, samples: &[f32]) -> Vec<Range<usize>> {
        self.partial.extend_from_slice(samples);
        let whole = self.partial.len() / FRAME * FRAME;
        let levels = frame_db(&self.partial[..whole]);
        self.partial.drain(..whole);
        let mut ended = Vec::new();
        for level in levels {
            self.history.push(level);
            if self.history.len() > HISTORY_FRAMES {
                self.history.drain(..HISTORY_FRAMES / 2);
            }
            // Until a second has been heard only near-silence counts as a
            // pause; then the stream's own levels decide.
            if self.history.len() >= frames(1.0) && self.frames.is_multiple_of(THRESHOLD_REFRESH_FRAMES) {
                self.threshold = silence_threshold_db(&self.history);
            }
            self.frames += 1;
            if level < self.threshold {
                self.trailing_silent += 1;
            } else {
                self.trailing_silent = 0;
                self.onset.get_or_insert(self.frames - 1);
            }
            if self.onset.is_some() && self.trailing_silent >= self.silence_frames {
                ended.extend(self.speech());
                self.onset = None;
            }
        }
        ended
    }

    /// The speech of the utterance in progress so far (with [`PAD_S`] of
    /// pause around it), when any was heard since the last utterance ended.
    pub fn speech(&self) -> Option<Range<usize>> {
        let pad = frames(PAD_S);
        let last = self.frames - self.trailing_silent;
        self.onset.map(|onset| onset.saturating_sub(pad) * FRAME..(last + pad).min(self.frames) * FRAME)
    }
}

/// Runs of silent frames at least [`MIN_PAUSE_S`] long.
fn pauses(levels: &[f32], threshold: f32) -> Vec<Range<usize>> {
    let min_frames = frames(MIN_PAUSE_S);
    let mut runs = Vec::new();
    let mut run_start = None;
    for (i, &level) in levels.iter().chain(std::iter::once(&f32::INFINITY)).enumerate() {
        match (level < threshold, run_start) {
            (true, None) => run_start = Some(i),
            (false, Some(s)) => {
                if i - s >= min_frames {
                    runs.push(s..i);
                }
                run_start = None;
            }
            _ => {}
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Speech-like bursts (a loud tone) separated by pauses, over faint noise.
    fn bursts(pattern: &[(bool, f64)]) -> Vec<f32> {
        let mut samples = Vec::new();
        let mut seed = 1u32;
        for &(loud, seconds) in pattern {
            for i in 0..(seconds * 16_000.0) as usize {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let noise = (seed >> 9) as f32 / (1 << 23) as f32 - 0.5;
                let tone = if loud { 0.3 * (i as f32 * 0.07).sin() } else { 0.0 };
                samples.push(tone + 0.002 * noise);
            }
        }
        samples
    }

    #[test]
    fn short_audio_stays_whole() {
        let samples = bursts(&[(true, 2.0), (false, 0.5), (true, 2.0)]);
        assert_eq!(cut(&samples, 10.0), vec![0..samples.len()]);
    }

    #[test]
    fn long_audio_is_cut_at_sentence_pauses() {
        // 4 s speech, 0.3 s pause, 3 s speech, 0.8 s pause, 4 s speech, 0.4 s pause, 4 s speech.
        let pattern = [(true, 4.0), (false, 0.3), (true, 3.0), (false, 0.8), (true, 4.0), (false, 0.4), (true, 4.0)];
        let samples = bursts(&pattern);
        let pieces = cut(&samples, 10.0);
        let cuts_s: Vec<f64> = pieces[1..].iter().map(|p| p.start as f64 / 16_000.0).collect();
        // The 0.8 s pause (7.3–8.1 s) ends a sentence; the 8.4 s after it
        // fit. Each side keeps PAD_S of the pause.
        assert_eq!(cuts_s.len(), 1, "{cuts_s:?}");
        assert!((cuts_s[0] - (8.1 - PAD_S)).abs() < 0.02, "{cuts_s:?}");
        assert_eq!(pieces.last().unwrap().end, samples.len());
        assert!(pieces.windows(2).all(|w| w[0].end <= w[1].start));
        assert!((pieces[0].end as f64 / 16_000.0 - (7.3 + PAD_S)).abs() < 0.02, "{pieces:?}");
        // Ten seconds of silence after it: the 8.4 s of speech and the
        // silence's first half no longer fit one piece, and its second half
        // holds nothing.
        let mut samples = samples;
        samples.extend(bursts(&[(false, 10.0)]));
        let pieces = cut(&samples, 10.0);
        assert_eq!(pieces.len(), 3, "{pieces:?}");
        assert!((pieces[2].end as f64 / 16_000.0 - (16.5 + PAD_S)).abs() < 0.05, "{pieces:?}");
    }

    #[test]
    fn a_long_sentence_is_cut_at_its_longest_pause_within_reach() {
        // 6 s speech, 0.3 s pause, 3 s, 0.45 s pause, 4 s, 0.25 s pause, 4 s: no sentence pause.
        let pattern = [(true, 6.0), (false, 0.3), (true, 3.0), (false, 0.45), (true, 4.0), (false, 0.25), (true, 4.0)];
        let samples = bursts(&pattern);
        let cuts_s: Vec<f64> = cut(&samples, 10.0)[1..].iter().map(|p| p.start as f64 / 16_000.0).collect();
        // Within the first 10 s the 0.45 s pause (9.3–9.75 s) is the longest; the rest (8.5 s) fits.
        assert_eq!(cuts_s.len(), 1, "{cuts_s:?}");
        assert!((cuts_s[0] - (9.75 - PAD_S)).abs() < 0.03, "{cuts_s:?}");
    }

    #[test]
    fn speech_without_pauses_is_cut_at_the_quietest_point_of_the_window() {
        let mut samples = bursts(&[(true, 25.0)]);
        // A dip (not long enough to be a pause) at 8 s.
        for s in &mut samples[8 * 16_000..8 * 16_000 + 800] {
            *s *= 0.01;
        }
        let pieces = cut(&samples, 10.0);
        assert!(pieces.iter().all(|p| p.len() <= 160_000), "{pieces:?}");
        assert!((pieces[1].start as f64 / 16_000.0 - 8.0).abs() < 0.06, "{pieces:?}");
    }

    #[test]
    fn the_endpointer_ends_utterances_after_the_configured_pause() {
        let samples = bursts(&[(false, 1.0), (true, 1.5), (false, 0.3), (true, 1.0), (false, 0.8), (true, 1.0), (false, 0.2)]);
        let mut endpointer = Endpointer::new(0.6);
        // In 50 ms pieces, as a live stream sends them.
        let seconds = |r: Range<usize>| (r.start as f64 / 16_000.0, r.end as f64 / 16_000.0);
        let mut ended = Vec::new();
        for piece in samples.chunks(800) {
            ended.extend(endpointer.push(piece).into_iter().map(seconds));
        }
        // Only the 0.8 s pause (3.8–4.6 s) is long enough: the first
        // utterance is the speech from 1.0 to 3.8 s, 0.1 s of pause around it.
        assert_eq!(ended.len(), 1, "{ended:?}");
        assert!((ended[0].0 - 0.9).abs() < 0.015 && (ended[0].1 - 3.9).abs() < 0.015, "{ended:?}");
        // The last second of speech has no pause after it yet.
        let (start, end) = seconds(endpointer.speech().expect("speech in progress"));
        assert!((start - 4.5).abs() < 0.015 && (end - 5.7).abs() < 0.015, "{start} {end}");
    }
}
