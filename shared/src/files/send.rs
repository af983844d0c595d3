//! Sending a tree: offer it, wait for the receiver's answer, then stream every file in chunks, each with
//! its BLAKE3 hash, and each file's whole BLAKE3 at its end. Resumes where the receiver says it holds
//! verified bytes from an earlier attempt.

use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::progress::{Progress, Tracker};
use super::proto::{EntryKind, FileError, ReceiverMsg, SenderMsg, TransferId, CHUNK, MAX_FILES_MSG};
use super::tree::LocalTree;
use crate::wire;

pub(super) fn wire_err(e: wire::WireError) -> FileError {
    match e {
        wire::WireError::Io(e) => FileError::Io(format!("connection: {e}")),
        other => FileError::Protocol(other.to_string()),
    }
}

pub(super) async fn write<W: AsyncWrite + Unpin>(w: &mut W, msg: &SenderMsg) -> Result<(), FileError> {
    wire::write_msg(w, msg, MAX_FILES_MSG).await.map_err(wire_err)
}

async fn read<R: AsyncRead + Unpin>(r: &mut R) -> Result<ReceiverMsg, FileError> {
    match wire::read_msg(r, MAX_FILES_MSG).await.map_err(wire_err)? {
        Some(msg) => Ok(msg),
        None => Err(FileError::Io("the receiver closed the stream".into())),
    }
}

/// Send `tree` as transfer `id`. Returns the names the receiver stored the top-level entries under.
pub async fn send<W, R>(
    w: &mut W,
    r: &mut R,
    id: TransferId,
    tree: &LocalTree,
    mut report: impl FnMut(Progress),
    cancel: &CancellationToken,
) -> Result<Vec<String>, FileError>
where
    W: AsyncWrite + Unpin,
    R: AsyncRead + Unpin,
{
    let total = tree.total_bytes();
    write(w, &SenderMsg::Offer { id, entries: tree.entries.clone(), total }).await?;
    let resume = tokio::select! {
        answer = read(r) => match answer? {
            ReceiverMsg::Accept { resume } if resume.len() == tree.entries.len() => resume,
            ReceiverMsg::Accept { .. } => return Err(FileError::Protocol("resume list of the wrong length".into())),
            ReceiverMsg::Decline(e) | ReceiverMsg::Failed(e) => return Err(e),
            ReceiverMsg::Finished { .. } => return Err(FileError::Protocol("finished before sending".into())),
        },
        _ = cancel.cancelled() => return Err(FileError::Cancelled),
    };
    let mut tracker = Tracker::new(Instant::now(), total, resume.iter().sum());
    report(tracker.progress());
    let mut buf = vec![0u8; CHUNK];
    for (i, entry) in tree.entries.iter().enumerate() {
        let EntryKind::File { size } = entry.kind else { continue };
        let from = resume[i];
        if from > size || (from % CHUNK as u64 != 0 && from != size) {
            return Err(FileError::Protocol(format!("cannot resume file {i} at {from}")));
        }
        let step =
            send_file(w, i as u32, &tree.sources[i], size, from, &mut buf, &mut tracker, &mut report, cancel);
        match step.await {
            Ok(()) => {}
            // The stream broke: the receiver may have said why (disk full, cancelled…) before stopping it.
            Err(FileError::Io(e)) if e.starts_with("connection") => return Err(receiver_reason(r, e).await),
            Err(e) => {
                let _ = write(w, &SenderMsg::Failed(e.clone())).await;
                return Err(e);
            }
        }
    }
    write(w, &SenderMsg::Done).await?;
    w.flush().await.map_err(|e| FileError::Io(e.to_string()))?;
    match read(r).await? {
        ReceiverMsg::Finished { names } => Ok(names),
        ReceiverMsg::Failed(e) | ReceiverMsg::Decline(e) => Err(e),
        ReceiverMsg::Accept { .. } => Err(FileError::Protocol("a second Accept".into())),
    }
}

/// After a broken stream, the receiver's last word if it sent one; otherwise the connection error.
async fn receiver_reason<R: AsyncRead + Unpin>(r: &mut R, connection_error: String) -> FileError {
    match tokio::time::timeout(std::time::Duration::from_secs(2), read(r)).await {
        Ok(Ok(ReceiverMsg::Failed(e) | ReceiverMsg::Decline(e))) => e,
        _ => FileError::Io(connection_error),
    }
}

#[allow(clippy::too_many_arguments)] // one file's loop; the arguments are the transfer's state
async fn send_file<W: AsyncWrite + Unpin>(
    w: &mut W,
    file: u32,
    path: &std::path::Path,
    size: u64,
    from: u64,
    buf: &mut [u8],
    tracker: &mut Tracker,
    report: &mut impl FnMut(Progress),
    cancel: &CancellationToken,
) -> Result<(), FileError> {
    let what = path.display().to_string();
    let io = |e: std::io::Error| FileError::from_io(&e, &what);
    let mut f = tokio::fs::File::open(path).await.map_err(io)?;
    let mut whole = blake3::Hasher::new();
    // The whole-file hash covers the bytes the receiver already has, too.
    let mut offset = 0;
    while offset < from {
        let n =
            read_full(&mut f, &mut buf[..(from - offset).min(CHUNK as u64) as usize]).await.map_err(io)?;
        whole.update(&buf[..n]);
        offset += n as u64;
    }
    f.seek(std::io::SeekFrom::Start(from)).await.map_err(io)?;
    while offset < size {
        if cancel.is_cancelled() {
            return Err(FileError::Cancelled);
        }
        let want = (size - offset).min(CHUNK as u64) as usize;
        let n = read_full(&mut f, &mut buf[..want]).await.map_err(io)?;
        if n < want {
            return Err(FileError::Io(format!("{what} shrank while it was being sent")));
        }
        let data = &buf[..n];
        whole.update(data);
        let hash = *blake3::hash(data).as_bytes();
        write(w, &SenderMsg::Chunk { file, offset, len: n as u32, hash }).await?;
        w.write_all(data).await.map_err(|e| FileError::Io(format!("connection: {e}")))?;
        offset += n as u64;
        if let Some(p) = tracker.add(Instant::now(), n as u64) {
            report(p);
        }
    }
    write(w, &SenderMsg::FileEnd { file, hash: *whole.finalize().as_bytes() }).await
}

/// Read until `buf` is full or the file ends; the number of bytes read.
async fn read_full(f: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match f.read(&mut buf[got..]).await? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}
