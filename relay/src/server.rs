//! Wiring: account store, sockets, QUIC endpoints, accept loops, revocation poller, admin listener.
//! [`Server::spawn`] returns a [`RelayHandle`]; dropping the handle stops the relay (structured
//! concurrency: every task hangs off its cancellation token). [`RelayHandle::drain`] is the graceful stop.
//!
//! **Workers.** The relay listens with one UDP socket per forwarding worker (`workers`, default one per
//! core), all bound to the same port with `SO_REUSEPORT`. The kernel steers each client's datagrams —
//! by its address and port — to one socket, always the same, so a client's control connection and its
//! tagged packets meet the same worker, in the order they came. Each socket has its own quinn endpoint
//! (same certificate and settings), whose driver task forwards tagged datagrams as it reads them
//! ([`crate::socket`]); tokio runs the drivers on different threads, so forwarding uses every core.
//! Rendezvous and control are shared: every endpoint's accept loop hands its connections to the one
//! [`Rendezvous`]. A datagram is sent out of the socket that received it (they share the port). With
//! more than one worker, the port is first bound alone for a moment, so a port another program already
//! holds fails with "address in use" rather than joining its group.
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
use tether_shared::relay_proto::RelayAddress;
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
        let (store, announced) = Store::for_config(&cfg)?;
        let store = Arc::new(store);
        // Sessions that were live when the relay stopped may rejoin for one window from now.
        let window = i64::try_from(cfg.resume_window.as_millis()).unwrap_or(i64::MAX);
        let resumable = store.resume_after_restart(crate::store::now_ms().saturating_add(window))?;
        if resumable > 0 {
            tracing::info!(sessions = resumable, "sessions from before the restart may rejoin");
        }
        let workers = cfg.worker_count();
        let router = Router::with_workers(cfg.tap.clone(), cfg.session_bytes_per_sec, workers);
        let (addr, sockets) = bind_workers(cfg.listen, &router)?;
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
        let endpoints = sockets
            .into_iter()
            .map(|socket| {
                Endpoint::new_with_abstract_socket(
                    tls::endpoint_config(),
                    Some(server.clone()),
                    socket,
                    Arc::new(TokioRuntime),
                )
                .map_err(|source| ServerError::Bind { addr, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let admin = match cfg.admin_listen {
            Some(admin_addr) => Some(
                crate::admin::bind(admin_addr)
                    .map_err(|source| ServerError::Bind { addr: admin_addr, source })?,
            ),
            None => None,
        };
        let admin_addr = admin.as_ref().and_then(|l| l.local_addr().ok());
        let own = public_address(&cfg, addr)
            .map(|address| RelayAddress { address, fingerprint: identity.fingerprint().0 });
        if let Some(directory) = store.db().directory() {
            // None of this relay's codes waits after a restart: free them for the others.
            if let Err(e) = directory.clear_nameplates(crate::store::now_ms()) {
                tracing::warn!("could not clear this relay's codes from the shared database: {e}");
            }
            match &own {
                Some(own) => tracing::info!(address = %own.address, "codes made here are listed for the other relays"),
                None => tracing::warn!(
                    "no public_address and the relay listens on every address: codes made here can be claimed \
                     on this relay only (set public_address so the organization's other relays send viewers here)"
                ),
            }
        }
        let hub = Arc::new(Rendezvous::new(Arc::new(Hub::new(cfg, router, store)), own));
        let token = CancellationToken::new();
        let handshakes = Arc::new(AtomicUsize::new(0));
        for endpoint in &endpoints {
            tokio::spawn(accept_loop(endpoint.clone(), hub.clone(), handshakes.clone(), token.clone()));
        }
        tokio::spawn(housekeeping(hub.clone(), token.clone()));
        tokio::spawn(audit_retry(hub.clone(), token.clone()));
        tokio::spawn(revocations(hub.clone(), announced, token.clone()));
        if let Some(listener) = admin {
            let (metrics, draining) = (hub.clone(), hub.clone());
            let database = hub.store().clone();
            let probes = crate::admin::Probes {
                metrics: Arc::new(move || metrics.render_metrics()),
                draining: Arc::new(move || draining.is_draining()),
                database: Arc::new(move || database.db().reachable().map_err(|e| e.to_string())),
            };
            tokio::spawn(crate::admin::serve(listener, probes, token.clone()));
            tracing::info!(admin = ?admin_addr, "admin listener (metrics, healthz)");
        }
        tracing::info!(%addr, workers, "relay listening");
        Ok(RelayHandle { addr, admin_addr, fingerprint: identity.fingerprint(), hub, endpoints, token })
    }
}

/// Where clients reach this relay: `public_address`, else the bound address if it names one.
fn public_address(cfg: &RelayConfig, bound: SocketAddr) -> Option<String> {
    match &cfg.public_address {
        Some(address) => Some(address.clone()),
        None => (!bound.ip().is_unspecified()).then(|| bound.to_string()),
    }
}

/// One socket per worker of `router`, all on `listen`'s port (the port chosen by the first when
/// `listen` asks for port 0). Returns the bound address and the sockets.
fn bind_workers(
    listen: SocketAddr,
    router: &Router,
) -> Result<(SocketAddr, Vec<Arc<RelaySocket>>), ServerError> {
    let failed = |addr| move |source| ServerError::Bind { addr, source };
    if router.workers() == 1 {
        let socket = RelaySocket::bind(listen, router.worker(0)).map_err(failed(listen))?;
        let addr = socket.local_addr_checked().map_err(failed(listen))?;
        return Ok((addr, vec![socket]));
    }
    // Alone first: a port in use fails here, and port 0 becomes a free port for the group to share.
    let addr =
        std::net::UdpSocket::bind(listen).and_then(|probe| probe.local_addr()).map_err(failed(listen))?;
    let sockets = (0..router.workers())
        .map(|i| RelaySocket::bind_shared(addr, router.worker(i)).map_err(failed(addr)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((addr, sockets))
}

async fn accept_loop(
    endpoint: Endpoint,
    hub: Arc<Rendezvous>,
    handshakes: Arc<AtomicUsize>,
    token: CancellationToken,
) {
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
        let store = hub.store().clone();
        tokio::task::spawn_blocking(move || {
            if let Some(Err(e)) = store.db().directory().map(|d| d.prune_nameplates(crate::store::now_ms())) {
                tracing::warn!("pruning lapsed codes from the shared database: {e}");
            }
        });
    }
}

/// Every few seconds, write the audit rows an unreachable database could not take.
async fn audit_retry(hub: Arc<Rendezvous>, token: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = tick.tick() => hub.flush_audit(),
            _ = token.cancelled() => break,
        }
    }
}

/// Re-read revocations of accounts with live sessions, and end those sessions: every
/// `revocation_poll`, and at once when the database announces one (PostgreSQL, revoked on any relay).
async fn revocations(
    hub: Arc<Rendezvous>,
    mut announced: Option<crate::store::Revocations>,
    token: CancellationToken,
) {
    let mut tick = tokio::time::interval(hub.cfg().revocation_poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let heard = async {
            match announced.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tick.tick() => {}
            name = heard => match name {
                Some(name) => tracing::info!(account = %crate::log_text::Escaped(&name), "revocation announced by the database"),
                // The listening thread ended: keep polling.
                None => announced = None,
            },
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
    /// One per forwarding worker.
    endpoints: Vec<Endpoint>,
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
        for endpoint in &self.endpoints {
            endpoint.close(0u32.into(), b"relay shutting down");
        }
        for endpoint in &self.endpoints {
            endpoint.wait_idle().await;
        }
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        self.token.cancel();
        for endpoint in &self.endpoints {
            endpoint.close(0u32.into(), b"relay shutting down");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::Endpoint as Route;
    use std::collections::HashMap;
    use tether_shared::packet;

    /// Sixteen senders through a relay of two workers: the kernel spreads them over both workers (all
    /// sixteen on one would happen once in 32768 runs), and each sender's datagrams reach its partner in
    /// the order they were sent (some may be dropped under load, as a router would; none overtakes
    /// another), and `/metrics` counts each worker's share.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_workers_share_the_load_and_keep_each_senders_order() {
        let dir = tempfile::tempdir().expect("dir");
        let mut cfg = RelayConfig::new(([127, 0, 0, 1], 0).into(), dir.path().into());
        cfg.workers = 2;
        let relay = Server::spawn(cfg).expect("relay");
        let router = relay.hub.router().clone();
        assert_eq!(router.workers(), 2);
        const SENDERS: usize = 16;
        const EACH: u32 = 2000;
        let bind = || std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let pairs: Vec<_> = (0..SENDERS).map(|_| (bind(), bind())).collect();
        let mut guards = Vec::new();
        for (i, (from, to)) in pairs.iter().enumerate() {
            let tag = 2 * i as u64 + 1;
            let (from_addr, to_addr) = (from.local_addr().expect("addr"), to.local_addr().expect("addr"));
            guards
                .push(router.activate(Route { tag, addr: from_addr }, Route { tag: tag + 1, addr: to_addr }));
        }
        let relay_addr = relay.local_addr();
        let received = std::thread::scope(|scope| {
            let receivers: Vec<_> = pairs
                .iter()
                .map(|(_, to)| {
                    scope.spawn(move || {
                        to.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
                        let mut seen = Vec::new();
                        let mut buf = [0u8; 2048];
                        while let Ok(n) = to.recv(&mut buf) {
                            let seq = u32::from_le_bytes(buf[n - 4..n].try_into().expect("4 bytes"));
                            seen.push(seq);
                        }
                        seen
                    })
                })
                .collect();
            for (i, (from, _)) in pairs.iter().enumerate() {
                scope.spawn(move || {
                    let mut datagram = packet::header(2 * i as u64 + 1).to_vec();
                    datagram.resize(1200, 0x5a);
                    for seq in 0..EACH {
                        let len = datagram.len();
                        datagram[len - 4..].copy_from_slice(&seq.to_le_bytes());
                        let _ = from.send_to(&datagram, relay_addr);
                        if seq % 100 == 99 {
                            // Paced, so the receivers' socket buffers hold most of it.
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    }
                });
            }
            receivers.into_iter().map(|r| r.join().expect("receiver")).collect::<Vec<_>>()
        });
        for (i, seen) in received.iter().enumerate() {
            assert!(seen.len() >= 100, "sender {i}: only {} of {EACH} arrived", seen.len());
            assert!(seen.windows(2).all(|w| w[0] < w[1]), "sender {i}: out of order");
        }
        let per_worker: Vec<u64> =
            router.all_totals().iter().map(|t| t.host_to_viewer.load(Ordering::Relaxed)).collect();
        assert!(per_worker.iter().all(|&b| b > 0), "both workers forwarded: {per_worker:?}");
        let by_worker: HashMap<usize, u64> = per_worker.into_iter().enumerate().collect();
        let metrics = relay.metrics_text();
        for (worker, bytes) in by_worker {
            let line = format!("tether_relay_worker_forwarded_bytes_total{{worker=\"{worker}\"}} {bytes}");
            assert!(metrics.contains(&line), "{line} in /metrics:\n{metrics}");
        }
        drop(guards);
    }

    /// With more than one worker the port is still exclusive: a second relay on it fails to start.
    #[tokio::test]
    async fn a_port_in_use_is_refused_with_several_workers() {
        let dir = tempfile::tempdir().expect("dir");
        let mut cfg = RelayConfig::new(([127, 0, 0, 1], 0).into(), dir.path().into());
        cfg.workers = 2;
        let first = Server::spawn(cfg).expect("relay");
        let dir2 = tempfile::tempdir().expect("dir");
        let mut cfg = RelayConfig::new(first.local_addr(), dir2.path().into());
        cfg.workers = 2;
        match Server::spawn(cfg) {
            Err(ServerError::Bind { source, .. }) => {
                assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse)
            }
            other => panic!("a second relay on the same port must fail: {other:?}"),
        }
    }
}
