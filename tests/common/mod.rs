//! Helpers shared by the integration tests: paths to the committed fixtures
//! and the shared data, safetensors reading, and a real `hark serve` process.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The read-only shared data sets, beside the checkout (`../shared/data`).
pub fn shared_data() -> PathBuf {
    let dir = repo().join("../shared/data");
    assert!(
        dir.is_dir(),
        "the shared data sets are expected at {}: the datasets folder beside this repository that the README's 'Test it' describes",
        dir.display()
    );
    dir
}

/// An empty folder of one test's own, in the system's temporary folder.
pub fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hark-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs a tool, which must succeed, and returns its standard output.
pub fn run_tool(program: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program} runs ({e}; Debian's opus-tools and ffmpeg, which tests/run.sh installs)"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Speech as a browser's `MediaRecorder` records it: `codec` (libopus at 48
/// kHz and 32 kb/s, as browsers send; or another, to test refusals) in
/// `format` (webm or ogg), written by Debian's ffmpeg to a pipe as a live
/// recorder writes (a WebM segment of unknown size, no seeking back).
pub fn browser_recording(samples: &[f32], format: &str, codec: &str) -> Vec<u8> {
    let dir = scratch(&format!("recording-{format}-{codec}"));
    let wav = dir.join("speech.wav");
    std::fs::write(&wav, wav_16k(samples)).unwrap();
    #[rustfmt::skip]
    let bytes = run_tool("ffmpeg", &[
        "-hide_banner", "-loglevel", "error", "-i", wav.to_str().unwrap(),
        "-ar", "48000", "-c:a", codec, "-b:a", "32k", "-f", format, "pipe:1",
    ]);
    let _ = std::fs::remove_dir_all(&dir);
    bytes
}

pub fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures").join(name)
}

/// A take of the Free Spoken Digit Dataset, as the file's bytes.
pub fn fsdd(name: &str) -> Vec<u8> {
    std::fs::read(shared_data().join("fsdd/recordings").join(name)).unwrap()
}

/// The value of one sample line of the Prometheus text, e.g.
/// `hark_requests_total{route="/v1/transcribe",status="200"}`.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// The FSDD test takes (real people saying digits), decoded, with their text.
pub fn fsdd_test() -> Vec<(hark_core::audio::Waveform, String)> {
    hark_core::eval::read_manifest(&shared_data().join("fsdd/test.jsonl"))
        .unwrap()
        .into_iter()
        .map(|u| {
            (hark_core::audio::decode(&std::fs::read(&u.audio_path).unwrap(), &hark_core::audio::AudioLimits::default()).unwrap(), u.text)
        })
        .collect()
}

/// 16 kHz mono PCM16 WAV bytes.
pub fn wav_16k(samples: &[f32]) -> Vec<u8> {
    wav(samples, 16_000)
}

/// Mono PCM16 WAV bytes at any rate.
pub fn wav(samples: &[f32], sample_rate_hz: u32) -> Vec<u8> {
    let spec = hound::WavSpec { channels: 1, sample_rate: sample_rate_hz, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut cursor = std::io::Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut cursor, spec).unwrap();
    for &s in samples {
        writer.write_sample((s.clamp(-1.0, 1.0) * 32767.0) as i16).unwrap();
    }
    writer.finalize().unwrap();
    cursor.into_inner()
}

/// Faint noise (about -70 dBFS) added in place: a real room is never
/// digitally silent.
pub fn add_faint_noise(samples: &mut [f32]) {
    let mut seed = 7u32;
    for s in samples {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        *s += 0.001 * ((seed >> 9) as f32 / (1 << 23) as f32 - 0.5);
    }
}

pub fn test_audio(name: &str) -> PathBuf {
    repo().join("tests/data").join(name)
}

/// The committed FLAC (about a second) with a STREAMINFO header that
/// claims it lasts `seconds`.
pub fn flac_claiming(seconds: u64) -> Vec<u8> {
    let mut flac = std::fs::read(test_audio("formats/7_jackson_1.flac")).unwrap();
    // STREAMINFO follows the magic and its block header; 10 bytes in come
    // 20 bits of sample rate, 8 of channels and depth, 36 of sample count.
    let field = u64::from_be_bytes(flac[18..26].try_into().unwrap());
    let rate = (field >> 44) & 0xF_FFFF;
    flac[18..26].copy_from_slice(&((field & !0xF_FFFF_FFFF) | (seconds * rate)).to_be_bytes());
    flac
}

/// All tensors of a safetensors file, as f32 with their shapes.
pub fn read_tensors(path: &std::path::Path) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let tensors = candle_core::safetensors::load(path, &candle_core::Device::Cpu).expect("readable safetensors");
    tensors
        .into_iter()
        .map(|(name, t)| {
            let shape = t.dims().to_vec();
            let data = t.to_dtype(candle_core::DType::F32).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            (name, (shape, data))
        })
        .collect()
}

/// A `hark serve` process on an ephemeral loopback port, killed on drop.
/// Its log lines (stderr) are kept for the test and echoed to the test's
/// own stderr, which the harness shows when a test fails.
pub struct HarkServer {
    child: Child,
    pub base_url: String,
    /// `host:port` of the gRPC API.
    pub grpc_addr: String,
    logs: Arc<Mutex<Vec<String>>>,
}

impl HarkServer {
    /// Starts the real binary on the FSDD digits fixture model (so the
    /// tests keep their meaning when the default model changes) with extra
    /// arguments and environment, and waits until `/readyz` says it is loaded.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_with_model(&fixture("fsdd-digits"), args, env)
    }

    /// The same with another model directory.
    pub fn start_with_model(model: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hark"));
        command.arg("serve").arg("--addr").arg("127.0.0.1:0").arg("--grpc-addr").arg("127.0.0.1:0").arg("--model").arg(model).args(args);
        command.env_remove("HARK_API_KEY").env_remove("HARK_MODEL").env_remove("HARK_LOG_FORMAT").env("HARK_LOG", "warn");
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("hark starts");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (stderr, kept) = (child.stderr.take().unwrap(), logs.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
                kept.lock().unwrap().push(line);
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut last_word = || {
            let mut line = String::new();
            stdout.read_line(&mut line).expect("hark prints its addresses");
            line.trim().rsplit(' ').next().expect("address").to_string()
        };
        let (base_url, grpc_addr) = (last_word(), last_word());
        assert!(base_url.starts_with("http://127.0.0.1:"), "unexpected first line, ending {base_url}");
        assert!(grpc_addr.starts_with("127.0.0.1:"), "unexpected second line, ending {grpc_addr}");
        let server = Self { child, base_url, grpc_addr, logs };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = reqwest::blocking::Client::new();
        while Instant::now() < deadline {
            if let Ok(r) = client.get(format!("{}/readyz", self.base_url)).send() {
                if r.status() == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("hark did not become ready in 30 s");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// `host:port` of the server.
    pub fn addr(&self) -> String {
        self.base_url.trim_start_matches("http://").to_string()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server process's peak resident memory so far, in MB.
    pub fn peak_rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("the server is running");
        let kb: f64 =
            status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap();
        kb / 1024.0
    }

    /// The log lines written so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Waits up to `timeout` for a log line containing `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(line) = self.logs().into_iter().find(|l| l.contains(needle)) {
                return Some(line);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// Sends SIGTERM, as `docker stop` and Kubernetes do.
    pub fn terminate(&self) {
        let status = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().expect("kill runs");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("the process can be waited for") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for HarkServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Takes one after another, with `pause_s` of faint noise before each and
/// after the last: the samples, and each take's span in seconds with its text.
pub fn takes_with_pauses(takes: &[(hark_core::audio::Waveform, String)], pause_s: f64) -> (Vec<f32>, Vec<(f64, f64, String)>) {
    let (pause, mut samples, mut spans) = ((pause_s * 16_000.0) as usize, Vec::new(), Vec::new());
    for (take, text) in takes {
        samples.resize(samples.len() + pause, 0.0);
        let start = samples.len() as f64 / 16_000.0;
        samples.extend_from_slice(take.samples());
        spans.push((start, samples.len() as f64 / 16_000.0, text.clone()));
    }
    samples.resize(samples.len() + pause, 0.0);
    add_faint_noise(&mut samples);
    (samples, spans)
}

/// Little-endian PCM16, as live streams carry audio.
pub fn pcm16(samples: &[f32]) -> Vec<u8> {
    samples.iter().flat_map(|s| ((s.clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes()).collect()
}

/// The shipped digits model, trained with pauses padded around its takes:
/// streams hear digits with pauses around them, unlike the fixture's model
/// (trained on takes trimmed to the speech), which the tests of whole takes use.
pub fn shipped_digits_model() -> PathBuf {
    repo().join("models/fsdd-digits")
}

/// Four FSDD test takes of at least half a second, each a different digit.
pub fn four_digits() -> Vec<(hark_core::audio::Waveform, String)> {
    let mut chosen: Vec<(hark_core::audio::Waveform, String)> = Vec::new();
    for (take, text) in fsdd_test() {
        if take.duration_s() >= 0.5 && chosen.len() < 4 && !chosen.iter().any(|(_, t)| *t == text) {
            chosen.push((take, text));
        }
    }
    chosen
}
