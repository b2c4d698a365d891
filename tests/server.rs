//! The real `hark serve` on 127.0.0.1, real audio from ../shared/data, the
//! real default model (the FSDD digits model until an English model ships).

mod common;

use std::io::Cursor;

use common::{fsdd, metric, HarkServer};
use reqwest::blocking::{multipart, Client};
use serde_json::Value;

fn post_wav(server: &HarkServer, path: &str, body: Vec<u8>) -> (u16, Value) {
    let response = Client::new().post(server.url(path)).header("content-type", "audio/wav").body(body).send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

/// A WAV file of `samples` at `rate_hz`, written by hound.
fn wav(spec: hound::WavSpec, samples: &[f32]) -> Vec<u8> {
    let mut cursor = Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut cursor, spec).unwrap();
    for &s in samples {
        match spec.sample_format {
            hound::SampleFormat::Float => writer.write_sample(s).unwrap(),
            hound::SampleFormat::Int => writer.write_sample((s * 32767.0) as i16).unwrap(),
        }
    }
    writer.finalize().unwrap();
    cursor.into_inner()
}

fn read_fsdd_samples(name: &str) -> Vec<f32> {
    let mut reader = hound::WavReader::new(Cursor::new(fsdd(name))).unwrap();
    reader.samples::<i16>().map(|s| f32::from(s.unwrap()) / 32768.0).collect()
}

fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
}

#[test]
fn health_readiness_and_models() {
    let server = HarkServer::start(&[], &[]);
    let client = Client::new();
    let health: Value = client.get(server.url("/healthz")).send().unwrap().json().unwrap();
    assert_eq!(health["status"], "ok");
    let ready: Value = client.get(server.url("/readyz")).send().unwrap().json().unwrap();
    assert_eq!(ready["model"], "fsdd-digits");
    let models: Value = client.get(server.url("/v1/models")).send().unwrap().json().unwrap();
    assert_eq!(models["data"][0]["id"], "fsdd-digits");
    assert!(models["data"][0]["parameters"].as_u64().unwrap() > 100_000);
    let missing = client.get(server.url("/v1/nothing")).send().unwrap();
    assert_eq!(missing.status(), 404);
}

#[test]
fn a_raw_wav_body_comes_back_as_a_transcript_with_word_times() {
    let server = HarkServer::start(&[], &[]);
    let (status, body) = post_wav(&server, "/v1/transcribe", fsdd("7_jackson_0.wav"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["text"], "seven");
    assert_eq!(body["model"], "fsdd-digits");
    let duration = body["duration"].as_f64().unwrap();
    assert!(duration > 0.2 && duration < 1.5, "{body}");
    let word = &body["words"][0];
    assert_eq!(word["word"], "seven");
    let (start, end, confidence) = (word["start"].as_f64().unwrap(), word["end"].as_f64().unwrap(), word["confidence"].as_f64().unwrap());
    assert!(0.0 <= start && start < end && end <= duration + 0.03, "{word}");
    assert!((0.0..=1.0).contains(&confidence) && confidence > 0.5, "{word}");
    // Times to the millisecond, as a person reads them.
    for time in [duration, start, end, body["segments"][0]["start"].as_f64().unwrap()] {
        assert_eq!(time, (time * 1000.0).round() / 1000.0, "{body}");
    }
}

#[test]
fn multipart_uploads_and_every_pcm_layout_are_accepted() {
    let server = HarkServer::start(&[], &[]);
    let form = multipart::Form::new().part("file", multipart::Part::bytes(fsdd("3_theo_1.wav")).file_name("three.wav"));
    let body: Value = Client::new().post(server.url("/v1/transcribe")).multipart(form).send().unwrap().json().unwrap();
    assert_eq!(body["text"], "three", "{body}");

    // The same take as stereo IEEE float: mixed down and resampled, it
    // still says three.
    let samples = read_fsdd_samples("3_theo_1.wav");
    let stereo: Vec<f32> = samples.iter().flat_map(|&s| [s, s]).collect();
    let float_stereo =
        wav(hound::WavSpec { channels: 2, sample_rate: 8000, bits_per_sample: 32, sample_format: hound::SampleFormat::Float }, &stereo);
    let (status, body) = post_wav(&server, "/v1/transcribe", float_stereo);
    assert_eq!((status, body["text"].as_str()), (200, Some("three")), "{body}");

    // Read speech at 22.05 kHz: resampled, timed by the original length.
    let (status, body) =
        post_wav(&server, "/v1/transcribe", std::fs::read(common::shared_data().join("ljspeech-dev/LJ001-0002.wav")).unwrap());
    assert_eq!(status, 200, "{body}");
    assert!((body["duration"].as_f64().unwrap() - 1.8995).abs() < 0.01, "{body}");
}

#[test]
fn the_digits_model_recognizes_the_fsdd_test_takes() {
    let server = HarkServer::start(&[], &[]);
    let manifest = std::fs::read_to_string(common::shared_data().join("fsdd/test.jsonl")).unwrap();
    let takes: Vec<(String, String)> = manifest
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["audio_filepath"].as_str().unwrap().to_string(), v["text"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(takes.len(), 300);
    // Four clients at once, as a service sees them.
    let correct: usize = std::thread::scope(|s| {
        let handles: Vec<_> = takes
            .chunks(takes.len() / 4)
            .map(|chunk| {
                let server = &server;
                s.spawn(move || {
                    chunk
                        .iter()
                        .filter(|(path, text)| {
                            let bytes = std::fs::read(common::shared_data().join("fsdd").join(path)).unwrap();
                            let (status, body) = post_wav(server, "/v1/transcribe", bytes);
                            assert_eq!(status, 200, "{path}: {body}");
                            body["text"] == text.as_str()
                        })
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let accuracy = correct as f64 / takes.len() as f64;
    assert!(accuracy >= 0.90, "digit accuracy {accuracy:.3} on FSDD test");
}

#[test]
fn bad_input_gets_a_clear_error_and_the_server_keeps_serving() {
    let server = HarkServer::start(&["--max-duration-s", "1.0", "--max-body-bytes", "200000"], &[]);
    // Bytes that start like an MP3 but are not one: a broken file, named.
    let (status, body) = post_wav(&server, "/v1/transcribe", b"ID3\x04\0\0\0\0\0\0 an mp3 file".to_vec());
    assert_error(status, &body, 400, "malformed_audio");
    assert!(body["error"]["message"].as_str().unwrap().contains("MP3"), "{body}");

    let (status, body) = post_wav(&server, "/v1/transcribe", Vec::new());
    assert_error(status, &body, 422, "no_samples");

    let mut truncated = fsdd("1_lucas_2.wav");
    truncated.truncate(truncated.len() / 2);
    let (status, body) = post_wav(&server, "/v1/transcribe", truncated);
    assert_error(status, &body, 400, "truncated_audio");

    let mut adpcm = fsdd("1_lucas_2.wav");
    adpcm[20..22].copy_from_slice(&0x0002u16.to_le_bytes());
    let (status, body) = post_wav(&server, "/v1/transcribe", adpcm);
    assert_error(status, &body, 415, "unsupported_codec");
    assert!(body["error"]["message"].as_str().unwrap().contains("ADPCM"), "{body}");

    let empty = wav(hound::WavSpec { channels: 1, sample_rate: 16000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int }, &[]);
    let (status, body) = post_wav(&server, "/v1/transcribe", empty);
    assert_error(status, &body, 422, "no_samples");

    let long = wav(
        hound::WavSpec { channels: 1, sample_rate: 16000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int },
        &vec![0.0; 24_000],
    );
    let (status, body) = post_wav(&server, "/v1/transcribe", long);
    assert_error(status, &body, 422, "audio_too_long");

    let (status, body) = post_wav(&server, "/v1/transcribe", vec![0u8; 300_000]);
    assert_error(status, &body, 413, "body_too_large");

    let form = multipart::Form::new().text("model", "whisper-1");
    let response = Client::new().post(server.url("/v1/transcribe")).multipart(form).send().unwrap();
    let status = response.status().as_u16();
    assert_error(status, &response.json().unwrap(), 400, "missing_file");

    let (status, body) = oversized_multipart(&server, 300_000);
    assert_error(status, &body, 413, "body_too_large");

    let (status, body) = post_wav(&server, "/v1/transcribe", fsdd("1_lucas_2.wav"));
    assert_eq!((status, body["text"].as_str()), (200, Some("one")), "{body}");
}

/// Sends a multipart upload larger than the limit over a plain socket:
/// the server answers 413 before reading it all, which HTTP clients that
/// stream the body report as a broken connection instead of the answer.
fn oversized_multipart(server: &HarkServer, size: usize) -> (u16, Value) {
    use std::io::{Read, Write};
    let addr = server.base_url.trim_start_matches("http://");
    let mut body = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\n".to_vec();
    body.extend(std::iter::repeat_n(0u8, size));
    body.extend_from_slice(b"\r\n--XyZ--\r\n");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST /v1/transcribe HTTP/1.1\r\nHost: {addr}\r\nContent-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let _ = stream.write_all(&body);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response);
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let json = text.split("\r\n\r\n").nth(1).and_then(|b| serde_json::from_str(b).ok()).unwrap_or(Value::Null);
    (status, json)
}

#[test]
fn an_api_key_guards_everything_but_the_health_checks() {
    let server = HarkServer::start(&[], &[("HARK_API_KEY", "s3cret")]);
    let client = Client::new();
    assert_eq!(client.get(server.url("/healthz")).send().unwrap().status(), 200);
    assert_eq!(client.get(server.url("/readyz")).send().unwrap().status(), 200);
    let (status, body) = post_wav(&server, "/v1/transcribe", fsdd("2_george_3.wav"));
    assert_error(status, &body, 401, "unauthorized");
    let wrong = client.get(server.url("/v1/models")).bearer_auth("nope").send().unwrap();
    assert_eq!(wrong.status(), 401);
    let right: Value =
        client.post(server.url("/v1/transcribe")).bearer_auth("s3cret").body(fsdd("2_george_3.wav")).send().unwrap().json().unwrap();
    assert_eq!(right["text"], "two");
}

fn openai_request(server: &HarkServer, fields: &[(&str, &str)], audio: Vec<u8>) -> reqwest::blocking::Response {
    let mut form = multipart::Form::new().part("file", multipart::Part::bytes(audio).file_name("a.wav"));
    for (k, v) in fields {
        form = form.text(k.to_string(), v.to_string());
    }
    Client::new().post(server.url("/v1/audio/transcriptions")).multipart(form).send().unwrap()
}

#[test]
fn the_openai_route_speaks_every_response_format() {
    let server = HarkServer::start(&[], &[]);
    // The digits model knows isolated digits: one take, one word, one
    // segment (segment breaking itself is tested in crates/core/src/transcript.rs).
    let audio = fsdd("4_george_1.wav");

    let json: Value = openai_request(&server, &[("model", "whisper-1")], audio.clone()).json().unwrap();
    assert_eq!(json, serde_json::json!({"text": "four"}));

    let text = openai_request(&server, &[("response_format", "text")], audio.clone()).text().unwrap();
    assert_eq!(text, "four\n");

    let srt = openai_request(&server, &[("response_format", "srt")], audio.clone()).text().unwrap();
    let lines: Vec<&str> = srt.trim_end().lines().collect();
    assert_eq!((lines[0], lines[2], lines.len()), ("1", "four", 3), "{srt}");
    assert!(lines[1].starts_with("00:00:00,") && lines[1].contains(" --> 00:00:0"), "{srt}");

    let response = openai_request(&server, &[("response_format", "vtt")], audio.clone());
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/vtt"));
    let vtt = response.text().unwrap();
    assert!(vtt.starts_with("WEBVTT\n\n00:00:00.") && vtt.ends_with("\nfour\n\n"), "{vtt}");

    let verbose: Value = openai_request(
        &server,
        &[
            ("response_format", "verbose_json"),
            ("timestamp_granularities[]", "word"),
            ("timestamp_granularities[]", "segment"),
            ("language", "en"),
        ],
        audio.clone(),
    )
    .json()
    .unwrap();
    assert_eq!((verbose["task"].as_str(), verbose["text"].as_str()), (Some("transcribe"), Some("four")), "{verbose}");
    let (segment, word) = (&verbose["segments"][0], &verbose["words"][0]);
    assert_eq!(verbose["segments"].as_array().unwrap().len(), 1, "{verbose}");
    assert_eq!((segment["text"].as_str(), word["word"].as_str()), (Some("four"), Some("four")));
    assert_eq!((segment["start"].as_f64(), segment["end"].as_f64()), (word["start"].as_f64(), word["end"].as_f64()));
    assert!(verbose["duration"].as_f64().unwrap() >= word["end"].as_f64().unwrap() - 0.03, "{verbose}");

    let words_only: Value =
        openai_request(&server, &[("response_format", "verbose_json"), ("timestamp_granularities[]", "word")], audio.clone())
            .json()
            .unwrap();
    assert!(words_only.get("segments").is_none() && words_only["words"].is_array(), "{words_only}");
    let default_granularity: Value = openai_request(&server, &[("response_format", "verbose_json")], audio.clone()).json().unwrap();
    assert!(default_granularity["segments"].is_array() && default_granularity.get("words").is_none(), "{default_granularity}");

    for (field, value, code) in [
        ("response_format", "xml", "invalid_response_format"),
        ("language", "fr", "unsupported_language"),
        ("temperature", "7", "invalid_temperature"),
        ("timestamp_granularities[]", "char", "invalid_timestamp_granularity"),
    ] {
        let response = openai_request(&server, &[(field, value)], audio.clone());
        let status = response.status().as_u16();
        assert_error(status, &response.json().unwrap(), 400, code);
    }
    let raw = Client::new().post(server.url("/v1/audio/transcriptions")).body(audio).send().unwrap();
    let status = raw.status().as_u16();
    assert_error(status, &raw.json().unwrap(), 400, "missing_file");
}

#[test]
fn decoding_options_choose_beam_search_and_n_best() {
    let server = HarkServer::start(&[], &[]);
    let audio = fsdd("7_jackson_0.wav");
    let (status, greedy) = post_wav(&server, "/v1/transcribe?decoder=greedy", audio.clone());
    assert_eq!(status, 200, "{greedy}");
    assert!(greedy.get("alternatives").is_none(), "{greedy}");
    let (status, beam) = post_wav(&server, "/v1/transcribe?decoder=beam&beam_size=8&alternatives=3", audio.clone());
    assert_eq!(status, 200, "{beam}");
    let alternatives = beam["alternatives"].as_array().unwrap();
    assert_eq!(alternatives.len(), 3, "{beam}");
    assert_eq!(alternatives[0]["text"], beam["text"]);
    assert_eq!(beam["text"], greedy["text"], "clear speech: beam and greedy agree");
    let scores: Vec<f64> = alternatives.iter().map(|a| a["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{beam}");
    assert!(beam["words"][0]["confidence"].as_f64().unwrap() > 0.5, "{beam}");

    // Hotwords go through the OpenAI route as form fields or as the prompt.
    let response = openai_request(&server, &[("prompt", "Seven, or maybe eleven."), ("alternatives", "2")], audio.clone());
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().unwrap()["text"], "seven");

    for (query, code, mentions) in [
        ("decoder=fancy", "invalid_decoder_options", "fancy"),
        ("beam_size=0", "invalid_decoder_options", "beam_size"),
        ("beam_size=lots", "invalid_decoder_options", "beam_size"),
        ("alternatives=50", "invalid_decoder_options", "alternatives"),
        ("lm_weight=0.5", "invalid_decoder_options", "language model"),
        ("blank_penalty=1", "invalid_decoder_options", "language model"),
        ("decoder=greedy&hotwords=seven", "invalid_decoder_options", "decoder=beam"),
        ("hotwords=seven:99", "invalid_hotwords", "seven:99"),
        ("temperature=1", "invalid_decoder_options", "temperature"),
    ] {
        let (status, body) = post_wav(&server, &format!("/v1/transcribe?{query}"), audio.clone());
        assert_error(status, &body, 400, code);
        assert!(body["error"]["message"].as_str().unwrap().contains(mentions), "{query}: {body}");
    }
    let response = openai_request(&server, &[("beam_size", "0")], audio);
    let status = response.status().as_u16();
    assert_error(status, &response.json().unwrap(), 400, "invalid_decoder_options");
}

/// The official `openai` Python client, pointed at hark, works unchanged.
/// tests/run.sh installs it into tests/.venv; HARK_TEST_PYTHON overrides.
#[test]
fn the_official_openai_python_client_works_unchanged() {
    let python = std::env::var("HARK_TEST_PYTHON").unwrap_or_else(|_| common::repo().join("tests/.venv/bin/python").display().to_string());
    assert!(std::path::Path::new(&python).exists(), "no Python with the openai client at {python}: run tests/run.sh, which installs it");
    let server = HarkServer::start(&[], &[("HARK_API_KEY", "sk-test")]);
    let output = std::process::Command::new(&python)
        .arg(common::repo().join("tests/openai_client.py"))
        .arg(format!("{}/v1", server.base_url))
        .arg(common::shared_data().join("fsdd/recordings/8_theo_4.wav"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "openai client failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("json: eight") && stdout.contains("words: eight"), "{stdout}");
}

#[test]
fn metrics_count_requests_audio_and_batches() {
    let server = HarkServer::start(&[], &[]);
    assert_eq!(post_wav(&server, "/v1/transcribe", fsdd("7_jackson_0.wav")).0, 200);
    assert_eq!(post_wav(&server, "/v1/transcribe", b"not a wav".to_vec()).0, 415);
    let response = Client::new().get(server.url("/metrics")).send().unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = response.text().unwrap();
    assert_eq!(metric(&text, r#"hark_requests_total{route="/v1/transcribe",status="200"}"#), Some(1.0), "{text}");
    assert_eq!(metric(&text, r#"hark_requests_total{route="/v1/transcribe",status="415"}"#), Some(1.0), "{text}");
    let audio_s = metric(&text, "hark_audio_seconds_total").unwrap();
    assert!((0.3..1.0).contains(&audio_s), "{audio_s}");
    assert_eq!(metric(&text, "hark_batch_size_count"), Some(1.0));
    assert_eq!(metric(&text, "hark_real_time_factor_count"), Some(1.0));
    assert_eq!(metric(&text, "hark_queue_audio_seconds"), Some(0.0));
    assert_eq!(metric(&text, r#"hark_request_duration_seconds_count{route="/v1/transcribe"}"#), Some(2.0));
}

#[test]
fn a_full_queue_answers_503_with_retry_after_and_the_rest_are_served() {
    // Batches wait up to 2 s for company, so concurrent requests pile up in
    // a queue that holds 1 s of audio: two FSDD takes fit, the rest do not.
    let server = HarkServer::start(&["--max-queue-s", "1", "--max-wait-ms", "2000"], &[]);
    let takes = ["0_jackson_0.wav", "1_jackson_0.wav", "2_jackson_0.wav", "3_jackson_0.wav", "4_jackson_0.wav", "5_jackson_0.wav"];
    let responses: Vec<(u16, Option<String>, Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = takes
            .iter()
            .map(|take| {
                let (server, body) = (&server, fsdd(take));
                s.spawn(move || {
                    let r = Client::new().post(server.url("/v1/transcribe")).body(body).send().unwrap();
                    let retry_after = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
                    (r.status().as_u16(), retry_after, r.json().unwrap_or(Value::Null))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let refused: Vec<_> = responses.iter().filter(|(status, ..)| *status == 503).collect();
    let served = responses.iter().filter(|(status, ..)| *status == 200).count();
    assert!(!refused.is_empty() && served >= 1, "{responses:?}");
    assert_eq!(served + refused.len(), takes.len(), "only 200 or 503: {responses:?}");
    for (status, retry_after, body) in refused {
        assert_error(*status, body, 503, "overloaded");
        assert!(retry_after.as_deref().is_some_and(|s| s.parse::<u64>().is_ok_and(|n| n >= 1)), "{retry_after:?}");
    }
    // Once the queue drains, requests are served again.
    assert_eq!(post_wav(&server, "/v1/transcribe", fsdd("6_jackson_0.wav")).0, 200);
}

#[test]
fn a_request_over_the_timeout_gets_503_and_the_server_goes_on() {
    let server = HarkServer::start(&["--request-timeout-s", "0.001"], &[]);
    let (status, body) = post_wav(&server, "/v1/transcribe", fsdd("7_jackson_0.wav"));
    assert_error(status, &body, 503, "timeout");
    let health = Client::new().get(server.url("/healthz")).send().unwrap();
    assert_eq!(health.status(), 200);
}
