//! The host's copy of one participant's session record: the sequencer's side of
//! [`tether_shared::record::chain`]. Every record event of the participant is appended here and sent to
//! their viewer as it is made (`HostControl::Record`, with the host's MAC of the new head); the viewer
//! answers with its own MAC of the head it holds (`ViewerControl::RecordHead`), which must match ours.
//! A head that does not is the viewer breaking the protocol: the session ends (fail closed — a record
//! the two ends do not agree on is worth nothing, and only a broken or hostile viewer sends one).
//!
//! Entries go to the viewer through an unbounded channel the control writer drains: none may be
//! dropped (the viewer's copy would stop matching), and there are only as many as things that happened.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tether_shared::inventory::SystemInfo;
use tether_shared::record::chain::{self, Chain, Entry, Hash};
use tether_shared::record::SessionEvent;
use tether_shared::relay_proto::{resume_commitment, ClientToRelay};
use tether_shared::session_proto::HostControl;
use tokio::sync::mpsc;

/// What a ledger sends: entries for the viewer (the control writer drains them) and heads for the relay
/// (the relay watch sends them on the control link).
#[derive(Debug)]
pub struct Outbound {
    pub to_viewer: mpsc::UnboundedReceiver<HostControl>,
    pub to_relay: mpsc::UnboundedReceiver<ClientToRelay>,
}

#[derive(Debug)]
pub struct Ledger {
    chain: Mutex<Chain>,
    /// The session's public commitment, which the record is bound to.
    commitment: [u8; 32],
    key: Hash,
    to_viewer: mpsc::UnboundedSender<HostControl>,
    /// The head after each entry, for the relay's audit row (32 bytes and a count: no content).
    to_relay: mpsc::UnboundedSender<ClientToRelay>,
    /// Entries the viewer confirmed holding (its last matching head).
    confirmed: AtomicU64,
    /// Inventories the record names, for the report file.
    inventories: Mutex<Vec<SystemInfo>>,
}

impl Ledger {
    /// The record of the session with resume secret `resume_id`, the entries to send its viewer, and the
    /// heads to tell the relay.
    pub fn new(resume_id: &[u8; 32]) -> (Arc<Self>, Outbound) {
        let (to_viewer, entries) = mpsc::unbounded_channel();
        let (to_relay, heads) = mpsc::unbounded_channel();
        let commitment = resume_commitment(resume_id);
        let ledger = Self {
            chain: Mutex::new(Chain::new(&commitment)),
            commitment,
            key: chain::mac_key(resume_id),
            to_viewer,
            to_relay,
            confirmed: AtomicU64::new(0),
            inventories: Mutex::default(),
        };
        (Arc::new(ledger), Outbound { to_viewer: entries, to_relay: heads })
    }

    /// Plain data; a panic elsewhere while locked leaves it as it was.
    fn lock(&self) -> MutexGuard<'_, Chain> {
        self.chain.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Append `event` and send the entry to the viewer (in order: the lock is held while it is queued).
    pub fn append(&self, event: SessionEvent) {
        let mut chain = self.lock();
        let entry = chain.append(event);
        let mac = chain::head_mac(&self.key, entry.seq + 1, &entry.hash);
        let head = ClientToRelay::RecordHead { len: entry.seq + 1, head: entry.hash };
        // Gone only when the session is: nobody to tell then.
        let _ = self.to_viewer.send(HostControl::Record { entry, mac });
        let _ = self.to_relay.send(head);
    }

    /// The viewer says it holds `len` entries with a head whose MAC is `mac`: check it against ours.
    pub fn check_head(&self, len: u64, mac: &Hash) -> Result<(), String> {
        let chain = self.lock();
        let Some(head) = chain.head_at(len) else {
            return Err(format!("the viewer claims {len} entries; the host made {}", chain.len()));
        };
        if chain::head_mac(&self.key, len, &head) != *mac {
            return Err(format!("the viewer's head after {len} entries is not the host's"));
        }
        self.confirmed.fetch_max(len, Ordering::Relaxed);
        Ok(())
    }

    pub fn commitment(&self) -> [u8; 32] {
        self.commitment
    }

    pub fn entries(&self) -> Vec<Entry> {
        self.lock().entries().to_vec()
    }

    /// Keep `info` for the report (the entry naming it is appended separately).
    pub fn attach(&self, info: SystemInfo) {
        self.inventories.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(info);
    }

    pub fn inventories(&self) -> Vec<SystemInfo> {
        self.inventories.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// How many entries the viewer confirmed it holds, with the same head.
    pub fn confirmed(&self) -> u64 {
        self.confirmed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use tether_shared::record::EventKind;

    use super::*;

    #[test]
    fn entries_go_to_the_viewer_and_only_a_matching_head_is_confirmed() {
        let secret = [5; 32];
        let (ledger, outbound) = Ledger::new(&secret);
        let (mut to_viewer, mut to_relay) = (outbound.to_viewer, outbound.to_relay);
        let mut follower = Chain::new(&resume_commitment(&secret));
        for i in 0..3 {
            let kind = EventKind::MonitorSwitched { index: i };
            ledger.append(SessionEvent::new(SystemTime::now(), kind));
        }
        while let Ok(HostControl::Record { entry, mac }) = to_viewer.try_recv() {
            assert_eq!(mac, chain::head_mac(&chain::mac_key(&secret), entry.seq + 1, &entry.hash));
            follower.accept(entry).expect("extends");
        }
        let mac = chain::head_mac(&chain::mac_key(&secret), 3, &follower.head());
        let mut last_told = None;
        while let Ok(told) = to_relay.try_recv() {
            last_told = Some(told);
        }
        assert_eq!(
            last_told,
            Some(ClientToRelay::RecordHead { len: 3, head: follower.head() }),
            "the relay's"
        );
        ledger.check_head(3, &mac).expect("the same head");
        assert_eq!(ledger.confirmed(), 3);
        assert!(ledger.check_head(2, &mac).is_err(), "a head for another length");
        assert!(ledger.check_head(9, &mac).is_err(), "more entries than were made");
        let wrong_key = chain::head_mac(&chain::mac_key(&[6; 32]), 3, &follower.head());
        assert!(ledger.check_head(3, &wrong_key).is_err(), "a MAC under another key");
        assert_eq!(ledger.confirmed(), 3);
    }
}
