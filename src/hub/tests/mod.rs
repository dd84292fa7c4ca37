//! The hub without sockets: what outputs get (`outputs.rs`: fan-out,
//! catch-up, the slow-subscriber policy, pausing and switching kinds) and a
//! stream's life (`lifecycle.rs`: inputs coming and going, its owner, the
//! events it emits). This file holds their common helpers.

mod lifecycle;
mod outputs;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;

use super::events::{Event, Events};
use super::history::EndReason;
use super::input::Input;
use super::output::{Outbound, OutputKind, OutputOptions, OutputQueue, OutputSpec, Released};
use super::packet::{Packet, PacketKind};
use super::stream::{Stream, StreamSettings};
use super::stream_key::StreamKey;
use crate::config::SlowSubscriberPolicy;
use crate::metrics::{self, Metrics};
use crate::protocol::amf0::{self, Value};
use crate::protocol::message::{Message, RawMessage, type_id};

pub(super) const INPUT: u64 = 1;

pub(super) fn settings(gop_cache: bool) -> StreamSettings {
    StreamSettings {
        gop_cache,
        gop_max_messages: 2500,
        gop_max_bytes: 32 << 20,
    }
}

pub(super) fn new_stream(gop_cache: bool) -> (Stream, Arc<Metrics>, Arc<Events>) {
    let metrics = Arc::new(Metrics::default());
    let events = Arc::new(Events::new(Arc::clone(&metrics)));
    let stream = Stream::new(
        &StreamKey::new("live", "cam").unwrap(),
        settings(gop_cache),
        Arc::clone(&metrics),
        Arc::clone(&events),
    );
    (stream, metrics, events)
}

pub(super) fn options(
    max_messages: usize,
    max_bytes: usize,
    policy: SlowSubscriberPolicy,
) -> OutputOptions {
    OutputOptions {
        kind: OutputKind::RtmpPlayer,
        max_messages,
        max_bytes,
        policy,
        counts_as_player: true,
    }
}

pub(super) fn spec(id: u64, options: OutputOptions) -> OutputSpec {
    OutputSpec {
        id,
        remote_addr: None,
        options,
        on_drop: None,
        doorbell: None,
    }
}

pub(super) fn roomy() -> OutputOptions {
    options(1000, 64 << 20, SlowSubscriberPolicy::Skip)
}

pub(super) fn video(n: u32, key: bool, len: usize) -> Packet {
    let mut payload = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
    payload.extend_from_slice(&n.to_be_bytes());
    payload.resize(len.max(9), 0);
    Packet::new(PacketKind::Video, n * 40, Bytes::from(payload))
}

pub(super) fn avc_header(version: u8) -> Packet {
    Packet::new(
        PacketKind::Video,
        0,
        Bytes::from(vec![0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, version]),
    )
}

pub(super) fn aac_header() -> Packet {
    Packet::new(
        PacketKind::Audio,
        0,
        Bytes::from_static(&[0xaf, 0, 0x12, 0x10]),
    )
}

pub(super) fn aac(n: u32) -> Packet {
    Packet::new(
        PacketKind::Audio,
        n * 40 + 5,
        Bytes::from(vec![0xaf, 1, n as u8]),
    )
}

pub(super) fn metadata(width: f64) -> Packet {
    let values = [
        Value::string("onMetaData"),
        Value::EcmaArray(vec![("width".into(), Value::Number(width))]),
    ];
    Packet::new(PacketKind::Data, 0, Bytes::from(amf0::encode_all(&values)))
}

/// Everything queued now.
pub(super) fn drain(queue: &OutputQueue) -> Vec<Outbound> {
    let mut out = Vec::new();
    while let Ok(Some(item)) = queue.try_recv() {
        if let Outbound::Media(p) = &item {
            queue.release_queued(p.payload.len());
        }
        out.push(item);
    }
    out
}

pub(super) fn media(items: &[Outbound]) -> Vec<Arc<Packet>> {
    items
        .iter()
        .filter_map(|i| match i {
            Outbound::Media(p) => Some(Arc::clone(p)),
            _ => None,
        })
        .collect()
}

/// The frame number of a [`video`] packet.
pub(super) fn number(packet: &Packet) -> Option<u32> {
    let b = packet.payload.get(5..9)?;
    (packet.kind == PacketKind::Video && !packet.sequence_header)
        .then(|| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}
