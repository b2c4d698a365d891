//! Running hark as an operator does: SIGTERM with requests in flight, the
//! drain timeout, request IDs in responses and JSON logs, the connection
//! limit, the start-up summary and `hark healthcheck`. The real `hark serve`
//! on 127.0.0.1 with the FSDD digits fixture model and real recordings.

mod common;

use std::io::{Cursor, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::HarkServer;
use reqwest::blocking::Client;
use serde_json::Value;

/// `seconds` of one FSDD take repeated, as a 16-bit 8 kHz WAV: long enough
/// that a few requests keep the server busy for a while.
fn long_wav(seconds: f64) -> Vec<u8> {
    let mut reader = hound::WavReader::new(Cursor::new(common::fsdd("4_jackson_0.wav"))).unwrap();
    let spec = reader.spec();
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let total = (seconds * f64::from(spec.sample_rate)) as usize;
    let mut cursor = Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut cursor, spec).unwrap();
    for &s in samples.iter().cycle().take(total) {
        writer.write_sample(s).unwrap();
    }
    writer.finalize().unwrap();
    cursor.into_inner()
}

fn transcribe(server: &HarkServer, body: Vec<u8>) -> Result<(u16, Value), reqwest::Error> {
    let response = Client::builder().timeout(Duration::from_secs(60)).build()?.post(server.url("/v1/transcribe")).body(body).send()?;
    let status = response.status().as_u16();
    Ok((status, response.json()?))
}

fn metric(server: &HarkServer, name: &str) -> f64 {
    let text = Client::new().get(server.url("/metrics")).send().unwrap().text().unwrap();
    common::metric(&text, name).unwrap()
}

/// The JSON log lines whose message contains `needle`.
fn json_logs(server: &HarkServer, needle: &str) -> Vec<Value> {
    server
        .logs()
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|log| log["message"].as_str().is_some_and(|m| m.contains(needle)))
        .collect()
}

/// Starts `clients` concurrent requests of `body`, waits until the server
/// has all of them in flight, sends SIGTERM, and returns what each got.
fn terminate_under_load(server: &HarkServer, clients: usize, body: &[u8]) -> Vec<Result<(u16, Value), reqwest::Error>> {
    std::thread::scope(|s| {
        let requests: Vec<_> = (0..clients).map(|_| s.spawn(|| transcribe(server, body.to_vec()))).collect();
        // The /metrics request counts itself among those in flight.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while metric(server, "hark_requests_in_flight") < (clients + 1) as f64 {
            assert!(std::time::Instant::now() < deadline, "the requests never all arrived");
            std::thread::sleep(Duration::from_millis(5));
        }
        server.terminate();
        requests.into_iter().map(|r| r.join().unwrap()).collect()
    })
}

#[test]
fn sigterm_finishes_the_requests_in_flight_refuses_new_ones_and_exits_0() {
    // One chunk per batch, so six two-minute files take a while to drain.
    let args = ["--max-batch", "1", "--max-queue-s", "2000", "--log-format", "json"];
    let mut server = HarkServer::start(&args, &[("HARK_LOG", "info")]);
    let audio = long_wav(120.0);
    let (status, alone) = transcribe(&server, audio.clone()).unwrap();
    assert_eq!(status, 200, "{alone}");

    let addr = server.addr();
    let results = std::thread::scope(|s| {
        let load = s.spawn(|| terminate_under_load(&server, 6, &audio));
        let draining = server.wait_for_log("shutting down", Duration::from_secs(30)).expect("the shutdown is logged");
        // Draining: requests still running, and no new connection accepted.
        let log: Value = serde_json::from_str(&draining).unwrap();
        assert!(log["in_flight"].as_u64().is_some_and(|n| n >= 1), "nothing was in flight at SIGTERM: {log}");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(&addr).is_ok() {
            assert!(std::time::Instant::now() < deadline, "still accepting connections 5 s after SIGTERM");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!load.is_finished(), "the requests were done before the listener closed: nothing was drained");
        load.join().unwrap()
    });
    for result in &results {
        let (status, body) = result.as_ref().expect("no request is lost");
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body["text"], alone["text"]);
    }
    let exit = server.wait_exit(Duration::from_secs(30)).expect("hark exits after draining");
    assert_eq!(exit.code(), Some(0), "{exit:?}");
}

#[test]
fn the_drain_timeout_bounds_how_long_shutdown_waits() {
    // Sixteen two-minute files queued one chunk at a time take seconds;
    // a 0.2 s drain must not wait for them.
    let args = ["--max-batch", "1", "--max-queue-s", "4000", "--drain-timeout-s", "0.2", "--log-format", "json"];
    let mut server = HarkServer::start(&args, &[("HARK_LOG", "info")]);
    let results = terminate_under_load(&server, 16, &long_wav(120.0));
    let exit = server.wait_exit(Duration::from_secs(30)).expect("hark exits");
    assert_eq!(exit.code(), Some(0), "{exit:?}");
    let warning = json_logs(&server, "drain timeout");
    assert_eq!(warning.len(), 1, "{:?}", server.logs());
    assert!(warning[0]["unfinished"].as_u64().is_some_and(|n| n >= 1), "{}", warning[0]);
    assert!(results.iter().any(Result::is_err), "every request finished: the drain timeout was never tested");
}

#[test]
fn request_ids_come_back_and_tag_the_log_lines() {
    let server = HarkServer::start(&["--log-format", "json"], &[("HARK_LOG", "info")]);
    let take = common::fsdd("7_jackson_0.wav");
    let client = Client::new();
    let send = |id: Option<&str>| {
        let mut request = client.post(server.url("/v1/transcribe")).body(take.clone());
        if let Some(id) = id {
            request = request.header("x-request-id", id);
        }
        let response = request.send().unwrap();
        assert_eq!(response.status(), 200);
        response.headers()["x-request-id"].to_str().unwrap().to_string()
    };
    assert_eq!(send(Some("caller-42")), "caller-42");
    let (made, other) = (send(None), send(None));
    assert!(made.len() == 32 && made.bytes().all(|b| b.is_ascii_hexdigit()), "{made}");
    assert_ne!(made, other);
    // Not a loggable ID (a space, or too long): replaced by a new one.
    for unusable in ["two words", &"x".repeat(200)] {
        let id = send(Some(unusable));
        assert!(id.len() == 32 && id != unusable, "{id}");
    }
    // Errors carry the ID too.
    let response = client.post(server.url("/v1/transcribe")).header("x-request-id", "bad-1").body("not audio").send().unwrap();
    assert_eq!((response.status().as_u16(), response.headers()["x-request-id"].to_str().unwrap()), (415, "bad-1"));

    server.wait_for_log("bad-1", Duration::from_secs(5)).expect("the failed request is logged");
    let answered = json_logs(&server, "answered");
    let line = |id: &str| answered.iter().find(|log| log["span"]["request_id"] == id).unwrap_or_else(|| panic!("no log line for {id}"));
    let log = line("caller-42");
    assert_eq!((log["status"].as_u64(), log["span"]["route"].as_str()), (Some(200), Some("/v1/transcribe")), "{log}");
    assert!(log["ms"].as_u64().is_some(), "{log}");
    assert_eq!(line(&made)["status"], 200);
    assert_eq!(line("bad-1")["status"], 415);
}

#[test]
fn text_logs_into_a_file_or_pipe_carry_no_colour_codes() {
    let server = HarkServer::start(&[], &[("HARK_LOG", "info")]);
    assert_eq!(Client::new().post(server.url("/v1/transcribe")).body(common::fsdd("7_jackson_0.wav")).send().unwrap().status(), 200);
    server.wait_for_log("answered", Duration::from_secs(5)).expect("the request is logged");
    let logs = server.logs();
    assert!(logs.iter().any(|l| l.contains(" INFO ")), "{logs:?}");
    assert!(logs.iter().all(|l| !l.contains('\x1b')), "ANSI escapes in: {logs:?}");
}

#[test]
fn start_up_logs_one_line_with_the_configuration_and_the_model() {
    let server = HarkServer::start(&["--log-format", "json", "--max-batch", "7"], &[("HARK_LOG", "info")]);
    let ready = json_logs(&server, "ready:");
    assert_eq!(ready.len(), 1, "{:?}", server.logs());
    let (log, message) = (&ready[0], ready[0]["message"].as_str().unwrap());
    assert_eq!(log["model"], "fsdd-digits");
    assert!(log["parameters"].as_u64().is_some_and(|n| n > 100_000), "{log}");
    assert!(log["load_ms"].as_u64().is_some(), "{log}");
    for part in [
        "fsdd-digits",
        "M parameters",
        "loaded in",
        "max batch 7",
        "request timeout 120 s",
        "drain 25 s",
        "max connections 1024",
        "API key off",
    ] {
        assert!(message.contains(part), "'{part}' missing from: {message}");
    }
}

#[test]
fn connections_over_the_limit_wait_until_one_closes() {
    let server = HarkServer::start(&["--max-connections", "2"], &[]);
    let quick = Client::builder().timeout(Duration::from_millis(1500)).pool_max_idle_per_host(0).build().unwrap();
    let healthz = || quick.get(server.url("/healthz")).send();
    // Two idle connections take both places.
    let first = TcpStream::connect(server.addr()).unwrap();
    let mut second = TcpStream::connect(server.addr()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(healthz().is_err(), "a third connection was served");
    // Both held connections still work; closing one lets the next in.
    second.write_all(b"GET /healthz HTTP/1.1\r\nHost: hark\r\nConnection: close\r\n\r\n").unwrap();
    let mut reply = String::new();
    second.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    drop(second);
    assert_eq!(healthz().expect("served once a place is free").status(), 200);
    drop(first);
}

#[test]
fn healthcheck_reports_liveness_and_readiness_by_exit_code() {
    let server = HarkServer::start(&[], &[]);
    let check = |addr: &str, extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_hark")).arg("healthcheck").arg("--addr").arg(addr).args(extra).output().unwrap()
    };
    let port = server.addr().rsplit(':').next().unwrap().to_string();
    // As the container runs it: HARK_ADDR says 0.0.0.0, the check goes to loopback.
    for extra in [&[][..], &["--ready"]] {
        let out = check(&format!("0.0.0.0:{port}"), extra);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let out = check(&closed, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("healthz"), "{}", String::from_utf8_lossy(&out.stderr));
}
