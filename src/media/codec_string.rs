//! RFC 6381 `codecs` parameters (`avc1.64001f`, `mp4a.40.2`) of the
//! tracks the fragmented-MP4 muxer carries, read from their decoder
//! configurations: what a browser's Media Source Extensions must be told
//! before it takes a stream, and what the page shows when it cannot play
//! one. The layouts are those of ISO/IEC 14496-15 (`avcC`, `hvcC`), the
//! AV1 and VP9 ISO BMFF bindings (`av1C`, `vpcC`) and ISO/IEC 14496-3
//! (AudioSpecificConfig).

use super::fmp4::TrackCodec;

/// The codec parameter of one track; `None` for a configuration too
/// short to read.
pub fn codec_string(codec: &TrackCodec) -> Option<String> {
    match codec {
        TrackCodec::Avc(c) => {
            let [_, profile, compat, level] = *c.get(..4)? else {
                return None;
            };
            Some(format!("avc1.{profile:02x}{compat:02x}{level:02x}"))
        }
        TrackCodec::Hevc(c) => hevc(c),
        TrackCodec::Av1(c) => {
            let (b1, b2) = (*c.get(1)?, *c.get(2)?);
            let (profile, level) = (b1 >> 5, b1 & 0x1f);
            let tier = if b2 & 0x80 != 0 { 'H' } else { 'M' };
            let depth = match (b2 & 0x40 != 0, b2 & 0x20 != 0) {
                (true, true) => 12,
                (true, false) => 10,
                _ => 8,
            };
            Some(format!("av01.{profile}.{level:02}{tier}.{depth:02}"))
        }
        TrackCodec::Vp9(c) => {
            // Version and flags, then profile, level, bit depth (4 bits).
            let (profile, level, depth) = (*c.get(4)?, *c.get(5)?, *c.get(6)? >> 4);
            Some(format!("vp09.{profile:02}.{level:02}.{depth:02}"))
        }
        TrackCodec::Aac(c) => {
            let first = *c.first()?;
            let mut object_type = first >> 3;
            if object_type == 31 {
                object_type = 32 + (((first & 0x07) << 3) | (*c.get(1)? >> 5));
            }
            Some(format!("mp4a.40.{object_type}"))
        }
        TrackCodec::Opus(_) => Some("opus".to_owned()),
    }
}

/// `hvc1.<space><profile>.<compatibility>.<tier><level>[.<constraints>]`:
/// the compatibility flags bit-reversed in hex, the constraint bytes
/// without trailing zeros.
fn hevc(c: &[u8]) -> Option<String> {
    let first = *c.get(1)?;
    let space = ["", "A", "B", "C"][usize::from(first >> 6)];
    let tier = if first & 0x20 != 0 { 'H' } else { 'L' };
    let profile = first & 0x1f;
    let compat = u32::from_be_bytes(c.get(2..6)?.try_into().ok()?).reverse_bits();
    let constraints = c.get(6..12)?;
    let level = *c.get(12)?;
    let mut text = format!("hvc1.{space}{profile}.{compat:X}.{tier}{level}");
    let used = constraints
        .iter()
        .rposition(|b| *b != 0)
        .map_or(0, |last| last + 1);
    for byte in &constraints[..used] {
        text.push_str(&format!(".{byte:X}"));
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn of(codec: fn(Bytes) -> TrackCodec, bytes: &'static [u8]) -> Option<String> {
        codec_string(&codec(Bytes::from_static(bytes)))
    }

    #[test]
    fn video() {
        // High profile, level 3.1.
        assert_eq!(
            of(TrackCodec::Avc, b"\x01\x64\x00\x1f\xff").as_deref(),
            Some("avc1.64001f")
        );
        // Main profile, main tier, level 3.1 (93), progressive source.
        let hvcc = b"\x01\x01\x60\x00\x00\x00\xb0\x00\x00\x00\x00\x00\x5d\xf0";
        assert_eq!(
            of(TrackCodec::Hevc, hvcc).as_deref(),
            Some("hvc1.1.6.L93.B0")
        );
        // Main profile, level 3.0 (4), main tier, 8 bits.
        assert_eq!(
            of(TrackCodec::Av1, b"\x81\x04\x0c\x00").as_deref(),
            Some("av01.0.04M.08")
        );
        // 10-bit high tier.
        assert_eq!(
            of(TrackCodec::Av1, b"\x81\x08\xc0\x00").as_deref(),
            Some("av01.0.08H.10")
        );
        assert_eq!(
            of(
                TrackCodec::Vp9,
                b"\x01\x00\x00\x00\x00\x1f\x80\x01\x01\x01\x00\x00"
            )
            .as_deref(),
            Some("vp09.00.31.08")
        );
    }

    #[test]
    fn audio() {
        // AAC LC, 44.1 kHz stereo; HE-AAC; an escaped object type (AAC ELD, 39).
        assert_eq!(
            of(TrackCodec::Aac, b"\x12\x10").as_deref(),
            Some("mp4a.40.2")
        );
        assert_eq!(
            of(TrackCodec::Aac, b"\x2b\x92\x08\x00").as_deref(),
            Some("mp4a.40.5")
        );
        assert_eq!(
            of(TrackCodec::Aac, b"\xf8\xe0").as_deref(),
            Some("mp4a.40.39")
        );
        assert_eq!(of(TrackCodec::Opus, b"OpusHead").as_deref(), Some("opus"));
    }

    #[test]
    fn short_configurations_give_none() {
        assert_eq!(of(TrackCodec::Avc, b"\x01\x64"), None);
        assert_eq!(of(TrackCodec::Hevc, b"\x01\x01\x60"), None);
        assert_eq!(of(TrackCodec::Av1, b"\x81"), None);
        assert_eq!(of(TrackCodec::Vp9, b"\x01\x00"), None);
        assert_eq!(of(TrackCodec::Aac, b""), None);
    }
}
