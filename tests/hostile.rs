//! Hostile input, one request at a time: lying WAV headers, truncated and
//! corrupt compressed files, channel and rate bombs, broken multipart
//! forms, header abuse, bad parameters and API-key variants. Each gets its
//! exact status and error code, and the server stays healthy after each.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{fsdd, HarkServer};
use hark_testkit::wav_bytes as wav;
use reqwest::blocking::Client;
use serde_json::Value;

/// One hostile request and what the server must answer.
struct Case {
    name: &'static str,
    path: String,
    content_type: String,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
}

fn raw(name: &'static str, body: Vec<u8>, status: u16, code: &'static str) -> Case {
    Case { name, path: "/v1/transcribe".into(), content_type: "application/octet-stream".into(), body, status, code }
}

fn query(name: &'static str, query: &str, status: u16, code: &'static str) -> Case {
    Case { path: format!("/v1/transcribe?{query}"), ..raw(name, fsdd("1_lucas_2.wav"), status, code) }
}

/// A multipart form to the OpenAI route, from (name, filename, bytes) parts.
fn form(name: &'static str, parts: &[(&str, Option<&str>, &[u8])], status: u16, code: &'static str) -> Case {
    let boundary = "hostileboundary";
    let mut body = Vec::new();
    for (field, filename, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"").as_bytes());
        if let Some(filename) = filename {
            body.extend_from_slice(format!("; filename=\"{filename}\"").as_bytes());
        }
        body.extend_from_slice(b"\r\n\r\n");
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Case {
        name,
        path: "/v1/audio/transcriptions".into(),
        content_type: format!("multipart/form-data; boundary={boundary}"),
        body,
        status,
        code,
    }
}

fn pcm16(rate_hz: u32, seconds: f64) -> Vec<u8> {
    wav(1, 1, rate_hz, 16, &vec![0; (f64::from(rate_hz) * seconds) as usize * 2])
}

fn float32(rate_hz: u32, bad_at: usize, bad: f32) -> Vec<u8> {
    let data: Vec<u8> = (0..4000).flat_map(|i| if i == bad_at { bad } else { 0.01 }.to_le_bytes()).collect();
    wav(3, 1, rate_hz, 32, &data)
}

fn formats(name: &str) -> Vec<u8> {
    std::fs::read(common::test_audio("formats").join(name)).unwrap()
}

/// An AIFF file whose COMM chunk declares `channels` channels of 16-bit
/// audio at 16 kHz, with `frames` frames of silence.
fn aiff(channels: u16, frames: u32) -> Vec<u8> {
    let data_len = frames as usize * usize::from(channels) * 2;
    let mut comm = Vec::new();
    comm.extend_from_slice(&channels.to_be_bytes());
    comm.extend_from_slice(&frames.to_be_bytes());
    comm.extend_from_slice(&16u16.to_be_bytes());
    // 16000 as an 80-bit IEEE extended float.
    comm.extend_from_slice(&[0x40, 0x0C, 0xFA, 0, 0, 0, 0, 0, 0, 0]);
    let mut body = b"AIFF".to_vec();
    body.extend_from_slice(b"COMM");
    body.extend_from_slice(&(comm.len() as u32).to_be_bytes());
    body.extend_from_slice(&comm);
    body.extend_from_slice(b"SSND");
    body.extend_from_slice(&((data_len + 8) as u32).to_be_bytes());
    body.extend_from_slice(&[0; 8]);
    body.extend(std::iter::repeat_n(0u8, data_len));
    let mut out = b"FORM".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

fn healthy(client: &Client, server: &HarkServer, after: &str) {
    let response = client.get(server.url("/healthz")).send().unwrap_or_else(|e| panic!("after {after}: /healthz failed: {e}"));
    assert_eq!(response.status().as_u16(), 200, "after {after}");
}

fn check(client: &Client, server: &HarkServer, case: &Case) {
    let response = client
        .post(server.url(&case.path))
        .header("content-type", &case.content_type)
        .body(case.body.clone())
        .send()
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let status = response.status().as_u16();
    let body: Value = response.json().unwrap_or(Value::Null);
    assert_eq!((status, body["error"]["code"].as_str().unwrap_or("")), (case.status, case.code), "{}: {body}", case.name);
    if case.status >= 400 {
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}: {body}", case.name);
        assert!(!body.to_string().contains("panicked"), "{}: {body}", case.name);
    }
    healthy(client, server, case.name);
}

#[test]
fn hostile_requests_get_exact_errors_and_the_server_stays_healthy() {
    let server = HarkServer::start(&["--max-duration-s", "5", "--max-body-bytes", "2000000"], &[]);
    let client = Client::new();
    let good = fsdd("1_lucas_2.wav");
    let truncated_flac = {
        // Its frames start after 8 KB of metadata (mostly padding): cut
        // in the middle of the frames.
        let mut flac = formats("7_jackson_1.flac");
        flac.truncate(flac.len() - 2000);
        flac
    };
    let piped = {
        let mut piped = pcm16(16_000, 0.5);
        piped[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
        piped
    };
    let mut cases = vec![
        // WAV headers that lie.
        raw(
            "data chunk longer than the file",
            {
                let mut w = good.clone();
                w.truncate(w.len() / 2);
                w
            },
            400,
            "truncated_audio",
        ),
        raw(
            "fmt chunk longer than the file",
            {
                let mut w = good[..30].to_vec();
                w[16..20].copy_from_slice(&1000u32.to_le_bytes());
                w
            },
            400,
            "truncated_audio",
        ),
        raw("data before fmt", [&b"RIFF\x10\0\0\0WAVEdata\x04\0\0\0"[..], &[0; 4]].concat(), 400, "malformed_audio"),
        raw("no fmt chunk", b"RIFF\x04\0\0\0WAVE".to_vec(), 400, "malformed_audio"),
        raw("fmt chunk of 10 bytes", [&b"RIFF\x16\0\0\0WAVEfmt \x0a\0\0\0"[..], &[1; 10]].concat(), 400, "malformed_audio"),
        raw("extensible fmt under 40 bytes", wav(0xFFFE, 1, 16_000, 16, &[0; 3200]), 400, "malformed_audio"),
        raw("zero channels", wav(1, 0, 16_000, 16, &[0; 3200]), 400, "malformed_audio"),
        raw("65535 channels", wav(1, 65_535, 8_000, 8, &[0; 200_000]), 400, "too_many_channels"),
        raw("33 channels", wav(1, 33, 16_000, 16, &[0; 66_000]), 400, "too_many_channels"),
        raw("sample rate 0", wav(1, 1, 0, 16, &[0; 3200]), 415, "unsupported_sample_rate"),
        raw("sample rate 4 kHz", wav(1, 1, 4_000, 16, &[0; 3200]), 415, "unsupported_sample_rate"),
        raw("sample rate 96 kHz", wav(1, 1, 96_000, 16, &[0; 3200]), 415, "unsupported_sample_rate"),
        raw("sample rate u32::MAX", wav(1, 1, u32::MAX, 16, &[0; 3200]), 415, "unsupported_sample_rate"),
        raw("IMA ADPCM", wav(0x11, 1, 16_000, 4, &[0; 3200]), 415, "unsupported_codec"),
        raw("MP3 in WAV", wav(0x55, 1, 16_000, 0, &[0; 3200]), 415, "unsupported_codec"),
        raw("unknown format tag", wav(0x1234, 1, 16_000, 16, &[0; 3200]), 415, "unsupported_codec"),
        raw("PCM of 0 bits", wav(1, 1, 16_000, 0, &[0; 3200]), 400, "malformed_audio"),
        raw("PCM of 64 bits", wav(1, 1, 16_000, 64, &[0; 3200]), 400, "malformed_audio"),
        raw("float with NaN", float32(16_000, 1000, f32::NAN), 400, "invalid_samples"),
        raw("float with infinity", float32(16_000, 5, f32::NEG_INFINITY), 400, "invalid_samples"),
        raw("float with NaN at 8 kHz", float32(8_000, 3999, f32::NAN), 400, "invalid_samples"),
        raw("data size left at the maximum (a pipe)", piped, 200, ""),
        raw("data size 0", wav(1, 1, 16_000, 16, &[]), 422, "no_samples"),
        raw("longer than the limit by its header", pcm16(16_000, 6.0), 422, "audio_too_long"),
        raw("RIFF of form AVI", b"RIFF\x04\0\0\0AVI LIST".to_vec(), 415, "unsupported_format"),
        raw("big-endian RIFX", b"RIFX\x24\0\0\0WAVEfmt ".to_vec(), 415, "unsupported_format"),
        raw("RF64", b"RF64\xff\xff\xff\xffWAVEds64".to_vec(), 415, "unsupported_format"),
        raw("empty body", Vec::new(), 422, "no_samples"),
        raw("one byte", vec![0], 415, "unsupported_format"),
        raw("JSON", br#"{"audio": "base64..."}"#.to_vec(), 415, "unsupported_format"),
        raw("HTML", b"<html><body>hi</body></html>".to_vec(), 415, "unsupported_format"),
        raw("random bytes", (0..5000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect(), 415, "unsupported_format"),
        // Compressed files, broken.
        raw("FLAC magic and garbage", b"fLaC\0\0\0\x22garbage and more garbage".to_vec(), 400, "malformed_audio"),
        raw("FLAC cut short (what is there decodes)", truncated_flac, 200, ""),
        raw("FLAC cut inside its metadata", formats("7_jackson_1.flac")[..4000].to_vec(), 400, "malformed_audio"),
        raw("FLAC claiming 599 s", common::flac_claiming(599), 422, "audio_too_long"),
        raw("FLAC claiming 3 s (its frames hold less)", common::flac_claiming(3), 200, ""),
        raw("Ogg magic and garbage", b"OggS\0\x02garbage garbage garbage garbage".to_vec(), 400, "malformed_audio"),
        raw("MP4 box and garbage", b"\0\0\0\x18ftypM4A \0\0\0\0garbage!".to_vec(), 400, "malformed_audio"),
        raw("AIFF header only", b"FORM\0\0\0\x04AIFF".to_vec(), 400, "malformed_audio"),
        raw("AIFF of 65535 channels", aiff(65_535, 4), 400, "too_many_channels"),
        raw("MP3 cut to 40 bytes", formats("3_theo_2.mp3")[..40].to_vec(), 400, "malformed_audio"),
        raw("Ogg Opus", formats("4_theo_1.opus"), 200, ""),
        raw(
            "a Vorbis stream whose floor makes the decoder divide by zero",
            formats("vorbis-floor-divides-by-zero.webm"),
            400,
            "malformed_audio",
        ),
        raw("WebM cut to its header", formats("2_yweweler_3.webm")[..60].to_vec(), 400, "malformed_audio"),
        // Multipart forms.
        form("form without a file field", &[("model", None, b"whisper-1")], 400, "missing_file"),
        form("form with an empty file", &[("file", Some("a.wav"), b"")], 422, "no_samples"),
        form("form with a JSON file", &[("file", Some("a.wav"), b"{}")], 415, "unsupported_format"),
        Case {
            content_type: "multipart/form-data".into(),
            ..form("form without a boundary", &[("file", Some("a.wav"), &good)], 400, "malformed_multipart")
        },
        Case {
            content_type: "multipart/form-data; boundary=other".into(),
            ..form("form with the wrong boundary", &[("file", Some("a.wav"), &good)], 400, "malformed_multipart")
        },
        Case {
            body: b"--hostileboundary\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nRIFF".to_vec(),
            ..form("form cut short", &[], 400, "malformed_multipart")
        },
        Case {
            content_type: "application/octet-stream".into(),
            body: good.clone(),
            ..form("OpenAI route with a raw body", &[], 400, "missing_file")
        },
        form("response_format xml", &[("file", Some("a.wav"), &good), ("response_format", None, b"xml")], 400, "invalid_response_format"),
        form("language fr", &[("file", Some("a.wav"), &good), ("language", None, b"fr")], 400, "unsupported_language"),
        form("temperature 5", &[("file", Some("a.wav"), &good), ("temperature", None, b"5")], 400, "invalid_temperature"),
        form(
            "granularity char",
            &[("file", Some("a.wav"), &good), ("timestamp_granularities[]", None, b"char")],
            400,
            "invalid_timestamp_granularity",
        ),
        form("beam_size as a form field", &[("file", Some("a.wav"), &good), ("beam_size", None, b"many")], 400, "invalid_decoder_options"),
        form(
            "a prompt of 20,000 words",
            &[("file", Some("a.wav"), &good), ("prompt", None, "one two three four ".repeat(5_000).as_bytes())],
            200,
            "",
        ),
        // Decoding options.
        query("beam_size not a number", "beam_size=abc", 400, "invalid_decoder_options"),
        query("beam_size 0", "beam_size=0", 400, "invalid_decoder_options"),
        query("beam_size 100000", "beam_size=100000", 400, "invalid_decoder_options"),
        query("beam_size negative", "beam_size=-1", 400, "invalid_decoder_options"),
        query("alternatives 0", "alternatives=0", 400, "invalid_decoder_options"),
        query("alternatives 21", "alternatives=21", 400, "invalid_decoder_options"),
        query("alternatives 0 with greedy", "alternatives=0&decoder=greedy", 400, "invalid_decoder_options"),
        query("hotwords with a boost of 999", "hotwords=nine:999", 400, "invalid_hotwords"),
        query("hotwords of punctuation only", "hotwords=%3F%3F%3F", 400, "invalid_hotwords"),
        query("hotwords with greedy", "hotwords=nine&decoder=greedy", 400, "invalid_decoder_options"),
        query("an unknown option", "colour=blue", 400, "invalid_decoder_options"),
        query("an unknown decoder", "decoder=magic", 400, "invalid_decoder_options"),
        query("lm_weight without a language model", "lm_weight=NaN", 400, "invalid_decoder_options"),
        query("a query string of percent signs", "%%%%=%%", 400, "invalid_decoder_options"),
    ];
    cases.push(raw("a good file after all that", good, 200, ""));
    assert!(cases.len() >= 60, "{} cases", cases.len());
    for case in &cases {
        check(&client, &server, case);
    }
}

/// Sends raw bytes on a new connection and returns the status line.
fn raw_exchange(server: &HarkServer, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = stream.write_all(request);
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).lines().next().unwrap_or_default().to_string()
}

#[test]
fn header_abuse_is_refused_without_reading_the_body() {
    let server = HarkServer::start(&["--max-body-bytes", "1000000"], &[]);
    let client = Client::new();
    // A Content-Length over the limit is refused at once, its body unsent.
    let started = Instant::now();
    let status = raw_exchange(&server, b"POST /v1/transcribe HTTP/1.1\r\nHost: hark\r\nContent-Length: 30000000\r\n\r\nRIFF");
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    assert!(started.elapsed() < Duration::from_secs(5), "answered after {:?}", started.elapsed());
    healthy(&client, &server, "an over-long Content-Length");
    // A chunked body over the limit is cut off when it passes it.
    let chunk = vec![b'a'; 600_000];
    let mut request = b"POST /v1/transcribe HTTP/1.1\r\nHost: hark\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..2 {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(&chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    assert!(raw_exchange(&server, &request).starts_with("HTTP/1.1 413"));
    healthy(&client, &server, "a chunked body over the limit");
    // Headers too large, a malformed request line, a bad Content-Length.
    let huge_header = format!("GET /healthz HTTP/1.1\r\nHost: hark\r\nX-Junk: {}\r\n\r\n", "j".repeat(600_000));
    assert!(raw_exchange(&server, huge_header.as_bytes()).starts_with("HTTP/1.1 431"));
    assert!(raw_exchange(&server, b"BREW /pot HTCPCP/1.0\r\n\r\n").starts_with("HTTP/1.1 400"));
    assert!(raw_exchange(&server, b"POST /v1/transcribe HTTP/1.1\r\nHost: hark\r\nContent-Length: -5\r\n\r\n").starts_with("HTTP/1.1 400"));
    healthy(&client, &server, "malformed requests");
    // Wrong method and unknown route: JSON naming the problem.
    let response = client.get(server.url("/v1/transcribe")).send().unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(response.json::<Value>().unwrap()["error"]["code"], "method_not_allowed");
    let response = client.get(server.url("/v2/anything")).send().unwrap();
    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(response.json::<Value>().unwrap()["error"]["code"], "not_found");
}

#[test]
fn only_the_exact_api_key_gets_in() {
    let server = HarkServer::start(&[], &[("HARK_API_KEY", "s3cret-key")]);
    let client = Client::new();
    let good = fsdd("1_lucas_2.wav");
    for (name, authorization) in [
        ("no header", None),
        ("the wrong key", Some("Bearer wrong-key!")),
        ("a prefix of the key", Some("Bearer s3cret")),
        ("the key and more", Some("Bearer s3cret-key2")),
        ("a lower-case scheme", Some("bearer s3cret-key")),
        ("no scheme", Some("s3cret-key")),
        ("Basic auth", Some("Basic czNjcmV0LWtleTo=")),
        ("an empty bearer", Some("Bearer ")),
    ] {
        let mut request = client.post(server.url("/v1/transcribe")).body(good.clone());
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().unwrap();
        assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")), "{name}");
        healthy(&client, &server, name);
    }
    let response = client.post(server.url("/v1/transcribe")).header("authorization", "Bearer s3cret-key").body(good).send().unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

#[test]
fn bad_configuration_stops_the_start_with_exit_code_2() {
    for (args, named) in [
        (&["--request-timeout-s=-1"][..], "--request-timeout-s"),
        (&["--drain-timeout-s", "NaN"], "--drain-timeout-s"),
        (&["--max-duration-s=-5"], "--max-duration-s"),
        (&["--window-s", "inf"], "--window-s"),
        (&["--endpoint-silence-s", "9"], "--endpoint-silence-s"),
        (&["--max-connections", "0"], "--max-connections"),
        (&["--max-queue-s", "0"], "--max-queue-s"),
        (&["--min-body-rate", "0"], "--min-body-rate"),
        (&["--max-body-memory-bytes", "1000", "--max-body-bytes", "2000"], "--max-body-memory-bytes"),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_hark"))
            .arg("serve")
            .args(["--addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"])
            .args(args)
            .env_remove("HARK_API_KEY")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(named), "{args:?}: {stderr}");
    }
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_hark"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("HARK_ENDPOINT_SILENCE_S", "0.01")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", String::from_utf8_lossy(&output.stderr));
}
