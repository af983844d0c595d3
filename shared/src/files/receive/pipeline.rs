//! The receiving shell: network reading, hashing and disk writing overlap, while the
//! [`ReceiveMachine`](super::machine::ReceiveMachine) decides.
//!
//! A reader task takes chunks off the stream into a few reused buffers ([`PIPELINE`] of them, so memory
//! stays bounded) and starts each chunk's hash on a blocking thread at once, while an earlier chunk is
//! being written on another. Hashing in the write job instead put hash and write in series and capped a
//! 1 GiB transfer below 200 MB/s (`docs/BENCHMARKS.md`). Every [`SYNC_EVERY`] bytes a background
//! `fdatasync` starts, so the disk writes along with the transfer and the sync before the final name
//! only waits for the tail (a 1 GiB file otherwise waits seconds there).

use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use super::attempt::Attempt;
use super::commit::commit;
use super::machine::{bad, Action};
use super::Ending::{self, Fatal, Lost};
use crate::files::disk::ChunkBuf;
use crate::files::progress::{Progress, Tracker};
use crate::files::proto::{FileError, SenderMsg, CHUNK, MAX_FILES_MSG};
use crate::wire;

/// Chunk buffers per transfer: being filled from the network, being hashed or waiting, being written.
pub const PIPELINE: usize = 4;

/// Start writing a file's data to the disk every this many bytes, in the background, so the sync before
/// the final name only waits for the last few megabytes instead of the whole file.
const SYNC_EVERY: u64 = 32 << 20;

/// Checking one chunk's BLAKE3 against the hash the sender announced, on a blocking thread: the buffer
/// comes back with the verdict.
type HashJob = tokio::task::JoinHandle<(ChunkBuf, bool)>;

/// What the network reader hands on: a chunk with its bytes, another message, or why reading stopped.
enum Incoming {
    Chunk { file: u32, offset: u64, hash: [u8; 32], checked: HashJob },
    Msg(SenderMsg),
    Stop(Ending),
}

/// Receive the files of an accepted offer until the sender's `Done` (or the attempt's end).
pub(super) async fn receive_files<R: AsyncRead + Unpin>(
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
        wire::WireError::Io(e) if crate::files::stream::stopped_by_sender(&e) => Fatal(FileError::Cancelled),
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

/// Carry out what the machine decides for each thing the reader hands on, in order.
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
                let len = data.bytes().len();
                let msg = SenderMsg::Chunk { file, offset, len: len as u32, hash };
                attempt.machine.handle(&msg)?;
                if !ok {
                    return Err(Fatal(FileError::Corrupted { file }));
                }
                write_chunk(attempt, file, data, give_back).await?;
                if let Some(p) = tracker.add(Instant::now(), len as u64) {
                    report(p);
                }
            }
            Incoming::Msg(msg) => match attempt.machine.handle(&msg)? {
                Action::Write { .. } => return Err(bad("a chunk without its bytes".into())),
                Action::Commit { file } => {
                    let disk = attempt.disk.get_mut(&file).ok_or_else(|| bad(format!("no file {file}")))?;
                    let name = commit(disk).await?;
                    attempt.machine.handle_committed(file, name)?;
                    tracker.file_done();
                    if attempt.machine.get(file).is_some_and(|t| t.size == 0) {
                        report(tracker.progress());
                    }
                }
                Action::Confirmed { .. } => tracker.file_done(),
                Action::Finished => {
                    // Top-level files may have been given numbered names.
                    for (i, disk) in &attempt.disk {
                        let committed = attempt.machine.get(*i).map(|t| &t.state);
                        if let (Some(top), Some(super::machine::FileState::Committed(name))) =
                            (&disk.top, committed)
                        {
                            attempt.tops.insert(top.clone(), name.clone());
                        }
                    }
                    report(tracker.progress());
                    return Ok(());
                }
            },
        }
    }
    Err(Lost(FileError::Io("the connection reader stopped".into())))
}

/// Write a verified chunk of `file` on a blocking thread, keeping the job in the attempt while it runs
/// (a cancel drops this future, not the write), then start a background sync when one is due.
async fn write_chunk(
    attempt: &mut Attempt,
    file: u32,
    data: ChunkBuf,
    give_back: &mpsc::Sender<ChunkBuf>,
) -> Result<(), Ending> {
    let disk = attempt.disk.get_mut(&file).ok_or_else(|| bad(format!("no file {file}")))?;
    let mut f = disk.file.take().ok_or_else(|| bad(format!("file {file} already ended")))?;
    let job = tokio::task::spawn_blocking(move || {
        let outcome = f.write_chunk(data.bytes());
        (f, data, outcome)
    });
    let (_, job) = attempt.in_flight.insert((file, job));
    let done = job.await;
    attempt.in_flight = None;
    let (f, data, outcome) = done.map_err(|e| Fatal(FileError::Io(format!("writing: {e}"))))?;
    let len = data.bytes().len() as u64;
    let _ = give_back.try_send(data);
    let disk = attempt.disk.get_mut(&file).ok_or_else(|| bad(format!("no file {file}")))?;
    disk.file = Some(f);
    if let Err(e) = outcome {
        attempt.machine.handle_write_abandoned(file);
        return Err(Fatal(FileError::from_io(&e, &disk.temp.display().to_string())));
    }
    attempt.machine.handle_written(file)?;
    disk.unsynced += len;
    if disk.unsynced >= SYNC_EVERY && disk.syncing.as_ref().is_none_or(|s| s.is_finished()) {
        let what = disk.temp.display().to_string();
        disk.sync_done().await.map_err(|e| Fatal(FileError::from_io(&e, &what)))?;
        if let Some(dup) = disk.file.as_ref().and_then(|f| f.file().try_clone().ok()) {
            disk.syncing = Some(tokio::task::spawn_blocking(move || dup.sync_data()));
            disk.unsynced = 0;
        }
    }
    Ok(())
}
