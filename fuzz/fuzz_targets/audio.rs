//! The audio entry point on any bytes: format sniffing, the compressed
//! decoders (FLAC, MP3, Ogg, MP4, AIFF, CAF, Matroska) and the resampler.
#![no_main]

use hark::audio::{decode, header_duration_s, AudioLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = AudioLimits { max_duration_s: 30.0 };
    let _ = header_duration_s(data, &limits);
    if let Ok(waveform) = decode(data, &limits) {
        assert!(waveform.samples().iter().all(|s| s.is_finite()));
        assert!(waveform.duration_s() <= 30.0 + 0.1);
    }
});
