//! Length-prefixed postcard framing, shared by the isolated driver host protocol and the
//! simulator link: a 4-byte big-endian body length, then the body.

use serde::{Serialize, de::DeserializeOwned};
use std::io::{self, Read, Write};

/// Largest frame either side accepts (two 19794-4 finger images fit easily).
pub const MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    #[error("frame of {0} bytes is larger than the {MAX_FRAME_LEN}-byte limit")]
    TooLarge(usize),
    #[error("undecodable frame: {0}")]
    Decode(#[from] postcard::Error),
}

/// Encodes one message with its length prefix.
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, FrameError> {
    let body = postcard::to_stdvec(message)?;
    if body.len() > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(body.len()));
    }
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Decodes a frame body (without its length prefix).
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    Ok(postcard::from_bytes(body)?)
}

/// Reads and checks the length prefix.
pub fn body_len(prefix: [u8; 4]) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(len));
    }
    Ok(len)
}

pub fn write_frame<W: Write, T: Serialize>(writer: &mut W, message: &T) -> Result<(), FrameError> {
    writer.write_all(&encode(message)?)?;
    writer.flush()?;
    Ok(())
}

pub fn read_frame<R: Read, T: DeserializeOwned>(reader: &mut R) -> Result<T, FrameError> {
    let mut prefix = [0u8; 4];
    reader.read_exact(&mut prefix)?;
    let mut body = vec![0u8; body_len(prefix)?];
    reader.read_exact(&mut body)?;
    decode(&body)
}

/// The same framing over tokio streams.
#[cfg(feature = "tokio")]
pub mod tokio_io {
    use super::*;
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

    pub async fn read_frame<R: AsyncRead + Unpin, T: DeserializeOwned>(
        reader: &mut R,
    ) -> Result<T, FrameError> {
        let mut prefix = [0u8; 4];
        reader.read_exact(&mut prefix).await?;
        let mut body = vec![0u8; body_len(prefix)?];
        reader.read_exact(&mut body).await?;
        decode(&body)
    }

    pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(
        writer: &mut W,
        message: &T,
    ) -> Result<(), FrameError> {
        writer.write_all(&encode(message)?).await?;
        writer.flush().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Request;

    #[test]
    fn frames_round_trip() {
        let frame = encode(&Request::ReadMrz).unwrap();
        let back: Request = read_frame(&mut &frame[..]).unwrap();
        assert_eq!(back, Request::ReadMrz);
    }

    #[test]
    fn oversized_truncated_and_garbage_frames_are_errors() {
        let mut huge = Vec::from(((MAX_FRAME_LEN + 1) as u32).to_be_bytes());
        huge.extend_from_slice(&[0; 8]);
        assert!(matches!(
            read_frame::<_, Request>(&mut &huge[..]),
            Err(FrameError::TooLarge(_))
        ));
        let garbage = [0, 0, 0, 3, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame::<_, Request>(&mut &garbage[..]),
            Err(FrameError::Decode(_))
        ));
        let truncated = [0, 0, 0, 9, 1];
        assert!(matches!(
            read_frame::<_, Request>(&mut &truncated[..]),
            Err(FrameError::Io(_))
        ));
    }
}
