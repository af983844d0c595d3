//! Live sessions by technician account, so a revocation reaches a running relay: the server's poller
//! re-reads revocations from the account store every `revocation_poll` and cancels the live sessions of
//! revoked accounts (their viewer tasks end them; both sides hear `Revoked`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

#[derive(Debug, Default)]
pub struct LiveAccounts {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    live: HashMap<u64, (String, CancellationToken)>,
}

/// Keeps a session in the registry while it lives.
#[derive(Debug)]
pub struct LiveGuard {
    registry: Arc<LiveAccounts>,
    id: u64,
    pub revoked: CancellationToken,
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.registry.lock().live.remove(&self.id);
    }
}

impl LiveAccounts {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Register a live session of `account`.
    pub fn enter(self: &Arc<Self>, account: &str) -> LiveGuard {
        let revoked = CancellationToken::new();
        let mut inner = self.lock();
        let id = inner.next;
        inner.next += 1;
        inner.live.insert(id, (account.to_owned(), revoked.clone()));
        LiveGuard { registry: self.clone(), id, revoked }
    }

    /// Accounts with live sessions, each once.
    pub fn accounts(&self) -> Vec<String> {
        let mut names: Vec<String> = self.lock().live.values().map(|(a, _)| a.clone()).collect();
        names.sort();
        names.dedup();
        names
    }

    /// End the live sessions of these accounts; returns how many.
    pub fn revoke(&self, accounts: &[String]) -> usize {
        let inner = self.lock();
        let mut n = 0;
        for (account, token) in inner.live.values() {
            if accounts.contains(account) && !token.is_cancelled() {
                token.cancel();
                n += 1;
            }
        }
        n
    }
}
