//! The GOP cache: audio and video since the last video keyframe, so a
//! player that joins mid-stream can start decoding at once. Bounded by
//! message count and bytes; past either bound it is emptied and waits for
//! the next keyframe, so a publisher that never sends one cannot grow it.

use std::sync::Arc;

use super::packet::{Packet, PacketKind};

#[derive(Debug)]
pub struct GopCache {
    packets: Vec<Arc<Packet>>,
    bytes: usize,
    video_frames: usize,
    max_packets: usize,
    max_bytes: usize,
}

impl GopCache {
    pub fn new(max_packets: usize, max_bytes: usize) -> Self {
        GopCache {
            packets: Vec::new(),
            bytes: 0,
            video_frames: 0,
            max_packets,
            max_bytes,
        }
    }

    /// Offers a live packet: a keyframe starts a new GOP; other audio and
    /// video join the current one, if there is one.
    pub fn push(&mut self, packet: &Arc<Packet>) {
        if packet.sequence_header || packet.kind == PacketKind::Data {
            return;
        }
        if packet.kind == PacketKind::Video && packet.keyframe {
            self.clear();
        } else if self.packets.is_empty() {
            return;
        }
        self.bytes += packet.payload.len();
        self.video_frames += usize::from(packet.kind == PacketKind::Video);
        self.packets.push(Arc::clone(packet));
        if self.packets.len() > self.max_packets || self.bytes > self.max_bytes {
            self.clear();
        }
    }

    pub fn clear(&mut self) {
        self.packets.clear();
        self.bytes = 0;
        self.video_frames = 0;
    }

    /// Video frames cached (the rest of the messages are audio).
    pub fn video_frames(&self) -> usize {
        self.video_frames
    }

    /// Payload bytes cached.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The cached packets, starting with a keyframe (or empty).
    pub fn packets(&self) -> &[Arc<Packet>] {
        &self.packets
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn video(ts: u32, key: bool) -> Arc<Packet> {
        let first = if key { 0x17 } else { 0x27 };
        Arc::new(Packet::new(
            PacketKind::Video,
            ts,
            Bytes::from(vec![first, 1, 0, 0, 0, 9]),
        ))
    }

    fn audio(ts: u32) -> Arc<Packet> {
        Arc::new(Packet::new(
            PacketKind::Audio,
            ts,
            Bytes::from_static(b"\xaf\x01abc"),
        ))
    }

    #[test]
    fn starts_at_keyframes_and_keeps_the_gop() {
        let mut gop = GopCache::new(100, 1 << 20);
        gop.push(&audio(0));
        gop.push(&video(0, false));
        assert!(
            gop.packets().is_empty(),
            "nothing before the first keyframe"
        );
        gop.push(&video(40, true));
        gop.push(&audio(45));
        gop.push(&video(80, false));
        assert_eq!(gop.packets().len(), 3);
        assert_eq!(gop.video_frames(), 2);
        assert!(gop.packets()[0].keyframe);
        gop.push(&video(120, true));
        assert_eq!(gop.packets().len(), 1);
    }

    #[test]
    fn sequence_headers_and_data_are_not_cached() {
        let mut gop = GopCache::new(100, 1 << 20);
        gop.push(&video(0, true));
        gop.push(&Arc::new(Packet::new(
            PacketKind::Video,
            0,
            Bytes::from_static(b"\x17\x00\x00"),
        )));
        gop.push(&Arc::new(Packet::new(
            PacketKind::Data,
            0,
            Bytes::from_static(b"\x02"),
        )));
        assert_eq!(gop.packets().len(), 1);
    }

    #[test]
    fn bounded_by_count_and_bytes() {
        let mut gop = GopCache::new(10, 1 << 20);
        gop.push(&video(0, true));
        for ts in 1..20 {
            gop.push(&video(ts, false));
        }
        assert!(gop.packets().is_empty(), "overflow empties the cache");
        gop.push(&video(100, true));
        assert_eq!(gop.packets().len(), 1);

        let mut gop = GopCache::new(1000, 20);
        gop.push(&video(0, true));
        gop.push(&video(1, false));
        gop.push(&video(2, false));
        gop.push(&video(3, false));
        assert!(gop.packets().is_empty());
    }
}
