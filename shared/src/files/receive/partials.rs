//! Verified parts of interrupted transfers, kept for resuming (one [`Partials`] per side of a session).
//!
//! A lost connection keeps what was verified of each file (its temporary file, verified length and
//! digest so far) and which files were already committed, under the transfer's id. A new attempt with
//! the same id takes them back ([`Partials::take`]) and resumes from the last verified chunk. When the
//! last handle goes (the session ended), temporary files nobody resumed are removed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::files::proto::{FileDigest, TransferId};

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

/// What an interrupted attempt leaves for the next one.
#[derive(Debug, Clone, Default)]
pub(super) struct Partial {
    /// Top-level names chosen in the first attempt.
    pub tops: HashMap<String, String>,
    pub files: HashMap<u32, PartialFile>,
}

#[derive(Debug, Clone)]
pub(super) struct PartialFile {
    pub temp: PathBuf,
    pub size: u64,
    pub verified: u64,
    pub digest: FileDigest,
    /// Already under its final name (this name, in its folder): nothing of it is sent again.
    pub committed: Option<String>,
}

impl Partials {
    pub(super) fn take(&self, id: &TransferId) -> Option<Partial> {
        self.0.lock().ok()?.0.remove(id)
    }

    pub(super) fn keep(&self, id: TransferId, partial: Partial) {
        if let Ok(mut map) = self.0.lock() {
            map.0.insert(id, partial);
        }
    }

    /// Bytes already verified and kept on disk for transfer `id` (what a resume need not send again).
    pub(super) fn verified(&self, id: &TransferId) -> u64 {
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
