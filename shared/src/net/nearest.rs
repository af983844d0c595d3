//! Which of an organization's relays a host uses: the one that answers first.
//!
//! The host connects to every relay of its list at once and keeps the first control connection whose
//! relay welcomes it; the others are closed. The time to a welcome is a QUIC handshake and a hello: two
//! round trips plus the relay's own delay in answering, so the winner is the nearest relay, unless it is
//! so loaded that a farther one answers sooner — which is what a host wants from "nearest or least
//! loaded". No timer decides: a relay that is down simply never wins, and the list is only exhausted when
//! every relay has failed.

use tokio::task::JoinSet;

use super::link::RelayLink;
use super::{ClientError, RelaySpec, Timeouts};
use crate::relay_proto::Role;

/// Connect to whichever of `relays` welcomes us first. All failing: the first relay's error (the
/// organization's primary), the others logged. An empty list is an error.
pub async fn connect_first(
    relays: &[RelaySpec],
    role: Role,
    timeouts: &Timeouts,
) -> Result<RelayLink, ClientError> {
    match relays {
        [] => Err(ClientError::RelayAddress("no relay to connect to".into())),
        [only] => RelayLink::connect(only, role, timeouts).await,
        _ => {
            let mut attempts = JoinSet::new();
            for (i, relay) in relays.iter().enumerate() {
                let (relay, timeouts) = (relay.clone(), *timeouts);
                attempts.spawn(async move { (i, RelayLink::connect(&relay, role, &timeouts).await) });
            }
            let mut first_error = None;
            while let Some(done) = attempts.join_next().await {
                let Ok((i, result)) = done else { continue };
                match result {
                    // Dropping the set aborts the other attempts; their connections close.
                    Ok(link) => {
                        tracing::info!(relay = %relays[i].addr, "using the relay that answered first");
                        return Ok(link);
                    }
                    Err(e) => {
                        tracing::warn!(relay = %relays[i].addr, "relay not available: {e}");
                        if i == 0 || first_error.is_none() {
                            first_error = Some((i, e));
                        }
                    }
                }
            }
            Err(first_error.map(|(_, e)| e).unwrap_or(ClientError::RelayClosed))
        }
    }
}
