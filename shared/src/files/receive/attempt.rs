//! One attempt at a transfer on the disk: the folders made, each file's temporary file (fresh, or
//! reopened from an earlier attempt to resume), and what becomes of them when the attempt ends — kept
//! for a retry when the connection was lost ([`Attempt::keep`]), removed on an error or cancel
//! ([`Attempt::discard`]).
//!
//! A top-level name that exists gets a numbered name, so nothing is merged into or overwrites what was
//! there, and a top-level name that would be hidden gets a visible one ([`unhidden`]: `.xsessionrc` is
//! stored as `_xsessionrc`). Temporary files are made with exclusive create under a random name
//! ([`DiskFile::create_temp`]), so nothing already there is written through.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::machine::{FileState, ReceiveMachine, Track};
use super::partials::{Partial, PartialFile, Partials};
use crate::files::disk::{ChunkBuf, DiskFile};
use crate::files::names::{numbered, unhidden};
use crate::files::proto::{Entry, EntryKind, FileError, TransferId};

/// One file's place on the disk (its progress and state are the [`ReceiveMachine`]'s).
pub(super) struct OnDisk {
    /// For a top-level file, the name it was offered as: its final name is what the sender is told it was
    /// stored under.
    pub top: Option<String>,
    pub temp: PathBuf,
    pub dir: PathBuf,
    pub name: String,
    /// The open temporary file; `None` while a write job holds it, once committed, or for a file
    /// committed in an earlier attempt.
    pub file: Option<DiskFile>,
    /// Bytes written since the last background sync was started.
    pub unsynced: u64,
    /// A background `fdatasync` of the file (on a duplicate handle), started every
    /// few megabytes written (see the pipeline).
    pub syncing: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl OnDisk {
    /// Wait for a background sync; its error (a disk error reported only once) is the file's error.
    pub async fn sync_done(&mut self) -> std::io::Result<()> {
        match self.syncing.take() {
            Some(job) => job.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

/// Writing one chunk, on a blocking thread: the file and the buffer come back with the outcome.
pub(super) type WriteJob = tokio::task::JoinHandle<(DiskFile, ChunkBuf, std::io::Result<()>)>;

/// Everything of one attempt, so failure handling is in one place.
pub(super) struct Attempt {
    pub id: TransferId,
    /// Offered top-level name → the name chosen for it here.
    pub tops: HashMap<String, String>,
    pub disk: HashMap<u32, OnDisk>,
    pub machine: ReceiveMachine,
    /// The chunk being written, if any, and its file: awaited before the attempt is discarded or kept, so
    /// no write outlives the attempt.
    pub in_flight: Option<(u32, WriteJob)>,
}

impl Attempt {
    /// Bytes already verified of each file of the offer, in offer order (the `Accept`'s resume points).
    pub fn resume_points(&self, entries: usize) -> Vec<u64> {
        (0..entries as u32).map(|i| self.machine.get(i).map_or(0, |t| t.verified)).collect()
    }

    /// Wait for a chunk write cut short by a cancel and give its file back (its bytes are not counted as
    /// verified; a resume cuts the file back to what was).
    async fn settle(&mut self) {
        if let Some((i, job)) = self.in_flight.take() {
            if let (Ok((f, _, _)), Some(disk)) = (job.await, self.disk.get_mut(&i)) {
                disk.file = Some(f);
            }
            self.machine.handle_write_abandoned(i);
        }
        for disk in self.disk.values_mut() {
            let _ = disk.sync_done().await;
        }
    }

    /// The name file `i` is committed under (now or in an earlier attempt), if it is.
    fn committed(machine: &ReceiveMachine, i: u32) -> Option<&String> {
        match &machine.get(i)?.state {
            FileState::Committed(name) | FileState::Confirming(name) => Some(name),
            FileState::Receiving | FileState::Writing { .. } => None,
        }
    }

    /// Remove every temporary file (on an error or cancel).
    pub async fn discard(&mut self) {
        self.settle().await;
        for (i, disk) in &mut self.disk {
            disk.file = None;
            if Self::committed(&self.machine, *i).is_none() {
                let _ = tokio::fs::remove_file(&disk.temp).await;
            }
        }
    }

    /// Keep the verified parts for a later attempt (the connection was lost).
    pub async fn keep(mut self, partials: &Partials) {
        self.settle().await;
        let mut partial = Partial { tops: std::mem::take(&mut self.tops), files: HashMap::new() };
        for (i, disk) in std::mem::take(&mut self.disk) {
            let Some(track) = self.machine.get(i) else { continue };
            let (size, verified, digest) = (track.size, track.verified, track.digest.clone());
            let temp = disk.temp;
            match (disk.file, Self::committed(&self.machine, i).cloned()) {
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

/// Create folders and temporary files (or reopen them to resume).
pub(super) async fn prepare(
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
    let mut tops = std::mem::take(&mut previous.tops);
    let mut disk = HashMap::new();
    let mut tracks = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let top = &entry.path[0];
        let is_top = entry.path.len() == 1;
        if !tops.contains_key(top) {
            let visible = unhidden(top);
            let chosen = if is_top && matches!(entry.kind, EntryKind::File { .. }) {
                visible.into_owned() // files get their free name when committed
            } else {
                free_dir_name(dest, &visible).await
            };
            tops.insert(top.clone(), chosen);
        }
        let mut path = dest.join(&tops[top]);
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
                let reopened = match previous.files.remove(&(i as u32)) {
                    Some(p) => reopen(p, dir.clone(), name.clone(), size, offered.clone()).await,
                    None => None,
                };
                let (on_disk, track) = match reopened {
                    Some(both) => both,
                    None => {
                        let made = dir.clone();
                        let (temp, file) = tokio::task::spawn_blocking(move || DiskFile::create_temp(&made))
                            .await
                            .map_err(|e| FileError::Io(e.to_string()))?
                            .map_err(io(&dir))?;
                        let file = Some(file);
                        let on_disk =
                            OnDisk { top: offered, temp, dir, name, file, unsynced: 0, syncing: None };
                        (on_disk, Track::fresh(size))
                    }
                };
                disk.insert(i as u32, on_disk);
                tracks.push((i as u32, track));
            }
        }
    }
    Ok(Attempt { id, tops, disk, machine: ReceiveMachine::new(tracks), in_flight: None })
}

/// Reopen a partial file from an earlier attempt, cut back to what was verified; or take up a file the
/// earlier attempt committed, if it is still there at its size (else it is received again, afresh).
async fn reopen(
    p: PartialFile,
    dir: PathBuf,
    name: String,
    size: u64,
    top: Option<String>,
) -> Option<(OnDisk, Track)> {
    if p.size != size || p.verified > size {
        return None;
    }
    let (file, verified, state) = match p.committed {
        Some(committed) => {
            let there = tokio::fs::symlink_metadata(dir.join(&committed)).await.ok()?;
            if !there.is_file() || there.len() != size {
                return None;
            }
            (None, size, FileState::Confirming(committed))
        }
        None => {
            let (path, verified) = (p.temp.clone(), p.verified);
            let file =
                tokio::task::spawn_blocking(move || DiskFile::resume(&path, verified)).await.ok()?.ok()?;
            (Some(file), verified, FileState::Receiving)
        }
    };
    let on_disk = OnDisk { top, temp: p.temp, dir, name, file, unsynced: 0, syncing: None };
    Some((on_disk, Track { size, verified, digest: p.digest, state }))
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
