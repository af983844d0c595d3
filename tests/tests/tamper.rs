//! A hostile relay: altering forwarded packets or substituting PAKE messages makes the session fail
//! closed with a clear error on both sides — no panic, no plaintext, no session.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use tether_host::capture::{self, Source};
use tether_host::HostEvent;
use tether_relay::Tap;
use tether_shared::code::{Nameplate, Secret};
use tether_shared::end::{EndReason, Side};
use tether_shared::link::MAX_IN_FLIGHT;
use tether_shared::net::pairing::Restart;
use tether_shared::net::ClientError;
use tether_shared::pake;
use tether_shared::relay_proto::Role;
use tether_shared::session_proto::Permissions;
use tether_viewer::session::{ViewerError, ViewerSession};

/// Flips a bit in every forwarded packet while `on`.
#[derive(Default)]
struct Corrupter {
    on: AtomicBool,
}

impl Tap for Corrupter {
    fn forwarded(&self, _from: Role, inner: &mut [u8]) {
        if self.on.load(Ordering::Relaxed) {
            if let Some(last) = inner.last_mut() {
                *last ^= 0x01;
            }
        }
    }
}

/// Replaces the host's PAKE message with one of its own (a guess at the secret).
struct PakeSwapper;

impl Tap for PakeSwapper {
    fn pake(&self, from: Role, msg: &mut Vec<u8>) {
        if from == Role::Host {
            let nameplate = Nameplate::new("000").expect("digits");
            *msg = pake::start(Role::Host, &nameplate, &Secret::generate()).1;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn altering_packets_mid_session_ends_it_on_both_sides() {
    let tap = Arc::new(Corrupter::default());
    let tap_dyn: Arc<dyn Tap> = tap.clone();
    let relay = start_relay(|cfg| {
        cfg.tap = Some(tap_dyn);
        cfg.workers = 2; // forwarding on two sockets sharing the port
    });
    let (host, viewer) = paired(&relay, Permissions::VIEW_ONLY).await;

    tap.on.store(true, Ordering::Relaxed);
    // Frames that passed the relay before this are genuine: at most MAX_IN_FLIGHT beyond what is shown.
    let at_on = viewer.frames().borrow().as_ref().expect("frame").info.seq;
    let why = tokio::time::timeout(Duration::from_secs(15), viewer.closed()).await.expect("viewer notices");
    // Whichever side times out first, the other may hear it from the relay before its own timer fires.
    assert!(
        matches!(why, ViewerError::Ended(EndReason::TimedOut | EndReason::PeerVanished { peer: Side::Host })),
        "viewer: {why:?}"
    );
    let latest = viewer.frames().borrow().clone().expect("frame");
    assert!(latest.info.seq <= at_on + MAX_IN_FLIGHT as u64, "no altered frame was accepted");
    // The host times out too, or hears first from the relay that the viewer's side gave up.
    match host.report().await.expect("session ran").end {
        EndReason::TimedOut | EndReason::PeerVanished { peer: Side::Viewer } => {}
        other => panic!("host: expected a lost connection, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn altering_the_handshake_prevents_the_session() {
    let tap = Arc::new(Corrupter { on: AtomicBool::new(true) });
    let tap_dyn: Arc<dyn Tap> = tap.clone();
    let relay = start_relay(|cfg| {
        cfg.tap = Some(tap_dyn);
        cfg.workers = 2; // forwarding on two sockets sharing the port
    });
    let mut cfg = host_config(&relay, Permissions::VIEW_ONLY);
    cfg.timeouts.pairing = Duration::from_secs(4);
    let mut host = start_host_with(cfg, || capture::open(Source::TestPattern { width: W, height: H }));
    let code = host.next_code().await;
    match ViewerSession::connect(&viewer_config(&relay), &code).await {
        Err(ViewerError::Connect(ClientError::EndToEnd(e))) => {
            assert!(matches!(e, quinn::ConnectionError::TimedOut), "{e}")
        }
        other => panic!("expected the end-to-end handshake to fail, got {:?}", other.map(|_| "a session")),
    }
    // quinn may see the altered Initial as failed authentication, or see nothing authentic at all: either
    // way the host gets no session, counts the attempt against its wrong-code limit and offers a new code.
    loop {
        match host.next_event().await {
            HostEvent::CodeReplaced(why) => {
                assert_eq!(why, Restart::Abandoned);
                break;
            }
            HostEvent::Live(_) => panic!("a session despite an altered handshake"),
            e if e.record().is_some() => panic!("a session despite an altered handshake: {e:?}"),
            _ => continue,
        }
    }
    let fresh = host.next_code().await;
    assert_ne!(fresh.nameplate, code.nameplate);
    assert!(!host.task.is_finished(), "the host goes on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_substituting_pake_messages_gets_wrong_code_on_both_sides() {
    let relay = start_relay(|cfg| {
        cfg.tap = Some(Arc::new(PakeSwapper));
        cfg.workers = 2; // forwarding on two sockets sharing the port
    });
    let mut host = start_host(&relay, Permissions::VIEW_ONLY);
    let code = host.next_code().await;
    match ViewerSession::connect(&viewer_config(&relay), &code).await {
        Err(ViewerError::Connect(ClientError::WrongCode)) => {}
        other => panic!("expected wrong code, got {:?}", other.map(|_| "a session")),
    }
    match host.next_event().await {
        HostEvent::CodeReplaced(Restart::WrongCode) => {}
        other => panic!("expected the host to hear of a wrong code, got {other:?}"),
    }
    assert_eq!(relay.handle.stats().sessions, 0, "no session was set up");
}
