//! A complete local session for benchmarks: relay, host and viewer in this process, over real QUIC on
//! loopback (the same code paths as the product; nothing mocked).

use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use tether_host::session::SessionReport;
use tether_host::{run_host, HostConfig, HostError, HostEvent, Sources};
use tether_linkemu::{Emulator, LinkConfig};
use tether_relay::{RelayConfig, RelayHandle, Server};
use tether_shared::codec::Quality;
use tether_shared::net::RelaySpec;
use tether_shared::session_proto::Permissions;
use tether_shared::tls::RelayTrust;
use tether_viewer::session::{ViewerConfig, ViewerSession};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct Rig {
    /// Kept alive for the rig's lifetime (dropping it stops the relay).
    _relay: RelayHandle,
    pub viewer: ViewerSession,
    _host: JoinHandle<Result<SessionReport, HostError>>,
    pub stop: CancellationToken,
    /// The emulated link between the host and the relay, when there is one ([`start_over`]).
    pub link: Option<Emulator>,
    _data: tempfile::TempDir,
}

/// Start a relay, a host sharing `sources` (lossless, up to 60 updates a second) and a viewer.
pub async fn start(sources: Sources, grant: Permissions, tweak: impl FnOnce(&mut HostConfig)) -> Result<Rig> {
    start_with(sources, grant, |_| {}, tweak).await
}

/// [`start`], with the relay's configuration tweaked too (a bandwidth cap, say).
pub async fn start_with(
    sources: Sources,
    grant: Permissions,
    relay_tweak: impl FnOnce(&mut RelayConfig),
    tweak: impl FnOnce(&mut HostConfig),
) -> Result<Rig> {
    start_over(sources, grant, None, relay_tweak, tweak).await
}

/// [`start_with`], the host reaching the relay through an emulated `link` (the user's internet line;
/// the viewer stays on loopback).
pub async fn start_over(
    sources: Sources,
    grant: Permissions,
    link: Option<LinkConfig>,
    relay_tweak: impl FnOnce(&mut RelayConfig),
    tweak: impl FnOnce(&mut HostConfig),
) -> Result<Rig> {
    let data = tempfile::tempdir()?;
    let mut relay_cfg = RelayConfig::new("127.0.0.1:0".parse()?, data.path().to_path_buf());
    relay_tweak(&mut relay_cfg);
    let relay = Server::spawn(relay_cfg)?;
    let spec = RelaySpec {
        addr: relay.local_addr(),
        server_name: "localhost".into(),
        trust: RelayTrust::Pinned(relay.fingerprint()),
        local_addr: None,
    };
    let link = match link {
        Some(link) => Some(Emulator::start(relay.local_addr(), link).await?),
        None => None,
    };
    let mut host_spec = spec.clone();
    if let Some(emulator) = &link {
        host_spec.addr = emulator.local_addr();
    }
    let mut cfg = HostConfig::new(host_spec, grant);
    cfg.session.quality = Quality::Lossless.into();
    cfg.session.max_fps = 60;
    tweak(&mut cfg);
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    let host = tokio::spawn(run_host(cfg, sources, events_tx, stop.clone()));
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
            Ok(Some(HostEvent::Code { code, .. })) => break code,
            Ok(Some(_)) => continue,
            _ => return Err(anyhow!("the host showed no code")),
        }
    };
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    let vcfg = ViewerConfig {
        relay: spec,
        timeouts: Default::default(),
        technician: "bench".into(),
        want: grant,
        token: None,
    };
    let viewer = ViewerSession::connect(&vcfg, &code).await.context("viewer pairing")?;
    Ok(Rig { _relay: relay, viewer, _host: host, stop, link, _data: data })
}

/// p50, p95 and max of samples in milliseconds.
pub fn percentiles(samples: &mut [f64]) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.95), at(1.0))
}
