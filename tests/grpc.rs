//! The gRPC API from another ecosystem: Python's grpcio, with stubs
//! generated from proto/hark/v1/recognizer.proto by the client itself,
//! against the real server on the digits model: health, reflection,
//! ListModels, Recognize (WAV and MP3, n-best, errors), Align and
//! StreamingRecognize.

mod common;

use std::process::Command;

use common::HarkServer;
use serde_json::Value;

#[test]
fn a_python_grpc_client_recognizes_files_and_streams() {
    let server = HarkServer::start_with_model(&common::shipped_digits_model(), &[], &[]);
    let wav = common::shared_data().join("fsdd/recordings/3_theo_2.wav");
    let mp3 = common::test_audio("formats/3_theo_2.mp3");
    let (samples, spans) = common::takes_with_pauses(&common::four_digits(), 1.0);
    let stream_path = std::env::temp_dir().join(format!("hark-grpc-stream-{}.pcm", std::process::id()));
    std::fs::write(&stream_path, common::pcm16(&samples)).unwrap();
    let webm_path = stream_path.with_extension("webm");
    std::fs::write(&webm_path, common::browser_recording(&samples, "webm", "libopus")).unwrap();
    let output = Command::new(common::repo().join("tests/.venv/bin/python"))
        .arg(common::repo().join("tests/grpc_client.py"))
        .args([
            server.grpc_addr.as_str(),
            wav.to_str().unwrap(),
            mp3.to_str().unwrap(),
            stream_path.to_str().unwrap(),
            webm_path.to_str().unwrap(),
        ])
        .output()
        .expect("tests/.venv has Python with grpcio (tests/run.sh installs it)");
    std::fs::remove_file(&stream_path).unwrap();
    std::fs::remove_file(&webm_path).unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "the client failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let calls: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let of = |call: &str| calls.iter().filter(|c| c["call"] == call).collect::<Vec<_>>();
    println!("{stdout}");

    // The model has loaded: the server and the recognizer are serving.
    assert!(of("health").iter().all(|c| c["status"] == "SERVING") && of("health").len() == 2, "{:?}", of("health"));
    let services = &of("reflection")[0]["services"];
    for name in ["grpc.health.v1.Health", "hark.v1.Recognizer"] {
        assert!(services.as_array().unwrap().iter().any(|s| s == name), "{name} not in {services}");
    }
    assert_eq!(of("list_models")[0]["ids"][0], "fsdd-digits");
    assert_eq!(of("list_models")[0]["sample_rate_hz"][0], 16_000);

    // The same take as WAV and as MP3: "three", with word times and a confidence.
    for call in of("recognize") {
        assert_eq!(call["text"], "three", "{call}");
        assert_eq!(call["model"], "fsdd-digits");
        let word = &call["words"][0];
        assert!(
            word[1].as_f64().unwrap() < word[2].as_f64().unwrap() && word[2].as_f64().unwrap() <= call["duration"].as_f64().unwrap() + 1e-6
        );
        assert!((0.0..=1.0).contains(&word[3].as_f64().unwrap()));
        assert_eq!(call["segments"], 1);
        // Written text, token by token: one token for the one spoken word, timed as it.
        assert_eq!(call["tokens"][0][0], "three", "{call}");
        assert_eq!((&call["tokens"][0][1], &call["tokens"][0][2], &call["tokens"][0][3]), (&word[1], &word[2], &serde_json::json!([0])));
    }
    let spoken = of("recognize_spoken")[0];
    assert_eq!(
        (&spoken["text"], &spoken["words"], &spoken["tokens"]),
        (&Value::from("three"), &Value::from(1), &Value::from(0)),
        "{spoken}"
    );
    let n_best = of("recognize_n_best")[0];
    assert_eq!(n_best["alternatives"][0], n_best["text"]);
    assert!(n_best["alternatives"].as_array().unwrap().len() > 1, "{n_best}");

    // Errors keep the HTTP API's codes under the matching gRPC status.
    let errors = of("error");
    assert_eq!(errors[0]["code"], "INVALID_ARGUMENT");
    assert!(errors[0]["details"].as_str().unwrap().starts_with("unsupported_format: "), "{}", errors[0]);
    assert_eq!(errors[1]["code"], "INVALID_ARGUMENT");
    assert!(errors[1]["details"].as_str().unwrap().contains("needs decoder=beam"), "{}", errors[1]);
    assert_eq!(errors[2]["code"], "INVALID_ARGUMENT", "a message that does not parse: {}", errors[2]);
    assert!(errors[2]["details"].as_str().unwrap().starts_with("malformed_request: "), "{}", errors[2]);
    // Align: the take's one word, where it was said, with its letters.
    let align = &of("align")[0];
    let word = &align["words"][0];
    assert_eq!((word[0].as_str(), word[4].as_bool(), word[5].as_str()), (Some("Three!"), Some(true), Some("three")), "{align}");
    let (start, end) = (word[1].as_f64().unwrap(), word[2].as_f64().unwrap());
    assert!(0.0 <= start && start < end && end <= align["duration"].as_f64().unwrap() + 0.01, "{align}");
    assert_eq!(align["model"], "fsdd-digits");
    let align_error = &of("align_error")[0];
    assert_eq!(align_error["code"], "INVALID_ARGUMENT", "{align_error}");
    assert!(align_error["details"].as_str().unwrap().starts_with("empty_text: "), "{align_error}");
    let stream_errors = of("stream_error");
    assert_eq!(stream_errors[0]["code"], "INVALID_ARGUMENT", "a stream must start with its config");
    assert_eq!(stream_errors[1]["code"], "INVALID_ARGUMENT", "endpoint_silence_s NaN: {}", stream_errors[1]);
    assert!(stream_errors[1]["details"].as_str().unwrap().contains("endpoint_silence_s"), "{}", stream_errors[1]);
    assert_eq!(stream_errors[2]["code"], "INVALID_ARGUMENT", "a rate with WebM: {}", stream_errors[2]);
    assert!(stream_errors[2]["details"].as_str().unwrap().starts_with("invalid_stream_options: "), "{}", stream_errors[2]);

    // The stream: a final per digit, at the digit, most of them right, partials before.
    let stream = of("stream");
    let finals: Vec<&&Value> = stream.iter().filter(|r| r["type"] == "FINAL").collect();
    assert_eq!(finals.len(), spans.len(), "{stream:?}");
    let mut right = 0;
    for (result, (start, end, text)) in finals.iter().zip(&spans) {
        assert!(
            result["start"].as_f64().unwrap() <= start + 0.02 && result["end"].as_f64().unwrap() >= end - 0.02,
            "{result} for {start}–{end}"
        );
        right += usize::from(result["text"] == text.as_str());
    }
    assert!(right >= 3, "{right} of 4 finals right: {finals:?}");
    assert!(stream.iter().take_while(|r| r["type"] == "PARTIAL").count() >= 1, "no partial before the first final: {stream:?}");
    assert!(stream.last().unwrap()["type"] == "FINAL");

    // The same speech as a browser records it (WebM/Opus): the same finals.
    let webm_finals: Vec<&Value> = of("webm_stream").into_iter().filter(|r| r["type"] == "FINAL").collect();
    assert_eq!(webm_finals.len(), spans.len(), "{webm_finals:?}");
    let right = webm_finals.iter().zip(&spans).filter(|(r, s)| r["text"] == s.2.as_str()).count();
    assert!(right >= 3, "{right} of 4 WebM finals right: {webm_finals:?}");

    // Counted in /metrics like the HTTP routes, with the gRPC code as status.
    let metrics = reqwest::blocking::get(server.url("/metrics")).unwrap().text().unwrap();
    let count =
        |route: &str, status: &str| common::metric(&metrics, &format!("hark_requests_total{{route=\"{route}\",status=\"{status}\"}}"));
    assert_eq!(count("/hark.v1.Recognizer/Recognize", "Ok"), Some(4.0), "{metrics}");
    // (The message that does not parse never reaches the service.)
    assert_eq!(count("/hark.v1.Recognizer/Recognize", "InvalidArgument"), Some(2.0));
    assert_eq!(count("/hark.v1.Recognizer/StreamingRecognize", "Ok"), Some(2.0));
    assert_eq!(count("/hark.v1.Recognizer/StreamingRecognize", "InvalidArgument"), Some(3.0));
}
