//! `hark bench`: how fast, measured the way a user would — one stream
//! through the recognizer, then many clients against the real HTTP server
//! on loopback.

use std::time::{Duration, Instant};

use hyper::Method;

use hark_core::audio::{Waveform, SAMPLE_RATE_HZ};
use hark_core::recognizer::{Decoding, RecognizeError, Recognizer};

use crate::http::Connection;

/// `seconds` of `source`, looped if it is shorter.
pub fn clip(source: &Waveform, seconds: f64) -> Waveform {
    let n = (seconds * f64::from(SAMPLE_RATE_HZ)).round() as usize;
    Waveform::from_samples(source.samples().iter().copied().cycle().take(n).collect())
}

/// A waveform as a 16-bit PCM WAV file, as a client would send it.
pub fn wav_bytes(waveform: &Waveform) -> Vec<u8> {
    let spec = hound::WavSpec { channels: 1, sample_rate: SAMPLE_RATE_HZ, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut cursor = std::io::Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut cursor, spec).expect("writing to memory");
    for &s in waveform.samples() {
        writer.write_sample((s.clamp(-1.0, 1.0) * 32767.0) as i16).expect("writing to memory");
    }
    writer.finalize().expect("writing to memory");
    cursor.into_inner()
}

/// Median real-time factor of `runs` transcriptions of `waveform`, WAV
/// decoding included (time spent over audio duration).
pub fn single_stream_rtf(recognizer: &Recognizer, decoding: &Decoding, waveform: &Waveform, runs: usize) -> Result<f64, RecognizeError> {
    let wav = wav_bytes(waveform);
    let mut rtfs = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        recognizer.transcribe_bytes(&wav, decoding)?;
        rtfs.push(started.elapsed().as_secs_f64() / waveform.duration_s());
    }
    Ok(percentile(&mut rtfs, 0.5).expect("at least one run"))
}

/// What concurrent clients saw.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub wall_s: f64,
    /// Seconds of audio in requests answered 200.
    pub audio_s: f64,
    /// Latencies of the requests answered 200, in seconds.
    pub ok: Vec<f64>,
    /// Latencies of the requests refused with 503.
    pub rejected: Vec<f64>,
    /// Any other outcome (status and message), which a healthy server never gives.
    pub errors: Vec<String>,
}

impl LoadReport {
    /// Seconds of audio transcribed per second.
    pub fn throughput(&self) -> f64 {
        self.audio_s / self.wall_s
    }
}

/// `clients` clients each sending `wav` (`clip_s` seconds of audio) to
/// `url` again and again for `duration`, each on its own connection; every
/// request is counted.
pub async fn load(url: &str, wav: Vec<u8>, clip_s: f64, clients: usize, duration: Duration) -> Result<LoadReport, String> {
    let (authority, path) = crate::http::split_url(url)?;
    let wav = bytes::Bytes::from(wav);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (wav, authority, path) = (wav.clone(), authority.to_string(), path.to_string());
            tokio::spawn(async move {
                let mut report = LoadReport::default();
                let mut connection = None;
                while started.elapsed() < duration {
                    if connection.as_ref().is_some_and(Connection::is_closed) {
                        connection = None;
                    }
                    let sent = Instant::now();
                    let response = match connection.as_mut() {
                        Some(connection) => connection.send(Method::POST, &path, Some("audio/wav"), wav.clone()).await,
                        None => match Connection::open(&authority).await {
                            Ok(opened) => {
                                connection = Some(opened);
                                continue;
                            }
                            Err(e) => Err(e),
                        },
                    };
                    let latency = sent.elapsed().as_secs_f64();
                    match response {
                        Ok((status, _)) if status == 200 => {
                            report.ok.push(latency);
                            report.audio_s += clip_s;
                        }
                        Ok((status, _)) if status == 503 => {
                            report.rejected.push(latency);
                            // As a client honouring Retry-After would, briefly.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Ok((status, body)) => report.errors.push(format!("{status}: {}", String::from_utf8_lossy(&body))),
                        Err(e) => {
                            report.errors.push(e);
                            // A broken connection is opened again.
                            connection = None;
                        }
                    }
                }
                report
            })
        })
        .collect();
    let mut total = LoadReport::default();
    for task in tasks {
        let report = task.await.expect("a load client panicked");
        total.audio_s += report.audio_s;
        total.ok.extend(report.ok);
        total.rejected.extend(report.rejected);
        total.errors.extend(report.errors);
    }
    total.wall_s = started.elapsed().as_secs_f64();
    Ok(total)
}

/// The `p` quantile (0–1) of `values`, nearest rank; None when empty.
pub fn percentile(values: &mut [f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = (p * values.len() as f64).ceil() as usize;
    Some(values[rank.clamp(1, values.len()) - 1])
}

/// This process's peak resident memory in MB (Linux; None elsewhere).
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut v, 0.5), Some(50.0));
        assert_eq!(percentile(&mut v, 0.99), Some(99.0));
        assert_eq!(percentile(&mut v, 1.0), Some(100.0));
        assert_eq!(percentile(&mut [], 0.5), None);
    }

    #[test]
    fn clips_loop_short_audio_to_the_length_asked() {
        let source = Waveform::from_samples(vec![0.5; 16_000]);
        let c = clip(&source, 2.5);
        assert_eq!(c.samples().len(), 40_000);
        let wav = wav_bytes(&c);
        assert_eq!(hark_core::audio::decode(&wav, &Default::default()).unwrap().samples().len(), 40_000);
    }
}
