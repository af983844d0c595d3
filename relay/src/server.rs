//! Wiring: account store, socket, QUIC endpoint, accept loop, revocation poller, admin listener.
//! [`Server::spawn`] returns a [`RelayHandle`]; dropping the handle stops the relay (structured
//! concurrency: every task hangs off its cancellation token). [`RelayHandle::drain`] is the graceful stop.
//!
//! Memory per connection is bounded: control connections get small flow-control windows and one stream;
//! quinn holds at most `max_incoming` connection attempts; above `retry_above` handshakes in progress,
//! clients must prove their address with a QUIC retry before the relay keeps any state for them; live
//! connections are capped per address key and in all ([`crate::conns`]), refused at the accept; one
//! deadline (`handshake_timeout`) runs from a connection's first packet to its `Hello`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quinn::{Endpoint, TokioRuntime, VarInt};
use tether_shared::tls::{self, Fingerprint};
use tokio_util::sync::CancellationToken;

use crate::certs::{self, CertError};
use crate::config::{RelayConfig, TlsSource};
use crate::forward::Router;
use crate::hub::{Hub, RelayStats};
use crate::rendezvous::{self, Rendezvous};
use crate::socket::RelaySocket;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("could not listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Cert(#[from] CertError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Config(String),
}

#[derive(Debug)]
pub struct Server;

impl Server {
    /// Start a relay on `cfg.listen` (and the admin listener on `cfg.admin_listen`, if set). Must be called
    /// inside a tokio runtime.
    pub fn spawn(cfg: RelayConfig) -> Result<RelayHandle, ServerError> {
        if !tether_shared::shown::is_showable_name(&cfg.organization) {
            // Hosts would refuse every verified technician's name with it.
            return Err(ServerError::Config(format!(
                "the organization name must be at most {} bytes, without control or format characters",
                tether_shared::shown::MAX_SHOWN_NAME
            )));
        }
        let identity = match &cfg.tls {
            TlsSource::SelfSigned => certs::load_or_create(&cfg.data_dir)?,
            TlsSource::Files { cert, key } => certs::load_files(cert, key)?,
        };
        let store = Arc::new(Store::open(&cfg.data_dir)?);
        // Sessions that were live when the relay stopped may rejoin for one window from now.
        let window = i64::try_from(cfg.resume_window.as_millis()).unwrap_or(i64::MAX);
        let resumable = store.resume_after_restart(crate::store::now_ms().saturating_add(window))?;
        if resumable > 0 {
            tracing::info!(sessions = resumable, "sessions from before the restart may rejoin");
        }
        let router = Router::with_cap(cfg.tap.clone(), cfg.session_bytes_per_sec);
        let socket = RelaySocket::bind(cfg.listen, router.clone())
            .map_err(|source| ServerError::Bind { addr: cfg.listen, source })?;
        let addr =
            socket.local_addr_checked().map_err(|source| ServerError::Bind { addr: cfg.listen, source })?;
        let mut transport = tls::transport(cfg.idle_timeout, None);
        let window = VarInt::from_u32(cfg.control_window);
        transport
            .max_concurrent_bidi_streams(1u32.into())
            .max_concurrent_uni_streams(0u32.into())
            .stream_receive_window(window)
            .receive_window(window)
            .send_window(u64::from(cfg.control_window))
            .datagram_receive_buffer_size(None);
        let mut server = tls::open_server_config(&identity, transport)?;
        server.migration(false);
        server.max_incoming(cfg.max_incoming.max(1));
        let endpoint = Endpoint::new_with_abstract_socket(
            tls::endpoint_config(),
            Some(server),
            socket,
            Arc::new(TokioRuntime),
        )
        .map_err(|source| ServerError::Bind { addr, source })?;
        let admin = match cfg.admin_listen {
            Some(admin_addr) => Some(
                crate::admin::bind(admin_addr)
                    .map_err(|source| ServerError::Bind { addr: admin_addr, source })?,
            ),
            None => None,
        };
        let admin_addr = admin.as_ref().and_then(|l| l.local_addr().ok());
        let hub = Arc::new(Rendezvous::new(Arc::new(Hub::new(cfg, router, store))));
        let token = CancellationToken::new();
        tokio::spawn(accept_loop(endpoint.clone(), hub.clone(), token.clone()));
        tokio::spawn(housekeeping(hub.clone(), token.clone()));
        tokio::spawn(revocations(hub.clone(), token.clone()));
        if let Some(listener) = admin {
            let (metrics, draining) = (hub.clone(), hub.clone());
            let probes = crate::admin::Probes {
                metrics: Arc::new(move || metrics.render_metrics()),
                draining: Arc::new(move || draining.is_draining()),
            };
            tokio::spawn(crate::admin::serve(listener, probes, token.clone()));
            tracing::info!(admin = ?admin_addr, "admin listener (metrics, healthz)");
        }
        tracing::info!(%addr, "relay listening");
        Ok(RelayHandle { addr, admin_addr, fingerprint: identity.fingerprint(), hub, endpoint, token })
    }
}

async fn accept_loop(endpoint: Endpoint, hub: Arc<Rendezvous>, token: CancellationToken) {
    let handshakes = Arc::new(AtomicUsize::new(0));
    loop {
        let incoming = tokio::select! {
            incoming = endpoint.accept() => match incoming { Some(i) => i, None => break },
            _ = token.cancelled() => break,
        };
        if hub.is_draining() {
            incoming.refuse();
            continue;
        }
        let hello_by = tokio::time::Instant::now() + hub.cfg().handshake_timeout;
        let slot = match hub.conns().admit(incoming.remote_address().ip()) {
            Ok(slot) => slot,
            Err(over) => {
                let why = match over {
                    crate::conns::Over::Address => "per_address",
                    crate::conns::Over::Total => "total",
                };
                hub.metrics().connection_refused(why);
                tracing::debug!(addr = %incoming.remote_address(), "connection refused: over the {why} cap");
                incoming.refuse();
                continue;
            }
        };
        if handshakes.load(Ordering::Relaxed) >= hub.cfg().retry_above
            && !incoming.remote_address_validated()
            && incoming.may_retry()
        {
            hub.metrics().retries_sent.fetch_add(1, Ordering::Relaxed);
            let _ = incoming.retry();
            continue;
        }
        let hub = hub.clone();
        let token = token.clone();
        let handshakes = handshakes.clone();
        tokio::spawn(async move {
            let mut slot = slot;
            handshakes.fetch_add(1, Ordering::Relaxed);
            let connected = match incoming.accept() {
                Ok(connecting) => match tokio::time::timeout_at(hello_by, connecting).await {
                    Ok(Ok(conn)) => Ok(conn),
                    Ok(Err(e)) => Err(format!("handshake failed: {e}")),
                    Err(_) => Err("handshake timed out".to_owned()),
                },
                Err(e) => Err(format!("refused: {e}")),
            };
            handshakes.fetch_sub(1, Ordering::Relaxed);
            let conn = match connected {
                Ok(conn) => conn,
                // The error may carry the client's own words (its close reason): escaped.
                Err(e) => return tracing::debug!("{}", crate::log_text::Escaped(e)),
            };
            // Now that the address is proven, it counts against its address key's cap.
            if slot.establish().is_err() {
                hub.metrics().connection_refused("per_address");
                tracing::debug!(addr = %conn.remote_address(), "connection refused: over the per_address cap");
                conn.close(rendezvous::CLOSE_BUSY.into(), b"too many connections from this address");
                return;
            }
            tokio::select! {
                _ = rendezvous::serve(conn.clone(), hub, hello_by) => {}
                _ = token.cancelled() => conn.close(0u32.into(), b"relay shutting down"),
            }
        });
    }
}

/// Periodic clean-up of rate-limiter and failed-claim state, and of expired resume records.
async fn housekeeping(hub: Arc<Rendezvous>, token: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = token.cancelled() => break,
        }
        hub.limits().prune();
        hub.failed_claims().prune(std::time::Instant::now());
        let store = hub.store().clone();
        match tokio::task::spawn_blocking(move || store.prune_resume(crate::store::now_ms())).await {
            Ok(Err(e)) => tracing::error!("pruning resume records: {e}"),
            Err(e) => tracing::error!("pruning resume records: {e}"),
            Ok(Ok(_)) => {}
        }
    }
}

/// Re-read revocations of accounts with live sessions, and end those sessions.
async fn revocations(hub: Arc<Rendezvous>, token: CancellationToken) {
    let mut tick = tokio::time::interval(hub.cfg().revocation_poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = token.cancelled() => break,
        }
        let accounts = hub.live().accounts();
        if accounts.is_empty() {
            continue;
        }
        let store = hub.store().clone();
        match tokio::task::spawn_blocking(move || store.revoked_among(&accounts)).await {
            Ok(Ok(revoked)) if !revoked.is_empty() => {
                let n = hub.live().revoke(&revoked);
                tracing::info!(accounts = ?revoked, sessions = n, "revoked accounts: ending their sessions");
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!("reading revocations: {e}"),
            Err(e) => tracing::error!("reading revocations: {e}"),
        }
    }
}

/// A running relay. Dropping it stops the relay.
#[derive(Debug)]
pub struct RelayHandle {
    addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    fingerprint: Fingerprint,
    hub: Arc<Rendezvous>,
    endpoint: Endpoint,
    token: CancellationToken,
}

impl RelayHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the admin listener is bound, if it is on.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    pub fn stats(&self) -> RelayStats {
        self.hub.stats()
    }

    /// The Prometheus text the admin listener serves.
    pub fn metrics_text(&self) -> String {
        self.hub.render_metrics()
    }

    /// Graceful stop: refuse new connections, codes and claims at once; let live sessions run until they
    /// end or `deadline` passes; then close everything.
    pub async fn drain(self, deadline: Duration) {
        self.hub.start_draining();
        let live = async {
            while !self.hub.router().is_empty() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let sessions = self.hub.sessions();
        tracing::info!(sessions, ?deadline, "draining: waiting for live sessions to end");
        if tokio::time::timeout(deadline, live).await.is_err() {
            tracing::info!("drain deadline reached: closing the remaining sessions");
        }
        self.shutdown().await;
    }

    /// Stop accepting, close every connection, and wait until the endpoint is idle.
    pub async fn shutdown(self) {
        self.token.cancel();
        self.endpoint.close(0u32.into(), b"relay shutting down");
        self.endpoint.wait_idle().await;
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        self.token.cancel();
        self.endpoint.close(0u32.into(), b"relay shutting down");
    }
}
