//! The sending half of one RTMP connection: its chunk encoder, behind an
//! uncontended lock, writing to the connection's socket (shared with its
//! reader, not duplicated). Shared packets are written with vectored IO
//! straight from their payloads: each payload's pieces go out between the
//! connection's own small headers, so nothing is copied per connection.

use std::io::{self, IoSlice, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::hub::packet::{Packet, PacketKind};
use crate::protocol::chunk_decoder::DEFAULT_CHUNK_SIZE;
use crate::protocol::chunk_encoder::{ChunkEncoder, Continuation, MessageHeader, csid};
use crate::protocol::message::{RawMessage, type_id};
use crate::protocol::session::Outgoing;

/// Slices per vectored write: a 40 ms tick of a 2 Mbps stream needs about
/// nine. The group lives on the writer's stack, whose resident pages count
/// per connection (64 slices cost every connection thread another page).
const MAX_SLICES: usize = 32;
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
    match packet.kind {
        PacketKind::Audio => (csid::AUDIO, type_id::AUDIO),
        PacketKind::Video => (csid::VIDEO, type_id::VIDEO),
        PacketKind::Data => (csid::STREAM, type_id::DATA_AMF0),
    }
}

struct Inner {
    encoder: ChunkEncoder,
    /// Headers and one-off messages of the group being written.
    encoded: Vec<u8>,
}

pub struct ChunkWriter {
    socket: Arc<TcpStream>,
    inner: Mutex<Inner>,
}

impl ChunkWriter {
    pub fn new(socket: Arc<TcpStream>) -> Self {
        ChunkWriter {
            socket,
            inner: Mutex::new(Inner {
                encoder: ChunkEncoder::new(DEFAULT_CHUNK_SIZE),
                encoded: Vec::new(),
            }),
        }
    }

    /// Sends one message on chunk stream `csid` (a Set Chunk Size message
    /// switches the chunk size for what follows).
    pub fn send(&self, csid: u32, message: RawMessage) -> io::Result<()> {
        self.write_frames([Frame::Message { csid, message }], 0)
    }

    /// Sends frames in order with as few system calls as possible. Packets
    /// go out on message stream `stream_id`; messages keep their own.
    pub fn write_frames<'a>(
        &self,
        frames: impl IntoIterator<Item = Frame<'a>>,
        stream_id: u32,
    ) -> io::Result<()> {
        let mut inner = self.inner.lock();
        let mut group = Group {
            socket: &self.socket,
            spans: [Span::Encoded(0, 0); MAX_SLICES],
            count: 0,
        };
        let result = inner.write(&mut group, frames, stream_id);
        // A catch-up batch can be large: do not keep its buffer.
        inner.encoded.clear();
        inner.encoded.shrink_to(RETAINED_ENCODED);
        result
    }

    /// Closes both directions, waking any thread blocked on the socket.
    pub fn shutdown(&self) {
        let _ = self.socket.shutdown(Shutdown::Both);
    }
}

/// A piece of a vectored write: bytes of `Inner::encoded`, a borrowed
/// payload piece, or a continuation header.
#[derive(Clone, Copy)]
enum Span<'a> {
    Encoded(usize, usize),
    Borrowed(&'a [u8]),
    Continuation(Continuation),
}

/// The spans gathered for the next vectored write.
struct Group<'s, 'a> {
    socket: &'s TcpStream,
    spans: [Span<'a>; MAX_SLICES],
    count: usize,
}

impl<'a> Group<'_, 'a> {
    fn is_full(&self) -> bool {
        self.count == MAX_SLICES
    }

    fn push(&mut self, span: Span<'a>, encoded: &mut Vec<u8>) -> io::Result<()> {
        if self.is_full() {
            self.flush(encoded)?;
        }
        self.spans[self.count] = span;
        self.count += 1;
        Ok(())
    }

    /// Writes the gathered spans; `encoded` is empty afterwards.
    fn flush(&mut self, encoded: &mut Vec<u8>) -> io::Result<()> {
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        for (slice, span) in slices.iter_mut().zip(&self.spans[..self.count]) {
            *slice = match span {
                Span::Encoded(start, end) => IoSlice::new(encoded.get(*start..*end).unwrap_or(&[])),
                Span::Borrowed(bytes) => IoSlice::new(bytes),
                Span::Continuation(header) => IoSlice::new(header.as_bytes()),
            };
        }
        let result = write_all_vectored(self.socket, &mut slices[..self.count]);
        self.count = 0;
        encoded.clear();
        result
    }
}

impl Inner {
    fn write<'a>(
        &mut self,
        group: &mut Group<'_, 'a>,
        frames: impl IntoIterator<Item = Frame<'a>>,
        stream_id: u32,
    ) -> io::Result<()> {
        for frame in frames {
            // What goes into `encoded` must be written with its span: make
            // room first.
            if group.is_full() {
                group.flush(&mut self.encoded)?;
            }
            let start = self.encoded.len();
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
                    self.encoder.write_header(&header, &mut self.encoded);
                    group.push(Span::Encoded(start, self.encoded.len()), &mut self.encoded)?;
                    let continuation = Continuation::new(csid, packet.timestamp);
                    let pieces = packet.payload.chunks(self.encoder.chunk_size());
                    for (i, piece) in pieces.enumerate() {
                        if i > 0 {
                            group.push(Span::Continuation(continuation), &mut self.encoded)?;
                        }
                        group.push(Span::Borrowed(piece), &mut self.encoded)?;
                    }
                }
                Frame::Message { csid, message } => {
                    self.encoder
                        .write_message(csid, &message, &mut self.encoded);
                    group.push(Span::Encoded(start, self.encoded.len()), &mut self.encoded)?;
                }
            }
        }
        if group.count > 0 {
            group.flush(&mut self.encoded)?;
        }
        Ok(())
    }
}

fn write_all_vectored(mut socket: &TcpStream, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match socket.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::chunk_decoder::ChunkDecoder;
    use crate::protocol::message::Message;
    use bytes::Bytes;
    use std::io::Read;
    use std::net::TcpListener;

    fn pair() -> (ChunkWriter, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (ChunkWriter::new(Arc::new(server)), client)
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
        let (writer, mut client) = pair();
        writer
            .send(csid::CONTROL, Message::SetChunkSize(1000).encode(0, 0))
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
        writer.write_frames(frames, 1).unwrap();
        let got = read_messages(&mut client, 43);
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
}
