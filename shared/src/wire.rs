//! Framing: every message is a little-endian `u32` length followed by a postcard body.
//!
//! The length is checked against a per-stream cap *before* anything is allocated, and the body's buffer
//! grows with the bytes that actually arrive (from [`FIRST_READ`]), so a hostile peer cannot make us
//! reserve memory by announcing a huge message, even one under the cap, and then sending little. Encoding and decoding are pure functions
//! ([`encode`], [`decode`]); [`read_msg`] and [`write_msg`] are the thin async glue over any byte stream.

use serde::{de::DeserializeOwned, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Cap for control-channel messages (relay control, session control, input).
pub const MAX_CONTROL_MSG: usize = 64 * 1024;
/// Cap for one video message (a frame is split into several when larger).
pub const MAX_VIDEO_MSG: usize = 16 * 1024 * 1024;

/// The body buffer [`read_msg`] starts with; it at most doubles as bytes arrive.
pub const FIRST_READ: usize = 8 * 1024;

/// What can go wrong reading or writing a framed message.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("message of {len} bytes exceeds the {cap}-byte limit")]
    TooLarge { len: usize, cap: usize },
    #[error("malformed message: {0}")]
    Malformed(#[from] postcard::Error),
    #[error("stream ended in the middle of a message")]
    Truncated,
    #[error("stream error: {0}")]
    Io(#[from] std::io::Error),
}

/// Encode `msg` with its length prefix. Fails only if the body exceeds `cap` (a bug on our side).
pub fn encode<T: Serialize>(msg: &T, cap: usize) -> Result<Vec<u8>, WireError> {
    let mut out = postcard::to_extend(msg, vec![0u8; 4])?;
    let len = out.len() - 4;
    if len > cap {
        return Err(WireError::TooLarge { len, cap });
    }
    out[..4].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(out)
}

/// Decode one message body (without its length prefix). Trailing bytes are an error: a body is one message.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, WireError> {
    let (msg, rest) = postcard::take_from_bytes(body)?;
    if !rest.is_empty() {
        return Err(WireError::Malformed(postcard::Error::DeserializeUnexpectedEnd));
    }
    Ok(msg)
}

/// Check an announced length against the cap. Pure, so decoders and fuzzers share it.
pub fn check_len(header: [u8; 4], cap: usize) -> Result<usize, WireError> {
    let len = u32::from_le_bytes(header) as usize;
    if len > cap {
        return Err(WireError::TooLarge { len, cap });
    }
    Ok(len)
}

/// Write one framed message.
pub async fn write_msg<W, T>(w: &mut W, msg: &T, cap: usize) -> Result<(), WireError>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    let bytes = encode(msg, cap)?;
    w.write_all(&bytes).await?;
    Ok(())
}

/// Read one framed message. `Ok(None)` means the stream ended cleanly between messages.
pub async fn read_msg<R, T>(r: &mut R, cap: usize) -> Result<Option<T>, WireError>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let mut header = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = r.read(&mut header[got..]).await?;
        if n == 0 {
            return if got == 0 { Ok(None) } else { Err(WireError::Truncated) };
        }
        got += n;
    }
    let len = check_len(header, cap)?;
    // Grow with what arrives rather than allocate the announced length up front.
    let mut body = Vec::with_capacity(len.min(FIRST_READ));
    (&mut *r).take(len as u64).read_to_end(&mut body).await?;
    if body.len() < len {
        return Err(WireError::Truncated);
    }
    decode(&body).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_over_a_stream() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        write_msg(&mut a, &("hello".to_string(), 7u32), 100).await.expect("write");
        drop(a);
        let got: Option<(String, u32)> = read_msg(&mut b, 100).await.expect("read");
        assert_eq!(got, Some(("hello".to_string(), 7)));
        let end: Option<(String, u32)> = read_msg(&mut b, 100).await.expect("clean end");
        assert_eq!(end, None);
    }

    #[tokio::test]
    async fn oversized_length_is_refused_before_allocating() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&u32::MAX.to_le_bytes()).await.expect("write");
        let err = read_msg::<_, String>(&mut b, 1000).await.expect_err("too large");
        assert!(matches!(err, WireError::TooLarge { len, cap: 1000 } if len == u32::MAX as usize));
    }

    #[tokio::test]
    async fn truncated_body_is_an_error() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&10u32.to_le_bytes()).await.expect("write");
        a.write_all(b"abc").await.expect("write");
        drop(a);
        assert!(matches!(read_msg::<_, String>(&mut b, 100).await, Err(WireError::Truncated)));
    }

    /// Records the largest buffer a reader was asked to fill.
    struct Counting<R> {
        inner: R,
        largest: usize,
    }

    impl<R: AsyncRead + Unpin> AsyncRead for Counting<R> {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            self.largest = self.largest.max(buf.remaining());
            std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    #[tokio::test]
    async fn a_large_announced_body_is_not_allocated_before_it_arrives() {
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(&(16u32 << 20).to_le_bytes()).await.expect("write");
        a.write_all(&[1; 10]).await.expect("write");
        drop(a);
        let mut r = Counting { inner: b, largest: 0 };
        let got = read_msg::<_, Vec<u8>>(&mut r, MAX_VIDEO_MSG).await;
        assert!(matches!(got, Err(WireError::Truncated)), "{got:?}");
        assert!(r.largest <= 2 * FIRST_READ, "a buffer of {} bytes for 10 that came", r.largest);
    }

    #[tokio::test]
    async fn a_body_larger_than_the_first_read_arrives_whole() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let big = vec![7u8; 100_000];
        let sent = big.clone();
        tokio::spawn(async move { write_msg(&mut a, &sent, MAX_VIDEO_MSG).await.expect("write") });
        let got: Option<Vec<u8>> = read_msg(&mut b, MAX_VIDEO_MSG).await.expect("read");
        assert_eq!(got, Some(big));
    }

    #[test]
    fn trailing_bytes_are_malformed() {
        let mut body = postcard::to_stdvec(&5u32).expect("encode");
        body.push(0);
        assert!(matches!(decode::<u32>(&body), Err(WireError::Malformed(_))));
    }
}
