//! Opus as a browser's `MediaRecorder` streams it: a WebM or Ogg byte
//! stream cut into chunks at arbitrary points (the container's header in
//! the first chunks only), demuxed as the bytes arrive and decoded packet
//! by packet to 16 kHz mono.
//!
//! symphonia's demuxers pull from a source; a live stream is pushed a chunk
//! at a time and must yield each packet as soon as its last byte is in. Both
//! containers are simple enough to walk incrementally: Ogg is a sequence of
//! checksummed pages; WebM is read as a flat sequence of elements, entering
//! the few master elements that lead to audio blocks and skipping the rest
//! by size, which is also how a segment or cluster of unknown size (as
//! MediaRecorder writes them) is followed without knowing where it ends.
//!
//! A stream that starts over (a recorder restarted: a new Ogg stream after
//! the last one's end, or a new WebM header) is followed, Opus's pre-skip
//! included; one that switches to another codec is refused.

use super::compressed::guarded;
use super::opus::OpusPackets;
use super::{AudioError, MAX_CHANNELS};

/// The containers a live stream may come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    WebM,
    Ogg,
}

impl Container {
    fn name(self) -> &'static str {
        match self {
            Self::WebM => "WebM",
            Self::Ogg => "Ogg",
        }
    }
}

/// What a demuxer finds in the bytes: the start of an Opus stream (its
/// header) or one of its packets.
#[derive(Debug, PartialEq)]
enum Found {
    Head(Vec<u8>),
    Packet(Vec<u8>),
}

/// A live Opus stream in a container: bytes in, 16 kHz mono samples out.
pub struct LiveOpus {
    container: Container,
    demuxer: Demuxer,
    decoder: Option<OpusPackets>,
    packets: usize,
    received: usize,
}

enum Demuxer {
    WebM(WebM),
    Ogg(Ogg),
}

impl LiveOpus {
    pub fn new(container: Container) -> Self {
        let demuxer = match container {
            Container::WebM => Demuxer::WebM(WebM::default()),
            Container::Ogg => Demuxer::Ogg(Ogg::default()),
        };
        Self { container, demuxer, decoder: None, packets: 0, received: 0 }
    }

    /// Takes the stream's next bytes; appends the samples of every packet
    /// they complete to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<f32>) -> Result<(), AudioError> {
        self.received += bytes.len();
        let found = match &mut self.demuxer {
            Demuxer::WebM(webm) => webm.push(bytes),
            Demuxer::Ogg(ogg) => ogg.push(bytes),
        }
        .map_err(|message| self.malformed(message))?;
        for found in found {
            match found {
                Found::Head(head) => self.decoder = Some(self.start(&head)?),
                Found::Packet(packet) => {
                    self.packets += 1;
                    let packets = self.packets;
                    let container = self.container.name();
                    let decoder = self.decoder.as_mut().expect("the demuxers find a head before any packet");
                    let decode = std::panic::AssertUnwindSafe(|| {
                        decoder.decode(&packet, out).map_err(|e| AudioError::Malformed {
                            container,
                            message: format!("Opus packet {packets} cannot be decoded ({e})"),
                        })
                    });
                    guarded(decode)?;
                }
            }
        }
        Ok(())
    }

    /// The end of the stream. A stream that sent bytes but never a whole
    /// header was not the container it was said to be.
    pub fn finish(self) -> Result<(), AudioError> {
        if self.received > 0 && self.decoder.is_none() {
            return Err(self.malformed(format!("the stream ended before its {} header was complete", self.container.name())));
        }
        Ok(())
    }

    fn malformed(&self, message: String) -> AudioError {
        match message.strip_prefix(CODEC_PREFIX) {
            Some(codec) => AudioError::UnsupportedCodec {
                container: self.container.name(),
                codec: codec.into(),
                advice: "a live stream takes Opus (audio/webm;codecs=opus, audio/ogg;codecs=opus) or raw PCM16",
            },
            None => AudioError::Malformed { container: self.container.name(), message },
        }
    }

    /// A decoder for the stream whose `OpusHead` this is.
    fn start(&self, head: &[u8]) -> Result<OpusPackets, AudioError> {
        let container = self.container.name();
        if head.len() < 19 || !head.starts_with(b"OpusHead") {
            return Err(AudioError::Malformed { container, message: "the Opus header is broken".into() });
        }
        let channels = usize::from(head[9]);
        if channels > 2 {
            let advice = "send mono or stereo Opus";
            if channels > MAX_CHANNELS {
                return Err(AudioError::TooManyChannels { channels, max: MAX_CHANNELS });
            }
            return Err(AudioError::UnsupportedCodec { container, codec: format!("Opus with {channels} channels (surround)"), advice });
        }
        let pre_skip = u32::from(u16::from_le_bytes([head[10], head[11]]));
        OpusPackets::new(pre_skip, None).map_err(|e| AudioError::Malformed { container, message: format!("Opus: {e}") })
    }
}

/// Marks a demuxer's message as an unsupported codec rather than a broken stream.
const CODEC_PREFIX: &str = "codec:";

/// Bytes received and not yet demuxed.
#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    at: usize,
}

impl Pending {
    fn push(&mut self, bytes: &[u8]) {
        self.bytes.drain(..self.at);
        self.at = 0;
        self.bytes.extend_from_slice(bytes);
    }

    fn rest(&self) -> &[u8] {
        &self.bytes[self.at..]
    }
}

// ------------------------------------------------------------------- Ogg

/// Ogg pages (RFC 3533), following the first logical stream that is Opus,
/// then the next one after it ends.
#[derive(Default)]
struct Ogg {
    pending: Pending,
    /// The Opus stream followed, and whether its last page has come.
    serial: Option<u32>,
    ended: bool,
    /// The followed stream's packets so far (0 is OpusHead, 1 OpusTags),
    /// the packet continued on the next page, and the last page's number.
    packets: usize,
    partial: Vec<u8>,
    sequence: Option<u32>,
    /// The first packet of each other stream begun, to name its codec.
    others: Vec<(u32, Vec<u8>)>,
}

impl Ogg {
    fn push(&mut self, bytes: &[u8]) -> Result<Vec<Found>, String> {
        self.pending.push(bytes);
        let mut found = Vec::new();
        while let Some(page) = self.next_page()? {
            self.page(&page, &mut found)?;
        }
        Ok(found)
    }

    /// The next whole page, checked.
    fn next_page(&mut self) -> Result<Option<Vec<u8>>, String> {
        let rest = self.pending.rest();
        if rest.len() < 27 {
            return Ok(None);
        }
        if &rest[..4] != b"OggS" || rest[4] != 0 {
            return Err("an Ogg page does not start where the last one ended".into());
        }
        let segments = usize::from(rest[26]);
        if rest.len() < 27 + segments {
            return Ok(None);
        }
        let len = 27 + segments + rest[27..27 + segments].iter().map(|&s| usize::from(s)).sum::<usize>();
        if rest.len() < len {
            return Ok(None);
        }
        let page = rest[..len].to_vec();
        self.pending.at += len;
        let stated = u32::from_le_bytes(page[22..26].try_into().expect("4 bytes"));
        if crc32(&page) != stated {
            return Err("an Ogg page fails its checksum".into());
        }
        Ok(Some(page))
    }

    fn page(&mut self, page: &[u8], found: &mut Vec<Found>) -> Result<(), String> {
        let (flags, serial) = (page[5], u32::from_le_bytes(page[14..18].try_into().expect("4 bytes")));
        let sequence = u32::from_le_bytes(page[18..22].try_into().expect("4 bytes"));
        let segments = usize::from(page[26]);
        let (table, body) = (&page[27..27 + segments], &page[27 + segments..]);
        let first_of_stream = flags & 0x02 != 0;
        if first_of_stream && (self.serial.is_none() || self.ended) {
            let first = first_packet(table, body);
            if first.starts_with(b"OpusHead") {
                *self = Self { pending: std::mem::take(&mut self.pending), serial: Some(serial), ..Self::default() };
            } else if self.ended {
                return Err(format!("{CODEC_PREFIX}{} after the Opus stream ended (the stream changed codec)", ogg_codec(first)));
            } else {
                self.others.push((serial, first.to_vec()));
                return Ok(());
            }
        }
        let Some(followed) = self.serial else {
            // Every stream has begun (their first pages come first) and none is Opus.
            let codec = self.others.first().map_or("no codec header".into(), |(_, first)| ogg_codec(first));
            return Err(format!("{CODEC_PREFIX}{codec}"));
        };
        if serial != followed {
            return Ok(());
        }
        // A lost page loses the packet it continued.
        if self.sequence.is_some_and(|last| sequence != last.wrapping_add(1)) || (flags & 0x01 == 0) {
            self.partial.clear();
        }
        self.sequence = Some(sequence);
        let mut at = 0;
        for &lace in table {
            self.partial.extend_from_slice(&body[at..at + usize::from(lace)]);
            at += usize::from(lace);
            if lace < 255 {
                let packet = std::mem::take(&mut self.partial);
                match self.packets {
                    0 => found.push(Found::Head(packet)),
                    1 => {} // OpusTags
                    _ => found.push(Found::Packet(packet)),
                }
                self.packets += 1;
            }
        }
        if flags & 0x04 != 0 {
            self.ended = true;
        }
        Ok(())
    }
}

/// The first packet that begins on a page (its first segments).
fn first_packet<'a>(table: &[u8], body: &'a [u8]) -> &'a [u8] {
    let len: usize = table.iter().position(|&s| s < 255).map_or(table.len(), |i| i + 1);
    let bytes: usize = table[..len].iter().map(|&s| usize::from(s)).sum();
    &body[..bytes]
}

/// The codec whose first packet this is, by its signature.
fn ogg_codec(first: &[u8]) -> String {
    let name = if first.starts_with(b"\x01vorbis") {
        "Vorbis"
    } else if first.starts_with(b"Speex   ") {
        "Speex"
    } else if first.starts_with(b"\x7fFLAC") {
        "FLAC"
    } else if first.starts_with(b"\x80theora") {
        "Theora (video)"
    } else {
        "an unknown codec"
    };
    name.into()
}

/// Ogg's CRC-32: polynomial 0x04C11DB7, not reflected, computed with the
/// checksum field taken as zero.
fn crc32(page: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut r = (i as u32) << 24;
            let mut bit = 0;
            while bit < 8 {
                r = if r & 0x8000_0000 != 0 { (r << 1) ^ 0x04C1_1DB7 } else { r << 1 };
                bit += 1;
            }
            table[i] = r;
            i += 1;
        }
        table
    };
    page.iter().enumerate().fold(0u32, |crc, (i, &byte)| {
        let byte = if (22..26).contains(&i) { 0 } else { byte };
        (crc << 8) ^ TABLE[usize::from((crc >> 24) as u8 ^ byte)]
    })
}

// ------------------------------------------------------------------ WebM

const EBML_HEADER: u32 = 0x1A45_DFA3;
const SEGMENT: u32 = 0x1853_8067;
const CLUSTER: u32 = 0x1F43_B675;
const TRACKS: u32 = 0x1654_AE6B;
const TRACK_ENTRY: u32 = 0xAE;
const BLOCK_GROUP: u32 = 0xA0;
const TRACK_NUMBER: u32 = 0xD7;
const TRACK_TYPE: u32 = 0x83;
const CODEC_ID: u32 = 0x86;
const CODEC_PRIVATE: u32 = 0x63A2;
const SIMPLE_BLOCK: u32 = 0xA3;
const BLOCK: u32 = 0xA1;
const AUDIO_TRACK: u64 = 2;

/// The largest element read whole (a block, a codec header): far above an
/// Opus block (at most a few KB), so a header that claims more is broken.
const MAX_ELEMENT_BYTES: u64 = 1 << 20;

/// A track as its entry describes it.
#[derive(Debug, Default, Clone, PartialEq)]
struct Track {
    number: u64,
    kind: u64,
    codec: String,
    private: Vec<u8>,
}

/// Matroska/WebM elements (EBML), read flat.
#[derive(Default)]
struct WebM {
    pending: Pending,
    /// Whether the stream's first element, its EBML header, has come.
    started: bool,
    /// Bytes of a skipped element still to come.
    skip: u64,
    /// The entries of the `Tracks` being read, and the audio track in use.
    entries: Vec<Track>,
    reading_tracks: bool,
    audio: Option<Track>,
}

impl WebM {
    fn push(&mut self, bytes: &[u8]) -> Result<Vec<Found>, String> {
        self.pending.push(bytes);
        let mut found = Vec::new();
        loop {
            if self.skip > 0 {
                let skipped = self.skip.min(self.pending.rest().len() as u64);
                self.pending.at += skipped as usize;
                self.skip -= skipped;
                if self.skip > 0 {
                    return Ok(found);
                }
            }
            let rest = self.pending.rest();
            let Some((id, id_len)) = element_id(rest)? else { return Ok(found) };
            let Some((size, size_len)) = vint(&rest[id_len..])? else { return Ok(found) };
            let header = id_len + size_len;
            if !self.started && id != EBML_HEADER {
                return Err("the stream does not start with a WebM (EBML) header".into());
            }
            self.started = true;
            match id {
                // Master elements on the way to the blocks: entered.
                SEGMENT | CLUSTER | BLOCK_GROUP => self.pending.at += header,
                TRACKS => {
                    self.pending.at += header;
                    self.entries.clear();
                    self.reading_tracks = true;
                }
                TRACK_ENTRY => {
                    self.pending.at += header;
                    self.entries.push(Track::default());
                }
                TRACK_NUMBER | TRACK_TYPE | CODEC_ID | CODEC_PRIVATE | SIMPLE_BLOCK | BLOCK => {
                    let size =
                        size.filter(|&s| s <= MAX_ELEMENT_BYTES).ok_or_else(|| format!("element {id:#X} claims an impossible size"))?;
                    if (rest.len() - header) < size as usize {
                        return Ok(found);
                    }
                    let body = rest[header..header + size as usize].to_vec();
                    self.pending.at += header + size as usize;
                    self.element(id, &body, &mut found)?;
                }
                // A new stream begins (a recorder started over): its header, skipped.
                EBML_HEADER => {
                    self.skip = size.ok_or("the EBML header has no size")?;
                    self.pending.at += header;
                }
                _ => {
                    self.skip = size.ok_or_else(|| format!("element {id:#X} has an unknown size"))?;
                    self.pending.at += header;
                }
            }
        }
    }

    fn element(&mut self, id: u32, body: &[u8], found: &mut Vec<Found>) -> Result<(), String> {
        if matches!(id, SIMPLE_BLOCK | BLOCK) {
            if self.reading_tracks {
                self.reading_tracks = false;
                self.choose_track(found)?;
            }
            let audio = self.audio.as_ref().ok_or("a block comes before any track is described")?;
            let (track, frames) = block_frames(body)?;
            if track == audio.number {
                found.extend(frames.into_iter().map(|frame| Found::Packet(body[frame].to_vec())));
            }
            return Ok(());
        }
        let Some(entry) = self.entries.last_mut().filter(|_| self.reading_tracks) else {
            return Ok(()); // A track field outside Tracks: not ours to read.
        };
        match id {
            TRACK_NUMBER => entry.number = uint(body),
            TRACK_TYPE => entry.kind = uint(body),
            CODEC_ID => entry.codec = String::from_utf8_lossy(body).trim_end_matches('\0').to_string(),
            _ => entry.private = body.to_vec(),
        }
        Ok(())
    }

    /// The audio track of the tracks just read: Opus, or a reason.
    fn choose_track(&mut self, found: &mut Vec<Found>) -> Result<(), String> {
        let audio = self.entries.iter().find(|t| t.kind == AUDIO_TRACK || t.codec.starts_with("A_"));
        let Some(audio) = audio.cloned() else {
            return Err("the stream has no audio track".into());
        };
        if audio.codec != "A_OPUS" {
            let codec = matroska_codec(&audio.codec);
            return Err(match self.audio {
                Some(_) => format!("{CODEC_PREFIX}{codec} after Opus (the stream changed codec)"),
                None => format!("{CODEC_PREFIX}{codec}"),
            });
        }
        if self.audio.as_ref() != Some(&audio) {
            found.push(Found::Head(audio.private.clone()));
            self.audio = Some(audio);
        }
        Ok(())
    }
}

/// A Matroska codec ID by the name people know it by.
fn matroska_codec(id: &str) -> String {
    let name = match id {
        "A_VORBIS" => "Vorbis",
        "A_FLAC" => "FLAC",
        "A_MPEG/L3" => "MP3",
        "A_AC3" => "AC-3",
        _ if id.starts_with("A_AAC") => "AAC",
        _ if id.starts_with("A_PCM") => "PCM",
        _ => return id.to_string(),
    };
    name.into()
}

/// An element ID (1–4 bytes, its length marker kept, as IDs are written).
fn element_id(bytes: &[u8]) -> Result<Option<(u32, usize)>, String> {
    let Some(&first) = bytes.first() else { return Ok(None) };
    let len = first.leading_zeros() as usize + 1;
    if len > 4 {
        return Err(format!("a byte {first:#04X} where an element should start"));
    }
    Ok(bytes.get(..len).map(|b| (b.iter().fold(0u32, |id, &b| id << 8 | u32::from(b)), len)))
}

/// A variable-length size (1–8 bytes, its marker removed); None inside for
/// "unknown" (all ones).
#[allow(clippy::type_complexity)]
fn vint(bytes: &[u8]) -> Result<Option<(Option<u64>, usize)>, String> {
    let Some(&first) = bytes.first() else { return Ok(None) };
    let len = first.leading_zeros() as usize + 1;
    if len > 8 {
        return Err("an element size starts with a zero byte".into());
    }
    let Some(b) = bytes.get(..len) else { return Ok(None) };
    let value = b[1..].iter().fold(u64::from(first) & (0xFF >> len), |v, &b| v << 8 | u64::from(b));
    let unknown = value == (1u64 << (7 * len)) - 1;
    Ok(Some(((!unknown).then_some(value), len)))
}

fn uint(bytes: &[u8]) -> u64 {
    bytes.iter().take(8).fold(0, |v, &b| v << 8 | u64::from(b))
}

/// A block's track number and the byte ranges of its frames (one, or
/// several when laced: Xiph, fixed-size or EBML lacing).
fn block_frames(block: &[u8]) -> Result<(u64, Vec<std::ops::Range<usize>>), String> {
    let broken = || "a block is cut short or its lacing is broken".to_string();
    let (track, len) = vint(block)?.ok_or_else(broken)?;
    let track = track.ok_or_else(broken)?;
    let flags = *block.get(len + 2).ok_or_else(broken)?;
    let mut at = len + 3;
    let lacing = (flags >> 1) & 3;
    let mut sizes = Vec::new();
    if lacing != 0 {
        let count = usize::from(*block.get(at).ok_or_else(broken)?) + 1;
        at += 1;
        match lacing {
            // Xiph: each size as a run of 255s and a last byte below 255.
            1 => {
                for _ in 1..count {
                    let mut size = 0usize;
                    loop {
                        let byte = *block.get(at).ok_or_else(broken)?;
                        at += 1;
                        size += usize::from(byte);
                        if byte < 255 {
                            break;
                        }
                    }
                    sizes.push(size);
                }
            }
            // EBML: the first size, then signed differences.
            3 => {
                let (first, n) = vint(&block[at..])?.ok_or_else(broken)?;
                at += n;
                let mut size = first.ok_or_else(broken)? as i64;
                sizes.push(size as usize);
                for _ in 2..count {
                    let (raw, n) = vint(&block[at..])?.ok_or_else(broken)?;
                    at += n;
                    let bias = (1i64 << (7 * n - 1)) - 1;
                    size += raw.ok_or_else(broken)? as i64 - bias;
                    sizes.push(usize::try_from(size).map_err(|_| broken())?);
                }
            }
            // Fixed: equal sizes.
            _ => {
                let each = (block.len() - at) / count;
                sizes.extend(std::iter::repeat_n(each, count - 1));
            }
        }
    }
    let mut frames = Vec::with_capacity(sizes.len() + 1);
    for size in sizes {
        let end = at.checked_add(size).filter(|&end| end <= block.len()).ok_or_else(broken)?;
        frames.push(at..end);
        at = end;
    }
    frames.push(at..block.len());
    Ok((track, frames))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_ids_read_as_ebml_writes_them() {
        assert_eq!(vint(&[0x81]).unwrap(), Some((Some(1), 1)));
        assert_eq!(vint(&[0x40, 0x02]).unwrap(), Some((Some(2), 2)));
        assert_eq!(vint(&[0xFF]).unwrap(), Some((None, 1)), "all ones is unknown");
        assert_eq!(vint(&[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]).unwrap(), Some((None, 8)));
        assert_eq!(vint(&[0x40]).unwrap(), None, "a size cut by the chunk waits for more");
        assert!(vint(&[0x00]).is_err());
        assert_eq!(element_id(&[0x1A, 0x45, 0xDF, 0xA3]).unwrap(), Some((EBML_HEADER, 4)));
        assert!(element_id(&[0x08]).is_err());
    }

    #[test]
    fn laced_blocks_split_into_their_frames() {
        // Track 1, timecode 0, then three frames of 2, 3 and 1 bytes.
        let frames = |flags: u8, lace: &[u8]| {
            let mut block = vec![0x81, 0, 0, flags, 2];
            block.extend_from_slice(lace);
            block.extend_from_slice(&[1, 1, 2, 2, 2, 3]);
            block_frames(&block).unwrap()
        };
        let want = (1, vec![7..9, 9..12, 12..13]);
        assert_eq!(frames(0b010, &[2, 3]), want, "Xiph lacing");
        // EBML lacing: 2, then +1 (0xC0 is 1 + the bias 63, in one byte).
        assert_eq!(frames(0b110, &[0x82, 0xC0]), want, "EBML lacing");
        let fixed = block_frames(&[0x81, 0, 0, 0b100, 2, 1, 1, 2, 2, 3, 3]).unwrap();
        assert_eq!(fixed.1, vec![5..7, 7..9, 9..11]);
        assert!(block_frames(&[0x81, 0, 0, 0b010, 2, 255]).is_err(), "lacing past the block's end");
    }

    #[test]
    fn the_ogg_checksum_is_crc32_with_no_reflection_and_no_final_xor() {
        // CRC-32/POSIX's check value 0x765E7680 without its final inversion.
        assert_eq!(crc32(b"123456789"), 0x89A1_897F);
    }
}
