//! How a transfer's QUIC stream ends when a person stops it.
//!
//! A sender may have megabytes queued in its stream window (8 MiB, [`crate::tls::E2E_STREAM_WINDOW`]). If
//! a stop only wrote `Failed(Cancelled)` after them, the receiver would take all of that in first: seconds
//! on a slow link while the technician's Cancel or the user's Stop seems to do nothing. So the side that
//! stops resets the stream with [`STOPPED_BY_SENDER`]; QUIC drops what is still queued on both sides, and
//! the receiver, seeing that code, ends the transfer as cancelled at once (and removes the partial file,
//! since nobody will resume it).

use quinn::{SendStream, VarInt};

/// The stream reset code of a sender that stopped the transfer on purpose.
pub const STOPPED_BY_SENDER: u32 = 1;

/// End the sending half of a transfer's stream: reset with [`STOPPED_BY_SENDER`] if this side stopped it,
/// otherwise finish it (everything written is delivered).
pub fn end_sending(send: &mut SendStream, stopped: bool) {
    // Both fail only on a stream that has already ended, which is then as it should be.
    let _ = if stopped { send.reset(VarInt::from_u32(STOPPED_BY_SENDER)) } else { send.finish() };
}

/// Whether a read error is the sender's reset with [`STOPPED_BY_SENDER`].
pub fn stopped_by_sender(e: &std::io::Error) -> bool {
    let stop = VarInt::from_u32(STOPPED_BY_SENDER);
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<quinn::ReadError>())
        .is_some_and(|r| matches!(r, quinn::ReadError::Reset(code) if *code == stop))
}
