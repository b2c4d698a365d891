//! Inputs that hark's unit tests (in `hark-core`) and integration tests
//! (the `hark` package) both build, kept in one place.

/// A WAV file written byte by byte from a format tag, channels, sample
/// rate, bits per sample and the data chunk. Unlike a WAV writer it takes
/// any values, nonsense included (zero channels, a rate of 4 GHz, a tag no
/// decoder knows): the header arithmetic wraps instead of failing, so tests
/// can hand the decoder exactly the header they mean to refuse.
pub fn wav_bytes(tag: u16, channels: u16, rate_hz: u32, bits: u16, data: &[u8]) -> Vec<u8> {
    let block_align = channels.wrapping_mul(bits.div_ceil(8));
    let mut fmt = Vec::new();
    fmt.extend_from_slice(&tag.to_le_bytes());
    fmt.extend_from_slice(&channels.to_le_bytes());
    fmt.extend_from_slice(&rate_hz.to_le_bytes());
    fmt.extend_from_slice(&rate_hz.wrapping_mul(u32::from(block_align)).to_le_bytes());
    fmt.extend_from_slice(&block_align.to_le_bytes());
    fmt.extend_from_slice(&bits.to_le_bytes());
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&((4 + 8 + fmt.len() + 8 + data.len()) as u32).to_le_bytes());
    out.extend_from_slice(b"WAVE");
    out.extend_from_slice(b"fmt ");
    out.extend_from_slice(&(fmt.len() as u32).to_le_bytes());
    out.extend_from_slice(&fmt);
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_states_what_it_was_given() {
        let bytes = wav_bytes(1, 2, 16_000, 16, &[0; 8]);
        assert_eq!(bytes.len(), 44 + 8);
        assert_eq!(&bytes[..4], b"RIFF");
        assert_eq!(u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize, bytes.len() - 8);
        assert_eq!(u16::from_le_bytes([bytes[22], bytes[23]]), 2, "channels");
        assert_eq!(u32::from_le_bytes(bytes[28..32].try_into().unwrap()), 64_000, "byte rate");
        assert_eq!(u32::from_le_bytes(bytes[40..44].try_into().unwrap()), 8, "data size");
    }
}
