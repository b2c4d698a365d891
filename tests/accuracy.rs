//! The English model's accuracy through the real server, with its default
//! decoder: real read speech (ljspeech-dev), real digits (FSDD test) and
//! strings of 3–7 digits made from FSDD test takes
//! (`tests/data/digit-strings.jsonl`, from `training/digit_strings.py`).
//! Each bound is the shipped model's own measurement plus a point of slack,
//! or the target where that is lower, so a worse model fails here; the
//! model card holds the same numbers.

mod common;

use common::{repo, shared_data, wav, HarkServer};
use hark_core::eval::Scored;
use reqwest::blocking::Client;
use serde_json::Value;

/// The English model, the built-in default: its directory, with its
/// decoder.json and LM (the same files the binary embeds).
fn english_model() -> std::path::PathBuf {
    repo().join("models/hark-en")
}

/// WER in percent of `(audio bytes, reference)` pairs sent to
/// /v1/transcribe, on the spoken words.
fn wer(server: &HarkServer, set: &str, audio: impl IntoIterator<Item = (Vec<u8>, String)>) -> f64 {
    let client = Client::new();
    let (mut wrong, mut words) = (0, 0);
    for (body, reference) in audio {
        let response = client.post(server.url("/v1/transcribe?text_format=spoken")).body(body).send().unwrap();
        assert_eq!(response.status(), 200);
        let json: Value = response.json().unwrap();
        let scored = Scored::new(set.into(), reference, json["text"].as_str().unwrap().to_string(), &[]);
        wrong += scored.word_errors;
        words += scored.words;
    }
    let wer = 100.0 * wrong as f64 / words as f64;
    eprintln!("{set}: WER {wer:.2} % over {words} words");
    wer
}

fn manifest(path: &std::path::Path) -> Vec<(Vec<u8>, String)> {
    hark_core::eval::read_manifest(path).unwrap().into_iter().map(|u| (std::fs::read(&u.audio_path).unwrap(), u.text)).collect()
}

/// A digit string of the recipe: its FSDD takes (8 kHz) with silence
/// between them, as one 8 kHz WAV.
fn digit_string(recipe: &Value) -> (Vec<u8>, String) {
    let fsdd = shared_data().join("fsdd");
    let mut samples: Vec<f32> = Vec::new();
    let takes = recipe["takes"].as_array().unwrap();
    for (k, take) in takes.iter().enumerate() {
        let mut reader = hound::WavReader::open(fsdd.join(take.as_str().unwrap())).unwrap();
        assert_eq!(reader.spec().sample_rate, 8000);
        if k > 0 {
            let pause_s = recipe["pauses_s"][k - 1].as_f64().unwrap();
            samples.resize(samples.len() + (pause_s * 8000.0) as usize, 0.0);
        }
        samples.extend(reader.samples::<i16>().map(|s| f32::from(s.unwrap()) / 32767.0));
    }
    (wav(&samples, 8000), recipe["text"].as_str().unwrap().to_string())
}

#[test]
#[ignore = "slow tier: tests/run.sh --slow"]
fn english_model_wer_on_real_speech_stays_at_its_measured_level() {
    let server = HarkServer::start_with_model(&english_model(), &[], &[]);
    let ljspeech = wer(&server, "ljspeech-dev", manifest(&shared_data().join("ljspeech-dev/dev.jsonl")));
    let fsdd = wer(&server, "FSDD test", manifest(&shared_data().join("fsdd/test.jsonl")));
    let recipes = std::fs::read_to_string(repo().join("tests/data/digit-strings.jsonl")).unwrap();
    let strings = wer(&server, "digit strings", recipes.lines().map(|l| digit_string(&serde_json::from_str(l).unwrap())));
    for (set, wer, (measured, target)) in
        [("ljspeech-dev", ljspeech, LJSPEECH_DEV_WER), ("FSDD test", fsdd, FSDD_TEST_WER), ("digit strings", strings, DIGIT_STRINGS_WER)]
    {
        let bound = (measured + 1.0).min(target);
        assert!(wer <= bound, "{set} WER {wer:.2} %, above {bound:.2} % (measured {measured} %, target {target} %)");
    }
}

/// ljspeech-dev as people send speech: Opus at 24 kb/s, in WebM as a
/// browser records it (ffmpeg's libopus, to a pipe) and in Ogg as a voice
/// note (opusenc): neither may cost the model a point against the WAV
/// originals. The voice notes decoded by libopus (opusdec) hold hark's own
/// Opus decoder to the reference: it must not cost a point of its own.
#[test]
#[ignore = "slow tier: tests/run.sh --slow"]
fn english_model_hears_opus_as_it_hears_the_originals() {
    let server = HarkServer::start_with_model(&english_model(), &[], &[]);
    let dir = common::scratch("accuracy-opus");
    let originals = hark_core::eval::read_manifest(&shared_data().join("ljspeech-dev/dev.jsonl")).unwrap();
    let (mut wav_set, mut webm, mut ogg, mut opusdec) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, utterance) in originals.iter().enumerate() {
        let source = utterance.audio_path.to_str().unwrap();
        let (note, decoded) = (dir.join(format!("{i}.opus")), dir.join(format!("{i}.wav")));
        #[rustfmt::skip]
        let browser = common::run_tool("ffmpeg", &[
            "-hide_banner", "-loglevel", "error", "-i", source, "-c:a", "libopus", "-b:a", "24k", "-f", "webm", "pipe:1",
        ]);
        common::run_tool("opusenc", &["--quiet", "--bitrate", "24", source, note.to_str().unwrap()]);
        common::run_tool("opusdec", &["--quiet", "--rate", "16000", note.to_str().unwrap(), decoded.to_str().unwrap()]);
        let text = utterance.text.clone();
        wav_set.push((std::fs::read(&utterance.audio_path).unwrap(), text.clone()));
        webm.push((browser, text.clone()));
        ogg.push((std::fs::read(&note).unwrap(), text.clone()));
        opusdec.push((std::fs::read(&decoded).unwrap(), text));
    }
    let _ = std::fs::remove_dir_all(&dir);
    let wav_wer = wer(&server, "ljspeech-dev WAV", wav_set);
    let webm_wer = wer(&server, "ljspeech-dev WebM/Opus 24 kb/s", webm);
    let ogg_wer = wer(&server, "ljspeech-dev Ogg/Opus 24 kb/s (opusenc)", ogg);
    let opusdec_wer = wer(&server, "the same, decoded by libopus (opusdec)", opusdec);
    assert!(webm_wer <= wav_wer + 1.0, "WebM {webm_wer:.2} % against WAV {wav_wer:.2} %");
    assert!(ogg_wer <= wav_wer + 1.0, "Ogg {ogg_wer:.2} % against WAV {wav_wer:.2} %");
    assert!(ogg_wer <= opusdec_wer + 1.0, "Ogg {ogg_wer:.2} % against libopus's decoding {opusdec_wer:.2} %");
}

/// The best measurements of a shipped hark-en through this test (its card
/// has them) and the targets, in percent: lower the measurements as the
/// model improves, never raise them.
const LJSPEECH_DEV_WER: (f64, f64) = (33.22, 40.0);
const FSDD_TEST_WER: (f64, f64) = (4.00, 5.0);
const DIGIT_STRINGS_WER: (f64, f64) = (3.24, 10.0);
