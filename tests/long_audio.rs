//! Long recordings: cut at pauses, recognized in batches, stitched back with
//! absolute times, or aligned to their text; and how often the pause
//! detector cuts inside a word.

mod common;

use std::time::Duration;

use common::HarkServer;
use hark_core::audio::{decode, AudioLimits, Waveform};
use hark_core::eval::read_manifest;
use hark_core::recognizer::{DecodeOptions, DecoderKind, Recognizer};
use reqwest::blocking::{multipart, Client};
use serde_json::Value;

const RATE: f64 = 16_000.0;

/// Every utterance of the shared dev sets, decoded.
fn dev_utterances() -> Vec<Waveform> {
    ["ljspeech-dev", "librivox-dev"]
        .iter()
        .flat_map(|set| read_manifest(&common::shared_data().join(set).join("dev.jsonl")).unwrap())
        .map(|u| decode(&std::fs::read(&u.audio_path).unwrap(), &AudioLimits::default()).unwrap())
        .collect()
}

/// Exactly ten minutes: the utterances in turn, with pauses of 0.6 to
/// 1.2 s between them, faint noise throughout (a real room is never
/// digitally silent), and silence at the end. Returns the audio and where
/// each piece lies, in samples.
fn ten_minutes(utterances: &[(Waveform, String)]) -> (Vec<f32>, Vec<(std::ops::Range<usize>, String)>) {
    let total = (600.0 * RATE) as usize;
    let (mut samples, mut pieces) = (Vec::with_capacity(total), Vec::new());
    for (i, (utterance, text)) in utterances.iter().cycle().enumerate() {
        let gap = [0.6, 0.9, 1.2][i % 3];
        if samples.len() + ((gap * RATE) as usize) + utterance.samples().len() > total {
            break;
        }
        samples.resize(samples.len() + (gap * RATE) as usize, 0.0);
        pieces.push((samples.len()..samples.len() + utterance.samples().len(), text.clone()));
        samples.extend_from_slice(utterance.samples());
    }
    samples.resize(total, 0.0);
    common::add_faint_noise(&mut samples);
    (samples, pieces)
}

fn verbose_json(client: &Client, server: &HarkServer, audio: Vec<u8>) -> Value {
    let form = multipart::Form::new()
        .text("model", "whisper-1")
        .text("response_format", "verbose_json")
        .text("timestamp_granularities[]", "word")
        .text("timestamp_granularities[]", "segment")
        .part("file", multipart::Part::bytes(audio).file_name("long.wav"));
    let response = client.post(server.url("/v1/audio/transcriptions")).multipart(form).send().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.json().unwrap()
}

fn words_of(body: &Value) -> Vec<(String, f64, f64)> {
    body["words"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["word"].as_str().unwrap().to_string(), w["start"].as_f64().unwrap(), w["end"].as_f64().unwrap()))
        .collect()
}

#[test]
#[ignore = "slow tier: tests/run.sh --slow"]
fn a_ten_minute_file_comes_back_in_segments_that_match_the_pieces_it_was_made_from() {
    // Digits from real speakers on the digits model, so that every piece has
    // a known right answer: the English model is not yet accurate enough
    // for its words to be stable under the slightest change of context.
    let (samples, pieces) = ten_minutes(&common::fsdd_test());
    assert!(pieces.len() >= 400, "{} pieces", pieces.len());
    let server = HarkServer::start(&[], &[]);
    let client = Client::builder().timeout(Duration::from_secs(300)).build().unwrap();

    let whole = verbose_json(&client, &server, common::wav_16k(&samples));
    assert_eq!(whole["duration"].as_f64(), Some(600.0));
    let segments = whole["segments"].as_array().unwrap();
    let words = words_of(&whole);
    // The network ran the pieces in batches, not one by one.
    let metrics = client.get(server.url("/metrics")).send().unwrap().text().unwrap();
    let (sum, count) =
        (common::metric(&metrics, "hark_batch_size_sum").unwrap(), common::metric(&metrics, "hark_batch_size_count").unwrap());
    assert!(sum / count > 2.0, "mean batch {:.1} ({sum} pieces in {count} batches)", sum / count);

    // Segments lie inside one piece (with the 0.1 s of pause the
    // detector keeps around speech and 0.1 s of slack for where a word's
    // first and last frames fall): all but the few where the detector heard
    // no pause between two takes.
    let span = |p: &std::ops::Range<usize>| (p.start as f64 / RATE - 0.2, p.end as f64 / RATE + 0.2);
    let mut per_piece: Vec<Vec<&(String, f64, f64)>> = vec![Vec::new(); pieces.len()];
    let mut spanning = 0;
    for segment in segments {
        let (start, end) = (segment["start"].as_f64().unwrap(), segment["end"].as_f64().unwrap());
        match pieces.iter().position(|(p, _)| span(p).0 <= start && end <= span(p).1) {
            Some(i) => per_piece[i].extend(words.iter().filter(|w| start <= w.1 && w.2 <= end)),
            None => spanning += 1,
        }
    }
    assert!(spanning as f64 <= 0.03 * segments.len() as f64, "{spanning} of {} segments span two pieces", segments.len());
    // Each piece holds the digit it was made from.
    let right = pieces.iter().zip(&per_piece).filter(|((_, text), found)| found.len() == 1 && found[0].0 == *text).count();
    // And the same words, at the same times, as that piece sent alone.
    let sample: Vec<usize> = (0..pieces.len()).step_by(8).collect();
    let (mut same, mut worst_shift) = (0, 0f64);
    for &i in &sample {
        let (piece, _) = &pieces[i];
        let alone = words_of(&verbose_json(&client, &server, common::wav_16k(&samples[piece.clone()])));
        let found = &per_piece[i];
        if alone.len() == found.len() && alone.iter().zip(found).all(|(a, f)| a.0 == f.0) {
            same += 1;
            let offset = piece.start as f64 / RATE;
            for (a, f) in alone.iter().zip(found) {
                worst_shift = worst_shift.max((f.1 - (a.1 + offset)).abs()).max((f.2 - (a.2 + offset)).abs());
            }
        }
    }
    eprintln!(
        "{} pieces, {} segments ({spanning} across two pieces): {right} with their own digit; {same} of {} sampled as alone, worst time shift {worst_shift:.3} s; peak RSS {:.0} MB",
        pieces.len(),
        segments.len(),
        sample.len(),
        server.peak_rss_mb()
    );
    // The digits model was trained on takes trimmed to the speech; the
    // tenth of a second of pause the detector keeps around each costs it
    // accuracy (measured: 281 of 453 right, against 97 % on whole takes).
    // Placed wrongly, in the wrong order or at the wrong times, the words
    // would match one piece in ten at best.
    assert!(right as f64 >= 0.5 * pieces.len() as f64, "{right} of {} pieces heard right", pieces.len());
    assert!(same as f64 >= 0.5 * sample.len() as f64, "{same} of {} pieces as alone", sample.len());
    assert!(worst_shift <= 0.15, "word times off by {worst_shift:.3} s");
    // Ten minutes of audio is 19 MB as 16-bit WAV and 38 MB as samples;
    // features, pieces and batches must not multiply that.
    assert!(server.peak_rss_mb() < 400.0, "peak RSS {:.0} MB", server.peak_rss_mb());

    // The same cues as SRT and WebVTT.
    for (format, first_line) in [("srt", "1"), ("vtt", "WEBVTT")] {
        let form = multipart::Form::new()
            .text("response_format", format)
            .part("file", multipart::Part::bytes(common::wav_16k(&samples)).file_name("long.wav"));
        let text = client.post(server.url("/v1/audio/transcriptions")).multipart(form).send().unwrap().text().unwrap();
        assert_eq!(text.lines().next(), Some(first_line));
        assert_eq!(text.matches(" --> ").count(), segments.len(), "{format}: one cue per segment");
        let last = segments.last().unwrap()["end"].as_f64().unwrap();
        let stamp = format!("{:02}:{:02}:{:02}", (last / 3600.0) as u32, (last / 60.0) as u32 % 60, last as u32 % 60);
        assert!(text.contains(&stamp), "{format} ends near {stamp}");
    }
}

#[test]
#[ignore = "slow tier: tests/run.sh --slow"]
fn ten_minutes_align_to_their_text_piece_by_piece_in_bounded_memory() {
    // Ten minutes of FSDD takes as above, in an order where the digit
    // changes from take to take (as the words of a text do), and their
    // 450-odd digits as the text, on the digits model: each word must land
    // in its own take.
    let takes = common::fsdd_test();
    let stride = 31; // coprime to the 300 takes: each comes once, the digit changes every take
    let shuffled: Vec<_> = (0..takes.len()).map(|i| takes[i * stride % takes.len()].clone()).collect();
    let (samples, pieces) = ten_minutes(&shuffled);
    let text: Vec<&str> = pieces.iter().map(|(_, t)| t.as_str()).collect();
    let server = HarkServer::start(&[], &[]);
    let client = Client::builder().timeout(Duration::from_secs(300)).build().unwrap();
    let form = multipart::Form::new()
        .text("text", text.join(" "))
        .part("file", multipart::Part::bytes(common::wav_16k(&samples)).file_name("long.wav"));
    let started = std::time::Instant::now();
    let response = client.post(server.url("/v1/align")).multipart(form).send().unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().unwrap();
    let words = body["words"].as_array().unwrap();
    assert_eq!(words.len(), pieces.len());
    let inside = words
        .iter()
        .zip(&pieces)
        .filter(|(w, (p, _))| {
            let (start, end) = (w["start"].as_f64(), w["end"].as_f64());
            start.zip(end).is_some_and(|(s, e)| s >= p.start as f64 / RATE - 0.15 && e <= p.end as f64 / RATE + 0.15)
        })
        .count();
    let aligned = words.iter().filter(|w| w["aligned"] == true).count();
    eprintln!(
        "{aligned} of {} words aligned, {inside} inside their take; {elapsed:.1} s for 10 minutes (network included); peak RSS {:.0} MB",
        words.len(),
        server.peak_rss_mb()
    );
    // The digits model misses some takes with the pause kept around them
    // (see above): those words are reported unaligned, not misplaced.
    // Measured: 388 of 451 aligned, 377 inside their take.
    assert!(aligned as f64 >= 0.8 * words.len() as f64, "{aligned} of {} words aligned", words.len());
    assert!(inside as f64 >= 0.95 * aligned as f64, "{inside} of {aligned} aligned words inside their take");
    assert!(server.peak_rss_mb() < 400.0, "peak RSS {:.0} MB", server.peak_rss_mb());
}

#[test]
#[ignore = "slow tier: tests/run.sh --slow"]
fn cuts_inside_sentences_rarely_split_a_word() {
    // A window of 3 s forces cuts inside every dev utterance longer than
    // that; a cut is mid-word when it falls between the first and last
    // frame of a word the model finds in the whole utterance.
    let load = || Recognizer::load(Some(&common::repo().join("models/hark-en")), AudioLimits::default(), None).unwrap();
    let (recognizer, short_window) = (load(), load().with_window_s(3.0));
    let (mut cuts, mut mid_word) = (0, 0);
    for utterance in dev_utterances() {
        let greedy = recognizer.decoding(&DecodeOptions { decoder: Some(DecoderKind::Greedy), ..Default::default() }).unwrap();
        let words = recognizer.transcribe(&utterance, &greedy).unwrap().words;
        for &cut_s in short_window.cut(&utterance).starts_s().iter().skip(1) {
            cuts += 1;
            if words.iter().any(|w| w.start_s < cut_s && cut_s < w.end_s) {
                mid_word += 1;
            }
        }
    }
    let rate = mid_word as f64 / cuts as f64;
    eprintln!("{mid_word} of {cuts} cuts inside a word ({:.1} %)", 100.0 * rate);
    assert!(cuts >= 60, "{cuts} cuts");
    assert!(rate <= 0.25, "{mid_word} of {cuts} cuts inside a word");
}
