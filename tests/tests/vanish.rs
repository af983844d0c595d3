//! A peer that vanishes (SIGKILL: no goodbye, no close frame) is noticed by the other side and by the
//! relay within the idle timeout, and the relay frees its state.

mod common;

use std::time::Duration;

use common::procs::Proc;
use common::*;
use tether_shared::code::Code;
use tether_shared::end::{EndReason, Side};
use tether_shared::session_proto::Permissions;
use tether_viewer::session::{ViewerError, ViewerSession};

/// Wait until the relay holds nothing (bounded, so a leak fails the test).
async fn relay_drains(relay: &TestRelay) {
    let drained = || {
        let stats = relay.handle.stats();
        stats.connections == 0 && stats.sessions == 0 && stats.pairings == 0 && stats.waiting_hosts == 0
    };
    eventually(drained, Later(|| format!("relay still holds state: {:?}", relay.handle.stats()))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_viewer_is_noticed_by_host_and_relay() {
    let relay = start_relay(|_| {});
    let mut host = start_host(&relay, Permissions::VIEW_ONLY);
    let code = host.next_code().await;
    let (addr, fp) = (relay.handle.local_addr().to_string(), relay.handle.fingerprint().to_string());
    let code_text = code.to_string();
    let mut viewer = Proc::spawn(
        "tether-viewer",
        &cli_args(&addr, &fp, &["--code", &code_text, "--stay-secs", "60", "--idle-timeout-secs", "3"]),
    );
    viewer.line("connected").await;
    assert_eq!(relay.handle.stats().sessions, 1);
    viewer.kill().await;

    match host.report().await.expect("session ran").end {
        EndReason::TimedOut | EndReason::PeerVanished { peer: Side::Viewer } => {}
        other => panic!("expected a vanished viewer, got {other:?}"),
    }
    relay_drains(&relay).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_host_is_noticed_by_viewer_and_relay() {
    let relay = start_relay(|_| {});
    let (addr, fp) = (relay.handle.local_addr().to_string(), relay.handle.fingerprint().to_string());
    let mut host = Proc::spawn(
        "tether-host",
        &cli_args(&addr, &fp, &["--headless", "--size", "320x240", "--idle-timeout-secs", "3"]),
    );
    let code = Code::parse(&host.line("code").await).expect("a code");
    let viewer = ViewerSession::connect(&viewer_config(&relay), &code).await.expect("pairs");
    viewer.next_frame(None).await.expect("frame");
    host.kill().await;

    let why = tokio::time::timeout(Duration::from_secs(15), viewer.closed()).await.expect("viewer notices");
    assert!(
        matches!(why, ViewerError::Ended(EndReason::TimedOut | EndReason::PeerVanished { peer: Side::Host })),
        "{why:?}"
    );
    drop(viewer);
    relay_drains(&relay).await;
}
