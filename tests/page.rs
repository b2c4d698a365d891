//! The page at `GET /`, driven in a real browser: Debian's chromium,
//! headless, through the Chrome DevTools protocol, against the real server
//! on 127.0.0.1. Its microphone is chromium's fake capture device playing a
//! WAV of spoken digits.
//!
//! `tests/run.sh` installs chromium when it is missing. With
//! `HARK_UPDATE_SCREENSHOT=1` the test also refreshes the README's
//! screenshot (`crates/server/page/screenshot.png`).

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::HarkServer;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A headless chromium with its own profile, killed on drop.
struct Browser {
    child: Child,
    port: u16,
}

impl Browser {
    /// Starts chromium with its profile in `dir` and `microphone` as the
    /// fake capture device's sound (played once, then silence).
    fn start(dir: &Path, microphone: &Path) -> Self {
        let profile = dir.join("profile");
        std::fs::create_dir_all(&profile).unwrap();
        let child = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--remote-debugging-port=0",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                "--autoplay-policy=no-user-gesture-required",
            ])
            .arg(format!("--use-file-for-fake-audio-capture={}%noloop", microphone.display()))
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium runs (Debian's package `chromium`; tests/run.sh installs it)");
        // Chromium writes the port it chose to the profile.
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            if let Some(port) =
                std::fs::read_to_string(profile.join("DevToolsActivePort")).ok().and_then(|t| t.lines().next()?.parse().ok())
            {
                break port;
            }
            assert!(Instant::now() < deadline, "chromium did not open its DevTools port in 30 s");
            std::thread::sleep(Duration::from_millis(100));
        };
        Self { child, port }
    }

    /// The DevTools connection to its first tab.
    async fn tab(&self) -> Tab {
        let targets: Value = reqwest::get(format!("http://127.0.0.1:{}/json/list", self.port)).await.unwrap().json().await.unwrap();
        let page = targets.as_array().unwrap().iter().find(|t| t["type"] == "page").expect("a tab");
        let (socket, _) = tokio_tungstenite::connect_async(page["webSocketDebuggerUrl"].as_str().unwrap()).await.unwrap();
        Tab { socket, next_id: 0 }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Tab {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Tab {
    /// One DevTools command's result (events in between are skipped).
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.socket.send(Message::Text(json!({"id": id, "method": method, "params": params}).to_string().into())).await.unwrap();
        loop {
            let message =
                tokio::time::timeout(Duration::from_secs(30), self.socket.next()).await.expect("chromium answers").unwrap().unwrap();
            let Message::Text(text) = message else { continue };
            let reply: Value = serde_json::from_str(&text).unwrap();
            if reply["id"] == id {
                assert!(reply.get("error").is_none(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    /// The value of a JavaScript expression (awaited when it is a promise).
    async fn eval(&mut self, expression: &str) -> Value {
        let result = self.call("Runtime.evaluate", json!({"expression": expression, "awaitPromise": true, "returnByValue": true})).await;
        assert!(result.get("exceptionDetails").is_none(), "{expression}: {result}");
        result["result"]["value"].clone()
    }

    /// Waits until an expression is truthy, and returns its value.
    async fn wait_for(&mut self, expression: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.eval(expression).await;
            if !(value.is_null() || value == false || value == "" || value == 0) {
                return value;
            }
            if Instant::now() > deadline {
                let status = self.eval("[...document.querySelectorAll('.status')].map(e => e.textContent).join(' | ')").await;
                panic!("waited {timeout:?} for `{expression}`; the page's status lines: {status}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Loads a page and waits until it has run its script.
    async fn open(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url})).await;
        self.wait_for(
            "document.readyState === 'complete' && document.URL.startsWith('http') && !!document.getElementById('model')",
            Duration::from_secs(20),
        )
        .await;
    }

    /// Picks a file in the page's file input, as a person choosing it would.
    async fn pick_file(&mut self, path: &Path) {
        let document = self.call("DOM.getDocument", json!({})).await;
        let input = self.call("DOM.querySelector", json!({"nodeId": document["root"]["nodeId"], "selector": "#file"})).await;
        self.call("DOM.setFileInputFiles", json!({"nodeId": input["nodeId"], "files": [path.to_str().unwrap()]})).await;
    }

    async fn text_of(&mut self, selector: &str) -> String {
        self.eval(&format!("document.querySelector({selector:?}).textContent.trim()")).await.as_str().unwrap().to_string()
    }
}

/// The server's JSON answer to `/v1/transcribe?{query}`, sent directly.
async fn transcribe(server: &HarkServer, query: &str, key: Option<&str>, body: Vec<u8>) -> Value {
    let mut request = reqwest::Client::new().post(server.url(&format!("/v1/transcribe?{query}"))).body(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap().json().await.unwrap()
}

/// A browser's fake microphone plays in real time: with a second browser
/// and server beside it on a small machine, it drops blocks. One test at a
/// time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(future)
}

/// The correlation of two signals over their common length.
fn correlation(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len().min(b.len());
    let (dot, aa, bb) = a[..n]
        .iter()
        .zip(&b[..n])
        .fold((0.0f64, 0.0f64, 0.0f64), |(d, x, y), (&p, &q)| (d + f64::from(p * q), x + f64::from(p * p), y + f64::from(q * q)));
    dot / (aa * bb).sqrt().max(1e-12)
}

/// How many of the digits said the words shown have, in order (their
/// longest common subsequence).
fn digits_right(shown: &str, said: &[String]) -> usize {
    let shown: Vec<&str> = shown.split_whitespace().collect();
    let mut row = vec![0; said.len() + 1];
    for word in &shown {
        let mut diagonal = 0;
        for (j, digit) in said.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if word == digit { diagonal + 1 } else { above.max(row[j]) };
            diagonal = above;
        }
    }
    row[said.len()]
}

#[test]
fn the_page_transcribes_a_dropped_file_follows_playback_and_transcribes_the_microphone() {
    let _serial = one_at_a_time();
    // The digits model knows single digits: with a 2 s window, uploads are
    // cut at their pauses, a digit a piece, as live streams are.
    let server = HarkServer::start_with_model(&common::shipped_digits_model(), &["--window-s", "2"], &[]);
    let (samples, spans) = common::takes_with_pauses(&common::four_digits(), 1.0);
    let said: Vec<String> = spans.iter().map(|s| s.2.clone()).collect();
    let dir = common::scratch("page-upload-and-live");
    let wav = dir.join("zero-one-two-three.wav");
    std::fs::write(&wav, common::wav_16k(&samples)).unwrap();
    let browser = Browser::start(&dir, &wav);
    block_on(async {
        let mut tab = browser.tab().await;
        tab.call("Emulation.setDeviceMetricsOverride", json!({"width": 820, "height": 1240, "deviceScaleFactor": 1, "mobile": false}))
            .await;
        tab.open(&server.url("/")).await;
        let model = tab
            .wait_for(
                "document.getElementById('model').textContent.startsWith('model ') && document.getElementById('model').textContent",
                Duration::from_secs(20),
            )
            .await;
        assert_eq!(model, "model fsdd-digits");

        // A file picked in the page: the transcript the server gives for it.
        let served = transcribe(&server, "", None, common::wav_16k(&samples)).await;
        tab.pick_file(&wav).await;
        tab.wait_for("document.querySelectorAll('#words .word').length", Duration::from_secs(20)).await;
        let shown: Vec<Value> =
            tab.eval("[...document.querySelectorAll('#words .word')].map(w => w.textContent)").await.as_array().unwrap().clone();
        let shown = shown.iter().map(|w| w.as_str().unwrap()).collect::<Vec<_>>().join(" ");
        assert_eq!(shown, served["text"].as_str().unwrap());
        let spoken: Vec<&str> = served["words"].as_array().unwrap().iter().map(|w| w["word"].as_str().unwrap()).collect();
        assert!(digits_right(&spoken.join(" "), &said) >= 3, "heard '{}' for {said:?}", spoken.join(" "));
        // Written text is shown token by token, each with its time.
        let units = served.get("tokens").unwrap_or(&served["words"]).clone();
        let segments = tab.eval("document.querySelectorAll('#segments tr').length").await;
        assert_eq!(segments.as_u64(), Some(served["segments"].as_array().unwrap().len() as u64));

        // Playback from the first word: the highlight moves word by word,
        // always on the word whose span holds the playing time.
        tab.eval("document.querySelector('#words .word').click()").await;
        let mut highlighted: Vec<u64> = Vec::new();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(samples.len() as u64 / 16_000 + 5) {
            let seen = tab
                .eval(
                    "(() => { const p = document.getElementById('player'); const t = p.currentTime; \
                     const words = [...document.querySelectorAll('#words .word')]; \
                     const i = words.findIndex(w => w.classList.contains('current')); \
                     return {i, t, ended: p.ended, count: document.querySelectorAll('.word.current').length}; })()",
                )
                .await;
            assert!(seen["count"].as_u64().unwrap() <= 1, "{seen}");
            if let Some(i) = seen["i"].as_i64().filter(|&i| i >= 0) {
                let word = &units[i as usize];
                let t = seen["t"].as_f64().unwrap();
                // The frame that drew the highlight may be a frame behind.
                assert!(
                    word["start"].as_f64().unwrap() - 0.1 <= t && t <= word["end"].as_f64().unwrap() + 0.1,
                    "word {word} highlighted at {t} s"
                );
                if highlighted.last() != Some(&(i as u64)) {
                    highlighted.push(i as u64);
                }
            }
            if seen["ended"] == true {
                break;
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        let count = units.as_array().unwrap().len() as u64;
        assert_eq!(highlighted, (0..count).collect::<Vec<_>>(), "the words highlighted in turn while it played");

        // The microphone, live: finals settle in as the digits are said.
        // What the page sends and what the server answers are recorded on
        // the way. (How well a stream is recognized is tests/streaming.rs's
        // business, on exactly aligned audio: here the fake microphone starts
        // wherever it starts, and the digits model is sensitive to that.)
        tab.eval(
            "const send = WebSocket.prototype.send; \
             WebSocket.prototype.send = function (data) { \
               if (data instanceof ArrayBuffer) window.sent.push(...new Int16Array(data)); \
               if (!this.recorded) { this.recorded = true; this.addEventListener('message', (e) => { \
                 const m = JSON.parse(e.data); if (m.type === 'final' && m.text) window.finals.push(m.text); }); } \
               return send.call(this, data); }; true",
        )
        .await;
        // Headless chromium's fake capture device now and then drops blocks
        // on a busy machine, which no page can hear back: a recording whose
        // audio did not arrive whole is taken again, at most twice more.
        let mut correlations = Vec::new();
        loop {
            tab.eval("window.sent = []; window.finals = []; document.getElementById('record').click()").await;
            tab.wait_for("document.getElementById('live-status').textContent.startsWith('Listening')", Duration::from_secs(20)).await;
            tab.wait_for("document.getElementById('finals').textContent.split(' ').length >= 4", Duration::from_secs(30)).await;
            tab.eval("document.getElementById('record').click()").await;
            tab.wait_for("document.getElementById('live-status').textContent === 'Done.'", Duration::from_secs(20)).await;
            // The page shows the server's finals, all of them, in order.
            let live = tab.text_of("#finals").await;
            let finals = tab.eval("window.finals.join(' ')").await;
            assert_eq!(live, finals.as_str().unwrap());
            assert_eq!(live.split_whitespace().count(), said.len(), "one final per digit: '{live}'");
            // What it sent is the microphone's sound at 16 kHz, all of it.
            let sent: Vec<f32> =
                tab.eval("window.sent").await.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32 / 32768.0).collect();
            assert!(sent.len() as f64 >= 0.9 * samples.len() as f64, "{} of {} samples sent", sent.len(), samples.len());
            let at = |lag: usize| correlation(&samples[lag.min(samples.len())..], &sent);
            // The microphone started up to a second before the socket
            // opened: the lag found coarsely, then to the sample.
            let coarse = (0..16_000).step_by(4).max_by(|&a, &b| at(a).total_cmp(&at(b))).unwrap();
            correlations.push((coarse.saturating_sub(3)..coarse + 4).map(at).fold(f64::MIN, f64::max));
            if correlations.last().is_some_and(|&c| c > 0.95) {
                break;
            }
            assert!(correlations.len() < 3, "the sent audio never arrived whole (correlations {correlations:?})");
        }

        // The page as it looks now, for the README.
        let shot = tab.call("Page.captureScreenshot", json!({"format": "png", "captureBeyondViewport": true})).await;
        let png = base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().unwrap()).unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        let path = if std::env::var_os("HARK_UPDATE_SCREENSHOT").is_some() {
            common::repo().join("crates/server/page/screenshot.png")
        } else {
            std::env::temp_dir().join("hark-page.png")
        };
        std::fs::write(&path, png).unwrap();
    });
    drop(browser);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn with_an_api_key_the_page_asks_for_it_and_errors_show_the_servers_message() {
    let _serial = one_at_a_time();
    let server = HarkServer::start_with_model(&common::shipped_digits_model(), &["--api-key", "sesame"], &[]);
    let (samples, _) = common::takes_with_pauses(&common::four_digits()[..1], 0.5);
    let dir = common::scratch("page-api-key");
    let wav = dir.join("zero.wav");
    std::fs::write(&wav, common::wav_16k(&samples)).unwrap();
    let not_audio = dir.join("not-audio.wav");
    std::fs::write(&not_audio, "this is text, not sound").unwrap();
    let browser = Browser::start(&dir, &wav);
    block_on(async {
        let mut tab = browser.tab().await;
        tab.open(&server.url("/")).await;
        // The page itself needs no key; the API does, so the page asks.
        tab.wait_for("!document.getElementById('key-section').hidden", Duration::from_secs(20)).await;
        tab.eval("document.getElementById('key').value = 'sesame'; document.getElementById('key-form').requestSubmit()").await;
        tab.wait_for("document.getElementById('model').textContent === 'model fsdd-digits'", Duration::from_secs(20)).await;

        tab.pick_file(&not_audio).await;
        let error = tab
            .wait_for(
                "document.querySelector('#file-status.error') && document.getElementById('file-status').textContent",
                Duration::from_secs(20),
            )
            .await;
        let direct = transcribe(&server, "", Some("sesame"), b"this is text, not sound".to_vec()).await;
        assert_eq!(error, format!("{} ({})", direct["error"]["message"].as_str().unwrap(), direct["error"]["code"].as_str().unwrap()));

        // Every control has a label; words are buttons (keyboard-reachable);
        // on a phone's width nothing runs off the side.
        assert_eq!(
            tab.eval("[...document.querySelectorAll('input, select')].filter(e => e.labels.length === 0).map(e => e.id)").await,
            json!([])
        );
        tab.call("Emulation.setDeviceMetricsOverride", json!({"width": 360, "height": 740, "deviceScaleFactor": 2, "mobile": true})).await;
        assert_eq!(tab.eval("document.documentElement.scrollWidth <= 360").await, true);
        tab.call("Emulation.clearDeviceMetricsOverride", json!({})).await;

        // Alternatives asked for in the form come as a table of the n best.
        tab.eval("document.getElementById('alternatives').value = '3'").await;
        tab.pick_file(&wav).await;
        tab.wait_for("!document.getElementById('alternatives-block').hidden", Duration::from_secs(20)).await;
        let served = transcribe(&server, "alternatives=3", Some("sesame"), common::wav_16k(&samples)).await;
        let shown = tab.eval("[...document.querySelectorAll('#alternatives-list tr td:last-child')].map(td => td.textContent)").await;
        let want: Vec<&Value> = served["alternatives"].as_array().unwrap().iter().map(|a| &a["text"]).collect();
        assert!(want.len() > 1, "{served}");
        assert_eq!(shown.as_array().unwrap().iter().collect::<Vec<_>>(), want);

        // The live stream carries the key too (as `access_token`).
        tab.eval("document.getElementById('record').click()").await;
        tab.wait_for("document.getElementById('live-status').textContent.startsWith('Listening')", Duration::from_secs(20)).await;
        tab.eval("document.getElementById('record').click()").await;
        tab.wait_for("document.getElementById('live-status').textContent === 'Done.'", Duration::from_secs(20)).await;
    });
    // Without the key a stream is refused before the upgrade.
    let refused = reqwest::blocking::Client::new()
        .get(server.url("/v1/stream?access_token=wrong"))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    drop(browser);
    let _ = std::fs::remove_dir_all(&dir);
}
