//! The batching scheduler on the real English model: batched output and
//! long audio cut at pauses against the model run on each utterance alone,
//! and refusal when the queue is full.

mod common;

use std::sync::Arc;

use hark_core::audio::{decode, AudioLimits, Waveform};
use hark_core::eval::{read_manifest, Scored};
use hark_core::recognizer::{DecodeOptions, DecoderKind, Recognizer, TextFormat};
use hark_server::metrics::Metrics;
use hark_server::scheduler::{Scheduler, SchedulerConfig, SchedulerError};

fn english() -> Recognizer {
    Recognizer::load(Some(&common::repo().join("models/hark-en")), AudioLimits::default(), None).unwrap()
}

fn ljspeech(names: &[&str]) -> Waveform {
    let mut samples = Vec::new();
    for name in names {
        let bytes = std::fs::read(common::shared_data().join("ljspeech-dev").join(format!("{name}.wav"))).unwrap();
        samples.extend_from_slice(decode(&bytes, &AudioLimits::default()).unwrap().samples());
    }
    Waveform::from_samples(samples)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap()
}

/// Eight LJSpeech clips back to back (about 50 s) and their text.
fn long_speech(group: usize) -> (Waveform, String) {
    let utterances = read_manifest(&common::shared_data().join("ljspeech-dev/dev.jsonl")).unwrap();
    let (mut samples, mut text) = (Vec::new(), Vec::new());
    for u in &utterances[group * 8..(group + 1) * 8] {
        let bytes = std::fs::read(&u.audio_path).unwrap();
        samples.extend_from_slice(decode(&bytes, &AudioLimits::default()).unwrap().samples());
        text.push(u.text.clone());
    }
    (Waveform::from_samples(samples), text.join(" "))
}

#[test]
fn long_audio_cut_at_pauses_is_recognized_as_well_as_whole() {
    // Measured on 50 s of LJSpeech (eight clips back to back), cut at pauses
    // into pieces of at most 15 s that go through the scheduler: WER within
    // a few points of running the network over all 50 s at once.
    let recognizer = english();
    let scheduler = Scheduler::new(recognizer.shared_model(), SchedulerConfig::default(), Arc::new(Metrics::new()));
    let rt = runtime();
    let (mut whole_errors, mut cut_errors, mut words) = (0, 0, 0);
    let spoken = DecodeOptions { decoder: Some(DecoderKind::Greedy), text_format: Some(TextFormat::Spoken), ..Default::default() };
    let greedy = recognizer.decoding(&spoken).unwrap();
    for group in 0..2 {
        let (speech, text) = long_speech(group);
        assert!(speech.duration_s() > 40.0);
        let log_probs = recognizer.log_probs(&speech).unwrap();
        let whole = recognizer.decode(&log_probs, speech.duration_s(), &greedy);
        let cut = recognizer.cut(&speech);
        assert!(cut.starts_s().len() >= 4, "50 s in pieces of at most 15 s");
        let heard = rt.block_on(scheduler.hear(cut)).unwrap();
        let steps: usize = heard.pieces().iter().map(|(_, o)| o.num_steps()).sum();
        // Pure pause between the pieces is not run.
        assert!(
            steps <= log_probs.num_steps() && steps > log_probs.num_steps() / 2,
            "{steps} steps in pieces, {} whole",
            log_probs.num_steps()
        );
        let cut = recognizer.transcript(heard, &greedy);
        assert!(cut.words.windows(2).all(|w| w[0].start_s <= w[1].start_s), "word times run forward across the cuts");
        whole_errors += Scored::new("whole".into(), text.clone(), whole.text, &[]).word_errors;
        cut_errors += Scored::new("cut".into(), text.clone(), cut.text, &[]).word_errors;
        words += Scored::new("reference".into(), text, String::new(), &[]).words;
    }
    let (whole_wer, cut_wer) = (whole_errors as f64 / words as f64, cut_errors as f64 / words as f64);
    eprintln!("greedy WER over {words} words: whole {:.1} %, cut at pauses {:.1} %", 100.0 * whole_wer, 100.0 * cut_wer);
    assert!(cut_wer <= whole_wer + 0.03, "cut WER {cut_wer:.3} vs whole {whole_wer:.3}");
}

#[test]
fn concurrent_requests_share_batches_and_get_their_own_answers() {
    let recognizer = english();
    let clips: Vec<Waveform> = ["LJ001-0001", "LJ001-0002", "LJ001-0003", "LJ001-0004"].iter().map(|n| ljspeech(&[n])).collect();
    let metrics = Arc::new(Metrics::new());
    let config = SchedulerConfig { max_wait_ms: 500, ..Default::default() };
    let scheduler = Scheduler::new(recognizer.shared_model(), config, metrics.clone());
    let request = |clip: &Waveform| scheduler.hear(recognizer.cut(clip));
    let outputs = runtime().block_on(async {
        let (a, b, c, d) = tokio::join!(request(&clips[0]), request(&clips[1]), request(&clips[2]), request(&clips[3]));
        [a, b, c, d]
    });
    for (clip, output) in clips.iter().zip(outputs) {
        let alone = recognizer.log_probs(clip).unwrap();
        let diff = alone.data().iter().zip(output.unwrap().pieces()[0].1.data()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(diff <= 1e-4, "{diff}");
    }
    // All four arrived within the 500 ms wait: one batch.
    assert_eq!(metrics.batch_size.get_sample_count(), 1);
    assert_eq!(metrics.batch_size.get_sample_sum(), 4.0);
}

#[test]
fn a_full_queue_refuses_at_once_and_names_the_limit() {
    let recognizer = english();
    let clip = ljspeech(&["LJ001-0001"]);
    let config = SchedulerConfig { max_wait_ms: 60_000, max_queue_s: 15.0, ..Default::default() };
    let scheduler = Scheduler::new(recognizer.shared_model(), config, Arc::new(Metrics::new()));
    let rt = runtime();
    rt.block_on(async {
        // The first waits a minute for company; dropping it withdraws it.
        let first = scheduler.hear(recognizer.cut(&clip));
        tokio::pin!(first);
        assert!(tokio::time::timeout(std::time::Duration::from_millis(50), &mut first).await.is_err());
        let refused = scheduler.hear(recognizer.cut(&clip)).await.unwrap_err();
        assert!(matches!(refused, SchedulerError::Overloaded { retry_after_s: 1.., .. }), "{refused:?}");
        assert!(refused.to_string().contains("limit 15 s"), "{refused}");
        assert_eq!(scheduler.check_capacity(), Ok(()), "9.7 s queued of 15: room for a short one");
    });
}
