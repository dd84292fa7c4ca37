//! The sending half of one RTMP connection: its chunk encoder and its
//! backlog (what the socket did not take yet). Shared packets are written
//! with vectored IO straight from their payloads: each payload's pieces go
//! out between the connection's own small headers, so nothing is copied
//! per connection. A write that must not wait (a player's, from a writer
//! thread) keeps what the socket refused in the backlog, still shared.

use std::io;
use std::io::IoSlice;
use std::time::Instant;

use bytes::Bytes;

use super::backlog::{Backlog, MAX_SLICES};
use super::wire::Wire;
use crate::hub::packet::{Packet, PacketKind};
use crate::protocol::chunk_decoder::DEFAULT_CHUNK_SIZE;
use crate::protocol::chunk_encoder::{ChunkEncoder, Continuation, MessageHeader, csid};
use crate::protocol::message::RawMessage;
use crate::protocol::session::Outgoing;

/// Capacity of the header buffer kept between writes.
const RETAINED_ENCODED: usize = 512;

/// Something to send: a shared media packet or a one-off message.
pub enum Frame<'a> {
    Packet(&'a Packet),
    Message { csid: u32, message: RawMessage },
}

impl From<Outgoing> for Frame<'static> {
    fn from(outgoing: Outgoing) -> Self {
        Frame::Message {
            csid: outgoing.csid,
            message: outgoing.message,
        }
    }
}

/// The chunk stream and message type a packet goes out on.
pub fn packet_wire_ids(packet: &Packet) -> (u32, u8) {
    let csid = match packet.kind {
        PacketKind::Audio => csid::AUDIO,
        PacketKind::Video => csid::VIDEO,
        PacketKind::Data => csid::STREAM,
    };
    (csid, packet.kind.type_id())
}

/// How a write treats a socket that has no room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendMode {
    /// Wait for room (up to the socket's write timeout) until all is
    /// written, the backlog first.
    Wait,
    /// Write what the socket takes now; everything else goes to the
    /// backlog (after what already waits there).
    Backlog,
    /// Write what the socket takes now; a unit begun is finished into the
    /// backlog, units not begun are left to the caller.
    UntilFull,
}

/// A connection's chunk encoder and its backlog.
pub struct ChunkWriter {
    encoder: ChunkEncoder,
    /// Headers and one-off messages of the group being written.
    encoded: Vec<u8>,
    backlog: Backlog,
}

impl Default for ChunkWriter {
    fn default() -> Self {
        ChunkWriter {
            encoder: ChunkEncoder::new(DEFAULT_CHUNK_SIZE),
            encoded: Vec::new(),
            backlog: Backlog::default(),
        }
    }
}

impl ChunkWriter {
    /// Bytes accepted but not yet written.
    pub fn backlog_len(&self) -> usize {
        self.backlog.len()
    }

    pub fn has_backlog(&self) -> bool {
        !self.backlog.is_empty()
    }

    /// Since when the socket has taken nothing of the backlog, if any.
    pub fn stalled_since(&self) -> Option<Instant> {
        self.backlog.stalled_since()
    }

    /// Writes the backlog (after what TLS holds) as far as `mode` allows;
    /// true when nothing waits.
    pub fn flush_backlog(&mut self, wire: &mut Wire<'_>, mode: SendMode) -> io::Result<bool> {
        let wait = mode == SendMode::Wait;
        Ok(wire.flush_pending(wait)? && self.backlog.write(wire, wait)?)
    }

    /// Sends units of frames in order with as few system calls as
    /// possible; packets go out on message stream `stream_id`, messages on
    /// their own. Returns how many units were begun: all of them unless
    /// `mode` is `UntilFull` and the socket filled up. Each frame's chunk
    /// headers are encoded once it begins, so a unit begun is finished
    /// (into the backlog, if need be) before the write stops.
    pub fn write_units<'a, U>(
        &mut self,
        wire: &mut Wire<'_>,
        units: impl IntoIterator<Item = U>,
        stream_id: u32,
        mode: SendMode,
    ) -> io::Result<usize>
    where
        U: IntoIterator<Item = Frame<'a>>,
    {
        let backlog_empty = self.flush_backlog(wire, mode)?;
        if !backlog_empty && mode == SendMode::UntilFull {
            return Ok(0);
        }
        let mut group = Group {
            wire,
            mode,
            spans: [Span::Encoded(0, 0); MAX_SLICES],
            count: 0,
            // Nothing may overtake what already waits.
            stalled: !backlog_empty,
        };
        let result = self.write(&mut group, units, stream_id);
        // A catch-up batch can be large: do not keep its buffer.
        self.encoded.clear();
        self.encoded.shrink_to(RETAINED_ENCODED);
        result
    }

    /// Sends one message on chunk stream `csid`, waiting for room (a Set
    /// Chunk Size message switches the chunk size for what follows).
    pub fn send(&mut self, wire: &mut Wire<'_>, csid: u32, message: RawMessage) -> io::Result<()> {
        let frame = Frame::Message { csid, message };
        self.write_frames(wire, [frame], 0, SendMode::Wait)
    }

    /// Sends frames in order (see [`ChunkWriter::write_units`]).
    pub fn write_frames<'a>(
        &mut self,
        wire: &mut Wire<'_>,
        frames: impl IntoIterator<Item = Frame<'a>>,
        stream_id: u32,
        mode: SendMode,
    ) -> io::Result<()> {
        self.write_units(
            wire,
            frames.into_iter().map(std::iter::once),
            stream_id,
            mode,
        )
        .map(drop)
    }

    fn write<'a, U>(
        &mut self,
        group: &mut Group<'_, '_, 'a>,
        units: impl IntoIterator<Item = U>,
        stream_id: u32,
    ) -> io::Result<usize>
    where
        U: IntoIterator<Item = Frame<'a>>,
    {
        let mut begun = 0;
        for unit in units {
            if group.stalled && group.mode == SendMode::UntilFull {
                break;
            }
            begun += 1;
            for frame in unit {
                self.write_frame(group, frame, stream_id)?;
            }
        }
        if group.count > 0 {
            group.flush(&mut self.encoded, &mut self.backlog)?;
        }
        Ok(begun)
    }

    fn write_frame<'a>(
        &mut self,
        group: &mut Group<'_, '_, 'a>,
        frame: Frame<'a>,
        stream_id: u32,
    ) -> io::Result<()> {
        // What goes into `encoded` must be written with its span: make
        // room first.
        if group.is_full() {
            group.flush(&mut self.encoded, &mut self.backlog)?;
        }
        let start = self.encoded.len();
        let (encoded, backlog) = (&mut self.encoded, &mut self.backlog);
        match frame {
            Frame::Packet(packet) => {
                let (csid, type_id) = packet_wire_ids(packet);
                let header = MessageHeader {
                    csid,
                    timestamp: packet.timestamp,
                    length: packet.payload.len() as u32,
                    type_id,
                    stream_id,
                };
                self.encoder.write_header(&header, encoded);
                group.push(Span::Encoded(start, encoded.len()), encoded, backlog)?;
                let continuation = Continuation::new(csid, packet.timestamp);
                let payload = &packet.payload;
                for (i, piece) in payload.chunks(self.encoder.chunk_size()).enumerate() {
                    if i > 0 {
                        group.push(Span::Continuation(continuation), encoded, backlog)?;
                    }
                    group.push(Span::Shared { payload, piece }, encoded, backlog)?;
                }
            }
            Frame::Message { csid, message } => {
                self.encoder.write_message(csid, &message, encoded);
                group.push(Span::Encoded(start, encoded.len()), encoded, backlog)?;
            }
        }
        Ok(())
    }
}

/// A piece of a vectored write: bytes of `ChunkWriter::encoded`, a piece of
/// a shared payload, or a continuation header.
#[derive(Clone, Copy)]
enum Span<'a> {
    Encoded(usize, usize),
    Shared { payload: &'a Bytes, piece: &'a [u8] },
    Continuation(Continuation),
}

impl<'a> Span<'a> {
    fn bytes<'b>(&'b self, encoded: &'b [u8]) -> &'b [u8] {
        match self {
            Span::Encoded(start, end) => encoded.get(*start..*end).unwrap_or(&[]),
            Span::Shared { piece, .. } => piece,
            Span::Continuation(header) => header.as_bytes(),
        }
    }

    /// The span's bytes from `offset` on, to keep: shared pieces stay
    /// shared.
    fn keep(&self, offset: usize, encoded: &[u8]) -> Bytes {
        match self {
            Span::Shared { payload, piece } => {
                payload.slice_ref(piece.get(offset..).unwrap_or_default())
            }
            _ => Bytes::copy_from_slice(self.bytes(encoded).get(offset..).unwrap_or_default()),
        }
    }
}

/// The spans gathered for the next vectored write.
struct Group<'g, 'w, 'a> {
    wire: &'g mut Wire<'w>,
    mode: SendMode,
    spans: [Span<'a>; MAX_SLICES],
    count: usize,
    /// The socket is full: what follows goes to the backlog.
    stalled: bool,
}

impl<'a> Group<'_, '_, 'a> {
    fn is_full(&self) -> bool {
        self.count == MAX_SLICES
    }

    fn push(
        &mut self,
        span: Span<'a>,
        encoded: &mut Vec<u8>,
        backlog: &mut Backlog,
    ) -> io::Result<()> {
        if !self.stalled && self.is_full() {
            self.flush(encoded, backlog)?;
        }
        if self.stalled {
            backlog.push(span.keep(0, encoded));
            return Ok(());
        }
        self.spans[self.count] = span;
        self.count += 1;
        Ok(())
    }

    /// Writes the gathered spans as far as the mode allows; what is left
    /// goes to the backlog. `encoded` is empty afterwards.
    fn flush(&mut self, encoded: &mut Vec<u8>, backlog: &mut Backlog) -> io::Result<()> {
        let spans = &self.spans[..self.count];
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        for (slice, span) in slices.iter_mut().zip(spans) {
            *slice = IoSlice::new(span.bytes(encoded));
        }
        let slices = &mut slices[..self.count];
        let total: usize = slices.iter().map(|s| s.len()).sum();
        let written = match self.mode {
            SendMode::Wait => self.wire.send_all(slices).map(|()| total),
            SendMode::Backlog | SendMode::UntilFull => self.wire.send_now(slices),
        };
        let result = written.map(|mut written| {
            if written < total {
                self.stalled = true;
                for span in spans {
                    let len = span.bytes(encoded).len();
                    if written >= len {
                        written -= len;
                        continue;
                    }
                    backlog.push(span.keep(written, encoded));
                    written = 0;
                }
            }
        });
        self.count = 0;
        encoded.clear();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::chunk_decoder::ChunkDecoder;
    use crate::protocol::message::{Message, type_id};
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        crate::rtmp::backlog::tests::small_buffers(&server, &client);
        (server, client)
    }

    fn read_messages(socket: &mut TcpStream, n: usize) -> Vec<RawMessage> {
        let mut decoder = ChunkDecoder::new(1 << 20);
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while out.len() < n {
            while let Some(m) = decoder.decode().unwrap() {
                out.push(m);
            }
            if out.len() >= n {
                break;
            }
            let read = socket.read(&mut buf).unwrap();
            assert!(read > 0);
            decoder.feed(&buf[..read]);
        }
        out
    }

    #[test]
    fn frames_arrive_in_order_across_groups_and_chunk_sizes() {
        let (socket, mut client) = pair();
        let reader = std::thread::spawn(move || read_messages(&mut client, 43));
        let mut writer = ChunkWriter::default();
        let set_chunk_size = Frame::Message {
            csid: csid::CONTROL,
            message: Message::SetChunkSize(1000).encode(0, 0),
        };
        writer
            .write_frames(
                &mut Wire::plain(&socket),
                [set_chunk_size],
                0,
                SendMode::Wait,
            )
            .unwrap();
        // Payloads from one byte to many chunks, past one group's slices,
        // and one with an extended timestamp.
        let mut packets: Vec<Packet> = (0..40u32)
            .map(|n| {
                Packet::new(
                    PacketKind::Audio,
                    n * 20,
                    Bytes::from(vec![n as u8; 1 + n as usize * 300]),
                )
            })
            .collect();
        packets.push(Packet::new(
            PacketKind::Video,
            0x0100_0000,
            Bytes::from(vec![0x27; 5000]),
        ));
        let mut frames: Vec<Frame<'_>> = packets.iter().map(Frame::Packet).collect();
        frames.insert(
            3,
            Frame::Message {
                csid: csid::COMMAND,
                message: Message::WindowAckSize(1).encode(0, 0),
            },
        );
        writer
            .write_frames(&mut Wire::plain(&socket), frames, 1, SendMode::Wait)
            .unwrap();
        let got = reader.join().unwrap();
        assert_eq!(got[0].type_id, type_id::SET_CHUNK_SIZE);
        assert_eq!(got[4].type_id, type_id::WINDOW_ACK_SIZE);
        let audio: Vec<_> = got.iter().filter(|m| m.type_id == 8).collect();
        assert_eq!(audio.len(), 40);
        for (n, m) in audio.iter().enumerate() {
            assert_eq!(m.payload.len(), 1 + n * 300);
            assert!(m.payload.iter().all(|&b| b == n as u8));
            assert_eq!((m.stream_id, m.timestamp), (1, n as u32 * 20));
        }
        let video = got.last().unwrap();
        assert_eq!((video.timestamp, video.payload.len()), (0x0100_0000, 5000));
    }

    #[test]
    fn a_full_socket_stops_the_write_between_units_and_nothing_is_lost() {
        let (socket, mut client) = pair();
        let mut writer = ChunkWriter::default();
        // 400 packets of 9 KiB (3 chunks each): megabytes the peer does
        // not read yet.
        let packets: Vec<Packet> = (0..400u32)
            .map(|n| Packet::new(PacketKind::Video, n, Bytes::from(vec![n as u8; 9000])))
            .collect();
        let mut next = 0;
        let begun = writer
            .write_units(
                &mut Wire::plain(&socket),
                packets.iter().map(|p| [Frame::Packet(p)]),
                1,
                SendMode::UntilFull,
            )
            .unwrap();
        assert!(begun > 0 && begun < packets.len(), "stopped when full");
        assert!(writer.backlog_len() > 0 && writer.stalled_since().is_some());
        next += begun;
        // A one-off message now waits behind the backlog.
        let ping = Frame::Message {
            csid: csid::CONTROL,
            message: Message::WindowAckSize(7).encode(0, 0),
        };
        writer
            .write_frames(&mut Wire::plain(&socket), [ping], 0, SendMode::Backlog)
            .unwrap();
        // Nothing more begins while the backlog waits.
        let none = writer
            .write_units(
                &mut Wire::plain(&socket),
                packets[next..].iter().map(|p| [Frame::Packet(p)]),
                1,
                SendMode::UntilFull,
            )
            .unwrap();
        assert_eq!(none, 0);
        let reader = std::thread::spawn(move || read_messages(&mut client, 401));
        while next < packets.len() {
            next += writer
                .write_units(
                    &mut Wire::plain(&socket),
                    packets[next..].iter().map(|p| [Frame::Packet(p)]),
                    1,
                    SendMode::UntilFull,
                )
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        while !writer
            .flush_backlog(&mut Wire::plain(&socket), SendMode::UntilFull)
            .unwrap()
        {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let got = reader.join().unwrap();
        let media: Vec<_> = got.iter().filter(|m| m.type_id == type_id::VIDEO).collect();
        assert_eq!(media.len(), 400);
        for (n, m) in media.iter().enumerate() {
            assert_eq!(m.timestamp, n as u32);
            assert!(m.payload.len() == 9000 && m.payload.iter().all(|&b| b == n as u8));
        }
        let ack = got
            .iter()
            .position(|m| m.type_id == type_id::WINDOW_ACK_SIZE);
        assert_eq!(
            ack,
            Some(begun),
            "the message went out after what was begun before it"
        );
    }
}
