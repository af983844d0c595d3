//! The offer, checked whole before anything touches the disk or the user is asked: every name
//! ([`crate::files::names`]), every parent announced before its children, no duplicates, sizes adding
//! up ([`check_offer`]); for a fetch, that it is what was asked for ([`check_reply`]); and that it fits
//! where it would go ([`room_for`]).

use std::collections::HashSet;
use std::path::Path;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::files::names::check_path;
use crate::files::proto::{Entry, EntryKind, FileError, MAX_ENTRIES};

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

/// Refuse an offer that cannot fit where it would be written (`needed` = bytes not already kept from an
/// earlier attempt). Without an answer from the filesystem the transfer goes ahead and finds out as it
/// writes.
pub(super) async fn room_for(dest: &Path, needed: u64) -> Result<(), FileError> {
    let dir = dest.to_path_buf();
    let free = tokio::task::spawn_blocking(move || crate::files::disk::free_space(&dir)).await.ok().flatten();
    match free {
        Some(free) if free < needed => Err(FileError::NoRoom { needed, free }),
        _ => Ok(()),
    }
}

/// Resolves when the stream yields anything at all while the user is asked: its end or an error (the
/// sender cancelled or left), or bytes before the answer (a sender that does not follow the protocol).
pub(super) async fn sender_gave_up<R: AsyncRead + Unpin>(r: &mut R) -> FileError {
    let mut byte = [0u8; 1];
    match r.read(&mut byte).await {
        Ok(1..) => FileError::Protocol("data sent before the receiver answered the offer".into()),
        Ok(0) | Err(_) => FileError::Cancelled,
    }
}
