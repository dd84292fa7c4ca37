//! The sending half of one connection: the socket and its chunk encoder.
//! It is shared (behind an `Arc` and an uncontended lock) with the stream,
//! which may shut a slow player's socket from the publisher's thread; only
//! the connection's own thread writes. Shared media bodies are written with
//! vectored IO, without copying.

use parking_lot::Mutex;
use std::io::{self, IoSlice, Write};
use std::net::{Shutdown, TcpStream};

use crate::hub::packet::{Packet, csid};
use crate::protocol::chunk_decoder::DEFAULT_CHUNK_SIZE;
use crate::protocol::chunk_encoder::{ChunkEncoder, MessageHeader};
use crate::protocol::message::{Message, RawMessage};

/// Frames written per vectored write (two slices each at most).
const GROUP_FRAMES: usize = 16;
/// Capacity of the header buffer kept between writes.
const RETAINED_ENCODED: usize = 512;

/// Something to send: a shared media packet or a one-off message.
pub enum Frame<'a> {
    Packet(&'a Packet),
    Message { csid: u32, message: RawMessage },
}

struct Inner {
    socket: TcpStream,
    encoder: ChunkEncoder,
    encoded: Vec<u8>,
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
    /// Writes frames in groups of up to `GROUP_FRAMES`: each group's chunk
    /// headers are encoded into `encoded`, shared bodies are borrowed from
    /// their packets (no copy, no reference count touched), and the group
    /// goes out in one vectored write from slices on the stack.
    fn write<'a>(
        &mut self,
        frames: &mut dyn Iterator<Item = Frame<'a>>,
        stream_id: u32,
    ) -> io::Result<()> {
        let chunk_size = self.encoder.chunk_size();
        let mut frames = frames.peekable();
        while frames.peek().is_some() {
            self.encoded.clear();
            let mut spans = [Span::Encoded(0, 0); 2 * GROUP_FRAMES];
            let mut count = 0;
            for frame in frames.by_ref().take(GROUP_FRAMES) {
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
                        match packet.chunked_body(chunk_size) {
                            Some(body) => {
                                self.encoder.write_header(&header, &mut self.encoded);
                                spans[count] = Span::Encoded(start, self.encoded.len());
                                spans[count + 1] = Span::Body(body);
                                count += 2;
                            }
                            None => {
                                // Not chunked for this size: encode it whole.
                                let message = RawMessage {
                                    type_id: header.type_id,
                                    timestamp: header.timestamp,
                                    stream_id,
                                    payload: packet.payload.clone(),
                                };
                                self.encoder.write_message(
                                    header.csid,
                                    &message,
                                    &mut self.encoded,
                                );
                                spans[count] = Span::Encoded(start, self.encoded.len());
                                count += 1;
                            }
                        }
                    }
                    Frame::Message { csid, message } => {
                        self.encoder
                            .write_message(csid, &message, &mut self.encoded);
                        spans[count] = Span::Encoded(start, self.encoded.len());
                        count += 1;
                    }
                }
            }
            let mut slices = [IoSlice::new(&[]); 2 * GROUP_FRAMES];
            for (slice, span) in slices.iter_mut().zip(&spans[..count]) {
                *slice = match *span {
                    Span::Encoded(start, end) => {
                        IoSlice::new(self.encoded.get(start..end).unwrap_or(&[]))
                    }
                    Span::Body(body) => IoSlice::new(body),
                };
            }
            write_all_vectored(&mut self.socket, &mut slices[..count])?;
        }
        // A catch-up batch can be large: do not keep its buffer.
        self.encoded.shrink_to(RETAINED_ENCODED);
        Ok(())
    }
}

/// A piece of a group: encoded header bytes, or a borrowed shared body.
#[derive(Clone, Copy)]
enum Span<'a> {
    Encoded(usize, usize),
    Body(&'a [u8]),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::packet::PacketKind;
    use crate::protocol::chunk_decoder::ChunkDecoder;
    use bytes::Bytes;
    use std::io::Read;
    use std::net::TcpListener;

    fn pair() -> (ConnWriter, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (ConnWriter::new(server).unwrap(), client)
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
    fn groups_of_frames_arrive_in_order_with_shared_and_fallback_bodies() {
        let (writer, mut client) = pair();
        // Built for another chunk size first: written by the fallback.
        let odd = Packet::new(PacketKind::Video, 5, Bytes::from(vec![0x27; 1000]));
        assert!(odd.chunked_body(512).is_some());
        let packets: Vec<Packet> = (0..40u32)
            .map(|n| {
                Packet::new(
                    PacketKind::Audio,
                    n * 20,
                    Bytes::from(vec![n as u8; 50 + n as usize * 10]),
                )
            })
            .collect();
        let mut frames: Vec<Frame<'_>> = packets.iter().map(Frame::Packet).collect();
        frames.insert(3, Frame::Packet(&odd));
        frames.push(Frame::Message {
            csid: csid::COMMAND,
            message: Message::WindowAckSize(1).encode(0, 0),
        });
        writer.write_frames(frames, 1).unwrap();
        let got = read_messages(&mut client, 42);
        assert_eq!(got[3].payload.len(), 1000);
        assert_eq!(got[3].timestamp, 5);
        let audio: Vec<_> = got.iter().filter(|m| m.type_id == 8).collect();
        assert_eq!(audio.len(), 40);
        for (n, m) in audio.iter().enumerate() {
            assert_eq!(m.payload.len(), 50 + n * 10);
            assert!(m.payload.iter().all(|&b| b == n as u8));
            assert_eq!(m.stream_id, 1);
        }
        assert_eq!(got[41].type_id, 5);
    }
}
