//! The organization's directory of waiting codes, as this relay uses it (relays sharing PostgreSQL,
//! [`crate::store::Directory`]).
//!
//! A code made here is listed with this relay's public address and certificate fingerprint, so that no
//! other relay hands out the same nameplate, and a viewer who asks another relay for it is sent here
//! ([`RelayToClient::Redirect`](tether_shared::relay_proto::RelayToClient::Redirect)). A claim for a code
//! this relay does not hold is looked up, and answered with a redirect when another relay holds it.
//!
//! The directory helps; it never decides a pairing. A relay without a shared database (or without a public
//! address) keeps its codes to itself. A code that could not be listed (the database was away) still
//! works on this relay; a claim that could not be looked up is refused with
//! [`RelayErrorKind::DirectoryUnavailable`], which says what to do. Both are counted
//! (`tether_relay_directory_errors_total`).

use std::sync::atomic::Ordering;
use std::time::Instant;

use tether_shared::code::Nameplate;
use tether_shared::relay_proto::{RelayAddress, RelayErrorKind};

use super::peer::Mailbox;
use super::shared::Rendezvous;
use crate::store::{now_ms, Directory, StoreError};

/// Nameplates tried before giving up (`Busy`); after the first collision, each try is a digit longer.
const LIST_ATTEMPTS: u32 = 5;

/// A fresh nameplate for `host` until the returned deadline: this relay's own, and listed in the
/// directory when there is one.
pub async fn register(hub: &Rendezvous, host: Mailbox) -> Result<(Nameplate, Instant), RelayErrorKind> {
    let mut extra = 0;
    for _ in 0..LIST_ATTEMPTS {
        let (nameplate, expires) =
            hub.nameplates().register_longer(Instant::now(), host.clone(), &mut rand::rng(), extra)?;
        let Some(own) = hub.listed_as().cloned() else { return Ok((nameplate, expires)) };
        let lives = i64::try_from(expires.saturating_duration_since(Instant::now()).as_millis()).unwrap_or(0);
        let (text, now) = (nameplate.as_str().to_owned(), now_ms());
        let listed = ask(hub, move |d| {
            d.list_nameplate(&text, &own.address, &own.fingerprint, now.saturating_add(lives), now)
        })
        .await;
        match listed {
            Ok(true) => return Ok((nameplate, expires)),
            Ok(false) => {
                // Another relay holds it: give it back, try a longer one.
                hub.nameplates().cancel(&nameplate);
                extra += 1;
            }
            Err(e) => {
                tracing::warn!(%nameplate, "code not listed in the shared database ({e}): it can be claimed on this relay only");
                hub.metrics().directory_errors.fetch_add(1, Ordering::Relaxed);
                return Ok((nameplate, expires));
            }
        }
    }
    tracing::warn!("no nameplate free across the organization's relays after {LIST_ATTEMPTS} tries");
    Err(RelayErrorKind::Busy)
}

/// Where the code under `nameplate` waits, if another relay holds it. Only asked for a nameplate this
/// relay does not know.
pub async fn locate(hub: &Rendezvous, nameplate: &Nameplate) -> Result<Option<RelayAddress>, RelayErrorKind> {
    if hub.store().db().directory().is_none() {
        return Ok(None);
    }
    let (text, now) = (nameplate.as_str().to_owned(), now_ms());
    match ask(hub, move |d| d.find_nameplate(&text, now)).await {
        // A listing of our own is one a restart left behind: the code is gone.
        Ok(Some(listing)) if listing.relay != hub.cfg().name => {
            Ok(Some(RelayAddress { address: listing.address, fingerprint: listing.fingerprint }))
        }
        Ok(_) => Ok(None),
        Err(e) => {
            tracing::warn!(%nameplate, "could not look the code up in the shared database: {e}");
            hub.metrics().directory_errors.fetch_add(1, Ordering::Relaxed);
            Err(RelayErrorKind::DirectoryUnavailable)
        }
    }
}

/// The host left its code unclaimed: free the nameplate for every relay (in the background; a listing
/// left behind lapses by itself).
pub fn unlist(hub: &Rendezvous, nameplate: &Nameplate) {
    if hub.listed_as().is_none() {
        return;
    }
    let (store, text) = (hub.store().clone(), nameplate.as_str().to_owned());
    tokio::task::spawn_blocking(move || {
        if let Some(Err(e)) = store.db().directory().map(|d| d.unlist_nameplate(&text)) {
            tracing::debug!("could not unlist a code: {e}");
        }
    });
}

/// Run `f` on the directory, on a blocking thread.
async fn ask<T: Send + 'static>(
    hub: &Rendezvous,
    f: impl FnOnce(&dyn Directory) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let store = hub.store().clone();
    let run = move || match store.db().directory() {
        Some(directory) => f(directory),
        None => Err(StoreError::Postgres("no shared database".into())),
    };
    tokio::task::spawn_blocking(run)
        .await
        .map_err(|e| StoreError::Postgres(format!("the directory call failed: {e}")))?
}
