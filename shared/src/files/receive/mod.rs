//! Receiving a tree into a folder the receiver chose — safely, exactly, or not at all.
//!
//! 1. The offer is checked whole before anything touches the disk ([`offer`]): every name, every parent
//!    announced before its children, no duplicates, sizes adding up; for a fetch, that it is what was
//!    asked for. An offer larger than the free space where it would go is refused
//!    ([`FileError::NoRoom`]) before the user is asked or a byte moves; a disk that fills up later is
//!    still caught as it is written.
//! 2. The host user consents (the caller's `consent` future) — or the sender hears why not.
//! 3. Folders and temporary files are made ([`attempt`]): numbered top-level names instead of merging or
//!    overwriting, visible names for hidden ones, exclusive create under random temporary names.
//! 4. Chunks are read, hashed and written in a pipeline ([`pipeline`]); what is allowed next — the next
//!    chunk of a file, its end, the transfer's end — is decided by a pure [`ReceiveMachine`]
//!    ([`machine`]), tested without a disk. Every chunk's BLAKE3 is checked before it is written; at a
//!    file's end the file hash ([`crate::files::proto::FileDigest`]) is checked, the data synced, and only
//!    then does the file appear under its final name ([`commit`]), never replacing an existing file.
//! 5. Any error (checksum, disk full, permission, cancel) removes every temporary file and tells the
//!    sender why. A lost connection keeps the verified part in [`Partials`] so a new attempt with the same
//!    transfer id resumes from the last verified chunk; files of a folder that were already committed are
//!    only confirmed (the sender's file hash against the kept one), never sent or written twice. When the
//!    session ends without a new attempt, the last [`Partials`] handle going away removes the temporary
//!    files.

mod attempt;
mod commit;
pub mod machine;
mod offer;
mod partials;
mod pipeline;

use std::future::Future;
use std::path::Path;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

use super::progress::{Progress, Tracker};
use super::proto::{Entry, FileError, ReceiverMsg, SenderMsg, MAX_FILES_MSG};
use super::send::wire_err;
use crate::record::{FileHash, FileRecord};
use crate::wire;
use attempt::prepare;
use offer::{room_for, sender_gave_up};
use pipeline::receive_files;

pub use machine::{FileState, ReceiveMachine};
pub use offer::{check_offer, check_reply};
pub use partials::Partials;
pub use pipeline::PIPELINE;

async fn write<W: AsyncWrite + Unpin>(w: &mut W, msg: &ReceiverMsg) -> Result<(), FileError> {
    wire::write_msg(w, msg, MAX_FILES_MSG).await.map_err(wire_err)
}

/// Receive one transfer into `dest`. `consent` is asked once the offer is known to be sound.
pub async fn receive<W, R, C, F>(
    w: &mut W,
    r: &mut R,
    dest: &Path,
    partials: &Partials,
    consent: C,
    report: impl FnMut(Progress),
    cancel: &CancellationToken,
) -> Result<Vec<String>, FileError>
where
    W: AsyncWrite + Unpin,
    R: AsyncRead + Unpin,
    C: FnOnce(Vec<Entry>, u64) -> F,
    F: Future<Output = Result<(), FileError>>,
{
    receive_recorded(w, r, dest, partials, consent, report, cancel).await.map(|(names, _)| names)
}

/// [`receive`], also returning every file received as the session record has it: its path as offered,
/// size and the whole-file hash that was verified.
pub async fn receive_recorded<W, R, C, F>(
    w: &mut W,
    r: &mut R,
    dest: &Path,
    partials: &Partials,
    consent: C,
    report: impl FnMut(Progress),
    cancel: &CancellationToken,
) -> Result<(Vec<String>, Vec<FileRecord>), FileError>
where
    W: AsyncWrite + Unpin,
    R: AsyncRead + Unpin,
    C: FnOnce(Vec<Entry>, u64) -> F,
    F: Future<Output = Result<(), FileError>>,
{
    receive_checked(w, r, dest, partials, None, consent, report, cancel).await
}

/// Receive the reply to a fetch of `requested` (the fetched path's last component) into `dest`: the
/// offer must be that and nothing else ([`check_reply`]), checked before anything else about it — an
/// offer of something else is [`FileError::Unrequested`] whatever size it claims. No question is asked:
/// the receiver asked for these files. Returns the stored names and, as [`receive_recorded`] does, the
/// files received.
pub async fn receive_reply_recorded<W, R>(
    w: &mut W,
    r: &mut R,
    dest: &Path,
    partials: &Partials,
    requested: &str,
    report: impl FnMut(Progress),
    cancel: &CancellationToken,
) -> Result<(Vec<String>, Vec<FileRecord>), FileError>
where
    W: AsyncWrite + Unpin,
    R: AsyncRead + Unpin,
{
    let asked = |_, _| std::future::ready(Ok(()));
    receive_checked(w, r, dest, partials, Some(requested), asked, report, cancel).await
}

#[allow(clippy::too_many_arguments)] // receive's arguments and what a fetch asked for
async fn receive_checked<W, R, C, F>(
    w: &mut W,
    r: &mut R,
    dest: &Path,
    partials: &Partials,
    requested: Option<&str>,
    consent: C,
    mut report: impl FnMut(Progress),
    cancel: &CancellationToken,
) -> Result<(Vec<String>, Vec<FileRecord>), FileError>
where
    W: AsyncWrite + Unpin,
    R: AsyncRead + Unpin,
    C: FnOnce(Vec<Entry>, u64) -> F,
    F: Future<Output = Result<(), FileError>>,
{
    let (id, entries, total) = match wire::read_msg(r, MAX_FILES_MSG).await.map_err(wire_err)? {
        Some(SenderMsg::Offer { id, entries, total }) => (id, entries, total),
        Some(SenderMsg::Failed(e)) => return Err(e), // e.g. the path is not shared
        other => return Err(FileError::Protocol(format!("expected an offer, got {other:?}"))),
    };
    let sound = check_offer(&entries, total)
        .and_then(|()| requested.map_or(Ok(()), |requested| check_reply(requested, &entries)));
    let checked = match sound {
        Ok(()) => room_for(dest, total.saturating_sub(partials.verified(&id))).await,
        Err(e) => Err(e),
    };
    if let Err(e) = checked {
        write(w, &ReceiverMsg::Decline(e.clone())).await?;
        return Err(e);
    }
    // A sender sends nothing between its offer and our answer, so anything on the stream while the user
    // thinks (its end, a reset) means it gave up: the question is withdrawn (its future dropped).
    // (Biased: an answer that is ready at once, as for a fetch, never reads from the stream.)
    let answer = tokio::select! {
        biased;
        answer = consent(entries.clone(), total) => answer,
        gone = sender_gave_up(r) => return Err(gone),
    };
    if let Err(e) = answer {
        write(w, &ReceiverMsg::Decline(e.clone())).await?;
        return Err(e);
    }
    let previous = partials.take(&id);
    let mut attempt = match prepare(dest, id, &entries, previous).await {
        Ok(a) => a,
        Err(e) => {
            write(w, &ReceiverMsg::Decline(e.clone())).await?;
            return Err(e);
        }
    };
    let resume = attempt.resume_points(entries.len());
    let files = attempt.disk.len() as u32;
    let mut tracker = Tracker::new(Instant::now(), total, resume.iter().sum(), files);
    // Progress starts at the answer, before any byte: the user sees the transfer they just allowed at
    // once (and the sender cannot send before this is reported).
    report(tracker.progress());
    if let Err(e) = write(w, &ReceiverMsg::Accept { resume }).await {
        attempt.keep(partials).await; // the connection went before anything was sent; keep for a retry
        return Err(e);
    }
    let outcome = tokio::select! {
        outcome = receive_files(r, &mut attempt, &mut tracker, &mut report) => outcome,
        _ = cancel.cancelled() => Err(Fatal(FileError::Cancelled)),
    };
    match outcome {
        Ok(()) => {
            let mut names: Vec<String> = attempt.tops.values().cloned().collect();
            names.sort();
            write(w, &ReceiverMsg::Finished { names: names.clone() }).await?;
            // Every file was verified against its whole-file hash: that hash is the record's.
            let files = attempt.machine.tracks().filter_map(|(i, track)| {
                let path = entries.get(i as usize)?.path.join("/");
                Some(FileRecord { path, size: track.size, hash: FileHash(track.digest.finish()) })
            });
            Ok((names, files.collect()))
        }
        Err(Lost(e)) => {
            attempt.keep(partials).await;
            Err(e)
        }
        Err(Fatal(e)) => {
            attempt.discard().await;
            let _ = write(w, &ReceiverMsg::Failed(e.clone())).await;
            Err(e)
        }
    }
}

/// How an attempt ends badly: the connection went (keep what is verified) or something is wrong (discard).
#[derive(Debug)]
pub enum Ending {
    /// The connection went: keep what is verified for a new attempt.
    Lost(FileError),
    /// The sender broke the rules, a check failed, the disk refused, or someone cancelled: discard.
    Fatal(FileError),
}
use Ending::{Fatal, Lost};

impl From<FileError> for Ending {
    fn from(e: FileError) -> Self {
        Fatal(e)
    }
}
