//! The upload reader on any multipart body: the first byte picks a
//! Content-Type header form, the rest is the body.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else { return };
    let content_type = match kind % 4 {
        0 => "multipart/form-data; boundary=X",
        1 => "multipart/form-data; boundary=\"a b\"",
        2 => "multipart/form-data",
        _ => "application/octet-stream",
    };
    hark_server::fuzzing::read_upload(content_type, body.to_vec());
});
