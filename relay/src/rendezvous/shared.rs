//! The state the rendezvous tasks share: the relay-wide [`Hub`], plus the rendezvous's own tables.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tether_shared::relay_proto::RelayAddress;

use super::peer::{Mailbox, Waiting};
use super::state::Nameplates;
use crate::hub::{Hub, RelayStats};

/// The rendezvous's own tables (nameplates, waiting rejoins) on top of the relay-wide [`Hub`]. Tasks
/// reach the hub's methods through it (`Deref`): it is the hub as rendezvous sees it.
#[derive(Debug)]
pub struct Rendezvous {
    hub: Arc<Hub>,
    /// This relay as the organization's directory lists it ([`super::directory`]): `None` without a
    /// shared database or a public address.
    listed_as: Option<RelayAddress>,
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
    /// `own`: where clients reach this relay and its certificate, when it has a public address.
    pub fn new(hub: Arc<Hub>, own: Option<RelayAddress>) -> Self {
        let nameplates = Nameplates::new(hub.cfg().code_ttl, hub.cfg().max_waiting_hosts);
        let listed_as = own.filter(|_| hub.store().db().directory().is_some());
        Self { hub, listed_as, nameplates: Mutex::new(nameplates), rejoins: Mutex::default() }
    }

    /// This relay as the directory lists its codes, if it lists them.
    pub fn listed_as(&self) -> Option<&RelayAddress> {
        self.listed_as.as_ref()
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
