//! A live stream's container demuxers (WebM and Ogg, as a browser's
//! MediaRecorder streams Opus) on any bytes, cut into chunks anywhere.
#![no_main]

use hark_core::audio::{Container, LiveOpus};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte sets the chunk size, so cuts fall everywhere.
    let Some((&cut, bytes)) = data.split_first() else { return };
    for container in [Container::WebM, Container::Ogg] {
        let mut live = LiveOpus::new(container);
        let mut samples = Vec::new();
        let mut failed = false;
        for chunk in bytes.chunks(usize::from(cut) + 1) {
            if live.push(chunk, &mut samples).is_err() {
                failed = true;
                break;
            }
        }
        if !failed {
            let _ = live.finish();
        }
        assert!(samples.iter().all(|s| s.is_finite()));
    }
});
