//! Denial of service, attack by attack: while each runs (bounded in count
//! and time), a normal request is still served, and the server's memory
//! stays under a stated bound. Also the shutdown of a live stream.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{fsdd, HarkServer};
use futures_util::{SinkExt, StreamExt};
use reqwest::blocking::Client;
use serde_json::Value;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

/// The attacks run one at a time: each asserts what a normal request gets
/// while it runs, which another attack beside it would change.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(future)
}

/// A normal upload: its status and how long it took.
fn normal_request(server: &HarkServer) -> (u16, Duration) {
    let started = Instant::now();
    let client = Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let response = client.post(server.url("/v1/transcribe")).body(fsdd("1_lucas_2.wav")).send().unwrap();
    (response.status().as_u16(), started.elapsed())
}

/// The server's resident memory now, in MB.
fn rss_mb(server: &HarkServer) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok()).unwrap() / 1024.0
}

/// Writes `bytes` one at a time, `gap` apart, until they run out, `stop`
/// passes or the server closes the connection; returns what it answered.
fn trickle(server: &HarkServer, head: &[u8], bytes: &[u8], gap: Duration, stop: Instant) -> String {
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
    stream.write_all(head).unwrap();
    let mut reply = Vec::new();
    for byte in bytes {
        if Instant::now() > stop || stream.write_all(&[*byte]).is_err() {
            break;
        }
        let mut buf = [0; 4096];
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                reply.extend_from_slice(&buf[..n]);
                break;
            }
            Err(_) => {}
        }
        std::thread::sleep(gap);
    }
    stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let _ = stream.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

#[test]
fn slow_headers_cannot_hold_every_connection() {
    let _serial = one_at_a_time();
    let server = HarkServer::start(&["--max-connections", "16", "--read-timeout-s", "2"], &[]);
    let stop = Instant::now() + Duration::from_secs(8);
    let request = b"GET /healthz HTTP/1.1\r\nHost: hark\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    std::thread::scope(|s| {
        // More slow clients than places, each reconnecting when cut off.
        for _ in 0..24 {
            s.spawn(|| {
                while Instant::now() < stop {
                    trickle(&server, b"", request, Duration::from_millis(500), stop);
                }
            });
        }
        std::thread::sleep(Duration::from_secs(3));
        let (status, took) = normal_request(&server);
        assert_eq!(status, 200);
        assert!(took < Duration::from_secs(5), "served after {took:?} under the attack");
    });
}

#[test]
fn a_body_that_trickles_is_cut_off_and_a_slow_real_client_gets_through() {
    let _serial = one_at_a_time();
    let server = HarkServer::start(&["--max-connections", "16", "--read-timeout-s", "2", "--min-body-rate", "1024"], &[]);
    let stop = Instant::now() + Duration::from_secs(10);
    let head = b"POST /v1/transcribe HTTP/1.1\r\nHost: hark\r\nContent-Length: 100000\r\n\r\n";
    std::thread::scope(|s| {
        let attackers: Vec<_> =
            (0..24).map(|_| s.spawn(|| trickle(&server, head, &[0; 100_000], Duration::from_millis(250), stop))).collect();
        std::thread::sleep(Duration::from_secs(1));
        let (status, took) = normal_request(&server);
        assert_eq!(status, 200);
        assert!(took < Duration::from_secs(6), "served after {took:?} under the attack");
        // A phone on a bad link: 4 KB/s, a 32 KB upload.
        let wav = common::wav_16k(&vec![0.0; 16_000]);
        let mut head = format!("POST /v1/transcribe HTTP/1.1\r\nHost: hark\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", wav.len())
            .into_bytes();
        let mut stream = TcpStream::connect(server.addr()).unwrap();
        stream.write_all(&head).unwrap();
        for chunk in wav.chunks(1024) {
            stream.write_all(chunk).unwrap();
            std::thread::sleep(Duration::from_millis(250));
        }
        head.clear();
        stream.read_to_end(&mut head).unwrap();
        let reply = String::from_utf8_lossy(&head);
        assert!(reply.starts_with("HTTP/1.1 200"), "the slow real client: {reply}");
        for attacker in attackers {
            let reply = attacker.join().unwrap();
            assert!(reply.starts_with("HTTP/1.1 408"), "a trickling body: {reply}");
            assert!(reply.contains("body_timeout"), "{reply}");
        }
    });
}

#[test]
fn uploads_in_flight_stay_within_the_memory_budget() {
    let _serial = one_at_a_time();
    let (limit, budget) = (4 << 20, 16 << 20);
    let server = HarkServer::start(&["--max-body-bytes", &limit.to_string(), "--max-body-memory-bytes", &budget.to_string()], &[]);
    let before = rss_mb(&server);
    let stop = Instant::now() + Duration::from_secs(6);
    let head = format!("POST /v1/transcribe HTTP/1.1\r\nHost: hark\r\nContent-Length: {}\r\n\r\n", limit - 1);
    let body = vec![0u8; limit - 1];
    let replies: Vec<String> = std::thread::scope(|s| {
        // Twelve uploads of the largest size, all sending at once.
        let uploads: Vec<_> = (0..12)
            .map(|_| {
                s.spawn(|| {
                    let mut stream = TcpStream::connect(server.addr()).unwrap();
                    stream.write_all(head.as_bytes()).unwrap();
                    // Most of the body, then hold the connection open.
                    let _ = stream.write_all(&body[..body.len() - 10]);
                    stream.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
                    let mut reply = Vec::new();
                    while Instant::now() < stop {
                        let mut buf = [0; 4096];
                        match stream.read(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => reply.extend_from_slice(&buf[..n]),
                            Err(_) => {}
                        }
                    }
                    String::from_utf8_lossy(&reply).into_owned()
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs(4));
        let during = rss_mb(&server);
        assert!(during - before < 80.0, "RSS {before:.0} -> {during:.0} MB with a {} MB budget", budget >> 20);
        uploads.into_iter().map(|u| u.join().unwrap()).collect()
    });
    let refused = replies.iter().filter(|r| r.starts_with("HTTP/1.1 503") && r.contains("\"busy\"") && r.contains("retry-after")).count();
    assert!(refused >= 8, "{refused} of 12 refused: {replies:?}");
    // Once they are gone, the budget is back.
    let (status, _) = normal_request(&server);
    assert_eq!(status, 200);
}

#[test]
fn decoded_audio_takes_its_room_in_the_memory_budget_before_decoding() {
    let _serial = one_at_a_time();
    // 2,930 KiB in all; the largest body 977 KiB.
    let server = HarkServer::start(&["--max-body-bytes", "1000000", "--max-body-memory-bytes", "3000000"], &[]);
    // 20 s of audio: a 626 KiB upload whose samples and features will take
    // another 1,875 KiB. Alone it fits.
    let long = common::wav_16k(&vec![0.0; 20 * 16_000]);
    let post = |body: Vec<u8>| {
        let response = Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
            .post(server.url("/v1/transcribe"))
            .body(body)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().unwrap())
    };
    assert_eq!(post(long.clone()).0, 200);
    // An upload of 879 KiB held open: the long one's body still fits beside
    // it, its decoded audio does not.
    let mut holder = TcpStream::connect(server.addr()).unwrap();
    holder.write_all(b"POST /v1/transcribe HTTP/1.1\r\nHost: hark\r\nContent-Length: 900000\r\n\r\nRIFF").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let (status, body) = post(long.clone());
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"busy\""), "{body}");
    // A short request still fits, and once the holder leaves the long one does.
    assert_eq!(normal_request(&server).0, 200);
    drop(holder);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(post(long).0, 200);
}

#[test]
fn a_long_prompt_costs_linear_time_off_the_async_workers() {
    let _serial = one_at_a_time();
    let server = HarkServer::start(&[], &[]);
    let prompt: String = (0..120_000).map(|i| format!("word{} ", i % 50_000)).collect();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let form = reqwest::blocking::multipart::Form::new()
                    .part("file", reqwest::blocking::multipart::Part::bytes(fsdd("1_lucas_2.wav")).file_name("a.wav"))
                    .text("prompt", prompt.clone());
                let response = Client::builder()
                    .timeout(Duration::from_secs(60))
                    .build()
                    .unwrap()
                    .post(server.url("/v1/audio/transcriptions"))
                    .multipart(form)
                    .send()
                    .unwrap();
                assert_eq!(response.status().as_u16(), 200);
            });
        }
        let client = Client::new();
        let mut slowest = Duration::ZERO;
        for _ in 0..20 {
            let started = Instant::now();
            assert_eq!(client.get(server.url("/healthz")).send().unwrap().status(), 200);
            slowest = slowest.max(started.elapsed());
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(slowest < Duration::from_millis(500), "/healthz took {slowest:?} beside the long prompts");
    });
}

#[test]
fn small_files_that_claim_hours_are_refused_before_decoding() {
    let _serial = one_at_a_time();
    let server = HarkServer::start(&["--max-duration-s", "60"], &[]);
    let bomb = common::flac_claiming(599);
    std::thread::scope(|s| {
        let floods: Vec<_> = (0..32)
            .map(|_| {
                s.spawn(|| {
                    let response = Client::new().post(server.url("/v1/transcribe")).body(bomb.clone()).send().unwrap();
                    response.status().as_u16()
                })
            })
            .collect();
        let (status, took) = normal_request(&server);
        assert_eq!(status, 200);
        assert!(took < Duration::from_secs(3), "served after {took:?} beside the flood");
        let statuses: Vec<u16> = floods.into_iter().map(|f| f.join().unwrap()).collect();
        assert!(statuses.iter().all(|&s| s == 422), "{statuses:?}");
    });
}

#[test]
fn live_streams_are_capped_timed_out_and_sized() {
    let _serial = one_at_a_time();
    let server = HarkServer::start(
        &["--max-streams", "6", "--max-streams-per-client", "3", "--stream-idle-timeout-s", "2", "--max-stream-message-bytes", "65536"],
        &[],
    );
    block_on(live_streams(&server))
}

async fn live_streams(server: &HarkServer) {
    let url = format!("ws://{}/v1/stream", server.addr());
    // Three streams from one address; the fourth is refused.
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(tokio_tungstenite::connect_async(&url).await.expect("a stream opens").0);
    }
    match tokio_tungstenite::connect_async(&url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 429);
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body["error"]["code"], "too_many_streams");
        }
        other => panic!("a fourth stream from one client: {other:?}"),
    }
    // Uploads are served beside them.
    let (status, _) = tokio::task::block_in_place(|| normal_request(server));
    assert_eq!(status, 200);
    // Tiny frames do not count as audio: the stream is closed as idle.
    let mut idle = open.pop().unwrap();
    let started = Instant::now();
    let mut close = None;
    loop {
        tokio::select! {
            message = idle.next() => match message {
                Some(Ok(Message::Close(frame))) => { close = frame.map(|f| (f.code, f.reason.to_string())); break }
                Some(Ok(_)) => {}
                _ => break,
            },
            () = tokio::time::sleep(Duration::from_millis(300)) => { let _ = idle.send(Message::Binary(vec![0, 0].into())).await; }
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the idle stream was never closed");
    }
    assert_eq!(close, Some((CloseCode::Policy, "idle_stream".to_string())));
    // A message over the size limit: 1009.
    open.clear();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut big = tokio_tungstenite::connect_async(&url).await.expect("a place came back").0;
    let _ = big.send(Message::Binary(vec![0; 100_000].into())).await;
    let mut close = None;
    while let Some(message) = big.next().await {
        if let Ok(Message::Close(frame)) = message {
            close = frame.map(|f| f.code);
        }
    }
    assert_eq!(close, Some(CloseCode::Size));
    // Its place comes back.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..3 {
        open.push(tokio_tungstenite::connect_async(&url).await.expect("a place came back").0);
    }
}

#[test]
fn sigterm_sends_a_live_stream_its_final_and_closes_with_1001() {
    let _serial = one_at_a_time();
    let mut server = HarkServer::start(&["--drain-timeout-s", "20"], &[]);
    block_on(shutdown_during_a_stream(&server));
    let status = server.wait_exit(Duration::from_secs(20)).expect("the server exits");
    assert!(status.success(), "{status}");
}

async fn shutdown_during_a_stream(server: &HarkServer) {
    let url = format!("ws://{}/v1/stream?decoder=greedy", server.addr());
    let (socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let (mut sink, mut source) = socket.split();
    // One digit, with no pause after it: only the stream's end makes it final.
    let (samples, _) = common::takes_with_pauses(&common::four_digits()[..1], 0.0);
    for chunk in common::pcm16(&samples).chunks(3200) {
        sink.send(Message::Binary(chunk.to_vec().into())).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.terminate();
    let (mut finals, mut close) = (Vec::new(), None);
    while let Some(Ok(message)) = tokio::time::timeout(Duration::from_secs(20), source.next()).await.expect("the server answers") {
        match message {
            Message::Text(text) => {
                let result: Value = serde_json::from_str(&text).unwrap();
                if result["type"] == "final" {
                    finals.push(result["text"].as_str().unwrap().to_string());
                }
            }
            Message::Close(frame) => close = frame.map(|f| f.code),
            _ => {}
        }
    }
    assert_eq!(finals.len(), 1, "the final of the audio received: {finals:?}");
    assert_eq!(close, Some(CloseCode::Away));
}
