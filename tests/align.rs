//! `POST /v1/align` against the real server and the default English model:
//! words placed where they were said (digits with known spans, read
//! sentences longer than one piece), a word the speaker skipped and speech
//! the text lacks, the subtitle and TextGrid formats, and the refusals; and
//! the English recognizer's word edges against known times.

mod common;

use common::HarkServer;
use reqwest::blocking::{multipart, Client};
use serde_json::Value;

/// The server with the English model, the built-in default.
fn english() -> HarkServer {
    HarkServer::start_with_model(&common::repo().join("models/hark-en"), &[], &[])
}

fn align(server: &HarkServer, audio: Vec<u8>, text: &str, query: &str) -> (u16, String, String) {
    let part = multipart::Part::bytes(audio).file_name("speech.wav");
    let form = multipart::Form::new().part("file", part).text("text", text.to_string());
    let response = Client::new().post(server.url(&format!("/v1/align?{query}"))).multipart(form).send().unwrap();
    let status = response.status().as_u16();
    let mime = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, mime, response.text().unwrap())
}

fn align_json(server: &HarkServer, audio: Vec<u8>, text: &str) -> Value {
    let (status, _, body) = align(server, audio, text, "");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Four FSDD digits with a second of pause around each, as one WAV, and
/// each take's span.
fn digits() -> (Vec<u8>, Vec<(f64, f64, String)>) {
    let (samples, spans) = common::takes_with_pauses(&common::four_digits(), 1.0);
    (common::wav_16k(&samples), spans)
}

/// Whether a word's times lie in the span of the take it was said in.
fn inside(word: &Value, (start, end, _): &(f64, f64, String)) -> bool {
    let (w_start, w_end) = (word["start"].as_f64().unwrap(), word["end"].as_f64().unwrap());
    w_start >= start - 0.15 && w_end <= end + 0.15 && w_start < w_end
}

#[test]
fn written_words_are_placed_where_they_were_said() {
    let server = english();
    let (wav, spans) = digits();
    // The text as a person writes it: capitals, punctuation, a digit.
    let said: Vec<&str> = spans.iter().map(|s| s.2.as_str()).collect();
    let written = format!("{}, {}! \"{}\" — {}.", capitalize(said[0]), said[1], said[2], digit(said[3]));
    let json = align_json(&server, wav.clone(), &written);
    let words = json["words"].as_array().unwrap();
    let shown: Vec<&str> = words.iter().map(|w| w["word"].as_str().unwrap()).collect();
    assert_eq!(shown.join(" "), written, "the text comes back as written");
    for (word, span) in words.iter().zip(&spans) {
        assert_eq!(word["aligned"], true, "{word}");
        assert!(inside(word, span), "{word} outside {span:?}");
    }
    // Scores are the letters' posteriors: high where the model heard the word.
    let mean = words.iter().map(|w| w["score"].as_f64().unwrap()).sum::<f64>() / words.len() as f64;
    println!("scores {:?}", words.iter().map(|w| w["score"].as_f64().unwrap()).collect::<Vec<_>>());
    assert!(mean > 0.3 && words.iter().all(|w| w["score"].as_f64().unwrap() <= 1.0), "{words:?}");
    assert_eq!(json["model"], "hark-en");

    // A word the speaker skipped is reported, not forced; the others stay.
    let extra = format!("{} {} banana {} {}", said[0], said[1], said[2], said[3]);
    let json = align_json(&server, wav.clone(), &extra);
    let words = json["words"].as_array().unwrap();
    assert_eq!(words[2]["word"], "banana");
    assert_eq!((words[2]["aligned"].clone(), words[2]["start"].clone()), (Value::Bool(false), Value::Null), "{}", words[2]);
    for (word, span) in [&words[0], &words[1], &words[3], &words[4]].into_iter().zip(&spans) {
        assert!(word["aligned"] == true && inside(word, span), "{word} outside {span:?}");
    }

    // Speech the text lacks (the third digit) is absorbed, not given to a neighbour.
    let missing = format!("{} {} {}", said[0], said[1], said[3]);
    let json = align_json(&server, wav, &missing);
    let words = json["words"].as_array().unwrap();
    for (word, span) in words.iter().zip([&spans[0], &spans[1], &spans[3]]) {
        assert!(word["aligned"] == true && inside(word, span), "{word} outside {span:?}");
    }
}

fn capitalize(word: &str) -> String {
    word[..1].to_uppercase() + &word[1..]
}

/// A digit word as a numeral: "seven" → "7".
fn digit(word: &str) -> String {
    let names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];
    names.iter().position(|n| *n == word).map_or(word.to_string(), |d| d.to_string())
}

#[test]
fn read_sentences_longer_than_a_piece_are_aligned_piece_by_piece() {
    let server = english();
    // Four ljspeech-dev sentences one after another: about 30 s, cut into pieces.
    let manifest = hark_core::eval::read_manifest(&common::shared_data().join("ljspeech-dev/dev.jsonl")).unwrap();
    let (mut samples, mut texts, mut bounds) = (Vec::new(), Vec::new(), Vec::new());
    for utterance in manifest.iter().take(4) {
        let waveform = hark_core::audio::decode(&std::fs::read(&utterance.audio_path).unwrap(), &Default::default()).unwrap();
        let start = samples.len() as f64 / 16_000.0;
        samples.extend_from_slice(waveform.samples());
        bounds.push((start, samples.len() as f64 / 16_000.0, utterance.text.split(' ').count()));
        texts.push(utterance.text.clone());
    }
    assert!(samples.len() as f64 / 16_000.0 > 25.0);
    let json = align_json(&server, common::wav_16k(&samples), &texts.join(" "));
    let words = json["words"].as_array().unwrap();
    let (mut at, mut aligned, mut placed, mut last_end) = (0, 0, 0, 0.0);
    for &(start, end, count) in &bounds {
        for word in &words[at..at + count] {
            if word["aligned"] == true {
                aligned += 1;
                let (w_start, w_end) = (word["start"].as_f64().unwrap(), word["end"].as_f64().unwrap());
                assert!(w_start >= last_end - 1e-9 && w_end > w_start, "{word}: times go forward");
                last_end = w_end;
                placed += usize::from(w_start >= start - 0.3 && w_end <= end + 0.3);
            }
        }
        at += count;
    }
    println!("{aligned} of {at} words aligned, {placed} inside their sentence");
    assert!(aligned * 10 >= at * 9, "{aligned} of {at} words aligned");
    assert!(placed * 100 >= aligned * 95, "{placed} of {aligned} aligned words inside their sentence");

    // A sentence the audio lacks (the fifth, put third in the text), and a
    // sentence the text lacks (the third): the other sentences' words keep
    // their times, within 100 ms of the clean alignment.
    let clean: Vec<&Value> = words.iter().collect();
    let times = |word: &Value| (word["start"].as_f64(), word["end"].as_f64());
    let counts: Vec<usize> = bounds.iter().map(|b| b.2).collect();
    let (before, after) = (counts[0] + counts[1], counts[0] + counts[1] + counts[2]);
    let extra = [&texts[..2], &[manifest[4].text.clone()], &texts[2..]].concat().join(" ");
    let json = align_json(&server, common::wav_16k(&samples), &extra);
    let with_extra = json["words"].as_array().unwrap();
    let added = manifest[4].text.split(' ').count();
    let unaligned = with_extra[before..before + added].iter().filter(|w| w["aligned"] == false).count();
    println!("the sentence the audio lacks: {unaligned} of {added} words unaligned");
    let kept: Vec<&Value> = with_extra[..before].iter().chain(&with_extra[before + added..]).collect();
    let lacking = [&texts[..2], &texts[3..]].concat().join(" ");
    let json = align_json(&server, common::wav_16k(&samples), &lacking);
    let without = json["words"].as_array().unwrap();
    let mut failures = Vec::new();
    assert!(unaligned * 5 >= added * 4, "{unaligned} of {added} words the audio lacks unaligned");
    for (case, got, reference) in [
        ("a sentence the audio lacks", kept, clean.clone()),
        ("a sentence the text lacks", without.iter().collect(), clean[..before].iter().chain(&clean[after..]).copied().collect()),
    ] {
        assert_eq!(got.len(), reference.len(), "{case}");
        let moved: Vec<String> = got
            .iter()
            .zip(&reference)
            .filter(|(g, r)| {
                let ((gs, ge), (rs, re)) = (times(g), times(r));
                match (gs, ge, rs, re) {
                    (Some(gs), Some(ge), Some(rs), Some(re)) => (gs - rs).abs() > 0.1 || (ge - re).abs() > 0.1,
                    _ => g["aligned"] != r["aligned"],
                }
            })
            .map(|(g, r)| format!("{g} (clean {r})"))
            .collect();
        println!("{case}: {} of {} words moved more than 100 ms", moved.len(), got.len());
        failures.push((case, moved));
    }
    assert!(failures.iter().all(|(_, moved)| moved.is_empty()), "{failures:?}");
}

#[test]
fn subtitles_and_textgrids_and_clear_refusals() {
    let server = english();
    let (wav, spans) = digits();
    let text: Vec<&str> = spans.iter().map(|s| s.2.as_str()).collect();
    let text = text.join(" ");

    let (status, mime, srt) = align(&server, wav.clone(), &text, "format=srt");
    assert_eq!((status, mime.as_str()), (200, "text/plain; charset=utf-8"), "{srt}");
    assert!(srt.starts_with("1\n00:00:0"), "{srt}");
    // Each digit is a cue of its own: a second of pause between them.
    assert_eq!(srt.matches(" --> ").count(), 4, "{srt}");
    let (status, mime, vtt) = align(&server, wav.clone(), &text, "format=vtt");
    assert_eq!((status, mime.as_str()), (200, "text/vtt; charset=utf-8"));
    assert!(vtt.starts_with("WEBVTT\n\n") && vtt.matches(" --> ").count() == 4, "{vtt}");
    let (status, _, grid) = align(&server, wav.clone(), &text, "format=textgrid&characters=true");
    assert_eq!(status, 200, "{grid}");
    assert!(grid.starts_with("File type = \"ooTextFile\"\nObject class = \"TextGrid\"\n"), "{grid}");
    assert!(grid.contains("name = \"words\"") && grid.contains("name = \"chars\""), "{grid}");
    for (_, _, word) in &spans {
        assert!(grid.contains(&format!("text = \"{word}\"")), "{word} in {grid}");
    }
    let (status, _, body) = align(&server, wav.clone(), &text, "characters=true");
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status, 200);
    let letters: String = json["words"][0]["characters"].as_array().unwrap().iter().map(|c| c["char"].as_str().unwrap()).collect();
    assert_eq!(letters, spans[0].2);

    let short = common::wav_16k(&vec![0.0; 16_000]);
    for (audio, text, query, status, code) in [
        (wav.clone(), "", "", 422, "empty_text"),
        (wav.clone(), "— … !!", "", 422, "no_alignable_text"),
        (short, &"a long sentence that takes many seconds to say ".repeat(4), "", 422, "text_too_long"),
        (wav.clone(), "four", "format=docx", 400, "invalid_format"),
        (wav.clone(), "four", "characters=maybe", 400, "invalid_align_options"),
        (b"not audio at all".to_vec(), "four", "", 415, "unsupported_format"),
    ] {
        let (got, _, body) = align(&server, audio, text, query);
        let json: Value = serde_json::from_str(&body).unwrap();
        assert_eq!((got, json["error"]["code"].as_str().unwrap()), (status, code), "{text:?} {query}: {body}");
    }
    // The form must carry the text, and the audio as `file`.
    let form = multipart::Form::new().part("file", multipart::Part::bytes(wav.clone()).file_name("speech.wav"));
    let response = Client::new().post(server.url("/v1/align")).multipart(form).send().unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(response.json::<Value>().unwrap()["error"]["code"], "missing_text");
    let response = Client::new().post(server.url("/v1/align")).body(wav).send().unwrap();
    assert_eq!(response.json::<Value>().unwrap()["error"]["code"], "missing_file");
}

/// Word edges against known times: real takes of one speaker, ten a
/// recording, joined with pauses of known lengths (0.25–0.8 s): every FSDD
/// test speaker's digits, and Speech Commands words of four speakers held
/// out of training. The reference is each take's place in the recording,
/// trimmed where its energy first and last comes within 40 dB of its
/// loudest 10 ms (the takes keep some silence at their edges); Speech
/// Commands clips whose background reaches their edges have no known edges
/// and are left out.
#[test]
fn word_edges_fall_within_tens_of_milliseconds_of_where_the_takes_begin_and_end() {
    use hark_core::audio::{decode, AudioLimits};
    use hark_core::recognizer::Recognizer;
    const NAMES: [&str; 10] = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];
    let recognizer = Recognizer::load(Some(&common::repo().join("models/hark-en")), AudioLimits::default(), None).unwrap();
    let read = |path: &std::path::Path| decode(&std::fs::read(path).unwrap(), &AudioLimits::default()).unwrap();
    let mut digits = Vec::new();
    for speaker in ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"] {
        for take in 0..3 {
            let order = [3, 7, 1, 9, 0, 5, 2, 8, 4, 6];
            let path = |d: usize| common::shared_data().join(format!("fsdd/recordings/{d}_{speaker}_{take}.wav"));
            digits.push(order.map(|d| (read(&path(d)), NAMES[d].to_string())).to_vec());
        }
    }
    let commands_manifest = common::shared_data().join("speech-commands/manifest.jsonl");
    let mut commands = Vec::new();
    for speaker in ["8fe67225", "d0faf7e4", "e1469561", "87070229"] {
        let takes: Vec<_> = std::fs::read_to_string(&commands_manifest)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|u| u["speaker"] == speaker)
            .map(|u| {
                (read(&commands_manifest.with_file_name(u["audio_filepath"].as_str().unwrap())), u["text"].as_str().unwrap().to_string())
            })
            .filter(|(wave, _)| quiet_at_both_ends(wave.samples()))
            .collect();
        // The manifest lists a speaker's takes word by word; mixed, so that a
        // recording is not the same word ten times over (which would leave
        // any take of it as good a place as another for each).
        let mut keyed: Vec<_> = takes.into_iter().enumerate().map(|(i, take)| ((i as u32).wrapping_mul(2_654_435_761), take)).collect();
        keyed.sort_by_key(|(key, _)| *key);
        let takes: Vec<_> = keyed.into_iter().map(|(_, take)| take).collect();
        commands.extend(takes.chunks_exact(10).map(<[_]>::to_vec));
    }
    let (mut all, mut all_unaligned) = (Vec::new(), 0);
    for (name, recordings) in [("FSDD digits", digits), ("Speech Commands words", commands)] {
        let (errors, unaligned) = edge_errors(&recognizer, &recordings);
        report(name, &errors, unaligned);
        all.extend(errors);
        all_unaligned += unaligned;
    }
    let (mean, within_100) = report("all", &all, all_unaligned);
    assert!(mean <= 0.04 && within_100 >= 0.9, "mean {mean:.3} s, {within_100:.2} within 100 ms");
}

/// Each aligned word's start and end error against its take's trimmed
/// edges, over recordings of takes joined with pauses; and the words left
/// unaligned.
fn edge_errors(
    recognizer: &hark_core::recognizer::Recognizer,
    recordings: &[Vec<(hark_core::audio::Waveform, String)>],
) -> (Vec<f64>, usize) {
    let pauses = [0.25, 0.4, 0.6, 0.8, 0.3, 0.5];
    let (mut errors, mut unaligned) = (Vec::new(), 0);
    for (r, takes) in recordings.iter().enumerate() {
        let (mut samples, mut reference, mut words) = (Vec::new(), Vec::new(), Vec::new());
        for (i, (wave, word)) in takes.iter().enumerate() {
            samples.resize(samples.len() + (pauses[(i + r) % pauses.len()] * 16_000.0) as usize, 0.0);
            let (first, last) = trimmed(wave.samples());
            let at = samples.len();
            reference.push(((at + first) as f64 / 16_000.0, (at + last) as f64 / 16_000.0));
            samples.extend_from_slice(wave.samples());
            words.push(word.as_str());
        }
        samples.resize(samples.len() + 8_000, 0.0);
        let text = recognizer.align_text(&words.join(" ")).unwrap();
        let options = hark_core::align::AlignOptions::default();
        let alignment = recognizer.align(&hark_core::audio::Waveform::from_samples(samples), &text, &options).unwrap();
        for (word, (start, end)) in alignment.words.iter().zip(&reference) {
            match &word.span {
                Some(span) => errors.extend([(span.start_s - start).abs(), (span.end_s - end).abs()]),
                None => unaligned += 1,
            }
        }
    }
    (errors, unaligned)
}

/// Prints the mean error and the shares within 50 and 100 ms; returns the
/// mean and the share within 100 ms.
fn report(name: &str, errors: &[f64], unaligned: usize) -> (f64, f64) {
    let mean = errors.iter().sum::<f64>() / errors.len() as f64;
    let within = |s: f64| errors.iter().filter(|&&e| e <= s).count() as f64 / errors.len() as f64;
    eprintln!(
        "{name}: {} edges, mean error {:.0} ms, {:.0} % within 50 ms, {:.0} % within 100 ms; {unaligned} words unaligned",
        errors.len(),
        1000.0 * mean,
        100.0 * within(0.05),
        100.0 * within(0.1)
    );
    (mean, within(0.1))
}

/// Whether a take is quiet (40 dB under its loudest 10 ms) for its first
/// and last 50 ms: only then are its word's edges known.
fn quiet_at_both_ends(samples: &[f32]) -> bool {
    let (first, last) = trimmed(samples);
    first >= 800 && last + 800 <= samples.len()
}

/// The first and last sample of a take's 10 ms frames within 40 dB of its
/// loudest frame.
fn trimmed(samples: &[f32]) -> (usize, usize) {
    let energies: Vec<f32> = samples.chunks(160).map(|c| c.iter().map(|s| s * s).sum::<f32>() / c.len() as f32).collect();
    let loudest = energies.iter().copied().fold(0.0, f32::max);
    let loud = |e: &f32| *e >= loudest * 1e-4;
    let first = energies.iter().position(loud).unwrap();
    let last = energies.iter().rposition(loud).unwrap();
    (first * 160, ((last + 1) * 160).min(samples.len()))
}
