//! Session pairs through the relay with the real client stack, streaming timestamped messages both ways.
//!
//! Each direction of a session sends one `size`-byte message every `interval` on a unidirectional
//! end-to-end stream; the first 8 bytes are the send time (nanoseconds since a shared epoch). Both ends
//! live in this process, so the receiver computes the one-way latency on the same clock. Each sender
//! starts at its own phase of the interval (see [`stream`]).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quinn::Connection;
use tether_shared::code::Code;
use tether_shared::net::pairing::{connect_viewer, HostOutcome, HostRendezvous, Session};
use tether_shared::net::{ClientError, RelaySpec, Timeouts};
use tether_shared::tls::{self, Identity};

#[derive(Debug, thiserror::Error)]
pub enum PairError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Connect(#[from] quinn::ConnectError),
    #[error(transparent)]
    Connection(#[from] quinn::ConnectionError),
    #[error("the direct endpoint closed")]
    Closed,
    #[error("the host had to restart pairing: {0}")]
    Restart(String),
    #[error("task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// A host waiting under a code (what an idle waiting host costs the relay).
pub async fn waiting_host(spec: &RelaySpec, timeouts: Timeouts) -> Result<(HostRendezvous, Code), PairError> {
    let mut host = HostRendezvous::connect(spec, timeouts).await?;
    let (code, _) = host.register().await?;
    Ok((host, code))
}

/// A paired session: (host side, viewer side).
pub async fn pair(spec: &RelaySpec, timeouts: Timeouts) -> Result<(Session, Session), PairError> {
    let (host, code) = waiting_host(spec, timeouts).await?;
    let code2 = code.clone();
    let host = tokio::spawn(async move { host.wait_for_viewer(&code2).await });
    let viewer = connect_viewer(spec, &code, timeouts, None).await?;
    match host.await?? {
        HostOutcome::Paired(host) => Ok((host, viewer)),
        HostOutcome::Restart(_, why) => Err(PairError::Restart(format!("{why:?}"))),
        HostOutcome::RelayLost(e) => Err(e.into()),
    }
}

/// The same end-to-end QUIC connection (same TLS and transport settings) host ↔ viewer directly on
/// loopback, without the relay: the baseline the relay's added latency is measured against.
/// Returns (host side, viewer side, the endpoints to keep alive).
pub async fn direct_pair(
    timeouts: Timeouts,
) -> Result<(Connection, Connection, [quinn::Endpoint; 2]), PairError> {
    let host_id = Identity::generate(&[tls::E2E_SERVER_NAME])?;
    let viewer_id = Identity::generate(&["viewer.tether.invalid"])?;
    let transport = || tls::e2e_transport(timeouts.e2e_idle, Some(timeouts.keep_alive));
    let server = tls::e2e_server_config(&host_id, viewer_id.fingerprint(), transport())?;
    let host_ep = quinn::Endpoint::server(server, ([127, 0, 0, 1], 0).into())?;
    let viewer_ep = quinn::Endpoint::client(([127, 0, 0, 1], 0).into())?;
    let cfg = tls::e2e_client_config(&viewer_id, host_id.fingerprint(), transport())?;
    let connecting = viewer_ep.connect_with(cfg, host_ep.local_addr()?, tls::E2E_SERVER_NAME)?;
    let incoming = host_ep.accept().await.ok_or(PairError::Closed)?;
    let (host, viewer) = tokio::join!(incoming, connecting);
    Ok((host?, viewer?, [host_ep, viewer_ep]))
}

/// One-way latencies in microseconds, from every receiver.
#[derive(Debug, Default, Clone)]
pub struct Latencies(Arc<Mutex<Vec<u32>>>);

impl Latencies {
    fn push(&self, micros: u32) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(micros);
    }

    /// Drop what was recorded so far (e.g. the warm-up).
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// (count, p50, p99, max) in microseconds.
    pub fn summary(&self) -> (usize, u32, u32, u32) {
        let mut v = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        v.sort_unstable();
        let at = |q: f64| v.get(((v.len() as f64 * q) as usize).min(v.len().saturating_sub(1))).copied();
        (v.len(), at(0.5).unwrap_or(0), at(0.99).unwrap_or(0), v.last().copied().unwrap_or(0))
    }
}

/// Stream both ways on an end-to-end connection until it closes; the first message leaves after
/// `phase` (sessions given different phases send at different moments of each interval, as independent
/// sessions would, instead of all in one burst).
pub fn stream(
    conn: &Connection,
    epoch: Instant,
    size: usize,
    interval: Duration,
    phase: Duration,
    lat: &Latencies,
) {
    tokio::spawn(send(conn.clone(), epoch, size, interval, phase));
    tokio::spawn(receive(conn.clone(), epoch, size, lat.clone()));
}

async fn send(conn: Connection, epoch: Instant, size: usize, interval: Duration, phase: Duration) {
    let Ok(mut out) = conn.open_uni().await else { return };
    let mut msg = vec![0x5a; size.max(8)];
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + phase, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let stamp = epoch.elapsed().as_nanos() as u64;
        msg[..8].copy_from_slice(&stamp.to_le_bytes());
        if out.write_all(&msg).await.is_err() {
            return;
        }
    }
}

async fn receive(conn: Connection, epoch: Instant, size: usize, lat: Latencies) {
    let Ok(mut inbound) = conn.accept_uni().await else { return };
    let mut msg = vec![0u8; size.max(8)];
    while inbound.read_exact(&mut msg).await.is_ok() {
        let mut stamp = [0u8; 8];
        stamp.copy_from_slice(&msg[..8]);
        let sent = u64::from_le_bytes(stamp);
        let now = epoch.elapsed().as_nanos() as u64;
        lat.push((now.saturating_sub(sent) / 1000).min(u64::from(u32::MAX)) as u32);
    }
}
