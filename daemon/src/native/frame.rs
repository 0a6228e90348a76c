//! Framing: a big-endian length word that counts itself, the 24-byte header, the XDR payload.
//! Frames outside libvirt's bounds close the connection, as libvirtd does (there is no serial to
//! answer an unreadable frame with).

use super::protocol::{FRAME_LEN_MAX, FRAME_LEN_MIN, HEADER_BYTES, Header, LEN_BYTES};
use super::xdr::{self, Xdr};
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt};

/// One message read off the socket.
#[derive(Debug)]
pub struct Frame {
    /// Its header.
    pub header: Header,
    /// The XDR payload after the header.
    pub payload: Vec<u8>,
}

/// Why no more frames can be read from a connection.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The client closed the connection between frames.
    #[error("the client closed the connection")]
    Closed,
    /// The length word is out of bounds.
    #[error("frame of {0} bytes is out of bounds ({FRAME_LEN_MIN} to {FRAME_LEN_MAX})")]
    Length(u32),
    /// The daemon-wide budget for requests being received is spent.
    #[error("{0}")]
    Busy(crate::error::Error),
    /// The socket failed, or closed mid-frame.
    #[error("reading a frame: {0}")]
    Io(#[from] io::Error),
}

/// Reads the next frame; `budget` is charged for its size while the payload is read and held, so
/// clients that send large frames together hold at most the budget.
pub async fn read<R: AsyncRead + Unpin>(
    reader: &mut R,
    budget: &crate::grpc::budget::ByteBudget,
) -> Result<(Frame, crate::grpc::budget::Reservation), FrameError> {
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
    let reservation = budget.reserve(total).map_err(FrameError::Busy)?;
    let mut header = [0u8; HEADER_BYTES];
    reader.read_exact(&mut header).await?;
    let header = xdr::decode::<Header>(&header).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let mut payload = vec![0u8; total - LEN_BYTES - HEADER_BYTES];
    reader.read_exact(&mut payload).await?;
    Ok((Frame { header, payload }, reservation))
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
