//! The viewer's copy of the session record: the follower's side of [`tether_shared::record::chain`].
//! The host sequences the record and sends each entry with its MAC of the new head; an entry is taken
//! only if the MAC is right and it extends our copy exactly, and we answer with our own MAC of the head
//! we then hold (`ViewerControl::RecordHead`), so the host can check we hold what it made. Anything else
//! is the host breaking the protocol: the session ends (fail closed).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tether_shared::inventory::SystemInfo;
use tether_shared::record::file::RecordFile;

use tether_shared::record::chain::{self, Chain, Entry, Hash};
use tether_shared::relay_proto::resume_commitment;
use tether_shared::session_proto::ViewerControl;
use tokio::sync::mpsc;

/// Clones share the record.
#[derive(Debug, Clone)]
pub(crate) struct Ledger {
    chain: Arc<Mutex<Chain>>,
    key: Hash,
    /// The control writer's queue, for our heads.
    control: mpsc::Sender<ViewerControl>,
    commitment: [u8; 32],
    /// The last few inventories the host sent: those the record names go into the report file.
    inventories: Arc<Mutex<VecDeque<SystemInfo>>>,
}

/// Inventories kept for the report (a refresh after keeping one must not lose it).
const KEPT_INVENTORIES: usize = 4;

impl Ledger {
    pub(crate) fn new(resume_id: &[u8; 32], control: mpsc::Sender<ViewerControl>) -> Self {
        let commitment = resume_commitment(resume_id);
        Self {
            chain: Arc::new(Mutex::new(Chain::new(&commitment))),
            key: chain::mac_key(resume_id),
            control,
            commitment,
            inventories: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Chain> {
        self.chain.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Take the host's `entry` with its `mac`, and confirm the head; why not, if it does not fit.
    pub(crate) fn accept(&self, entry: Entry, mac: &Hash) -> Result<(), String> {
        let seq = entry.seq;
        if chain::head_mac(&self.key, seq + 1, &entry.hash) != *mac {
            return Err(format!("the host's MAC of entry {seq} is wrong"));
        }
        let mut chain = self.lock();
        chain.accept(entry).map_err(|problem| format!("entry {seq}: {problem}"))?;
        let (len, head) = (chain.len(), chain.head());
        drop(chain);
        // A full queue skips one confirmation; the next covers it (heads are cumulative).
        let _ = self
            .control
            .try_send(ViewerControl::RecordHead { len, mac: chain::head_mac(&self.key, len, &head) });
        Ok(())
    }

    pub(crate) fn entries(&self) -> Vec<Entry> {
        self.lock().entries().to_vec()
    }

    /// The host sent `info`: keep it in case the record names it.
    pub(crate) fn seen_inventory(&self, info: &SystemInfo) {
        let mut kept = self.inventories.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if kept.len() == KEPT_INVENTORIES {
            kept.pop_front();
        }
        kept.push_back(info.clone());
    }

    /// The record as a file: every entry, and the inventories they name.
    pub(crate) fn file(&self) -> RecordFile {
        let file = RecordFile::new(self.commitment, self.entries());
        let kept = self.inventories.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        file.with_inventories(kept.iter())
    }

    /// The session's public commitment: what the record is bound to, and what the relay's audit names.
    pub(crate) fn commitment(&self) -> [u8; 32] {
        self.commitment
    }
}
