//! The sending half of one connection: the socket and its chunk encoder
//! behind one lock, so the connection thread (command replies, acks) and a
//! player's writer thread (media) never interleave partial chunks.
//! Shared media bodies are written with vectored IO, without copying.

use std::io::{self, IoSlice, Write};
use std::net::{Shutdown, TcpStream};
use std::ops::Range;

use bytes::Bytes;
use parking_lot::Mutex;

use super::packet::{Packet, csid};
use crate::protocol::chunk_decoder::DEFAULT_CHUNK_SIZE;
use crate::protocol::chunk_encoder::{ChunkEncoder, MessageHeader};
use crate::protocol::message::{Message, RawMessage};

/// Batches of up to this many slices are written from a stack array.
const STACK_SLICES: usize = 16;
/// Capacity of the header buffer kept between writes.
const RETAINED_ENCODED: usize = 512;

/// Something to send: a shared media packet or a one-off message.
pub enum Frame<'a> {
    Packet(&'a Packet),
    Message { csid: u32, message: RawMessage },
}

enum Segment {
    Encoded(Range<usize>),
    Shared(Bytes),
}

struct Inner {
    socket: TcpStream,
    encoder: ChunkEncoder,
    encoded: Vec<u8>,
    segments: Vec<Segment>,
}

pub struct ConnWriter {
    inner: Mutex<Inner>,
    /// A second handle on the socket, to shut it down while a writer is
    /// blocked holding the lock.
    closer: TcpStream,
}

impl ConnWriter {
    pub fn new(socket: TcpStream) -> io::Result<Self> {
        Ok(ConnWriter {
            closer: socket.try_clone()?,
            inner: Mutex::new(Inner {
                socket,
                encoder: ChunkEncoder::new(DEFAULT_CHUNK_SIZE),
                encoded: Vec::new(),
                segments: Vec::new(),
            }),
        })
    }

    /// Announces and switches to a new outbound chunk size.
    pub fn set_chunk_size(&self, size: usize) -> io::Result<()> {
        let mut inner = self.inner.lock();
        let announce = Message::SetChunkSize(size as u32).encode(0, 0);
        inner.write(
            &mut [Frame::Message {
                csid: csid::CONTROL,
                message: announce,
            }]
            .into_iter(),
            0,
        )?;
        inner.encoder.set_chunk_size(size);
        Ok(())
    }

    /// Sends one message on chunk stream `csid`.
    pub fn send(&self, csid: u32, message: RawMessage) -> io::Result<()> {
        self.write_frames([Frame::Message { csid, message }], 0)
    }

    /// Sends frames in order with as few syscalls as possible. Packets go
    /// out on message stream `stream_id`; messages keep their own.
    pub fn write_frames<'a>(
        &self,
        frames: impl IntoIterator<Item = Frame<'a>>,
        stream_id: u32,
    ) -> io::Result<()> {
        self.inner.lock().write(&mut frames.into_iter(), stream_id)
    }

    /// Closes both directions, waking any thread blocked on the socket.
    pub fn shutdown(&self) {
        let _ = self.closer.shutdown(Shutdown::Both);
    }
}

impl Inner {
    fn write<'a>(
        &mut self,
        frames: &mut dyn Iterator<Item = Frame<'a>>,
        stream_id: u32,
    ) -> io::Result<()> {
        self.encoded.clear();
        self.segments.clear();
        let chunk_size = self.encoder.chunk_size();
        for frame in frames {
            let start = self.encoded.len();
            match frame {
                Frame::Packet(packet) => {
                    let header = MessageHeader {
                        csid: packet.csid(),
                        timestamp: packet.timestamp,
                        length: packet.payload.len() as u32,
                        type_id: packet.type_id(),
                        stream_id,
                    };
                    self.encoder.write_header(&header, &mut self.encoded);
                    self.segments
                        .push(Segment::Encoded(start..self.encoded.len()));
                    self.segments
                        .push(Segment::Shared(packet.chunked_body(chunk_size)));
                }
                Frame::Message { csid, message } => {
                    self.encoder
                        .write_message(csid, &message, &mut self.encoded);
                    self.segments
                        .push(Segment::Encoded(start..self.encoded.len()));
                }
            }
        }
        let result = if self.segments.len() <= STACK_SLICES {
            // The usual batch: its slices live on the stack.
            let mut slices = [IoSlice::new(&[]); STACK_SLICES];
            for (slice, segment) in slices.iter_mut().zip(&self.segments) {
                *slice = segment.slice(&self.encoded);
            }
            write_all_vectored(&mut self.socket, &mut slices[..self.segments.len()])
        } else {
            let mut slices: Vec<IoSlice<'_>> = self
                .segments
                .iter()
                .map(|s| s.slice(&self.encoded))
                .collect();
            write_all_vectored(&mut self.socket, &mut slices)
        };
        // A catch-up batch can be large: do not keep its buffers.
        self.segments.clear();
        self.segments.shrink_to(STACK_SLICES);
        self.encoded.shrink_to(RETAINED_ENCODED);
        result
    }
}

impl Segment {
    fn slice<'a>(&'a self, encoded: &'a [u8]) -> IoSlice<'a> {
        match self {
            Segment::Encoded(range) => IoSlice::new(encoded.get(range.clone()).unwrap_or(&[])),
            Segment::Shared(bytes) => IoSlice::new(bytes),
        }
    }
}

fn write_all_vectored(socket: &mut TcpStream, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
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
