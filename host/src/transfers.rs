//! The file transfers under way in a session, for the user to watch and stop.
//!
//! The user consented to the technician moving files, but a large file leaving their machine should still
//! be visible while it happens and stoppable without ending the session. Each fetch or upload registers
//! here for as long as it runs (an [`Entry`], removed when dropped) and reports its progress; the window
//! lists them with a Stop button, which cancels that transfer alone (the engine then removes its partial
//! data on both sides, as for any cancel).

use std::sync::{Arc, Mutex};

use tether_shared::files::progress::Progress;
use tokio_util::sync::CancellationToken;

/// Which way the bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The technician fetches from a shared folder.
    ToTechnician,
    /// The technician sends files into the incoming folder.
    FromTechnician,
}

/// One transfer as the window shows it.
#[derive(Debug, Clone)]
pub struct Transfer {
    pub id: u64,
    pub direction: Direction,
    /// What moves, as the user knows it: `Shared/report.pdf`, or the names of the files sent in.
    pub what: String,
    /// `None` until the transfer is under way: the receiver accepted it (an upload waits for the user's
    /// answer first); from then on bytes, rate and time left.
    pub progress: Option<Progress>,
    stop: CancellationToken,
}

/// The registry of one session's transfers; clones share it.
#[derive(Debug, Clone, Default)]
pub struct Transfers {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    running: Vec<Transfer>,
}

impl Transfers {
    /// Register a transfer that `stop` cancels; it is listed until the returned entry is dropped.
    pub fn start(&self, direction: Direction, what: String, stop: CancellationToken) -> Entry {
        let mut inner = self.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        inner.running.push(Transfer { id, direction, what, progress: None, stop });
        Entry { transfers: self.clone(), id }
    }

    /// The transfers running now, oldest first.
    pub fn running(&self) -> Vec<Transfer> {
        self.lock().running.clone()
    }

    /// Stop transfer `id` (the user clicked Stop). Unknown ids (it just finished) are ignored.
    pub fn stop(&self, id: u64) {
        if let Some(t) = self.lock().running.iter().find(|t| t.id == id) {
            t.stop.cancel();
        }
    }

    fn update(&self, id: u64, change: impl FnOnce(&mut Transfer)) {
        if let Some(t) = self.lock().running.iter_mut().find(|t| t.id == id) {
            change(t);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The data is a plain list that no update leaves half-changed, so a panic elsewhere while the
        // lock was held does not make it wrong: go on with it.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A registered transfer; dropping it takes it off the list.
#[derive(Debug)]
pub struct Entry {
    transfers: Transfers,
    id: u64,
}

impl Entry {
    pub fn progress(&self, progress: Progress) {
        self.transfers.update(self.id, |t| t.progress = Some(progress));
    }

    /// Name what moves once it is known (an upload's names come with its offer).
    pub fn rename(&self, what: String) {
        self.transfers.update(self.id, |t| t.what = what);
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.transfers.lock().running.retain(|t| t.id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(done: u64) -> Progress {
        Progress { done, total: 100, rate: 10.0, ..Default::default() }
    }

    #[test]
    fn entries_are_listed_while_they_live_and_stop_cancels_only_theirs() {
        let transfers = Transfers::default();
        let (a_stop, b_stop) = (CancellationToken::new(), CancellationToken::new());
        let a = transfers.start(Direction::ToTechnician, "Shared/a.pdf".into(), a_stop.clone());
        let b = transfers.start(Direction::FromTechnician, "files".into(), b_stop.clone());
        b.rename("fix.sh".into());
        a.progress(progress(40));
        let running = transfers.running();
        assert_eq!(running.iter().map(|t| t.what.as_str()).collect::<Vec<_>>(), ["Shared/a.pdf", "fix.sh"]);
        assert_eq!(running[0].progress, Some(progress(40)));
        assert_eq!(running[1].progress, None);

        transfers.stop(running[1].id);
        assert!(b_stop.is_cancelled() && !a_stop.is_cancelled());
        drop(b);
        assert_eq!(transfers.running().len(), 1);
        drop(a);
        assert!(transfers.running().is_empty());
        transfers.stop(running[0].id); // already gone: nothing happens
        assert!(!a_stop.is_cancelled());
    }
}
