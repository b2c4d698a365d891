//! Written transcripts: the English model's punctuation and casing measured
//! on held-out text, and written text end to end through the real server
//! (HTTP, OpenAI route, subtitles) with word times that span the right
//! spoken words.

mod common;

use common::HarkServer;
use hark_core::punctuation::{capitalized, PunctuationFiles, Punctuator};
use reqwest::blocking::{multipart, Client};
use serde_json::Value;

/// Punctuation F1 per mark and casing accuracy, of the model or of the
/// baseline (first word capitalized, a period at the end).
struct Scores {
    /// (mark, true positives, false positives, false negatives)
    marks: Vec<(char, usize, usize, usize)>,
    case_right: usize,
    words: usize,
}

impl Scores {
    fn new() -> Self {
        Self { marks: ['.', ',', '?', '!'].iter().map(|&m| (m, 0, 0, 0)).collect(), case_right: 0, words: 0 }
    }

    fn add(&mut self, guess: (&str, Option<char>), truth: (&str, Option<char>)) {
        self.words += 1;
        self.case_right += usize::from(guess.0 == truth.0);
        for (mark, tp, fp, fn_) in &mut self.marks {
            let (g, t) = (guess.1 == Some(*mark), truth.1 == Some(*mark));
            *tp += usize::from(g && t);
            *fp += usize::from(g && !t);
            *fn_ += usize::from(!g && t);
        }
    }

    fn f1(&self, mark: char) -> f64 {
        let (_, tp, fp, fn_) = self.marks.iter().find(|m| m.0 == mark).copied().unwrap();
        let (p, r) = (tp as f64 / (tp + fp).max(1) as f64, tp as f64 / (tp + fn_).max(1) as f64);
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }

    fn case_accuracy(&self) -> f64 {
        self.case_right as f64 / self.words as f64
    }

    fn line(&self) -> String {
        let f1: Vec<String> = ['.', ',', '?', '!'].iter().map(|&m| format!("{m} {:.3}", self.f1(m))).collect();
        format!("F1 {}; case {:.1} %", f1.join(", "), 100.0 * self.case_accuracy())
    }
}

/// A held-out example: its spoken words, each as written, the mark after each.
type Example<'a> = (Vec<&'a str>, Vec<&'a str>, Vec<Option<char>>);

/// The model and the baseline on `tests/fixtures/punctuation/{set}.txt`
/// (written by `python -m hark_train.punctuate --write-tests`: per example,
/// its spoken words, each as written, and the mark after each).
fn measure(punctuator: &Punctuator, set: &str) -> (Scores, Scores) {
    let text = std::fs::read_to_string(common::fixture(&format!("punctuation/{set}.txt"))).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let examples: Vec<Example> = lines
        .chunks_exact(3)
        .map(|e| {
            let marks = e[2].split(' ').map(|m| m.chars().next().filter(|&c| c != '_')).collect();
            (e[0].split(' ').collect(), e[1].split(' ').collect(), marks)
        })
        .collect();
    let inputs: Vec<&[&str]> = examples.iter().map(|e| e.0.as_slice()).collect();
    let outputs = punctuator.punctuate(&inputs);
    let (mut model, mut baseline) = (Scores::new(), Scores::new());
    for ((words, forms, marks), out) in examples.iter().zip(&outputs) {
        for (i, word) in words.iter().enumerate() {
            let truth = (forms[i], marks[i]);
            model.add((&out[i].form, out[i].mark), truth);
            let first = if i == 0 { capitalized(word) } else { word.to_string() };
            baseline.add((&first, (i + 1 == words.len()).then_some('.')), truth);
        }
    }
    (model, baseline)
}

/// Floors for the shipped punctuation model on text it never saw: whole
/// books held out of its training (600 examples of one to four sentences,
/// 24,719 words) and everyday sentences written apart from its training
/// ones (246, 1,492 words); each above the baseline where it can be.
#[test]
fn the_punctuation_model_beats_the_baseline_on_held_out_text() {
    let punctuator = Punctuator::load(&PunctuationFiles::read_dir(&common::repo().join("models/hark-en/punctuation")).unwrap()).unwrap();
    for (set, floors) in [("books", [0.70, 0.60, 0.55, 0.95]), ("modern", [0.80, 0.55, 0.85, 0.95])] {
        let (model, baseline) = measure(&punctuator, set);
        println!("{set}: model {}\n{set}: baseline {}", model.line(), baseline.line());
        let [period, comma, question, case] = floors;
        assert!(model.f1('.') >= period && model.f1('.') > baseline.f1('.'), "{set}: {}", model.line());
        assert!(model.f1(',') >= comma && model.f1('?') >= question, "{set}: {}", model.line());
        assert!(model.case_accuracy() >= case && model.case_accuracy() > baseline.case_accuracy(), "{set}: {}", model.line());
    }
}

fn transcribe(server: &HarkServer, query: &str, audio: &[u8]) -> Value {
    let response = Client::new().post(server.url(&format!("/v1/transcribe{query}"))).body(audio.to_vec()).send().unwrap();
    assert_eq!(response.status(), 200);
    response.json().unwrap()
}

fn spoken_words(json: &Value) -> Vec<&str> {
    json["words"].as_array().unwrap().iter().map(|w| w["word"].as_str().unwrap()).collect()
}

/// The token whose text starts with `text`, and its spoken words.
fn token<'a>(json: &'a Value, text: &str) -> (&'a Value, Vec<&'a str>) {
    let tokens = json["tokens"].as_array().unwrap();
    let token = tokens.iter().find(|t| t["text"].as_str().unwrap().starts_with(text)).unwrap_or_else(|| panic!("no '{text}' in {json}"));
    let words: Vec<&str> =
        token["words"].as_array().unwrap().iter().map(|i| json["words"][i.as_u64().unwrap() as usize]["word"].as_str().unwrap()).collect();
    (token, words)
}

/// "on the fifth of may nineteen forty five mister smith paid twenty five
/// dollars", read by a Kokoro voice (`training/written_fixture.py`), comes
/// back written, each written token timed by the spoken words it stands for.
#[test]
fn a_sentence_with_a_date_a_title_and_money_comes_back_written() {
    let server = HarkServer::start_with_model(&common::repo().join("models/hark-en"), &[], &[]);
    let audio = std::fs::read(common::fixture("written/may-fifth.flac")).unwrap();
    let json = transcribe(&server, "", &audio);
    let text = json["text"].as_str().unwrap();
    println!("{text}");
    assert!(text.starts_with("On the 5th of May 1945") && text.contains("Mr. Smith") && text.ends_with(" $25."), "{json}");
    for (written, spoken) in [
        ("5th", vec!["fifth"]),
        ("May", vec!["may"]),
        ("1945", vec!["nineteen", "forty", "five"]),
        ("Mr.", vec!["mister"]),
        ("$25", vec!["twenty", "five", "dollars"]),
    ] {
        let (token, words) = token(&json, written);
        assert_eq!(words, spoken, "{token}");
        let indices = token["words"].as_array().unwrap();
        let (first, last) =
            (&json["words"][indices[0].as_u64().unwrap() as usize], &json["words"][indices[indices.len() - 1].as_u64().unwrap() as usize]);
        assert_eq!((&token["start"], &token["end"]), (&first["start"], &last["end"]), "{token}");
    }
    // Every spoken word belongs to one token, in order.
    let covered: Vec<u64> = json["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["words"].as_array().unwrap().iter().map(|i| i.as_u64().unwrap()))
        .collect();
    assert_eq!(covered, (0..spoken_words(&json).len() as u64).collect::<Vec<_>>());

    // The model hears "paid" as something else; boosted, the whole sentence
    // is right (commas are the punctuation model's call).
    let boosted = transcribe(&server, "?hotwords=paid", &audio);
    assert_eq!(boosted["text"].as_str().unwrap().replace(',', ""), "On the 5th of May 1945 Mr. Smith paid $25.", "{boosted}");
    // A hotword keeps the case it was given.
    let named = transcribe(&server, "?hotwords=SMITH", &audio);
    assert!(named["text"].as_str().unwrap().contains("Mr. SMITH"), "{named}");

    // The spoken form on request: the words as the model spells them.
    let spoken = transcribe(&server, "?text_format=spoken", &audio);
    assert_eq!(spoken["text"].as_str().unwrap(), spoken_words(&spoken).join(" "));
    assert!(spoken.get("tokens").is_none() && spoken["text"].as_str().unwrap().contains("twenty five dollars"), "{spoken}");
    assert_eq!(spoken["words"], json["words"]);
    assert_eq!(json["segments"][0]["text"].as_str().unwrap(), text, "{json}");
    let refused = Client::new().post(server.url("/v1/transcribe?text_format=shouted")).body(audio.clone()).send().unwrap();
    assert_eq!(refused.status(), 400);
    assert!(refused.text().unwrap().contains("text_format"));

    // The OpenAI route: written text, subtitles and words.
    let openai = |fields: &[(&'static str, &'static str)]| {
        let mut form = multipart::Form::new().part("file", multipart::Part::bytes(audio.clone()).file_name("may-fifth.flac"));
        for (name, value) in fields {
            form = form.text(*name, *value);
        }
        Client::new().post(server.url("/v1/audio/transcriptions")).multipart(form).send().unwrap()
    };
    assert_eq!(openai(&[("model", "whisper-1")]).json::<Value>().unwrap()["text"], json["text"]);
    let srt = openai(&[("response_format", "srt")]).text().unwrap();
    assert!(srt.contains("On the 5th of May 1945") && srt.contains("$25."), "{srt}");
    let verbose: Value = openai(&[("response_format", "verbose_json"), ("timestamp_granularities[]", "word")]).json().unwrap();
    let words: Vec<&str> = verbose["words"].as_array().unwrap().iter().map(|w| w["word"].as_str().unwrap()).collect();
    assert!(words.iter().any(|w| w.starts_with("1945")) && words.last() == Some(&"$25."), "{verbose}");
    let spoken = openai(&[("text_format", "spoken")]).json::<Value>().unwrap();
    assert!(spoken["text"].as_str().unwrap().starts_with("on the fifth of may"), "{spoken}");
}

/// Read English comes back in sentences: a capital first, a sentence mark
/// last, for every recording of ljspeech-dev and librivox-dev.
#[test]
#[ignore = "slow tier: tests/run.sh --slow"]
fn read_speech_comes_back_in_sentences() {
    let server = HarkServer::start_with_model(&common::repo().join("models/hark-en"), &[], &[]);
    for set in ["ljspeech-dev/dev.jsonl", "librivox-dev/dev.jsonl"] {
        for utterance in hark_core::eval::read_manifest(&common::shared_data().join(set)).unwrap() {
            let json = transcribe(&server, "", &std::fs::read(&utterance.audio_path).unwrap());
            let text = json["text"].as_str().unwrap();
            println!("{text}");
            assert!(text.starts_with(char::is_uppercase) && text.ends_with(['.', '?', '!']), "{}: {text}", utterance.audio_path.display());
        }
    }
}
