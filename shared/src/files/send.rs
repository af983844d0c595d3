//! Sending a tree: offer it, wait for the receiver's answer, then stream every file in chunks, each with
//! its BLAKE3 hash, and each file's hash (derived from the chunk hashes, [`FileDigest`]) at its end.
//! Resumes where the receiver says it holds verified bytes from an earlier attempt.
//!
//! Each file is opened beneath the scanned folder without following a link anywhere on the way, and only
//! if it is a regular file ([`super::disk::open_to_send`]): a link someone put in a shared folder after it
//! was scanned — in place of a file or of a folder — is refused with a clear error, never followed to
//! what it points at.
//!
//! Disk reads and hashing run on a blocking thread, one chunk ahead of the network: while chunk `n` is
//! written to the stream, chunk `n + 1` is read and hashed. Two chunk buffers per transfer.

use std::time::Instant;

use std::io::Read;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::progress::{Progress, Tracker};
use super::proto::{
    EntryKind, FileDigest, FileError, ReceiverMsg, SenderMsg, TransferId, CHUNK, MAX_FILES_MSG,
};
use super::tree::LocalTree;
use crate::record::{FileHash, FileRecord};
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
    report: impl FnMut(Progress),
    cancel: &CancellationToken,
) -> Result<Vec<String>, FileError>
where
    W: AsyncWrite + Unpin,
    R: AsyncRead + Unpin,
{
    send_recorded(w, r, id, tree, report, cancel).await.map(|(names, _)| names)
}

/// [`send`], also returning every file sent as the session record has it: its path in the tree, size
/// and the whole-file hash the receiver verified ([`FileDigest`]).
pub async fn send_recorded<W, R>(
    w: &mut W,
    r: &mut R,
    id: TransferId,
    tree: &LocalTree,
    mut report: impl FnMut(Progress),
    cancel: &CancellationToken,
) -> Result<(Vec<String>, Vec<FileRecord>), FileError>
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
    let mut tracker = Tracker::new(Instant::now(), total, resume.iter().sum(), tree.file_count());
    report(tracker.progress());
    let mut sent = Vec::new();
    for (i, entry) in tree.entries.iter().enumerate() {
        let EntryKind::File { size } = entry.kind else { continue };
        let from = resume[i];
        if from > size || (from % CHUNK as u64 != 0 && from != size) {
            return Err(FileError::Protocol(format!("cannot resume file {i} at {from}")));
        }
        let step = send_file(
            w,
            i as u32,
            &tree.root,
            &tree.sources[i],
            size,
            from,
            &mut tracker,
            &mut report,
            cancel,
        );
        match step.await {
            Ok(hash) => {
                tracker.file_done();
                sent.push(FileRecord { path: entry.path.join("/"), size, hash: FileHash(hash) });
            }
            // The stream broke: the receiver may have said why (disk full, cancelled…) before stopping it.
            Err(FileError::Io(e)) if e.starts_with("connection") => return Err(receiver_reason(r, e).await),
            Err(e) => {
                let _ = write(w, &SenderMsg::Failed(e.clone())).await;
                return Err(e);
            }
        }
    }
    report(tracker.progress()); // with the last file counted
    write(w, &SenderMsg::Done).await?;
    w.flush().await.map_err(|e| FileError::Io(e.to_string()))?;
    match read(r).await? {
        ReceiverMsg::Finished { names } => Ok((names, sent)),
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
    root: &std::path::Path,
    path: &std::path::Path,
    size: u64,
    from: u64,
    tracker: &mut Tracker,
    report: &mut impl FnMut(Progress),
    cancel: &CancellationToken,
) -> Result<[u8; 32], FileError> {
    let what = path.display().to_string();
    let (root, source) = (root.to_path_buf(), path.to_path_buf());
    let mut f = match tokio::task::spawn_blocking(move || super::disk::open_to_send(&root, &source)).await {
        Ok(Ok(f)) => f,
        Ok(Err(e)) if super::disk::is_link_refused(&e) => {
            return Err(FileError::BadName(format!("{what} is a symbolic link; links are not sent")));
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::InvalidInput => {
            return Err(FileError::BadName(format!("{what} is not a regular file")));
        }
        Ok(Err(e)) => return Err(FileError::from_io(&e, &what)),
        Err(e) => return Err(FileError::Io(format!("opening {what}: {e}"))),
    };
    let chunk_len = |offset: u64| (size - offset).min(CHUNK as u64) as usize;
    let mut digest = FileDigest::new(size);
    // The file hash covers the chunks the receiver already has, too (`from` is on a chunk boundary or the
    // end, so these are the same chunks as in the first attempt).
    let mut offset = 0;
    let mut buf = Vec::new();
    while offset < from {
        let (back, read, hash) = read_done(read_chunk(f, buf, chunk_len(offset)), &what).await?;
        (f, buf) = (back, read);
        digest.add(&hash);
        offset += buf.len() as u64;
    }
    // Read and hash the next chunk on a blocking thread while this one goes out.
    let mut spare = Vec::new();
    let mut ahead = (offset < size).then(|| read_chunk(f, buf, chunk_len(offset)));
    while let Some(job) = ahead.take() {
        let (f, data, hash) = read_done(job, &what).await?;
        if cancel.is_cancelled() {
            return Err(FileError::Cancelled);
        }
        let n = data.len();
        let next = offset + n as u64;
        if next < size {
            ahead = Some(read_chunk(f, std::mem::take(&mut spare), chunk_len(next)));
        }
        digest.add(&hash);
        write(w, &SenderMsg::Chunk { file, offset, len: n as u32, hash }).await?;
        w.write_all(&data).await.map_err(|e| FileError::Io(format!("connection: {e}")))?;
        spare = data;
        offset = next;
        if let Some(p) = tracker.add(Instant::now(), n as u64) {
            report(p);
        }
    }
    let hash = digest.finish();
    write(w, &SenderMsg::FileEnd { file, hash }).await?;
    Ok(hash)
}

type ReadJob = tokio::task::JoinHandle<(std::fs::File, Vec<u8>, std::io::Result<[u8; 32]>)>;

/// Read the next `len` bytes of `f` into `buf` and hash them, on a blocking thread. The file and the
/// buffer come back for the next chunk.
fn read_chunk(mut f: std::fs::File, mut buf: Vec<u8>, len: usize) -> ReadJob {
    tokio::task::spawn_blocking(move || {
        buf.resize(len, 0);
        let read = f.read_exact(&mut buf).map(|()| *blake3::hash(&buf).as_bytes());
        (f, buf, read)
    })
}

async fn read_done(job: ReadJob, what: &str) -> Result<(std::fs::File, Vec<u8>, [u8; 32]), FileError> {
    let (f, buf, read) = job.await.map_err(|e| FileError::Io(format!("reading {what}: {e}")))?;
    match read {
        Ok(hash) => Ok((f, buf, hash)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(FileError::Io(format!("{what} shrank while it was being sent")))
        }
        Err(e) => Err(FileError::from_io(&e, what)),
    }
}
