//! Hotwords through the real server with the English model: twelve
//! sentences, each with an uncommon name (tests/data/hotwords, made by
//! training/make_hotword_set.py), sent with and without the whole list of
//! names as hotwords — a contact list, not a hint of the answer.
//!
//!     cargo test --release --test hotwords -- --nocapture    # prints the table

mod common;

use common::{repo, HarkServer};
use hark_core::eval::edit_distance;
use reqwest::blocking::Client;
use serde_json::Value;

struct Case {
    wav: Vec<u8>,
    text: String,
    hotword: String,
}

fn cases() -> Vec<Case> {
    let dir = repo().join("tests/data/hotwords");
    std::fs::read_to_string(dir.join("manifest.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let row: Value = serde_json::from_str(l).unwrap();
            Case {
                wav: std::fs::read(dir.join(row["audio_filepath"].as_str().unwrap())).unwrap(),
                text: hark_core::text::normalize(row["text"].as_str().unwrap()),
                hotword: hark_core::text::normalize(row["hotword"].as_str().unwrap()),
            }
        })
        .collect()
}

/// Recall of the names, and the WER of everything else in the sentences.
fn measure(server: &HarkServer, cases: &[Case], hotwords: Option<&str>) -> (usize, f64) {
    let client = Client::new();
    let (mut found, mut errors, mut words) = (0, 0, 0);
    for case in cases {
        let query = hotwords.map(|list| serde_urlencoded::to_string([("hotwords", list)]).unwrap()).unwrap_or_default();
        // Scored on the spoken words.
        let request = client.post(server.url(&format!("/v1/transcribe?text_format=spoken&{query}")));
        let body: Value = request.body(case.wav.clone()).send().unwrap().json().unwrap();
        let text = body["text"].as_str().unwrap_or_else(|| panic!("no text in {body}"));
        let hyp: Vec<&str> = text.split(' ').filter(|w| !w.is_empty()).collect();
        found += usize::from(hyp.contains(&case.hotword.as_str()));
        let reference: Vec<&str> = case.text.split(' ').filter(|w| *w != case.hotword).collect();
        let others: Vec<&str> = hyp.into_iter().filter(|w| *w != case.hotword).collect();
        errors += edit_distance(&reference, &others);
        words += reference.len();
    }
    (found, 100.0 * errors as f64 / words as f64)
}

#[test]
#[ignore = "slow tier: tests/run.sh --slow"]
fn boosting_names_finds_more_of_them_without_hurting_the_rest() {
    let cases = cases();
    assert!(cases.len() >= 10);
    let server = HarkServer::start_with_model(&repo().join("models/hark-en"), &[], &[]);
    let names: Vec<&str> = cases.iter().map(|c| c.hotword.as_str()).collect();
    let (plain_found, plain_rest_wer) = measure(&server, &cases, None);
    println!("hotwords  boost  recall  WER of the other words");
    println!("none      -      {plain_found:>2}/{}   {plain_rest_wer:.1}%", cases.len());
    let mut default = (0, 0.0);
    for boost in [None, Some(2.0), Some(4.0)] {
        let list = match boost {
            None => names.join(","),
            Some(b) => names.iter().map(|n| format!("{n}:{b}")).collect::<Vec<_>>().join(","),
        };
        let (found, rest_wer) = measure(&server, &cases, Some(&list));
        let label = boost.map_or(format!("{} (default)", hark_core::ctc::hotwords::DEFAULT_BOOST), |b| b.to_string());
        println!("all 12    {label:<6} {found:>2}/{}   {rest_wer:.1}%", cases.len());
        if boost.is_none() {
            default = (found, rest_wer);
        }
    }
    let (found, rest_wer) = default;
    assert!(found >= plain_found + 3, "boosting found {found} names, without {plain_found}");
    assert!(rest_wer <= plain_rest_wer + 5.0, "the other words: WER {rest_wer:.1}% boosted vs {plain_rest_wer:.1}%");
}
