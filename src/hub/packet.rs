//! A media or data message from a stream's input, shared (behind an `Arc`)
//! by the GOP cache and every output's queue: its payload is read once and
//! never copied per output. What it is (keyframe, sequence header, codec)
//! is read from the payload once, when the packet is made.

use bytes::Bytes;

use crate::media::codec::{self, Codec};
use crate::protocol::message::type_id;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    Audio,
    Video,
    /// `onMetaData` and other data messages.
    Data,
}

impl PacketKind {
    /// Its RTMP message type id, which is also its FLV tag type.
    pub fn type_id(self) -> u8 {
        match self {
            PacketKind::Audio => type_id::AUDIO,
            PacketKind::Video => type_id::VIDEO,
            PacketKind::Data => type_id::DATA_AMF0,
        }
    }
}

#[derive(Debug)]
pub struct Packet {
    pub kind: PacketKind,
    /// Milliseconds, wrapping at 2^32.
    pub timestamp: u32,
    /// The FLV tag body (for data, AMF0 values), exactly as many bytes as
    /// it holds: payloads are trimmed when they are read.
    pub payload: Bytes,
    /// A video frame a decoder can start from.
    pub keyframe: bool,
    /// Decoder configuration (or metadata, for data packets).
    pub sequence_header: bool,
    pub codec: Option<Codec>,
    /// The track of a one-track Enhanced RTMP multitrack message (its
    /// sequence header is kept apart from the other tracks').
    pub track: Option<u8>,
}

impl Packet {
    /// Builds a packet, inspecting the payload for keyframes and headers.
    pub fn new(kind: PacketKind, timestamp: u32, payload: Bytes) -> Packet {
        let (keyframe, sequence_header, codec, track) = match kind {
            PacketKind::Video => codec::inspect_video(&payload)
                .map_or((false, false, None, None), |i| {
                    (i.keyframe, i.sequence_header, Some(i.codec), i.track)
                }),
            PacketKind::Audio => codec::inspect_audio(&payload)
                .map_or((false, false, None, None), |i| {
                    (false, i.sequence_header, Some(i.codec), i.track)
                }),
            PacketKind::Data => (false, false, None, None),
        };
        Packet {
            kind,
            timestamp,
            payload,
            keyframe,
            sequence_header,
            codec,
            track,
        }
    }

    /// Marks a data packet as stream metadata, which outputs joining later
    /// receive before the sequence headers.
    pub fn into_metadata(self) -> Packet {
        Packet {
            sequence_header: true,
            ..self
        }
    }

    /// The same payload (not copied) at another timestamp.
    pub fn retimed(&self, timestamp: u32) -> Packet {
        Packet {
            timestamp,
            payload: self.payload.clone(),
            ..*self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspects_the_payload_once() {
        let key = Packet::new(PacketKind::Video, 0, Bytes::from_static(b"\x17\x01abc"));
        assert!(key.keyframe && !key.sequence_header);
        let header = Packet::new(
            PacketKind::Audio,
            0,
            Bytes::from_static(b"\xaf\x00\x12\x10"),
        );
        assert!(header.sequence_header);
        assert_eq!(header.codec, Some(Codec::LegacyAudio(10)));
    }

    #[test]
    fn retimed_shares_the_payload() {
        let packet = Packet::new(
            PacketKind::Audio,
            5,
            Bytes::from_static(b"\xaf\x00\x12\x10"),
        );
        let moved = packet.retimed(9);
        assert_eq!(moved.timestamp, 9);
        assert!(moved.sequence_header);
        assert_eq!(moved.payload.as_ptr(), packet.payload.as_ptr());
    }
}
