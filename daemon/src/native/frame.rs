//! Framing: a big-endian length word that counts itself, the 24-byte header, the XDR payload.
//! Frames outside libvirt's bounds close the connection, as libvirtd does (there is no serial to
//! answer an unreadable frame with).

use super::protocol::{FRAME_LEN_MAX, FRAME_LEN_MIN, HEADER_BYTES, Header, LEN_BYTES};
use super::xdr::{self, Xdr};
use crate::grpc::budget::{ByteBudget, Reservation};
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// One message read off the socket.
#[derive(Debug)]
pub struct Frame {
    /// Its header.
    pub header: Header,
    /// The XDR payload after the header.
    pub payload: Vec<u8>,
}

/// Why no frame was read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The client closed the connection between frames.
    #[error("the client closed the connection")]
    Closed,
    /// The length word is out of bounds.
    #[error("frame of {0} bytes is out of bounds ({FRAME_LEN_MIN} to {FRAME_LEN_MAX})")]
    Length(u32),
    /// The frame did not arrive whole in time.
    #[error("a frame was not sent whole within {0:?}")]
    Slow(Duration),
    /// The daemon-wide budget for requests being received was spent while this frame arrived: it
    /// was read to its end and dropped, so the connection stays in step, and its call gets
    /// `error` (a client that waits and retries gets through).
    #[error("frame dropped: {error}")]
    Refused {
        /// The dropped frame's header, to answer it.
        header: Header,
        /// `Error::Busy`, naming the budget.
        error: crate::error::Error,
    },
    /// The socket failed, or closed mid-frame.
    #[error("reading a frame: {0}")]
    Io(#[from] io::Error),
}

/// A frame's payload is read (and charged to the request budget) this much at a time, so what a
/// client makes the daemon hold is what it really sent, never what its length word claims.
const CHUNK: usize = 64 << 10;

/// Reads the next frame. Once its length word has come, the rest must come within `deadline`,
/// so a client that stops mid-frame holds its bytes no longer than that. `budget` is charged for
/// the bytes as they arrive and while the frame is held, so clients that send large frames
/// together hold at most the budget. Differs from libvirt: libvirtd has no such budget or
/// deadline.
pub async fn read<R: AsyncRead + Unpin>(
    reader: &mut R,
    (budget, deadline): (&ByteBudget, Duration),
) -> Result<(Frame, Reservation), FrameError> {
    let mut word = [0u8; LEN_BYTES];
    match reader.read_exact(&mut word).await {
        Ok(_) => {}
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(error) => return Err(error.into()),
    }
    let length = u32::from_be_bytes(word);
    let total = length as usize;
    if !(FRAME_LEN_MIN..=FRAME_LEN_MAX).contains(&total) {
        return Err(FrameError::Length(length));
    }
    tokio::time::timeout(deadline, rest(reader, budget, total))
        .await
        .map_err(|_| FrameError::Slow(deadline))?
}

/// The header and payload of a frame of `total` bytes.
async fn rest<R: AsyncRead + Unpin>(
    reader: &mut R,
    budget: &ByteBudget,
    total: usize,
) -> Result<(Frame, Reservation), FrameError> {
    let mut header = [0u8; HEADER_BYTES];
    reader.read_exact(&mut header).await?;
    let header = xdr::decode::<Header>(&header).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let size = total - LEN_BYTES - HEADER_BYTES;
    let mut reservation = budget.reserve(LEN_BYTES + HEADER_BYTES + size.min(CHUNK));
    if size <= CHUNK {
        // Most calls: one read into the payload itself.
        let mut payload = vec![0u8; size];
        reader.read_exact(&mut payload).await?;
        return match reservation {
            Ok(reservation) => Ok((Frame { header, payload }, reservation)),
            Err(error) => Err(FrameError::Refused { header, error }),
        };
    }
    let mut payload = Vec::with_capacity(size.min(CHUNK));
    let mut chunk = vec![0u8; size.min(CHUNK)];
    let mut received = 0;
    while received < size {
        let n = (size - received).min(CHUNK);
        reader.read_exact(&mut chunk[..n]).await?;
        received += n;
        if let Ok(held) = &mut reservation {
            match held.fit_to(LEN_BYTES + HEADER_BYTES + received, budget) {
                Ok(()) => payload.extend_from_slice(&chunk[..n]),
                Err(error) => reservation = Err(error),
            }
        }
        if reservation.is_err() {
            payload = Vec::new(); // dropped, and what it held given back; the rest is read and dropped too
        }
    }
    match reservation {
        Ok(reservation) => Ok((Frame { header, payload }, reservation)),
        Err(error) => Err(FrameError::Refused { header, error }),
    }
}

/// A frame on its way out: `head` (length word, header and the payload it owns), then `tail`, a
/// payload shared with the listing cache and written from there, without a copy.
#[derive(Debug)]
pub struct Outgoing {
    /// The length word, the header, and the payload unless it is shared.
    pub head: Vec<u8>,
    /// A shared payload that follows `head`.
    pub tail: Option<Arc<Vec<u8>>>,
    /// Its share of the answer budget, given back once it is written.
    pub held: Option<Reservation>,
}

impl Outgoing {
    /// Its size on the wire: what the length word says.
    pub fn len(&self) -> usize {
        self.head.len() + self.tail.as_ref().map_or(0, |tail| tail.len())
    }

    /// Whether it has no bytes at all (never true of a frame that was filled in).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<Vec<u8>> for Outgoing {
    fn from(head: Vec<u8>) -> Self {
        Outgoing { head, tail: None, held: None }
    }
}

/// Writes `frame` whole: head and tail in one vectored write while the socket takes them.
pub async fn write<W: AsyncWrite + Unpin>(writer: &mut W, frame: &Outgoing) -> io::Result<()> {
    let Some(tail) = &frame.tail else { return writer.write_all(&frame.head).await };
    let mut slices = [io::IoSlice::new(&frame.head), io::IoSlice::new(tail)];
    let mut slices = &mut slices[..];
    while !slices.is_empty() {
        let written = writer.write_vectored(slices).await?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        io::IoSlice::advance_slices(&mut slices, written);
    }
    Ok(())
}

/// A whole frame: length word, `header`, then `payload` encoded.
pub fn encode<T: Xdr>(header: &Header, payload: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&[0; LEN_BYTES]);
    header.put(&mut out);
    payload.put(&mut out);
    let length = out.len() as u32;
    out[..LEN_BYTES].copy_from_slice(&length.to_be_bytes());
    out
}
