//! The audio entry point on any bytes: format sniffing, the compressed
//! decoders (FLAC, MP3, Ogg, MP4, AIFF, CAF, Matroska) and the resampler.
#![no_main]

use hark_core::audio::{decode, header_duration_s, AudioLimits};
use libfuzzer_sys::fuzz_target;

static QUIET_PANICS: std::sync::Once = std::sync::Once::new();

fuzz_target!(|data: &[u8]| {
    // A panic inside symphonia is caught and answered as a malformed file
    // (`guarded` in crates/core/src/audio/compressed.rs), as in the server; the harness's
    // panic hook would abort on it first. A panic anywhere else still
    // unwinds to the harness and counts as a crash.
    QUIET_PANICS.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let limits = AudioLimits { max_duration_s: 30.0 };
    let _ = header_duration_s(data, &limits);
    if let Ok(waveform) = decode(data, &limits) {
        assert!(waveform.samples().iter().all(|s| s.is_finite()));
        assert!(waveform.duration_s() <= 30.0 + 0.1);
    }
});
