//! Wiring: socket, QUIC endpoint, accept loop. [`Server::spawn`] returns a [`RelayHandle`]; dropping the
//! handle stops the relay (structured concurrency: every task hangs off its cancellation token).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use quinn::{Endpoint, TokioRuntime};
use tether_shared::tls::{self, Fingerprint};
use tokio_util::sync::CancellationToken;

use crate::certs::{self, CertError};
use crate::config::RelayConfig;
use crate::forward::Router;
use crate::rendezvous::{self, Hub};
use crate::socket::RelaySocket;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("could not listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Cert(#[from] CertError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// A snapshot of the relay's state, for tests and (later) metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RelayStats {
    pub connections: usize,
    pub waiting_hosts: usize,
    pub pairings: usize,
    pub sessions: usize,
}

#[derive(Debug)]
pub struct Server;

impl Server {
    /// Start a relay on `cfg.listen`. Must be called inside a tokio runtime.
    pub fn spawn(cfg: RelayConfig) -> Result<RelayHandle, ServerError> {
        let identity = certs::load_or_create(&cfg.data_dir)?;
        let router = Router::new(cfg.tap.clone());
        let socket = RelaySocket::bind(cfg.listen, router.clone())
            .map_err(|source| ServerError::Bind { addr: cfg.listen, source })?;
        let addr =
            socket.local_addr_checked().map_err(|source| ServerError::Bind { addr: cfg.listen, source })?;
        let mut transport = tls::transport(cfg.idle_timeout, None);
        transport.max_concurrent_bidi_streams(1u32.into()).max_concurrent_uni_streams(0u32.into());
        let mut server = tls::open_server_config(&identity, transport)?;
        server.migration(false);
        let endpoint = Endpoint::new_with_abstract_socket(
            tls::endpoint_config(),
            Some(server),
            socket,
            Arc::new(TokioRuntime),
        )
        .map_err(|source| ServerError::Bind { addr, source })?;
        let hub = Arc::new(Hub::new(cfg, router));
        let token = CancellationToken::new();
        tokio::spawn(accept_loop(endpoint.clone(), hub.clone(), token.clone()));
        tokio::spawn(housekeeping(hub.clone(), token.clone()));
        tracing::info!(%addr, "relay listening");
        Ok(RelayHandle { addr, fingerprint: identity.fingerprint(), hub, endpoint, token })
    }
}

async fn accept_loop(endpoint: Endpoint, hub: Arc<Hub>, token: CancellationToken) {
    loop {
        let incoming = tokio::select! {
            incoming = endpoint.accept() => match incoming { Some(i) => i, None => break },
            _ = token.cancelled() => break,
        };
        let hub = hub.clone();
        let token = token.clone();
        tokio::spawn(async move {
            let conn = match incoming.accept() {
                Ok(connecting) => match tokio::time::timeout(hub.cfg.handshake_timeout, connecting).await {
                    Ok(Ok(conn)) => conn,
                    Ok(Err(e)) => return tracing::debug!("handshake failed: {e}"),
                    Err(_) => return tracing::debug!("handshake timed out"),
                },
                Err(e) => return tracing::debug!("refused: {e}"),
            };
            tokio::select! {
                _ = rendezvous::serve(conn.clone(), hub) => {}
                _ = token.cancelled() => conn.close(0u32.into(), b"relay shutting down"),
            }
        });
    }
}

/// Periodic clean-up of rate-limiter state.
async fn housekeeping(hub: Arc<Hub>, token: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = tick.tick() => hub.limits.prune(),
            _ = token.cancelled() => break,
        }
    }
}

/// A running relay. Dropping it stops the relay.
#[derive(Debug)]
pub struct RelayHandle {
    addr: SocketAddr,
    fingerprint: Fingerprint,
    hub: Arc<Hub>,
    endpoint: Endpoint,
    token: CancellationToken,
}

impl RelayHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    pub fn stats(&self) -> RelayStats {
        RelayStats {
            connections: self.hub.connections.load(Ordering::Relaxed),
            waiting_hosts: self.hub.nameplates.lock().map(|n| n.waiting()).unwrap_or(0),
            pairings: self.hub.pairings.load(Ordering::Relaxed),
            sessions: self.hub.router.len() / 2,
        }
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
