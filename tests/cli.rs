//! The `hark` command line on real recordings.

mod common;

use std::process::Command;

fn hark(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hark")).args(args).env_remove("HARK_MODEL").env("HARK_LOG", "warn").output().unwrap()
}

fn take(name: &str) -> String {
    common::shared_data().join("fsdd/recordings").join(name).display().to_string()
}

#[test]
fn transcribe_prints_the_text_or_json() {
    let model = common::fixture("fsdd-digits").display().to_string();
    let out = hark(&["transcribe", "--model", &model, &take("5_jackson_0.wav")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "five");

    let out = hark(&["transcribe", "--model", &model, "--json", &take("5_jackson_0.wav"), &take("0_lucas_0.wav")]);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["text"], "zero");
    assert!(lines[1]["file"].as_str().unwrap().ends_with("0_lucas_0.wav"));
    assert!(lines[1]["words"][0]["confidence"].as_f64().unwrap() > 0.0);
}

#[test]
fn the_built_in_model_works_from_any_directory() {
    let out = Command::new(env!("CARGO_BIN_EXE_hark"))
        .args(["transcribe", &take("6_george_2.wav")])
        .current_dir(std::env::temp_dir())
        .env_remove("HARK_MODEL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stdout).trim().is_empty());
}

#[test]
fn transcribe_reports_unreadable_files_and_fails() {
    let out = hark(&["transcribe", common::repo().join("Cargo.toml").to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unrecognized audio format"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = hark(&["transcribe", "--model", "/nonexistent", &take("5_jackson_0.wav")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn eval_prints_wer_cer_and_the_worst_utterances() {
    let dir = std::env::temp_dir().join(format!("hark-cli-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = dir.join("m.jsonl");
    // The second and third references are wrong on purpose: errors to count.
    let lines: String = ["1_george_0.wav", "2_theo_0.wav", "3_lucas_0.wav"]
        .iter()
        .zip(["one", "one", "three four"])
        .map(|(f, t)| format!("{{\"audio_filepath\": \"{}\", \"duration\": 0.5, \"text\": \"{t}\"}}\n", take(f)))
        .collect();
    std::fs::write(&manifest, lines).unwrap();
    let model = common::fixture("fsdd-digits").display().to_string();
    let out = hark(&["eval", "--model", &model, "--worst", "3", manifest.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("3 utterances"), "{stdout}");
    assert!(stdout.contains("CER:") && stdout.contains("RTF:"), "{stdout}");
    // The WER is the word errors of the listed pairs over their reference words.
    let words = |prefix: &str| -> Vec<Vec<String>> {
        stdout.lines().filter_map(|l| l.trim().strip_prefix(prefix)).map(|t| t.split_whitespace().map(String::from).collect()).collect()
    };
    let (refs, hyps) = (words("ref:"), words("hyp:"));
    assert_eq!((refs.len(), hyps.len()), (3, 3), "{stdout}");
    let errors: usize = refs.iter().zip(&hyps).map(|(r, h)| hark_core::eval::edit_distance(r, h)).sum();
    let expected = 100.0 * errors as f64 / refs.iter().map(Vec::len).sum::<usize>() as f64;
    let wer: f64 = stdout.lines().find_map(|l| l.strip_prefix("WER:")).unwrap().trim().trim_end_matches('%').parse().unwrap();
    assert!(errors >= 2 && (wer - expected).abs() < 0.01, "WER {wer} vs {expected} from the pairs: {stdout}");
}

#[test]
fn eval_cuts_long_files_as_the_server_does() {
    // 40 s of digits with pauses: longer than the 15 s window, so cut; and
    // with a 5 s window, set on the command line as in the server.
    let (samples, _) = common::takes_with_pauses(&[common::four_digits(), common::four_digits(), common::four_digits()].concat(), 2.5);
    let dir = std::env::temp_dir().join(format!("hark-cli-long-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wav = dir.join("long.wav");
    std::fs::write(&wav, common::wav_16k(&samples)).unwrap();
    let manifest = dir.join("m.jsonl");
    std::fs::write(&manifest, format!("{{\"audio_filepath\": \"{}\", \"duration\": 40, \"text\": \"x\"}}\n", wav.display())).unwrap();
    let model = common::fixture("fsdd-digits");
    for window in [&[][..], &["--window-s", "5"][..]] {
        let out = hark(&[&["eval", "--model", model.to_str().unwrap(), "--worst", "1"], window, &[manifest.to_str().unwrap()]].concat());
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}");
        let evaluated = stdout.lines().find_map(|l| l.trim().strip_prefix("hyp:")).unwrap().trim().to_string();

        let server = common::HarkServer::start_with_model(&model, window, &[]);
        let served: serde_json::Value = reqwest::blocking::Client::new()
            .post(server.url("/v1/transcribe"))
            .body(common::wav_16k(&samples))
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert!(samples.len() as f64 / 16_000.0 > 30.0 && evaluated.split_whitespace().count() >= 8, "{evaluated}");
        // eval scores the spoken words.
        let spoken: Vec<&str> = served["words"].as_array().unwrap().iter().map(|w| w["word"].as_str().unwrap()).collect();
        assert_eq!(evaluated, spoken.join(" "), "{window:?}");
    }
    let out = hark(&["eval", "--model", model.to_str().unwrap(), "--window-s", "0.5", manifest.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--window-s must be a number of seconds from 1 to 600, not 0.5"));
}

#[test]
fn decode_writes_the_16_khz_float_audio_hark_hears() {
    let dir = std::env::temp_dir().join(format!("hark-cli-decode-{}", std::process::id()));
    let out = hark(&["decode", "--out-dir", dir.to_str().unwrap(), &take("4_george_1.wav")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let original = hound::WavReader::open(take("4_george_1.wav")).unwrap();
    let decoded = hound::WavReader::open(dir.join("4_george_1.wav")).unwrap();
    let spec = decoded.spec();
    assert_eq!((spec.sample_rate, spec.channels, spec.sample_format), (16_000, 1, hound::SampleFormat::Float));
    assert!((i64::from(decoded.len()) - 2 * i64::from(original.len())).abs() <= 2, "{} vs {}", decoded.len(), original.len());
}

#[test]
fn bench_measures_one_stream_and_concurrent_clients_against_the_real_server() {
    let model = common::fixture("fsdd-digits").display().to_string();
    let args = ["bench", "--model", &model, "--audio", &take("3_theo_0.wav"), "--single-s", "1,2", "--clients", "1,3"];
    // Without HARK_LOG: the report alone, no log lines of the server inside.
    let out = Command::new(env!("CARGO_BIN_EXE_hark"))
        .args([&args[..], &["--clip-s", "0.5", "--duration-s", "1"]].concat())
        .env_remove("HARK_MODEL")
        .env_remove("HARK_LOG")
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stderr.trim().is_empty(), "log lines beside the report: {stderr}");
    assert!(!stdout.contains("NaN"), "{stdout}");
    assert_eq!(stdout.matches(" s audio: RTF ").count(), 2, "{stdout}");
    let runs: Vec<&str> = stdout.lines().filter(|l| l.contains(" clients: ")).collect();
    assert_eq!(runs.len(), 2, "{stdout}");
    for run in runs {
        assert!(run.ends_with("other 0") && !run.contains("200 × 0"), "every request served: {run}");
        assert!(run.contains("p50 ") && run.contains("p99 "), "{run}");
    }
    assert!(stdout.contains("peak RSS"), "{stdout}");
}

#[test]
fn align_prints_each_word_with_its_time_in_the_format_asked() {
    let dir = common::scratch("cli-align");
    let text = dir.join("said.txt");
    std::fs::write(&text, "Printing, in the only sense with which we are at present concerned,").unwrap();
    let audio = common::shared_data().join("ljspeech-dev/LJ001-0001.wav").display().to_string();
    let out = hark(&["align", &audio, text.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let words = json["words"].as_array().unwrap();
    assert_eq!(words.len(), 12);
    assert_eq!((words[0]["word"].as_str(), words[11]["word"].as_str()), (Some("Printing,"), Some("concerned,")));
    // The sentence's first words are said in its first seconds, in order.
    let ends: Vec<f64> = words.iter().filter(|w| w["aligned"] == true).map(|w| w["end"].as_f64().unwrap()).collect();
    assert!(ends.len() >= 11 && ends.windows(2).all(|p| p[0] <= p[1]) && ends[ends.len() - 1] < 5.0, "{words:?}");

    let out = hark(&["align", "--format", "srt", &audio, text.to_str().unwrap()]);
    let srt = String::from_utf8_lossy(&out.stdout);
    assert!(srt.starts_with("1\n00:00:00,") && srt.contains("Printing,"), "{srt}");
    // An empty text is refused with the reason.
    std::fs::write(&text, "\n").unwrap();
    let out = hark(&["align", &audio, text.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("the text is empty"), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}
