//! One-time codes: a wrong code fails on both sides and burns the code; expired codes and floods are refused.

mod common;

use std::time::Duration;

use common::*;
use tether_host::HostEvent;
use tether_shared::code::{Code, Nameplate};
use tether_shared::net::pairing::Restart;
use tether_shared::net::ClientError;
use tether_shared::relay_proto::RelayErrorKind;
use tether_shared::session_proto::Permissions;
use tether_viewer::session::{ViewerError, ViewerSession};

/// The same nameplate with a different secret.
fn wrong_secret(code: &Code) -> Code {
    let digits: String = code.to_string().chars().filter(char::is_ascii_digit).collect();
    let last = digits.chars().last().and_then(|c| c.to_digit(10)).expect("digit");
    let wrong = format!("{}{}", &digits[..digits.len() - 1], (last + 1) % 10);
    Code::parse(&wrong).expect("valid code")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_code_fails_both_sides_burns_the_code_and_a_new_one_works() {
    let relay = start_relay(|_| {});
    let mut host = start_host(&relay, Permissions::VIEW_ONLY);
    let code = host.next_code().await;

    let attempt = ViewerSession::connect(&viewer_config(&relay), &wrong_secret(&code)).await;
    match attempt {
        Err(ViewerError::Connect(ClientError::WrongCode)) => {}
        other => panic!("expected wrong code, got {:?}", other.map(|_| "a session")),
    }
    assert!(
        ClientError::WrongCode.to_string().contains("Wrong code"),
        "the viewer's message says so: {}",
        ClientError::WrongCode
    );
    match host.next_event().await {
        HostEvent::CodeReplaced(Restart::WrongCode) => {}
        other => panic!("the host is told someone tried a wrong code, got {other:?}"),
    }
    let fresh = host.next_code().await;
    assert_ne!(fresh.nameplate, code.nameplate, "a burned nameplate is not reissued");

    // The burned code cannot be claimed again, not even with the right secret.
    assert_eq!(
        relay_error(ViewerSession::connect(&viewer_config(&relay), &code).await),
        RelayErrorKind::AlreadyUsed
    );

    // The new code pairs.
    let viewer = ViewerSession::connect(&viewer_config(&relay), &fresh).await.expect("fresh code pairs");
    viewer.next_frame(None).await.expect("frame");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_code_is_refused_and_the_host_gets_a_new_one() {
    // The relay remembers a retired code for one TTL; claim it well inside that, even on a slow machine.
    let relay = start_relay(|cfg| cfg.code_ttl = Duration::from_secs(3));
    let mut host = start_host(&relay, Permissions::VIEW_ONLY);
    let code = host.next_code().await;
    match host.next_event().await {
        HostEvent::CodeReplaced(Restart::Expired) => {}
        other => panic!("expected expiry, got {other:?}"),
    }
    assert_eq!(
        relay_error(ViewerSession::connect(&viewer_config(&relay), &code).await),
        RelayErrorKind::Expired
    );
    let fresh = host.next_code().await;
    assert_ne!(fresh.nameplate, code.nameplate);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_codes_are_refused() {
    let relay = start_relay(|_| {});
    let code = Code::parse("555-123-4567").expect("valid");
    assert_eq!(
        relay_error(ViewerSession::connect(&viewer_config(&relay), &code).await),
        RelayErrorKind::UnknownCode
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_flood_from_one_address_is_cut_to_the_configured_rate() {
    let relay = start_relay(|cfg| {
        // One token a minute after the burst: however slow the ten connects, no fourth claim is let in.
        cfg.claims_per_minute = 1;
        cfg.claim_burst = 3;
    });
    let nameplate = Nameplate::new("999").expect("digits");
    let mut outcomes = Vec::new();
    for i in 0..10 {
        let code = Code::parse(&format!("{nameplate}{:07}", i)).expect("valid");
        outcomes.push(relay_error(ViewerSession::connect(&viewer_config(&relay), &code).await));
    }
    let refused = outcomes.iter().filter(|k| **k == RelayErrorKind::RateLimited).count();
    let looked_up = outcomes.iter().filter(|k| **k == RelayErrorKind::UnknownCode).count();
    assert_eq!((looked_up, refused), (3, 7), "{outcomes:?}");
    assert_eq!(outcomes[..3], [const { RelayErrorKind::UnknownCode }; 3], "the burst comes first");
}

/// The relay goes away while the user's code waits: the host does not end with an error but shows a new
/// code, from the other relay of its list, and a technician pairs with it there. (Once a viewer has
/// joined, a lost relay stays an error: that may follow a guess.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_lost_while_the_code_waits_gives_a_new_code_from_another_relay() {
    use tether_linkemu::{Direction, Emulator, LinkConfig};
    let (a, b) = (start_relay(|_| {}), start_relay(|_| {}));
    // B is farther, so the first code is made on A.
    let far = Direction::mbit(100.0).delay(Duration::from_millis(75));
    let emu = Emulator::start(b.handle.local_addr(), LinkConfig::symmetric(far)).await.expect("emulator");
    let mut cfg = host_config(&a, Permissions::VIEW_ONLY);
    let mut via = b.spec();
    via.addr = emu.local_addr();
    cfg.other_relays = vec![via];
    let mut host = start_host_with(cfg, test_pattern);
    let first = host.next_code().await;
    assert_eq!(a.handle.stats().waiting_hosts, 1, "the first code is on A");

    let TestRelay { handle, .. } = a;
    handle.shutdown().await;
    match host.next_event().await {
        HostEvent::CodeReplaced(Restart::RelayLost) => {}
        other => panic!("expected a code replaced for the lost relay, got {other:?}"),
    }
    let code = host.next_code().await;
    assert_ne!(code.to_string(), first.to_string());
    let viewer = ViewerSession::connect(&viewer_config(&b), &code).await.expect("pairs on B");
    viewer.next_frame(None).await.expect("the session works");
    viewer.close().await;
    host.report().await.expect("session ran");
}
