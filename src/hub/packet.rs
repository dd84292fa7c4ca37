//! A media or data message from a publisher, shared (behind an `Arc`) by
//! the GOP cache and every player's queue. Its chunked body is built once,
//! on first use, and reused by every player connection.

use std::sync::OnceLock;

use bytes::Bytes;

use crate::media::codec::{self, Codec};
use crate::protocol::chunk_encoder::chunk_body;
use crate::protocol::message::type_id;

/// Chunk stream ids the server sends on.
pub mod csid {
    pub const CONTROL: u32 = 2;
    pub const COMMAND: u32 = 3;
    pub const STREAM: u32 = 5;
    pub const AUDIO: u32 = 6;
    pub const VIDEO: u32 = 7;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    Audio,
    Video,
    /// `onMetaData` and other data messages (type 18).
    Data,
}

#[derive(Debug)]
pub struct Packet {
    pub kind: PacketKind,
    pub timestamp: u32,
    pub payload: Bytes,
    /// A video frame a decoder can start from.
    pub keyframe: bool,
    /// Decoder configuration (or metadata, for data packets).
    pub sequence_header: bool,
    pub codec: Option<Codec>,
    chunked: OnceLock<(usize, Vec<u8>)>,
}

impl Packet {
    /// Builds a packet, inspecting the payload for keyframes and headers.
    pub fn new(kind: PacketKind, timestamp: u32, payload: Bytes) -> Packet {
        let (keyframe, sequence_header, codec) = match kind {
            PacketKind::Video => codec::inspect_video(&payload).map_or((false, false, None), |i| {
                (i.keyframe, i.sequence_header, Some(i.codec))
            }),
            PacketKind::Audio => codec::inspect_audio(&payload).map_or((false, false, None), |i| {
                (false, i.sequence_header, Some(i.codec))
            }),
            PacketKind::Data => (false, false, None),
        };
        Packet {
            kind,
            timestamp,
            payload,
            keyframe,
            sequence_header,
            codec,
            chunked: OnceLock::new(),
        }
    }

    /// Marks a data packet as stream metadata, which players joining
    /// later receive before the sequence headers.
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
            chunked: OnceLock::new(),
            codec: self.codec,
            payload: self.payload.clone(),
            ..*self
        }
    }

    pub fn type_id(&self) -> u8 {
        match self.kind {
            PacketKind::Audio => type_id::AUDIO,
            PacketKind::Video => type_id::VIDEO,
            PacketKind::Data => type_id::DATA_AMF0,
        }
    }

    pub fn csid(&self) -> u32 {
        match self.kind {
            PacketKind::Audio => csid::AUDIO,
            PacketKind::Video => csid::VIDEO,
            PacketKind::Data => csid::STREAM,
        }
    }

    /// The payload split into chunks of `chunk_size` (without the first
    /// chunk's header), built once and shared by every connection. `None`
    /// for a chunk size other than the one it was first built for (the
    /// server uses one chunk size for every connection).
    pub fn chunked_body(&self, chunk_size: usize) -> Option<&[u8]> {
        if self.payload.len() <= chunk_size {
            return Some(&self.payload);
        }
        let (size, body) = self.chunked.get_or_init(|| {
            (
                chunk_size,
                chunk_body(&self.payload, chunk_size, self.csid(), self.timestamp),
            )
        });
        (*size == chunk_size).then_some(body.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_payloads_are_not_copied() {
        let payload = Bytes::from_static(b"\x17\x01abc");
        let packet = Packet::new(PacketKind::Video, 0, payload.clone());
        assert!(packet.keyframe);
        assert_eq!(packet.chunked_body(128).unwrap().as_ptr(), payload.as_ptr());
    }

    #[test]
    fn chunked_body_is_built_once_for_one_chunk_size() {
        let packet = Packet::new(PacketKind::Video, 0, Bytes::from(vec![0x27; 300]));
        let a = packet.chunked_body(128).unwrap();
        let b = packet.chunked_body(128).unwrap();
        assert_eq!(a.as_ptr(), b.as_ptr());
        assert_eq!(a.len(), 302);
        assert_eq!(packet.chunked_body(100), None);
        let other = Packet::new(PacketKind::Video, 0, Bytes::from(vec![0x27; 300]));
        assert_eq!(other.chunked_body(99).unwrap().len(), 303);
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
