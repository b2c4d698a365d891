//! The WAV reader on bytes that start as a WAV file: any header, any chunks.
#![no_main]

use hark_core::audio::{decode, AudioLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut bytes = b"RIFF\0\0\0\0WAVE".to_vec();
    bytes.extend_from_slice(data);
    let limits = AudioLimits { max_duration_s: 30.0 };
    let duration = hark_core::audio::header_duration_s(&bytes, &limits);
    if let Ok(waveform) = decode(&bytes, &limits) {
        assert!(waveform.samples().iter().all(|s| s.is_finite()));
        assert!(waveform.duration_s() <= 30.0 + 0.01);
        // The header's duration, when it gave one, is what decoding finds.
        if let Ok(Some(stated)) = duration {
            assert!((stated - waveform.duration_s()).abs() < 0.01, "{stated} vs {}", waveform.duration_s());
        }
    }
});
