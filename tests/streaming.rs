//! Live streams over WebSocket (`GET /v1/stream`) against the real server
//! and the digits model: partial results while a digit is being said, one
//! final result per utterance at its pause, words at stream times, and
//! clear errors for bad streams.

mod common;

use std::time::{Duration, Instant};

use common::HarkServer;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Audio per WebSocket frame: 100 ms at 16 kHz.
const CHUNK_S: f64 = 0.1;

/// What came back on a stream: each JSON frame with when it arrived (since
/// the first audio was sent), and the close code.
struct Received {
    frames: Vec<(f64, Value)>,
    close: Option<CloseCode>,
    reason: Option<String>,
    /// When each chunk was sent, by the stream time its audio ends.
    sent: Vec<(f64, f64)>,
}

/// How a client says its audio is over.
#[derive(Clone, Copy)]
enum End {
    /// `{"event": "end"}` in a text frame.
    Text,
    /// The same line in a binary frame, then the client's close at once: what
    /// `websocat -b` does with it on its input, then at the input's end.
    BinaryThenClose,
}

/// Sends `pcm` (16-bit little-endian at `rate_hz`) in 100 ms frames, at
/// real time when `paced`, then `{"event": "end"}`; reads until the close.
async fn stream(url: &str, pcm: &[u8], rate_hz: usize, paced: bool) -> Received {
    stream_ending(url, pcm, rate_hz, paced, End::Text).await
}

async fn stream_ending(url: &str, pcm: &[u8], rate_hz: usize, paced: bool, end: End) -> Received {
    let chunk_bytes = (CHUNK_S * rate_hz as f64) as usize * 2;
    let chunks =
        pcm.chunks(chunk_bytes).enumerate().map(|(i, chunk)| (((i * chunk_bytes + chunk.len()) / 2) as f64 / rate_hz as f64, chunk));
    send_chunks(url, chunks, paced, end).await
}

/// Sends each chunk (with the stream time its audio ends) in a binary
/// frame, every 100 ms when `paced`, then the end; reads until the close.
async fn send_chunks<'a>(url: &str, chunks: impl Iterator<Item = (f64, &'a [u8])>, paced: bool, end: End) -> Received {
    let (socket, _) = tokio_tungstenite::connect_async(url).await.expect("the WebSocket opens");
    let (mut sink, mut source) = socket.split();
    let started = Instant::now();
    let reader = tokio::spawn(async move {
        let (mut frames, mut close) = (Vec::new(), None);
        while let Some(message) = source.next().await {
            match message.expect("a well-formed frame") {
                Message::Text(text) => frames.push((started.elapsed().as_secs_f64(), serde_json::from_str(&text).expect("JSON"))),
                // The stream is over: what the TCP connection does next is not its concern.
                Message::Close(frame) => {
                    close = frame.map(|f| (f.code, f.reason.to_string()));
                    break;
                }
                _ => {}
            }
        }
        (frames, close)
    });
    let mut sent = Vec::new();
    for (i, (audio_end_s, chunk)) in chunks.enumerate() {
        if paced {
            tokio::time::sleep_until((started + Duration::from_secs_f64(i as f64 * CHUNK_S)).into()).await;
        }
        // A server that refused the stream may close before all is sent.
        if sink.send(Message::Binary(chunk.to_vec().into())).await.is_err() {
            break;
        }
        sent.push((audio_end_s, started.elapsed().as_secs_f64()));
    }
    let _ = match end {
        End::Text => sink.send(Message::Text(r#"{"event": "end"}"#.into())).await,
        End::BinaryThenClose => {
            let _ = sink.send(Message::Binary(b"{\"event\": \"end\"}\n".to_vec().into())).await;
            sink.send(Message::Close(None)).await
        }
    };
    let (frames, close) = tokio::time::timeout(Duration::from_secs(60), reader).await.expect("the server closes the stream").unwrap();
    Received { frames, close: close.as_ref().map(|c| c.0), reason: close.map(|c| c.1), sent }
}

/// When the audio up to stream time `t` had been sent.
fn sent_at(sent: &[(f64, f64)], t: f64) -> f64 {
    sent.iter().find(|(end, _)| *end >= t - 1e-6).or(sent.last()).unwrap().1
}

fn of_type<'a>(received: &'a Received, kind: &str) -> Vec<&'a (f64, Value)> {
    received.frames.iter().filter(|(_, f)| f["type"] == kind).collect()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// What a stream cost: each partial's latency (from when the audio it
/// covers had been sent), each utterance's final latency from the end of
/// its speech (the endpoint pause included), and the network's work for
/// partials and finals over the finals' alone.
struct Cost {
    partials: Vec<f64>,
    finals: Vec<f64>,
    work: f64,
}

impl Cost {
    fn of(received: &Received, spans: &[(f64, f64, String)]) -> Self {
        let (finals, partials) = (of_type(received, "final"), of_type(received, "partial"));
        let seconds = |results: &[&(f64, Value)]| -> f64 {
            results.iter().map(|(_, r)| r["end"].as_f64().unwrap() - r["start"].as_f64().unwrap()).sum()
        };
        let final_latency = |(_, end, _): &(f64, f64, String)| {
            let (t, _) = finals.iter().find(|(_, f)| f["end"].as_f64().unwrap() >= end - 0.2).expect("a final at each utterance's end");
            t - sent_at(&received.sent, *end)
        };
        Self {
            partials: partials.iter().map(|(t, p)| t - sent_at(&received.sent, p["end"].as_f64().unwrap())).collect(),
            finals: spans.iter().map(final_latency).collect(),
            work: (seconds(&partials) + seconds(&finals)) / seconds(&finals),
        }
    }
}

impl std::fmt::Display for Cost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} partials, latency median {:.0} ms, max {:.0} ms; finals {:.0?} ms after their speech ended (the endpoint pause \
             included); network ran {:.1}× the audio of the finals",
            self.partials.len(),
            1000.0 * median(self.partials.clone()),
            1000.0 * self.partials.iter().cloned().fold(0.0, f64::max),
            self.finals.iter().map(|s| 1000.0 * s).collect::<Vec<_>>(),
            self.work,
        )
    }
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(future)
}

#[test]
fn a_live_stream_gets_partials_while_speaking_and_a_final_per_utterance() {
    // Partials every 0.25 s: FSDD digits last 0.5–0.8 s.
    let server = HarkServer::start_with_model(&common::shipped_digits_model(), &["--partial-interval-s", "0.25"], &[]);
    let (samples, spans) = common::takes_with_pauses(&common::four_digits(), 1.0);
    let url = format!("ws://{}/v1/stream?sample_rate=16000", server.addr());
    let received = block_on(stream(&url, &common::pcm16(&samples), 16_000, true));
    assert_eq!(received.close, Some(CloseCode::Normal), "{:?}", received.frames);
    let finals = of_type(&received, "final");
    let partials = of_type(&received, "partial");
    assert_eq!(finals.len(), spans.len(), "one final per utterance: {:?}", received.frames);

    let mut right = 0;
    for ((arrived, final_), (start, end, text)) in finals.iter().zip(&spans) {
        let (f_start, f_end) = (final_["start"].as_f64().unwrap(), final_["end"].as_f64().unwrap());
        // The final covers its take, and ends inside the pause after it.
        assert!(f_start <= start + 0.02 && f_end >= end - 0.02 && f_end <= end + 1.0, "{final_} for {start}–{end}");
        // Its words lie in the stream's time, within the take.
        for word in final_["words"].as_array().unwrap() {
            let (w_start, w_end) = (word["start"].as_f64().unwrap(), word["end"].as_f64().unwrap());
            assert!(w_start >= start - 0.3 && w_end <= end + 0.3 && w_start < w_end, "{word} outside {start}–{end}");
        }
        // It came at the endpoint, long before the stream ended.
        assert!(*arrived < sent_at(&received.sent, end + 1.0) + 3.0, "final at {arrived} s for a take ending at {end} s");
        right += usize::from(final_["text"] == text.as_str());
        // Finals are written, token by token; partials stay spoken.
        let words = final_["words"].as_array().unwrap().len();
        assert_eq!(final_.get("tokens").map_or(0, |t| t.as_array().unwrap().len()).min(1), words.min(1), "{final_}");
        // At least one partial of this utterance came before its final.
        let early: Vec<_> = partials.iter().filter(|(t, p)| p["start"] == final_["start"] && t < arrived).collect();
        assert!(!early.is_empty(), "no partial before the final {final_}");
    }
    println!("finals: {:?}", finals.iter().map(|(_, f)| f["text"].as_str().unwrap()).collect::<Vec<_>>());
    println!("truth:  {:?}", spans.iter().map(|s| s.2.as_str()).collect::<Vec<_>>());
    assert!(right >= 3, "{right} of 4 finals right");
    assert!(partials.iter().all(|(_, p)| p.get("tokens").is_none()), "{partials:?}");

    println!("{}", Cost::of(&received, &spans));
}

#[test]
fn other_rates_are_resampled_and_bad_streams_get_clear_errors() {
    let server = HarkServer::start_with_model(&common::shipped_digits_model(), &[], &[]);
    block_on(bad_streams(&server));
}

async fn bad_streams(server: &HarkServer) {
    // The same digits at 8 kHz, sent as fast as the socket takes them, and
    // ended as a client that sends only binary frames ends them.
    let (samples, spans) = common::takes_with_pauses(&common::four_digits(), 1.0);
    let at_8k: Vec<f32> = samples.iter().step_by(2).copied().collect();
    let url = format!("ws://{}/v1/stream?sample_rate=8000&decoder=greedy", server.addr());
    let received = stream_ending(&url, &common::pcm16(&at_8k), 8_000, false, End::BinaryThenClose).await;
    assert_eq!(received.close, Some(CloseCode::Normal));
    let finals = of_type(&received, "final");
    assert_eq!(finals.len(), spans.len(), "{:?}", received.frames);
    let right = finals.iter().zip(&spans).filter(|((_, f), s)| f["text"] == s.2.as_str()).count();
    assert!(right >= 3, "{right} of 4 finals right at 8 kHz: {:?}", received.frames);

    // Refused before the upgrade, with the HTTP API's JSON errors.
    for (query, status, code) in [
        ("sample_rate=4000", 415, "unsupported_sample_rate"),
        ("sample_rate=fast", 400, "invalid_stream_options"),
        ("endpoint_silence_s=0.01", 400, "invalid_stream_options"),
        ("decoder=greedy&hotwords=seven", 400, "invalid_decoder_options"),
    ] {
        let url = format!("ws://{}/v1/stream?{query}", server.addr());
        match tokio_tungstenite::connect_async(&url).await {
            Err(WsError::Http(response)) => {
                assert_eq!(response.status().as_u16(), status, "{query}");
                let body: Value = serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
                assert_eq!(body["error"]["code"], code, "{query}: {body}");
            }
            other => panic!("{query}: expected an HTTP error, got {other:?}"),
        }
    }

    // A text frame that is not the end event: an error frame, then a close.
    let url = format!("ws://{}/v1/stream", server.addr());
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    socket.send(Message::Text("hello".into())).await.unwrap();
    let mut frames = Vec::new();
    let mut close = None;
    while let Some(Ok(message)) = socket.next().await {
        match message {
            Message::Text(text) => frames.push(serde_json::from_str::<Value>(&text).unwrap()),
            Message::Close(frame) => close = frame.map(|f| f.code),
            _ => {}
        }
    }
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!((frames[0]["type"].as_str(), frames[0]["code"].as_str()), (Some("error"), Some("invalid_message")));
    assert_eq!(close, Some(CloseCode::Policy));
    // The server is still serving.
    let health = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
}

/// A recording's bytes in chunks of about 100 ms of its audio, cut wherever
/// the bytes fall (a recorder's timeslice cuts between blocks; a network
/// may cut anywhere), each with the stream time its audio roughly ends.
fn byte_chunks(bytes: &[u8], duration_s: f64) -> impl Iterator<Item = (f64, &[u8])> {
    let size = (bytes.len() as f64 / duration_s * CHUNK_S) as usize;
    bytes.chunks(size).enumerate().map(move |(i, chunk)| ((i + 1) as f64 * CHUNK_S, chunk))
}

#[test]
fn browser_recordings_stream_live_as_webm_or_ogg() {
    let server = HarkServer::start_with_model(&common::shipped_digits_model(), &["--partial-interval-s", "0.25"], &[]);
    let (samples, spans) = common::takes_with_pauses(&common::four_digits(), 1.0);
    let duration_s = samples.len() as f64 / 16_000.0;
    let url = |query: &str| format!("ws://{}/v1/stream?{query}", server.addr());
    block_on(async {
        for format in ["webm", "ogg"] {
            let recording = common::browser_recording(&samples, format, "libopus");
            // The same audio as PCM16: the recording decoded as a file is.
            let decoded = hark_core::audio::decode(&recording, &hark_core::audio::AudioLimits::default()).unwrap();
            let pcm = stream(&url("sample_rate=16000"), &common::pcm16(decoded.samples()), 16_000, false).await;
            // At real time, as a recorder sends: partials come while it speaks.
            let live = send_chunks(&url(&format!("format={format}")), byte_chunks(&recording, duration_s), true, End::Text).await;
            assert_eq!(live.close, Some(CloseCode::Normal), "{format}: {:?} {:?}", live.reason, live.frames);
            let (finals, pcm_finals) = (of_type(&live, "final"), of_type(&pcm, "final"));
            assert_eq!(finals.len(), spans.len(), "{format}: one final per utterance: {:?}", live.frames);
            assert_eq!(pcm_finals.len(), spans.len(), "{:?}", pcm.frames);
            let mut right = 0;
            for (((_, final_), (_, pcm_final)), (start, end, text)) in finals.iter().zip(&pcm_finals).zip(&spans) {
                // What the file's audio gives when streamed as PCM, at the same times.
                assert_eq!(final_["text"], pcm_final["text"], "{format}: {final_} against PCM16's {pcm_final}");
                for key in ["start", "end"] {
                    let (a, b) = (final_[key].as_f64().unwrap(), pcm_final[key].as_f64().unwrap());
                    assert!((a - b).abs() <= 0.05, "{format}: {key} {a} s against PCM16's {b} s");
                }
                let (f_start, f_end) = (final_["start"].as_f64().unwrap(), final_["end"].as_f64().unwrap());
                assert!(f_start <= start + 0.05 && f_end >= end - 0.05, "{format}: {final_} for {start}–{end}");
                right += usize::from(final_["text"] == text.as_str());
            }
            assert!(right >= 3, "{format}: {right} of 4 finals right: {finals:?}");
            assert!(!of_type(&live, "partial").is_empty(), "{format}: partials while the digits are said");
        }
    });
}

#[test]
fn broken_or_foreign_container_streams_are_refused_with_a_reason() {
    let server = HarkServer::start_with_model(&common::shipped_digits_model(), &[], &[]);
    let (samples, _) = common::takes_with_pauses(&common::four_digits()[..2], 0.8);
    let duration_s = samples.len() as f64 / 16_000.0;
    let webm = common::browser_recording(&samples, "webm", "libopus");
    let ogg = common::browser_recording(&samples, "ogg", "libopus");
    // A recorder restarted with another codec: a second WebM, of Vorbis.
    let mut switched = webm.clone();
    switched.extend(common::browser_recording(&samples, "webm", "libvorbis"));
    let vorbis_ogg = common::browser_recording(&samples, "ogg", "libvorbis");
    // One byte changed in the middle: the page holding it fails its checksum.
    let mut damaged_ogg = ogg.clone();
    let middle = damaged_ogg.len() / 2;
    damaged_ogg[middle] ^= 0x55;
    let wav = common::wav_16k(&samples);
    let header_only = webm[..40].to_vec();
    block_on(async {
        for (format, bytes, close, code, finals) in [
            ("webm", &switched, CloseCode::Unsupported, "unsupported_codec", 1),
            ("ogg", &vorbis_ogg, CloseCode::Unsupported, "unsupported_codec", 0),
            ("ogg", &damaged_ogg, CloseCode::Policy, "malformed_audio", 0),
            ("webm", &wav, CloseCode::Policy, "malformed_audio", 0),
            ("webm", &header_only, CloseCode::Policy, "malformed_audio", 0),
            ("ogg", &webm, CloseCode::Policy, "malformed_audio", 0),
        ] {
            let case = format!("{code} from {} bytes as {format}", bytes.len());
            let url = format!("ws://{}/v1/stream?format={format}", server.addr());
            let received = send_chunks(&url, byte_chunks(bytes, duration_s), false, End::Text).await;
            assert_eq!(received.close, Some(close), "{case}: {:?} {:?}", received.reason, received.frames);
            assert_eq!(received.reason.as_deref(), Some(code), "{case}: the close names the error");
            let errors = of_type(&received, "error");
            assert_eq!(errors.len(), 1, "{case}: {:?}", received.frames);
            assert_eq!(errors[0].1["code"], code, "{case}: {}", errors[0].1);
            println!("{case}: {}", errors[0].1["message"]);
            // The first recording's digits came before the switch (the last
            // may share a chunk with it, and go with it).
            assert!(of_type(&received, "final").len() >= finals, "{case}: {:?}", received.frames);
        }
        for (query, code) in [("format=webm&sample_rate=48000", "invalid_stream_options"), ("format=mp3", "invalid_stream_options")] {
            match tokio_tungstenite::connect_async(&format!("ws://{}/v1/stream?{query}", server.addr())).await {
                Err(WsError::Http(response)) => {
                    assert_eq!(response.status().as_u16(), 400, "{query}");
                    let body: Value = serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
                    assert_eq!(body["error"]["code"], code, "{query}: {body}");
                }
                other => panic!("{query}: expected an HTTP error, got {other:?}"),
            }
        }
        assert_eq!(reqwest::get(server.url("/healthz")).await.unwrap().status().as_u16(), 200);
    });
}

/// A live English stream against the same audio as one file, with the default settings
/// (a partial every 0.5 s of new audio, finals after 0.6 s of pause) and the
/// default English model: two LJSpeech sentences, sent at real time.
#[test]
#[ignore = "slow tier: tests/run.sh --slow"]
fn english_speech_streams_with_partials_every_half_second() {
    let server = HarkServer::start_with_model(&common::repo().join("models/hark-en"), &[], &[]);
    let manifest = hark_core::eval::read_manifest(&common::shared_data().join("ljspeech-dev/dev.jsonl")).unwrap();
    let sentences: Vec<(hark_core::audio::Waveform, String)> = manifest[..2]
        .iter()
        .rev()
        .map(|u| (hark_core::audio::decode(&std::fs::read(&u.audio_path).unwrap(), &Default::default()).unwrap(), u.text.clone()))
        .collect();
    let (samples, spans) = common::takes_with_pauses(&sentences, 1.0);
    // Scored on the spoken words.
    let url = format!("ws://{}/v1/stream?text_format=spoken", server.addr());
    let received = block_on(stream(&url, &common::pcm16(&samples), 16_000, true));
    assert_eq!(received.close, Some(CloseCode::Normal));
    let (finals, partials) = (of_type(&received, "final"), of_type(&received, "partial"));
    let speech_s: f64 = spans.iter().map(|(start, end, _)| end - start).sum();
    assert!(finals.len() >= spans.len(), "{:?}", received.frames);
    assert!(partials.len() as f64 >= speech_s / 0.5 / 2.0, "{} partials for {speech_s:.1} s of speech", partials.len());
    // Every final came before the stream ended.
    let last_sent = received.sent.last().unwrap().1;
    assert!(finals.iter().all(|(t, _)| *t < last_sent + 2.0), "{finals:?}");

    let streamed: Vec<String> =
        finals.iter().flat_map(|(_, f)| f["text"].as_str().unwrap().split_whitespace().map(String::from).collect::<Vec<_>>()).collect();
    let reference: Vec<String> = spans.iter().flat_map(|s| s.2.split_whitespace().map(String::from).collect::<Vec<_>>()).collect();
    let whole: Value = reqwest::blocking::Client::new()
        .post(server.url("/v1/transcribe?text_format=spoken"))
        .body(common::wav_16k(&samples))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let whole_words: Vec<String> = whole["text"].as_str().unwrap().split_whitespace().map(String::from).collect();
    let wer = |hypothesis: &[String]| 100.0 * hark_core::eval::edit_distance(&reference, hypothesis) as f64 / reference.len() as f64;
    let (streamed_wer, whole_wer) = (wer(&streamed), wer(&whole_words));
    println!("{speech_s:.1} s of speech: {}; WER streamed {streamed_wer:.1} %, whole file {whole_wer:.1} %", Cost::of(&received, &spans));
    // Each final is its utterance recognized whole, as the file is: the
    // stream may differ only where the endpointer cut.
    assert!(streamed_wer <= whole_wer + 10.0, "streamed {streamed_wer:.1} % against {whole_wer:.1} % for the whole file");
}
