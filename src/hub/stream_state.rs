//! The state a stream keeps under its lock: the input feeding it, the live
//! session, media description, metadata and sequence headers, the GOP
//! cache and the output slots, with the two ways packets and notices
//! reach every output (offered under the output's policy, or queued as an
//! event).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::gop_cache::GopCache;
use super::history::SwitchRecord;
use super::output::{Outbound, OutputStats};
use super::packet::{Packet, PacketKind};
use super::slot::{Offer, OutputSlot, ResumeContext};
use super::stream_status::{BitrateSamples, MediaDescription};
use crate::metrics::StreamCounts;

/// Sequence headers of multitrack streams' other tracks kept per stream.
pub(super) const MAX_TRACK_HEADERS: usize = 16;

/// The input feeding the stream now.
pub(super) struct InputState {
    pub(super) id: u64,
    pub(super) remote_addr: Option<SocketAddr>,
    pub(super) connected_at: SystemTime,
    pub(super) started: Instant,
}

/// A live session: from the first input's start to the owner ending it,
/// whatever inputs come and go meanwhile. Its figures go to the history.
pub(super) struct LiveSession {
    pub(super) opened_at: SystemTime,
    pub(super) started: Instant,
    pub(super) baseline: StreamCounts,
    pub(super) peak_players: usize,
    pub(super) total_players: u64,
    /// The last input that fed it (connection, address).
    pub(super) last_input: (u64, Option<SocketAddr>),
    /// Input switches of a `-source` stream (bounded) and their count.
    pub(super) switches: Vec<SwitchRecord>,
    pub(super) switch_count: u64,
}

pub(super) struct StreamState {
    pub(super) input: Option<InputState>,
    pub(super) session: Option<LiveSession>,
    /// Fed by a `-source`, which owns it: the session stays open when
    /// the input leaves, publishers are refused, and what comes in is not
    /// counted again server-wide (its inputs counted it).
    pub(super) owned: bool,
    pub(super) media: MediaDescription,
    pub(super) samples: BitrateSamples,
    pub(super) metadata: Option<Arc<Packet>>,
    pub(super) video_header: Option<Arc<Packet>>,
    pub(super) audio_header: Option<Arc<Packet>>,
    /// Sequence headers of the other tracks of a multitrack stream (sent
    /// one track a message), one per kind and track.
    pub(super) track_headers: Vec<Arc<Packet>>,
    /// Metadata and sequence headers in the order outputs need them.
    pub(super) headers: Vec<Arc<Packet>>,
    pub(super) gop: GopCache,
    pub(super) has_video: bool,
    pub(super) last_timestamp: u32,
    pub(super) outputs: Vec<OutputSlot>,
}

impl StreamState {
    pub(super) fn reset_media(&mut self) {
        self.media = MediaDescription::default();
        self.metadata = None;
        self.video_header = None;
        self.audio_header = None;
        self.track_headers.clear();
        self.headers.clear();
        self.gop.clear();
        self.has_video = false;
    }

    pub(super) fn rebuild_headers(&mut self) {
        self.headers = [&self.metadata, &self.video_header, &self.audio_header]
            .into_iter()
            .flatten()
            .chain(&self.track_headers)
            .cloned()
            .collect();
    }

    /// Keeps sequence header `packet`: the stream's own for its kind, or
    /// that of a multitrack stream's track other than 0 (up to
    /// [`MAX_TRACK_HEADERS`]; more are forwarded but not kept).
    pub(super) fn keep_header(&mut self, packet: &Arc<Packet>) {
        match (packet.kind, packet.track) {
            (PacketKind::Data, _) => return,
            (PacketKind::Video, None | Some(0)) => self.video_header = Some(Arc::clone(packet)),
            (PacketKind::Audio, None | Some(0)) => self.audio_header = Some(Arc::clone(packet)),
            (kind, track) => {
                let same = |h: &Arc<Packet>| h.kind == kind && h.track == track;
                if let Some(slot) = self.track_headers.iter_mut().find(|h| same(h)) {
                    *slot = Arc::clone(packet);
                } else if self.track_headers.len() < MAX_TRACK_HEADERS {
                    self.track_headers.push(Arc::clone(packet));
                }
            }
        }
        self.rebuild_headers();
    }

    pub(super) fn players(&self) -> impl Iterator<Item = &OutputSlot> {
        self.outputs.iter().filter(|o| o.options().counts_as_player)
    }

    pub(super) fn is_input(&self, id: u64) -> bool {
        self.input.as_ref().map(|i| i.id) == Some(id)
    }

    /// Queues an event on every output; one that cannot take even that is
    /// dropped (and woken) rather than left waiting forever. Returns the
    /// players dropped.
    pub(super) fn notify_all(&mut self, event: impl Fn() -> Outbound) -> Vec<OutputStats> {
        let mut dropped = Vec::new();
        self.outputs.retain_mut(|slot| {
            let told = slot.notify(event());
            if !told {
                slot.wake_dropped();
                if slot.options().counts_as_player {
                    dropped.push(slot.stats());
                }
            }
            told
        });
        dropped
    }

    /// Offers a packet to every output; one whose policy says so is
    /// dropped. Returns the players dropped (no allocation if none).
    pub(super) fn fan_out(&mut self, packet: &Arc<Packet>) -> Vec<OutputStats> {
        let ctx = ResumeContext {
            audio_only: !self.has_video,
            metadata: self.metadata.as_ref(),
            video_header: self.video_header.as_ref(),
            audio_header: self.audio_header.as_ref(),
        };
        let mut dropped = Vec::new();
        self.outputs.retain_mut(|slot| {
            if slot.offer(packet, &ctx) == Offer::Disconnect {
                slot.wake_dropped();
                if slot.options().counts_as_player {
                    dropped.push(slot.stats());
                }
                return false;
            }
            true
        });
        dropped
    }
}
