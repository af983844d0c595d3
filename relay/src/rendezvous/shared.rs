//! The state the rendezvous tasks share: the relay-wide [`Hub`], plus the rendezvous's own tables.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::peer::{Mailbox, Waiting};
use super::state::Nameplates;
use crate::hub::{Hub, RelayStats};

/// The rendezvous's own tables (nameplates, waiting rejoins) on top of the relay-wide [`Hub`]. Tasks
/// reach the hub's methods through it (`Deref`): it is the hub as rendezvous sees it.
#[derive(Debug)]
pub struct Rendezvous {
    hub: Arc<Hub>,
    nameplates: Mutex<Nameplates<Mailbox>>,
    /// Ends of paired sessions waiting for their peer to rejoin, by resume commitment.
    rejoins: Mutex<HashMap<[u8; 32], Waiting>>,
}

impl std::ops::Deref for Rendezvous {
    type Target = Hub;

    fn deref(&self) -> &Hub {
        &self.hub
    }
}

impl Rendezvous {
    pub fn new(hub: Arc<Hub>) -> Self {
        let nameplates = Nameplates::new(hub.cfg().code_ttl, hub.cfg().max_waiting_hosts);
        Self { hub, nameplates: Mutex::new(nameplates), rejoins: Mutex::default() }
    }

    /// The relay's state as a snapshot.
    pub fn stats(&self) -> RelayStats {
        self.hub.stats(self.nameplates().waiting())
    }

    /// `/metrics` in the Prometheus text format.
    pub fn render_metrics(&self) -> String {
        self.hub.render_metrics(self.nameplates().waiting())
    }

    pub(super) fn nameplates(&self) -> MutexGuard<'_, Nameplates<Mailbox>> {
        // A poisoned lock means a task panicked while holding it; the state is still consistent (every
        // method leaves it so), so carry on rather than take the relay down.
        self.nameplates.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn rejoins(&self) -> MutexGuard<'_, HashMap<[u8; 32], Waiting>> {
        self.rejoins.lock().unwrap_or_else(|p| p.into_inner())
    }
}
