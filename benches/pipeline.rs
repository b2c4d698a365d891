//! The hot path, stage by stage, on 10 s of audio: WAV decoding (with and
//! without resampling), the filterbank, the BiLSTM forward pass of the English model
//! (3×320; hark's fused loop, candle-nn's op-by-op LSTM, and a batch of 16
//! five-second clips), greedy CTC, and
//! the beam search (with and without the default 3-gram LM) on the English
//! model's output for 9.7 s of real speech, and the written text of its
//! transcript (punctuation model and inverse text normalization); a live
//! stream's endpointer over a minute of it.
//!
//!     cargo bench --bench pipeline

use criterion::{criterion_group, criterion_main, Criterion};
use hark_core::align::AlignOptions;
use hark_core::audio::{decode, AudioLimits, Waveform};
use hark_core::ctc::{CtcDecoder, GreedyDecoder};
use hark_core::features::{Fbank, FbankOptions};
use hark_core::model::reference::ReferenceModel;
use hark_core::model::{AcousticModel, LogProbs, ModelFiles};
use hark_core::pipeline::Heard;
use hark_core::recognizer::{DecodeOptions, DecoderKind, Recognizer, TextFormat};
use hark_core::vad::{Endpointer, Loudness};

/// 10 s of a 16-bit WAV at `rate` Hz: a tone sweep under noise.
fn ten_seconds_wav(rate: u32) -> Vec<u8> {
    let spec = hound::WavSpec { channels: 1, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut cursor = std::io::Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut cursor, spec).unwrap();
    let mut noise = 1u32;
    for i in 0..rate * 10 {
        let t = f64::from(i) / f64::from(rate);
        noise = noise.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let s = 0.3 * (2.0 * std::f64::consts::PI * (200.0 + 100.0 * t) * t).sin() + 0.01 * (f64::from(noise >> 16) / 65536.0 - 0.5);
        writer.write_sample((s * 32767.0) as i16).unwrap();
    }
    writer.finalize().unwrap();
    cursor.into_inner()
}

/// 16 kHz audio as an Ogg Opus file at `bitrate_bps`, coded at 48 kHz.
fn ogg_opus(waveform: &Waveform, bitrate_bps: i32) -> Vec<u8> {
    use opus_pure::{Application, OggOpusWriter, OpusEncoder, OpusHead};
    let at_48k: Vec<f32> = waveform.samples().iter().flat_map(|&s| [s; 3]).collect();
    let mut encoder = OpusEncoder::new(48_000, 1, Application::Voip).unwrap();
    encoder.bitrate_bps = bitrate_bps;
    let mut writer = OggOpusWriter::new(Vec::new(), OpusHead::new(1, 48_000).unwrap()).unwrap();
    let mut packet = vec![0u8; opus_pure::MAX_PACKET_BYTES];
    for frame in at_48k.chunks_exact(960) {
        let n = encoder.encode(frame, 960, &mut packet).unwrap();
        writer.write_packet(&packet[..n]).unwrap();
    }
    writer.finish().unwrap()
}

fn pipeline(c: &mut Criterion) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let wav = ten_seconds_wav(22_050);
    let wav_16k = ten_seconds_wav(16_000);
    let limits = AudioLimits::default();
    let waveform: Waveform = decode(&wav, &limits).unwrap();
    let fbank = Fbank::new(FbankOptions::default()).unwrap();
    let features = fbank.compute(&waveform);
    let files = ModelFiles::read_dir(&root.join("models/hark-en")).unwrap();
    let model = AcousticModel::load(&files).unwrap();
    let reference = ReferenceModel::load(&files).unwrap();
    let log_probs = model.forward(&features);
    let five_seconds = hark_core::features::Features::new(features.data()[..features.data().len() / 2].to_vec(), features.num_bins());
    let batch = vec![&five_seconds; 16];

    c.bench_function("decode WAV 10 s 22.05 kHz", |b| b.iter(|| decode(&wav, &limits).unwrap()));
    c.bench_function("decode WAV 10 s 16 kHz", |b| b.iter(|| decode(&wav_16k, &limits).unwrap()));
    c.bench_function("fbank 10 s", |b| b.iter(|| fbank.compute(&waveform)));
    c.bench_function("bilstm 3x320 10 s, fused", |b| b.iter(|| model.forward(&features)));
    c.bench_function("bilstm 3x320 10 s, candle-nn reference", |b| b.iter(|| reference.forward(&features).unwrap()));
    c.bench_function("bilstm 3x320 batch of 16 x 5 s, fused", |b| b.iter(|| model.forward_batch(&batch)));
    c.bench_function("ctc greedy 10 s", |b| b.iter(|| GreedyDecoder.decode(&log_probs, model.vocabulary())));

    let english = Recognizer::load(Some(&root.join("models/hark-en")), limits, None).unwrap();
    let speech = std::fs::read(root.join("../shared/data/ljspeech-dev/LJ001-0001.wav")).unwrap();
    let speech = decode(&speech, &limits).unwrap();
    let speech_log_probs = english.log_probs(&speech).unwrap();
    // A voice note: the speech as 24 kb/s Ogg Opus at 48 kHz (as phones
    // record it), decoded to 16 kHz.
    let opus = ogg_opus(&speech, 24_000);
    c.bench_function("decode Ogg Opus 9.7 s 24 kb/s", |b| b.iter(|| decode(&opus, &limits).unwrap()));
    // A live stream's endpointing: a minute of speech in 100 ms chunks.
    let minute: Vec<f32> = speech.samples().iter().copied().cycle().take(60 * 16_000).collect();
    c.bench_function("endpointer 60 s speech, 100 ms chunks", |b| {
        b.iter(|| {
            let mut endpointer = Endpointer::new(0.6);
            minute.chunks(1600).map(|chunk| endpointer.push(chunk).len()).sum::<usize>()
        })
    });
    for (name, options) in [
        ("ctc beam 256 + 3-gram LM (the default), 9.7 s speech", DecodeOptions::default()),
        ("ctc beam 64 + 3-gram LM, 9.7 s speech", DecodeOptions { beam_size: Some(64), ..Default::default() }),
        (
            "ctc beam 256 no LM, 9.7 s speech",
            DecodeOptions {
                lm_weight: Some(0.0),
                word_bonus: Some(0.0),
                blank_penalty: Some(0.0),
                oov_penalty: Some(0.0),
                ..Default::default()
            },
        ),
        ("ctc greedy, 9.7 s speech", DecodeOptions { decoder: Some(DecoderKind::Greedy), ..Default::default() }),
    ] {
        let decoding = english.decoding(&options).unwrap();
        c.bench_function(name, |b| b.iter(|| decoding.decoder().decode(&speech_log_probs, english.model().vocabulary())));
    }
    // Writing a transcript: the greedy transcript of the 9.7 s, spoken and
    // written; the difference is what writing adds to recognizing it.
    for (name, text_format) in
        [("transcript greedy 9.7 s, spoken", TextFormat::Spoken), ("transcript greedy 9.7 s, written", TextFormat::Written)]
    {
        let options = DecodeOptions { decoder: Some(DecoderKind::Greedy), text_format: Some(text_format), ..Default::default() };
        let decoding = english.decoding(&options).unwrap();
        let heard = || Heard::new(vec![(0.0, speech_log_probs.clone())], speech.duration_s(), Loudness::of(speech.samples()));
        c.bench_function(name, |b| b.iter_batched(heard, |heard| english.transcript(heard, &decoding), criterion::BatchSize::SmallInput));
    }
    // Forced alignment beyond the network: ten minutes of read speech (the
    // sentence's output 62 times, as 62 pieces) and their text: the greedy
    // transcripts that share the text out, the edit distance, the Viterbi
    // passes over ~1-minute chunks.
    let sentence = "printing in the only sense with which we are at present concerned differs from most if not from all the arts and crafts represented in the exhibition";
    let repeats = 62;
    let text = english.align_text(&vec![sentence; repeats].join(" ")).unwrap();
    let pieces: Vec<(f64, LogProbs)> = (0..repeats).map(|i| (i as f64 * speech.duration_s(), speech_log_probs.clone())).collect();
    let recording: Vec<f32> = (0..repeats).flat_map(|_| speech.samples().iter().copied()).collect();
    let heard = Heard::new(pieces, repeats as f64 * speech.duration_s(), Loudness::of(&recording));
    let mut group = c.benchmark_group("align");
    group.sample_size(10);
    group.bench_function("align 10 min of speech to its text (after the network)", |b| {
        b.iter(|| english.align_heard(heard.clone(), &text, &AlignOptions::default()).unwrap())
    });
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
