//! Helpers shared by the integration tests: paths to the committed fixtures
//! and the shared data, safetensors reading, and a real `hark serve` process.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The read-only shared data sets, beside the checkout (`../shared/data`).
pub fn shared_data() -> PathBuf {
    let dir = repo().join("../shared/data");
    assert!(dir.is_dir(), "the shared data sets are expected at {}", dir.display());
    dir
}

pub fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures").join(name)
}

pub fn test_audio(name: &str) -> PathBuf {
    repo().join("tests/data").join(name)
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
pub struct HarkServer {
    child: Child,
    pub base_url: String,
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
        command.arg("serve").arg("--addr").arg("127.0.0.1:0").arg("--model").arg(model).args(args);
        command.env_remove("HARK_API_KEY").env_remove("HARK_MODEL").env("HARK_LOG", "warn");
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.stdout(Stdio::piped()).spawn().expect("hark starts");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("hark prints its address");
        let base_url = line.trim().rsplit(' ').next().expect("address").to_string();
        assert!(base_url.starts_with("http://127.0.0.1:"), "unexpected first line: {line}");
        let server = Self { child, base_url };
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
}

impl Drop for HarkServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
