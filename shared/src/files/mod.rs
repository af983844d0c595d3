//! File transfer that never loses or corrupts a byte (both directions, files and whole folders).
//!
//! - [`proto`]: the files family of messages; one QUIC stream per request or transfer.
//! - [`names`]: what a received name may be; numbered names instead of overwriting.
//! - [`tree`]: what a sender offers from a local file or folder (links skipped).
//! - [`send`] / [`receive`]: the transfer itself — BLAKE3 per 1 MiB chunk and per file, temporary files
//!   renamed only after verification, resume from the last verified chunk.
//! - [`disk`]: the reused chunk buffers and the temporary file received chunks are appended to.
//! - [`progress`]: bytes, files, rate and time left, for the people waiting.
//! - [`stream`]: a stop resets the QUIC stream, so nothing still queued is delivered first.
//!
//! The engine is generic over byte streams; the host and viewer give it QUIC streams, tests give it
//! whatever they like.

pub mod disk;
pub mod names;
pub mod progress;
pub mod proto;
pub mod receive;
pub mod send;
pub mod stream;
pub mod tree;

/// A fresh transfer id from the OS CSPRNG.
pub fn new_transfer_id() -> proto::TransferId {
    use rand::{RngCore, TryRngCore};
    let mut id = [0u8; 16];
    rand::rngs::OsRng.unwrap_err().fill_bytes(&mut id);
    id
}

#[cfg(test)]
mod tests;
