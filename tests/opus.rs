//! Opus as people send it: voice notes (Ogg Opus from opusenc) and browser
//! recordings (WebM/Opus, written as MediaRecorder does, with a segment of
//! unknown length; fragmented MP4), Opus in MP4 and CAF files, at several bit rates, rates and channel counts; files
//! made here by Debian's `opus-tools` and `ffmpeg` (`tests/run.sh` installs
//! them) from an FSDD take, and broken ones.

mod common;

use std::path::{Path, PathBuf};

use common::{run_tool as run, HarkServer};
use hark_core::audio::{decode, AudioError, AudioLimits, Waveform};
use reqwest::blocking::Client;
use serde_json::Value;

/// A take of a four, said by one of FSDD's test speakers (8 kHz).
const TAKE: &str = "4_theo_1.wav";

/// A folder of this test's own, with the take in it.
fn scratch(test: &str) -> PathBuf {
    let dir = common::scratch(&format!("opus-{test}"));
    std::fs::write(dir.join(TAKE), common::fsdd(TAKE)).unwrap();
    dir
}

/// The take encoded by ffmpeg's libopus with `options` (rate, channels,
/// bit rate, framing) into `format`: ogg, webm and fragmented MP4 (`fmp4`,
/// as Chrome's MediaRecorder writes `audio/mp4;codecs=opus`) written to a
/// pipe as a live recorder writes them (no seeking back to fill in sizes);
/// mp4 and caf as files.
fn ffmpeg_opus(dir: &Path, format: &str, options: &[&str]) -> Vec<u8> {
    let input = dir.join(TAKE);
    let mut args = vec!["-hide_banner", "-loglevel", "error", "-i", input.to_str().unwrap(), "-c:a", "libopus"];
    args.extend_from_slice(options);
    let file = dir.join(format!("encoded.{format}"));
    match format {
        "ogg" | "webm" => args.extend_from_slice(&["-f", format, "pipe:1"]),
        "fmp4" => args.extend_from_slice(&["-movflags", "frag_keyframe+empty_moov", "-f", "mp4", "pipe:1"]),
        _ => args.extend_from_slice(&["-y", "-f", format, file.to_str().unwrap()]),
    }
    let piped = run("ffmpeg", &args);
    if piped.is_empty() {
        std::fs::read(&file).unwrap()
    } else {
        piped
    }
}

/// What libopus (through ffmpeg) decodes from Opus bytes, as a 16 kHz WAV.
fn libopus_wav(dir: &Path, bytes: &[u8]) -> Vec<u8> {
    let path = dir.join("encoded");
    std::fs::write(&path, bytes).unwrap();
    #[rustfmt::skip]
    let args = [
        "-hide_banner", "-loglevel", "error", "-c:a", "libopus", "-i", path.to_str().unwrap(),
        "-ar", "16000", "-ac", "1", "-c:a", "pcm_s16le", "-f", "wav", "pipe:1",
    ];
    run("ffmpeg", &args)
}

/// The take encoded by opusenc, as a voice-note app would, and what
/// libopus (opusdec) decodes from it at 16 kHz.
fn opusenc(dir: &Path, kbps: u32) -> (Vec<u8>, Waveform) {
    let (input, encoded, decoded) = (dir.join(TAKE), dir.join("note.opus"), dir.join("note.wav"));
    let bitrate = kbps.to_string();
    run("opusenc", &["--quiet", "--bitrate", &bitrate, input.to_str().unwrap(), encoded.to_str().unwrap()]);
    run("opusdec", &["--quiet", "--no-dither", "--rate", "16000", encoded.to_str().unwrap(), decoded.to_str().unwrap()]);
    let reference = decode(&std::fs::read(&decoded).unwrap(), &AudioLimits::default()).unwrap();
    (std::fs::read(&encoded).unwrap(), reference)
}

fn transcribe(client: &Client, server: &HarkServer, body: Vec<u8>) -> (u16, Value) {
    let response = client.post(server.url("/v1/transcribe")).body(body).send().unwrap();
    (response.status().as_u16(), response.json().unwrap())
}

/// Ogg pages: where each starts, and how long it is.
fn ogg_pages(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut pages = Vec::new();
    let mut at = 0;
    while at + 27 <= bytes.len() && &bytes[at..at + 4] == b"OggS" {
        let segments = usize::from(bytes[at + 26]);
        let body: usize = bytes[at + 27..at + 27 + segments].iter().map(|&b| usize::from(b)).sum();
        let end = at + 27 + segments + body;
        pages.push(at..end);
        at = end;
    }
    pages
}

#[test]
fn opus_in_any_container_at_any_rate_rate_and_channel_count_is_heard() {
    let dir = scratch("matrix");
    let server = HarkServer::start(&[], &[]);
    let client = Client::new();
    let want = decode(&common::fsdd(TAKE), &AudioLimits::default()).unwrap();
    // Each container, bit rate, input rate and channel count at least once.
    for (format, rate, channels, kbps) in [
        ("ogg", 8_000, 1, 6),
        ("ogg", 16_000, 1, 24),
        ("ogg", 24_000, 2, 32),
        ("ogg", 48_000, 2, 64),
        ("webm", 48_000, 1, 24),
        ("webm", 16_000, 2, 6),
        ("webm", 8_000, 1, 64),
        ("webm", 24_000, 1, 12),
        ("mp4", 48_000, 2, 24),
        ("mp4", 16_000, 1, 12),
        ("fmp4", 48_000, 1, 32),
        ("caf", 48_000, 1, 32),
        ("caf", 8_000, 2, 16),
    ] {
        let case = format!("{format}, {rate} Hz in, {channels} channel(s), {kbps} kb/s");
        let (rate_hz, channel_count, bitrate) = (rate.to_string(), channels.to_string(), format!("{kbps}k"));
        let bytes = ffmpeg_opus(&dir, format, &["-ar", &rate_hz, "-ac", &channel_count, "-b:a", &bitrate]);
        let got = decode(&bytes, &AudioLimits::default()).unwrap_or_else(|e| panic!("{case}: {e}"));
        // The length libopus decodes (through ffmpeg), within a frame: the
        // take's, Opus's pre-skip dropped, where the container records the
        // pre-skip; ffmpeg's CAF writer records none, so there both keep it.
        let libopus = libopus_wav(&dir, &bytes);
        let libopus_s = decode(&libopus, &AudioLimits::default()).unwrap().duration_s();
        assert!((got.duration_s() - libopus_s).abs() < 0.025, "{case}: {} s, libopus {libopus_s} s", got.duration_s());
        if format != "caf" {
            assert!(
                (got.duration_s() - want.duration_s()).abs() < 0.025,
                "{case}: {} s, the WAV {} s",
                got.duration_s(),
                want.duration_s()
            );
        }
        let (status, json) = transcribe(&client, &server, bytes.clone());
        assert_eq!(status, 200, "{case}: {json}");
        // What the model hears is what libopus decodes; at 12 kb/s and up
        // that is the four that was said.
        let (_, reference) = transcribe(&client, &server, libopus);
        assert_eq!(json["text"], reference["text"], "{case}: {json} against libopus's {reference}");
        if kbps >= 12 {
            assert_eq!(json["text"], "four", "{case}: {json}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_voice_note_decodes_as_libopus_decodes_it() {
    let dir = scratch("libopus");
    for kbps in [6, 24, 64] {
        let (bytes, reference) = opusenc(&dir, kbps);
        let got = decode(&bytes, &AudioLimits::default()).unwrap();
        assert_eq!(got.samples().len(), reference.samples().len(), "{kbps} kb/s: the same length as opusdec's");
        // The same decoder algorithm, so nearly the same samples: up to
        // rounding (opusdec writes 16-bit PCM), the placement of the
        // pre-skip, which opusdec rounds differently at 16 kHz (a sample at
        // most), and CELT's synthesis at 16 kHz (measured: 42 dB at 6 kb/s,
        // all SILK; 25 dB at 24 kb/s; 56 dB at 64 kb/s; a decoder that got a frame wrong would
        // be near 0 dB).
        let snr_at = |got_lag: usize, reference_lag: usize| {
            let (a, b) = (&got.samples()[got_lag..], &reference.samples()[reference_lag..]);
            let (signal, noise) =
                a.iter().zip(b).fold((0.0f64, 0.0f64), |(s, n), (x, y)| (s + f64::from(*y).powi(2), n + f64::from(x - y).powi(2)));
            10.0 * (signal / noise.max(1e-20)).log10()
        };
        let snr_db = snr_at(0, 0).max(snr_at(1, 0)).max(snr_at(0, 1));
        eprintln!("{kbps} kb/s: {snr_db:.1} dB");
        assert!(snr_db > 20.0, "{kbps} kb/s: {snr_db:.1} dB from opusdec's output");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn broken_and_odd_opus_files_get_exact_answers() {
    let dir = scratch("broken");
    let server = HarkServer::start(&[], &[]);
    let client = Client::new();
    // A page per packet (20 ms), as a live recorder flushes them.
    let ogg = ffmpeg_opus(&dir, "ogg", &["-ar", "16000", "-b:a", "24k", "-page_duration", "20000"]);
    let pages = ogg_pages(&ogg);
    assert!(pages.len() >= 4, "headers and audio pages: {pages:?}");

    // One packet: 20 ms of audio is still audio.
    let one_packet = ffmpeg_opus(&dir, "ogg", &["-t", "0.02", "-ar", "16000", "-frame_duration", "20"]);
    let (status, json) = transcribe(&client, &server, one_packet);
    assert_eq!(status, 200, "{json}");
    assert!(json["duration"].as_f64().unwrap() <= 0.03, "{json}");

    // An audio page lost on the way: the rest still decodes.
    let mut missing = ogg[..pages[2].start].to_vec();
    missing.extend_from_slice(&ogg[pages[3].start..]);
    let (status, json) = transcribe(&client, &server, missing);
    assert_eq!(status, 200, "{json}");

    // Cut short in the audio: what was decoded is transcribed.
    let cut = ogg[..pages[pages.len() - 1].start + 10].to_vec();
    let (status, json) = transcribe(&client, &server, cut);
    assert_eq!((status, json["text"].as_str()), (200, Some("four")), "{json}");

    // Cut inside the headers: nothing to decode.
    let (status, json) = transcribe(&client, &server, ogg[..pages[0].end + 5].to_vec());
    assert_eq!(status, 400, "{json}");
    assert_eq!(json["error"]["code"], "malformed_audio", "{json}");

    // A packet whose framing is broken (a code-3 packet claiming no frames).
    let mut corrupt = ogg.clone();
    let page = pages[2].clone();
    let segments = usize::from(corrupt[page.start + 26]);
    let first_packet = page.start + 27 + segments;
    corrupt[first_packet] |= 0b11;
    corrupt[first_packet + 1] = 0;
    // The page's checksum is not recomputed: the demuxer may drop the page
    // as damaged (200, the rest decodes) or hand the packet on (400).
    let (status, json) = transcribe(&client, &server, corrupt);
    assert!(status == 200 || (status == 400 && json["error"]["code"] == "malformed_audio"), "{status}: {json}");

    // The server keeps serving.
    let (status, _) = transcribe(&client, &server, ogg);
    assert_eq!(status, 200);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn surround_opus_is_refused_by_name() {
    let dir = scratch("surround");
    let six = ffmpeg_opus(&dir, "ogg", &["-ac", "6", "-mapping_family", "1"]);
    match decode(&six, &AudioLimits::default()) {
        Err(e @ AudioError::UnsupportedCodec { .. }) => assert!(e.to_string().contains("6 channels"), "{e}"),
        other => panic!("six-channel Opus: {other:?}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}
