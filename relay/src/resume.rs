//! Resume records: which sessions this relay paired, so that only their two ends can `Rejoin` them.
//!
//! At pairing, each end sends a commitment to its session's resume id
//! ([`tether_shared::relay_proto::resume_commitment`]); when both sent the same one, the host task stores a
//! record here: the commitment, both addresses, the technician's verified account and the audit session
//! id. `Rejoin { resume_id }` is admitted only if the commitment of `resume_id` matches a live record, and
//! the account in it is re-checked (a revoked account does not rejoin).
//!
//! Records are rows of the `resume` table in the relay's database, so a restart keeps them. A record's
//! `expires_at` is NULL while a session under it is live on this relay ([`ResumeLive`] counts them), and
//! set to `resume_window` after the last one ended — or after the relay started, for records that were
//! live when it stopped. Expired rows are deleted by the relay's housekeeping. The table's schema is in
//! [`crate::store`]'s backends, with the others; on a shared PostgreSQL each relay's rows carry its name
//! and each relay reads and changes only its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::store::{now_ms, Store, StoreError};

/// One paired session that may be rejoined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeRecord {
    pub commitment: [u8; 32],
    /// The audit log's session id of the pairing, so the rejoined part's row names the same session.
    pub session_id: String,
    pub host_addr: String,
    pub viewer_addr: String,
    /// The technician's verified account, if the viewer had one.
    pub technician: Option<String>,
    pub created_at: i64,
    /// For an invited colleague's session: the session it joined, so its rejoined part's row says so too.
    pub part_of: Option<String>,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    /// Store a freshly paired session's record, live (no expiry yet).
    pub fn save_resume(&self, r: &ResumeRecord) -> Result<(), StoreError> {
        self.db().save_resume(r)
    }

    /// The record under `commitment`, if it is live or within its window at `now` (ms since the epoch).
    pub fn find_resume(&self, commitment: &[u8; 32], now: i64) -> Result<Option<ResumeRecord>, StoreError> {
        self.db().find_resume(commitment, now)
    }

    /// Mark a record live (`None`) or set when its window ends.
    pub fn set_resume_expiry(
        &self,
        commitment: &[u8; 32],
        expires_at: Option<i64>,
    ) -> Result<(), StoreError> {
        self.db().set_resume_expiry(commitment, expires_at)
    }

    /// At start: sessions that were live when the relay stopped may rejoin until `expires_at`.
    pub fn resume_after_restart(&self, expires_at: i64) -> Result<usize, StoreError> {
        self.db().resume_after_restart(expires_at)
    }

    /// Delete records whose window has passed.
    pub fn prune_resume(&self, now: i64) -> Result<usize, StoreError> {
        self.db().prune_resume(now)
    }
}

/// How many sessions are live on this relay under each record; the database's `expires_at` follows it.
#[derive(Debug)]
pub struct ResumeLive {
    store: Arc<Store>,
    window: Duration,
    live: Mutex<HashMap<[u8; 32], usize>>,
}

/// A live session under a record; when the last one goes, the record's window starts.
#[derive(Debug)]
pub struct ResumeGuard {
    registry: Arc<ResumeLive>,
    commitment: [u8; 32],
}

impl ResumeLive {
    pub fn new(store: Arc<Store>, window: Duration) -> Arc<Self> {
        Arc::new(Self { store, window, live: Mutex::default() })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], usize>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A session under `commitment` is live from now on.
    pub fn enter(self: &Arc<Self>, commitment: [u8; 32]) -> ResumeGuard {
        *self.lock().entry(commitment).or_default() += 1;
        self.sync(commitment);
        ResumeGuard { registry: self.clone(), commitment }
    }

    /// Write the record's expiry as the live count says now (off the async threads). Each write reads the
    /// count under the lock, so the last write reflects the last change whatever order they run in.
    fn sync(self: &Arc<Self>, commitment: [u8; 32]) {
        let this = self.clone();
        let write = move || {
            let live = this.lock();
            let expires = match live.get(&commitment) {
                Some(_) => None,
                None => Some(now_ms().saturating_add(ms(this.window))),
            };
            if let Err(e) = this.store.set_resume_expiry(&commitment, expires) {
                tracing::error!("could not update a resume record: {e}");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(write)),
            Err(_) => write(),
        }
    }
}

impl Drop for ResumeGuard {
    fn drop(&mut self) {
        {
            let mut live = self.registry.lock();
            if let Some(n) = live.get_mut(&self.commitment) {
                *n -= 1;
                if *n == 0 {
                    live.remove(&self.commitment);
                }
            }
        }
        self.registry.sync(self.commitment);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(c: u8) -> ResumeRecord {
        ResumeRecord {
            commitment: [c; 32],
            session_id: "s".into(),
            host_addr: "192.0.2.1:1".into(),
            viewer_addr: "192.0.2.2:2".into(),
            technician: Some("ann".into()),
            created_at: 5,
            part_of: c.is_multiple_of(2).then(|| "first".into()),
        }
    }

    #[test]
    fn records_are_found_while_live_or_in_their_window_and_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(dir.path()).expect("open");
        store.save_resume(&record(1)).expect("save");
        assert_eq!(store.find_resume(&[1; 32], i64::MAX).expect("find"), Some(record(1)), "live");
        assert_eq!(store.find_resume(&[2; 32], 0).expect("find"), None);
        // An invited colleague's record keeps the session it joined.
        store.save_resume(&record(4)).expect("save");
        let joined = store.find_resume(&[4; 32], i64::MAX).expect("find").expect("found");
        assert_eq!(joined.part_of.as_deref(), Some("first"));
        drop(store);
        let store = Store::open(dir.path()).expect("reopen");
        assert_eq!(store.resume_after_restart(1_000).expect("restart"), 2);
        assert!(store.find_resume(&[1; 32], 999).expect("find").is_some());
        assert_eq!(store.find_resume(&[1; 32], 1_000).expect("find"), None, "window over");
        assert_eq!(store.prune_resume(1_000).expect("prune"), 2);
    }

    #[test]
    fn the_window_starts_when_the_last_live_session_ends() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Arc::new(Store::open(dir.path()).expect("open"));
        store.save_resume(&record(1)).expect("save");
        store.set_resume_expiry(&[1; 32], Some(0)).expect("expire");
        let live = ResumeLive::new(store.clone(), Duration::from_secs(60));
        let (a, b) = (live.enter([1; 32]), live.enter([1; 32]));
        assert!(store.find_resume(&[1; 32], i64::MAX).expect("find").is_some(), "live again");
        drop(a);
        assert!(store.find_resume(&[1; 32], i64::MAX).expect("find").is_some(), "one still live");
        drop(b);
        assert_eq!(store.find_resume(&[1; 32], now_ms() + 61_000).expect("find"), None);
        assert!(store.find_resume(&[1; 32], now_ms()).expect("find").is_some(), "within the window");
    }
}
