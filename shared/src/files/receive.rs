//! Receiving a tree into a folder the receiver chose — safely, exactly, or not at all.
//!
//! 1. The offer is checked whole before anything touches the disk: every name ([`super::names`]), every
//!    parent announced before its children, no duplicates, sizes adding up.
//! 2. An offer larger than the free space where it would go is refused ([`FileError::NoRoom`]) before the
//!    user is asked or a byte moves; a disk that fills up later is still caught as it is written.
//! 3. The host user consents (the caller's `consent` future) — or the sender hears why not.
//! 4. Folders are created; a top-level name that exists gets a numbered name, so nothing is merged into
//!    or overwrites what was there, and a top-level name that would be hidden gets a visible one
//!    ([`unhidden`]: `.xsessionrc` is stored as `_xsessionrc`; the stored names are returned).
//! 5. Each file is written to a hidden temporary file next to its final place, made with exclusive create
//!    under a random name ([`DiskFile::create_temp`]), so nothing already there is written through. Every chunk's BLAKE3 is
//!    checked before it is written; at the file's end the file hash (derived from the chunk hashes,
//!    [`FileDigest`]) is checked, the data synced, and only then does the file appear under its final name — claimed with a hard link, which fails
//!    rather than replace an existing file (so `report (1).pdf` is chosen atomically), then the temporary
//!    name is removed.
//! 6. Any error (checksum, disk full, permission, cancel) removes every temporary file and tells the
//!    sender why. A lost connection keeps the verified part in [`Partials`] so a new attempt with the same
//!    transfer id resumes from the last verified chunk; files of a folder that were already committed are
//!    only confirmed (the sender's file hash against the kept one), never sent or written twice. When the
//!    session ends without a new attempt, the last [`Partials`] handle going away removes the temporary
//!    files.
//!
//! Network reading, hashing and disk writing overlap: a reader task takes chunks off the stream into a few
//! reused buffers ([`PIPELINE`] of them, so memory stays bounded) and starts each chunk's hash on a
//! blocking thread at once, while an earlier chunk is being written on another. Hashing in the write job
//! instead put hash and write in series and capped a 1 GiB transfer below 200 MB/s (`docs/BENCHMARKS.md`).
//! Every [`SYNC_EVERY`] bytes a background `fdatasync` starts, so the disk writes along with the transfer
//! and the sync before the final name only waits for the tail (a 1 GiB file otherwise waits seconds there).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::disk::{ChunkBuf, DiskFile};
use super::names::{check_path, numbered, unhidden};
use super::progress::{Progress, Tracker};
use super::proto::{
    Entry, EntryKind, FileDigest, FileError, ReceiverMsg, SenderMsg, TransferId, CHUNK, MAX_ENTRIES,
    MAX_FILES_MSG,
};
use super::send::wire_err;
use crate::wire;

/// Verified parts of interrupted transfers, kept for resuming (one per side of a session). When the
/// last handle goes (the session ended), temporary files nobody resumed are removed.
#[derive(Debug, Clone, Default)]
pub struct Partials(Arc<Mutex<PartialMap>>);

#[derive(Debug, Default)]
struct PartialMap(HashMap<TransferId, Partial>);

impl Drop for PartialMap {
    fn drop(&mut self) {
        for file in self.0.values().flat_map(|p| p.files.values()).filter(|f| f.committed.is_none()) {
            if let Err(e) = std::fs::remove_file(&file.temp) {
                tracing::warn!("could not remove {}: {e}", file.temp.display());
            }
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Partial {
    /// Top-level names chosen in the first attempt.
    tops: HashMap<String, String>,
    files: HashMap<u32, PartialFile>,
}

#[derive(Debug, Clone)]
struct PartialFile {
    temp: PathBuf,
    size: u64,
    verified: u64,
    digest: FileDigest,
    /// Already under its final name (this name, in its folder): nothing of it is sent again.
    committed: Option<String>,
}

impl Partials {
    fn take(&self, id: &TransferId) -> Option<Partial> {
        self.0.lock().ok()?.0.remove(id)
    }

    fn keep(&self, id: TransferId, partial: Partial) {
        if let Ok(mut map) = self.0.lock() {
            map.0.insert(id, partial);
        }
    }

    /// Bytes already verified and kept on disk for transfer `id` (what a resume need not send again).
    fn verified(&self, id: &TransferId) -> u64 {
        let map = match self.0.lock() {
            Ok(map) => map,
            Err(_) => return 0,
        };
        map.0.get(id).map_or(0, |p| p.files.values().map(|f| f.verified).sum())
    }

    /// Transfers waiting to be resumed.
    pub fn len(&self) -> usize {
        self.0.lock().map(|m| m.0.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Check an offer before touching the disk.
pub fn check_offer(entries: &[Entry], total: u64) -> Result<(), FileError> {
    if entries.len() > MAX_ENTRIES {
        return Err(FileError::Protocol(format!("{} entries", entries.len())));
    }
    let mut dirs: HashSet<&[String]> = HashSet::new();
    let mut seen: HashSet<&[String]> = HashSet::new();
    let mut sum = 0u64;
    for entry in entries {
        check_path(&entry.path).map_err(|e| FileError::BadName(e.to_string()))?;
        let parent = &entry.path[..entry.path.len() - 1];
        if !parent.is_empty() && !dirs.contains(parent) {
            return Err(FileError::Protocol(format!("{:?} comes before its folder", entry.path)));
        }
        if !seen.insert(&entry.path) {
            return Err(FileError::Protocol(format!("{:?} appears twice", entry.path)));
        }
        match entry.kind {
            EntryKind::Dir => {
                dirs.insert(&entry.path);
            }
            EntryKind::File { size } => sum = sum.saturating_add(size),
        }
    }
    if sum != total {
        return Err(FileError::Protocol(format!("sizes add up to {sum}, offer says {total}")));
    }
    Ok(())
}

/// Check that an offer answering a fetch of `requested` (the last component of the fetched path) is that
/// and only that: one top-level entry named `requested` — a file, or a folder with every other entry
/// under it. Anything else (`.xsessionrc` offered for `report.pdf`, a folder plus a stray top-level file,
/// an empty offer) is the host breaking the protocol, refused before anything is written. Run after
/// [`check_offer`] (names and structure).
pub fn check_reply(requested: &str, entries: &[Entry]) -> Result<(), FileError> {
    let tops = entries.iter().filter(|e| e.path.len() == 1).count();
    let inside = |e: &Entry| e.path.first().is_some_and(|top| top == requested);
    if tops == 1 && entries.iter().all(inside) {
        return Ok(());
    }
    // What was offered instead, as the top-level names (a few), for the person to read.
    const NAMED: usize = 3;
    let mut names: Vec<&str> = Vec::new();
    for top in entries.iter().filter_map(|e| e.path.first()) {
        if !names.contains(&top.as_str()) {
            names.push(top);
        }
    }
    let offered = match names.len() {
        0 => "nothing".to_owned(),
        n if n <= NAMED => names.join(", "),
        n => format!("{} and {} more", names[..NAMED].join(", "), n - NAMED),
    };
    Err(FileError::Unrequested { requested: requested.to_owned(), offered })
}

async fn write<W: AsyncWrite + Unpin>(w: &mut W, msg: &ReceiverMsg) -> Result<(), FileError> {
    wire::write_msg(w, msg, MAX_FILES_MSG).await.map_err(wire_err)
}

/// One file being received.
struct Open {
    /// For a top-level file, the name it was offered as: its final name is what the sender is told it was
    /// stored under.
    top: Option<String>,
    temp: PathBuf,
    dir: PathBuf,
    name: String,
    size: u64,
    verified: u64,
    digest: FileDigest,
    /// `None` while a chunk is being written (or once the file is committed).
    file: Option<DiskFile>,
    committed: Option<String>,
    /// Committed in an earlier attempt: the sender's `FileEnd` confirms it is still the same file.
    confirm: bool,
    /// Bytes written since the last background sync was started.
    unsynced: u64,
    /// A background `fdatasync` of the file (on a duplicate handle), started every [`SYNC_EVERY`] bytes.
    syncing: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Start writing a file's data to the disk every this many bytes, in the background, so the sync before
/// the final name only waits for the last few megabytes instead of the whole file.
const SYNC_EVERY: u64 = 32 << 20;

impl Open {
    /// Wait for a background sync; its error (a disk error reported only once) is the file's error.
    async fn sync_done(&mut self) -> std::io::Result<()> {
        match self.syncing.take() {
            Some(job) => job.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

/// Chunk buffers per transfer: being filled from the network, being hashed or waiting, being written.
pub const PIPELINE: usize = 4;

/// Writing one chunk, on a blocking thread: the file and the buffer come back with the outcome.
type WriteJob = tokio::task::JoinHandle<(DiskFile, ChunkBuf, std::io::Result<()>)>;

/// Checking one chunk's BLAKE3 against the hash the sender announced, on a blocking thread: the buffer
/// comes back with the verdict.
type HashJob = tokio::task::JoinHandle<(ChunkBuf, bool)>;

/// Everything of one attempt, so failure handling is in one place.
struct Attempt {
    id: TransferId,
    tops: HashMap<String, String>,
    files: HashMap<u32, Open>,
    /// The chunk being written, if any, and its file: awaited before the attempt is discarded or kept, so
    /// no write outlives the attempt.
    in_flight: Option<(u32, WriteJob)>,
}

impl Attempt {
    /// Wait for a chunk write cut short by a cancel and give its file back (its bytes are not counted as
    /// verified; a resume cuts the file back to what was).
    async fn settle(&mut self) {
        if let Some((i, job)) = self.in_flight.take() {
            if let (Ok((f, _, _)), Some(open)) = (job.await, self.files.get_mut(&i)) {
                open.file = Some(f);
            }
        }
        for open in self.files.values_mut() {
            let _ = open.sync_done().await;
        }
    }

    /// Remove every temporary file (on an error or cancel).
    async fn discard(&mut self) {
        self.settle().await;
        for open in self.files.values_mut() {
            open.file = None;
            if open.committed.is_none() {
                let _ = tokio::fs::remove_file(&open.temp).await;
            }
        }
    }

    /// Keep the verified parts for a later attempt (the connection was lost).
    async fn keep(mut self, partials: &Partials) {
        self.settle().await;
        let mut partial = Partial { tops: std::mem::take(&mut self.tops), files: HashMap::new() };
        for (i, open) in self.files.drain() {
            let (temp, size, verified, digest) = (open.temp, open.size, open.verified, open.digest);
            match (open.file, open.committed) {
                (_, Some(name)) => {
                    let committed = Some(name);
                    partial.files.insert(i, PartialFile { temp, size, verified, digest, committed });
                }
                (Some(f), None) => {
                    let _ = tokio::task::spawn_blocking(move || f.into_file().sync_data()).await;
                    let committed = None;
                    partial.files.insert(i, PartialFile { temp, size, verified, digest, committed });
                }
                (None, None) => {} // not reachable after settle(); sent again from the start if so
            }
        }
        partials.keep(self.id, partial);
    }
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
    receive_checked(w, r, dest, partials, None, consent, report, cancel).await
}

/// Receive the reply to a fetch of `requested` (the fetched path's last component) into `dest`: the
/// offer must be that and nothing else ([`check_reply`]), checked before anything else about it — an
/// offer of something else is [`FileError::Unrequested`] whatever size it claims. No question is asked:
/// the receiver asked for these files.
pub async fn receive_reply<W, R>(
    w: &mut W,
    r: &mut R,
    dest: &Path,
    partials: &Partials,
    requested: &str,
    report: impl FnMut(Progress),
    cancel: &CancellationToken,
) -> Result<Vec<String>, FileError>
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
) -> Result<Vec<String>, FileError>
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
    let resume: Vec<u64> =
        (0..entries.len() as u32).map(|i| attempt.files.get(&i).map_or(0, |o| o.verified)).collect();
    let files = attempt.files.len() as u32;
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
            Ok(names)
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

/// Refuse an offer that cannot fit where it would be written (`needed` = bytes not already kept from an
/// earlier attempt). Without an answer from the filesystem the transfer goes ahead and finds out as it
/// writes.
async fn room_for(dest: &Path, needed: u64) -> Result<(), FileError> {
    let dir = dest.to_path_buf();
    let free = tokio::task::spawn_blocking(move || super::disk::free_space(&dir)).await.ok().flatten();
    match free {
        Some(free) if free < needed => Err(FileError::NoRoom { needed, free }),
        _ => Ok(()),
    }
}

/// Resolves when the stream yields anything at all while the user is asked: its end or an error (the
/// sender cancelled or left), or bytes before the answer (a sender that does not follow the protocol).
async fn sender_gave_up<R: AsyncRead + Unpin>(r: &mut R) -> FileError {
    let mut byte = [0u8; 1];
    match r.read(&mut byte).await {
        Ok(1..) => FileError::Protocol("data sent before the receiver answered the offer".into()),
        Ok(0) | Err(_) => FileError::Cancelled,
    }
}

/// How an attempt ends badly: the connection went (keep what is verified) or something is wrong (discard).
enum Ending {
    Lost(FileError),
    Fatal(FileError),
}
use Ending::{Fatal, Lost};

impl From<FileError> for Ending {
    fn from(e: FileError) -> Self {
        Fatal(e)
    }
}

/// Create folders and temporary files (or reopen them to resume).
async fn prepare(
    dest: &Path,
    id: TransferId,
    entries: &[Entry],
    previous: Option<Partial>,
) -> Result<Attempt, FileError> {
    let io = |what: &Path| {
        let what = what.display().to_string();
        move |e: std::io::Error| FileError::from_io(&e, &what)
    };
    let meta = tokio::fs::metadata(dest).await.map_err(io(dest))?;
    if !meta.is_dir() {
        return Err(FileError::NotAFolder(dest.display().to_string()));
    }
    let mut previous = previous.unwrap_or_default();
    let tops = std::mem::take(&mut previous.tops);
    let mut attempt = Attempt { id, tops, files: HashMap::new(), in_flight: None };
    for (i, entry) in entries.iter().enumerate() {
        let top = &entry.path[0];
        let is_top = entry.path.len() == 1;
        if !attempt.tops.contains_key(top) {
            let visible = unhidden(top);
            let chosen = if is_top && matches!(entry.kind, EntryKind::File { .. }) {
                visible.into_owned() // files get their free name when committed
            } else {
                free_dir_name(dest, &visible).await
            };
            attempt.tops.insert(top.clone(), chosen);
        }
        let mut path = dest.join(&attempt.tops[top]);
        for component in &entry.path[1..] {
            path.push(component);
        }
        match entry.kind {
            EntryKind::Dir => match tokio::fs::create_dir(&path).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let m = tokio::fs::symlink_metadata(&path).await.map_err(io(&path))?;
                    if !m.is_dir() {
                        return Err(FileError::BadName(format!(
                            "{} exists and is not a folder",
                            path.display()
                        )));
                    }
                }
                Err(e) => return Err(io(&path)(e)),
            },
            EntryKind::File { size } => {
                let dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| dest.to_path_buf());
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
                let offered = is_top.then(|| top.clone());
                let open = match previous.files.remove(&(i as u32)) {
                    Some(p) => reopen(p, dir.clone(), name.clone(), size, offered.clone()).await,
                    None => None,
                };
                let open = match open {
                    Some(open) => open,
                    None => {
                        let made = dir.clone();
                        let (temp, file) = tokio::task::spawn_blocking(move || DiskFile::create_temp(&made))
                            .await
                            .map_err(|e| FileError::Io(e.to_string()))?
                            .map_err(io(&dir))?;
                        let file = Some(file);
                        Open {
                            top: offered,
                            temp,
                            dir,
                            name,
                            size,
                            verified: 0,
                            digest: FileDigest::new(size),
                            file,
                            committed: None,
                            confirm: false,
                            unsynced: 0,
                            syncing: None,
                        }
                    }
                };
                attempt.files.insert(i as u32, open);
            }
        }
    }
    Ok(attempt)
}

/// Reopen a partial file from an earlier attempt, cut back to what was verified; or take up a file the
/// earlier attempt committed, if it is still there at its size (else it is received again, afresh).
async fn reopen(p: PartialFile, dir: PathBuf, name: String, size: u64, top: Option<String>) -> Option<Open> {
    if p.size != size || p.verified > size {
        return None;
    }
    let (file, verified, confirm) = match &p.committed {
        Some(committed) => {
            let there = tokio::fs::symlink_metadata(dir.join(committed)).await.ok()?;
            if !there.is_file() || there.len() != size {
                return None;
            }
            (None, size, true)
        }
        None => {
            let (path, verified) = (p.temp.clone(), p.verified);
            let file =
                tokio::task::spawn_blocking(move || DiskFile::resume(&path, verified)).await.ok()?.ok()?;
            (Some(file), verified, false)
        }
    };
    let (temp, digest, committed, unsynced, syncing) = (p.temp, p.digest, p.committed, 0, None);
    Some(Open { top, temp, dir, name, size, verified, digest, file, committed, confirm, unsynced, syncing })
}

/// `name`, or the first `name (n)` that does not exist in `dest`.
async fn free_dir_name(dest: &Path, name: &str) -> String {
    let mut n = 0;
    loop {
        let candidate = if n == 0 { name.to_owned() } else { numbered(name, n) };
        if tokio::fs::symlink_metadata(dest.join(&candidate)).await.is_err() {
            return candidate;
        }
        n += 1;
    }
}

/// What the network reader hands on: a chunk with its bytes, another message, or why reading stopped.
enum Incoming {
    Chunk { file: u32, offset: u64, hash: [u8; 32], checked: HashJob },
    Msg(SenderMsg),
    Stop(Ending),
}

async fn receive_files<R: AsyncRead + Unpin>(
    r: &mut R,
    attempt: &mut Attempt,
    tracker: &mut Tracker,
    report: &mut impl FnMut(Progress),
) -> Result<(), Ending> {
    let (tx, mut rx) = mpsc::channel(PIPELINE);
    let (give_back, mut pool) = mpsc::channel(PIPELINE);
    // The reader ends by handing on a `Stop`, `Done` or `Failed`, which ends the processing.
    let reader = async {
        read_incoming(r, tx, &mut pool).await;
        std::future::pending::<std::convert::Infallible>().await
    };
    tokio::select! {
        outcome = process(&mut rx, &give_back, attempt, tracker, report) => outcome,
        never = reader => match never {},
    }
}

/// Take messages and chunk bytes off the stream, at most [`PIPELINE`] chunk buffers at a time.
async fn read_incoming<R: AsyncRead + Unpin>(
    r: &mut R,
    tx: mpsc::Sender<Incoming>,
    pool: &mut mpsc::Receiver<ChunkBuf>,
) {
    let lost = |e: wire::WireError| match e {
        wire::WireError::Io(e) if super::stream::stopped_by_sender(&e) => Fatal(FileError::Cancelled),
        wire::WireError::Io(e) => Lost(FileError::Io(format!("connection lost: {e}"))),
        wire::WireError::Truncated => Lost(FileError::Io("connection lost mid-message".into())),
        other => Fatal(FileError::Protocol(other.to_string())),
    };
    let mut made = 0;
    loop {
        let item = match wire::read_msg(r, MAX_FILES_MSG).await {
            Err(e) => Incoming::Stop(lost(e)),
            Ok(None) => Incoming::Stop(Lost(FileError::Io("the sender closed the stream early".into()))),
            Ok(Some(SenderMsg::Chunk { file, offset, len, hash })) => {
                let len = len as usize;
                if len == 0 || len > CHUNK {
                    Incoming::Stop(bad(format!("chunk {offset}+{len} of file {file} out of place")))
                } else {
                    let mut data = match pool.try_recv() {
                        Ok(buf) => buf,
                        Err(_) if made < PIPELINE => {
                            made += 1;
                            ChunkBuf::default()
                        }
                        Err(_) => match pool.recv().await {
                            Some(buf) => buf,
                            None => return,
                        },
                    };
                    match r.read_exact(data.fill(len)).await {
                        Ok(_) => {
                            let checked = tokio::task::spawn_blocking(move || {
                                let ok = blake3::hash(data.bytes()).as_bytes() == &hash;
                                (data, ok)
                            });
                            Incoming::Chunk { file, offset, hash, checked }
                        }
                        Err(e) => Incoming::Stop(lost(wire::WireError::Io(e))),
                    }
                }
            }
            Ok(Some(other)) => Incoming::Msg(other),
        };
        let last = matches!(item, Incoming::Stop(_) | Incoming::Msg(SenderMsg::Done | SenderMsg::Failed(_)));
        if tx.send(item).await.is_err() || last {
            return;
        }
    }
}

/// Check, write and commit what the reader hands on, in order.
async fn process(
    rx: &mut mpsc::Receiver<Incoming>,
    give_back: &mpsc::Sender<ChunkBuf>,
    attempt: &mut Attempt,
    tracker: &mut Tracker,
    report: &mut impl FnMut(Progress),
) -> Result<(), Ending> {
    while let Some(item) = rx.recv().await {
        match item {
            Incoming::Stop(ending) => return Err(ending),
            Incoming::Chunk { file, offset, hash, checked } => {
                let (data, ok) = checked.await.map_err(|e| Fatal(FileError::Io(format!("hashing: {e}"))))?;
                let open = attempt.files.get_mut(&file).ok_or_else(|| bad(format!("no file {file}")))?;
                let len = data.bytes().len() as u64;
                if offset != open.verified || offset + len > open.size {
                    return Err(bad(format!("chunk {offset}+{len} of file {file} out of place")));
                }
                if !ok {
                    return Err(Fatal(FileError::Corrupted { file }));
                }
                let mut f = open.file.take().ok_or_else(|| bad(format!("file {file} already ended")))?;
                let job = tokio::task::spawn_blocking(move || {
                    let outcome = f.write_chunk(data.bytes());
                    (f, data, outcome)
                });
                // Kept in the attempt while it runs: a cancel drops this future, not the write.
                let (_, job) = attempt.in_flight.insert((file, job));
                let done = job.await;
                attempt.in_flight = None;
                let (f, data, outcome) = done.map_err(|e| Fatal(FileError::Io(format!("writing: {e}"))))?;
                let _ = give_back.try_send(data);
                let open = attempt.files.get_mut(&file).ok_or_else(|| bad(format!("no file {file}")))?;
                open.file = Some(f);
                if let Err(e) = outcome {
                    return Err(Fatal(FileError::from_io(&e, &open.temp.display().to_string())));
                }
                open.digest.add(&hash);
                open.verified += len;
                open.unsynced += len;
                if open.unsynced >= SYNC_EVERY && open.syncing.as_ref().is_none_or(|s| s.is_finished()) {
                    let what = open.temp.display().to_string();
                    open.sync_done().await.map_err(|e| Fatal(FileError::from_io(&e, &what)))?;
                    if let Some(dup) = open.file.as_ref().and_then(|f| f.file().try_clone().ok()) {
                        open.syncing = Some(tokio::task::spawn_blocking(move || dup.sync_data()));
                        open.unsynced = 0;
                    }
                }
                if let Some(p) = tracker.add(Instant::now(), len) {
                    report(p);
                }
            }
            Incoming::Msg(SenderMsg::Chunk { .. }) => return Err(bad("a chunk without its bytes".into())),
            Incoming::Msg(SenderMsg::FileEnd { file, hash }) => {
                let open = attempt.files.get_mut(&file).ok_or_else(|| bad(format!("no file {file}")))?;
                if open.confirm {
                    // Committed in an earlier attempt: the sender's file must still be the one kept.
                    open.confirm = false;
                    if open.digest.finish() != hash {
                        return Err(Fatal(FileError::Corrupted { file }));
                    }
                    tracker.file_done();
                    continue;
                }
                if open.verified != open.size || open.committed.is_some() {
                    return Err(bad(format!("file {file} ended at {} of {}", open.verified, open.size)));
                }
                if open.digest.finish() != hash {
                    return Err(Fatal(FileError::Corrupted { file }));
                }
                commit(open).await?;
                tracker.file_done();
                if open.size == 0 {
                    report(tracker.progress());
                }
            }
            Incoming::Msg(SenderMsg::Done) => {
                if let Some((i, _)) = attempt.files.iter().find(|(_, o)| o.committed.is_none() || o.confirm) {
                    return Err(bad(format!("done before file {i} was sent")));
                }
                // Top-level files may have been given numbered names.
                for open in attempt.files.values() {
                    if let (Some(top), Some(committed)) = (&open.top, &open.committed) {
                        attempt.tops.insert(top.clone(), committed.clone());
                    }
                }
                report(tracker.progress());
                return Ok(());
            }
            Incoming::Msg(SenderMsg::Failed(e)) => return Err(Fatal(e)),
            Incoming::Msg(SenderMsg::Offer { .. }) => return Err(bad("a second offer".into())),
        }
    }
    Err(Lost(FileError::Io("the connection reader stopped".into())))
}

fn bad(why: String) -> Ending {
    Fatal(FileError::Protocol(why))
}

/// Sync the file and give it its final name without ever replacing an existing file.
async fn commit(open: &mut Open) -> Result<(), Ending> {
    let what = open.temp.display().to_string();
    let io = |e: std::io::Error| Fatal(FileError::from_io(&e, &what));
    open.sync_done().await.map_err(io)?;
    let file = open.file.take();
    let (temp, dir, name) = (open.temp.clone(), open.dir.clone(), open.name.clone());
    let chosen = tokio::task::spawn_blocking(move || {
        if let Some(f) = file {
            f.file().sync_all()?;
        }
        claim_name(&temp, &dir, &name)
    })
    .await
    .map_err(|e| Fatal(FileError::Io(e.to_string())))?
    .map_err(io)?;
    open.committed = Some(chosen);
    Ok(())
}

/// Link `temp` to the first free name of `name` in `dir`, then drop the temporary name. `hard_link` fails
/// if the target exists, so an existing file is never replaced, even by a racing writer.
fn claim_name(temp: &Path, dir: &Path, name: &str) -> std::io::Result<String> {
    for n in 0..10_000 {
        let candidate = if n == 0 { name.to_owned() } else { numbered(name, n) };
        let target = dir.join(&candidate);
        match std::fs::hard_link(temp, &target) {
            Ok(()) => {
                std::fs::remove_file(temp)?;
                return Ok(candidate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            // File systems without hard links: rename if the name is free (a small race remains there).
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::Unsupported | std::io::ErrorKind::PermissionDenied
                ) =>
            {
                if std::fs::symlink_metadata(&target).is_ok() {
                    continue;
                }
                std::fs::rename(temp, &target)?;
                return Ok(candidate);
            }
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(std::io::ErrorKind::AlreadyExists, format!("no free name for {name}")))
}
