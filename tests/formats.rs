//! Compressed and non-WAV uploads: decoded by their bytes, whatever the file
//! name or Content-Type says, and recognized like the WAV they came from.

mod common;

use common::HarkServer;
use hark_core::audio::{decode, AudioError, AudioLimits, Waveform};
use reqwest::blocking::{multipart, Client};
use serde_json::Value;

/// The fixtures decoded here, lossless ones first.
const DECODED: [&str; 7] =
    ["7_jackson_1.flac", "6_lucas_0.aiff", "3_theo_2.mp3", "5_george_4.ogg", "9_nicolas_1.m4a", "2_yweweler_3.webm", "4_theo_1.opus"];

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(common::repo().join("tests/data/formats").join(name)).unwrap()
}

/// The FSDD take a fixture was encoded from, decoded from its WAV.
fn original(name: &str) -> Waveform {
    let take = name.split('.').next().unwrap();
    decode(&common::fsdd(&format!("{take}.wav")), &AudioLimits::default()).unwrap()
}

fn digit_word(name: &str) -> &'static str {
    ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"][usize::from(name.as_bytes()[0] - b'0')]
}

/// Loudness per 20 ms frame, in dB: what a lossy codec keeps.
fn envelope_db(samples: &[f32]) -> Vec<f64> {
    samples.chunks(320).map(|f| 10.0 * (f.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / f.len() as f64 + 1e-10).log10()).collect()
}

fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mean = |x: &[f64]| x.iter().sum::<f64>() / n as f64;
    let (ma, mb) = (mean(a), mean(b));
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let var = |x: &[f64], m: f64| x.iter().map(|v| (v - m).powi(2)).sum::<f64>().sqrt();
    cov / (var(a, ma) * var(b, mb))
}

#[test]
fn every_container_decodes_to_the_signal_it_was_made_from() {
    for name in DECODED {
        let want = original(name);
        let got = decode(&fixture(name), &AudioLimits::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Lossy encoders pad by a frame or so (MP3 and AAC priming).
        assert!((got.duration_s() - want.duration_s()).abs() < 0.06, "{name}: {} s, the WAV {} s", got.duration_s(), want.duration_s());
        if name.ends_with(".flac") || name.ends_with(".aiff") {
            let worst = got.samples().iter().zip(want.samples()).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            assert!(worst < 1e-4, "{name} is lossless, yet differs by {worst}");
        } else {
            let (a, b) = (envelope_db(got.samples()), envelope_db(want.samples()));
            let best = (0..4).map(|lag| correlation(&a[lag..], &b).max(correlation(&a, &b[lag..]))).fold(f64::MIN, f64::max);
            assert!(best > 0.9, "{name}: loudness envelope correlates {best:.3} with the WAV's");
        }
    }
}

#[test]
fn the_duration_limit_holds_while_decoding_compressed_audio() {
    let limits = AudioLimits { max_duration_s: 0.2 };
    for name in DECODED {
        match decode(&fixture(name), &limits) {
            Err(AudioError::TooLong { duration_s, max_s }) => assert!(duration_s > 0.2 && max_s == 0.2, "{name}: {duration_s}"),
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn the_server_sniffs_the_format_from_the_bytes_on_both_routes() {
    let server = HarkServer::start(&[], &[]);
    let client = Client::new();
    for name in DECODED {
        let body = fixture(name);
        // Raw body, labelled as something else entirely.
        let response =
            client.post(server.url("/v1/transcribe")).header("content-type", "application/octet-stream").body(body.clone()).send().unwrap();
        let status = response.status().as_u16();
        let json: Value = response.json().unwrap();
        assert_eq!((status, json["text"].as_str()), (200, Some(digit_word(name))), "{name}: {json}");
        // OpenAI clients name the file; hark does not believe the name.
        let part = multipart::Part::bytes(body).file_name("recording.wav").mime_str("audio/wav").unwrap();
        let form = multipart::Form::new().text("model", "whisper-1").part("file", part);
        let response = client.post(server.url("/v1/audio/transcriptions")).multipart(form).send().unwrap();
        assert_eq!(response.status().as_u16(), 200, "{name}");
        assert_eq!(response.json::<Value>().unwrap()["text"], digit_word(name), "{name}");
    }

    let mut broken = fixture("3_theo_2.mp3");
    broken.truncate(40);
    let response = client.post(server.url("/v1/transcribe")).body(broken).send().unwrap();
    let status = response.status().as_u16();
    let json: Value = response.json().unwrap();
    assert!([400, 415, 422].contains(&status), "a 40-byte MP3 stub gets a client error, not {status}: {json}");
    assert!(json["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{json}");
    let response = client.post(server.url("/v1/transcribe")).body(fixture(DECODED[0])).send().unwrap();
    assert_eq!(response.status().as_u16(), 200, "the server keeps serving after bad uploads");
}
