//! Attacks on a waiting host through the real relay: guessing its code over and over, breaking the pairing
//! protocol to knock it over, leaving after the host's key confirmation (which tells a guesser whether its
//! guess was right), and a relay that refuses registrations.
//!
//! The attacker here is a raw control client: anyone who can reach an open relay can be one, and so can the
//! relay itself.

mod common;

use std::time::Duration;

use common::procs::Proc;
use common::*;
use tether_host::codes::AfterTooMany;
use tether_host::{HostError, HostEvent};
use tether_shared::code::Code;
use tether_shared::net::link::RelayLink;
use tether_shared::net::pairing::Restart;
use tether_shared::net::{ClientError, RelaySpec};
use tether_shared::pake;
use tether_shared::relay_proto::{ClientToRelay, RelayErrorKind, RelayToClient, Role};
use tether_shared::session_proto::Permissions;
use tether_viewer::session::{ViewerError, ViewerSession};

/// The same nameplate with another secret.
fn wrong_secret(code: &Code) -> Code {
    let digits: String = code.to_string().chars().filter(char::is_ascii_digit).collect();
    let last = digits.chars().last().and_then(|c| c.to_digit(10)).expect("digit");
    Code::parse(&format!("{}{}", &digits[..digits.len() - 1], (last + 1) % 10)).expect("valid code")
}

/// A raw viewer that has claimed `code`'s nameplate and been matched with the host.
async fn claim(relay: &RelaySpec, code: &Code) -> RelayLink {
    let mut link = RelayLink::connect(relay, Role::Viewer, &fast_timeouts()).await.expect("relay reachable");
    link.send(&ClientToRelay::Claim { nameplate: code.nameplate.clone(), token: None }).await.expect("send");
    match link.recv().await {
        Ok(RelayToClient::PeerJoined { .. }) => link,
        other => panic!("expected PeerJoined, got {other:?}"),
    }
}

/// Attack: claim, then send a pairing verdict before any PAKE message.
async fn out_of_order(relay: &RelaySpec, code: &Code) {
    let mut link = claim(relay, code).await;
    link.send(&ClientToRelay::PairingResult { ok: false }).await.expect("send");
    // Stay until the relay has acted on it (its verdict, an error), so the host hears of the verdict rather
    // than of a viewer that left; the host's PAKE message may come first.
    let verdict = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(RelayToClient::PeerPake { .. } | RelayToClient::PeerConfirm { .. }) = link.recv().await {
        }
    });
    verdict.await.expect("the relay answers");
}

/// Attack: run the PAKE with a guessed secret, read the host's key confirmation (enough to tell whether the
/// guess was right), and leave without a verdict.
async fn guess_and_leave(relay: &RelaySpec, code: &Code) {
    let guess = wrong_secret(code);
    let mut link = claim(relay, code).await;
    let (state, msg) = pake::start(Role::Viewer, &guess.nameplate, &guess.secret);
    link.send(&ClientToRelay::Pake { msg }).await.expect("send");
    let host_pake = loop {
        match link.recv().await.expect("relay answers") {
            RelayToClient::PeerPake { msg } => break msg,
            _ => continue,
        }
    };
    let keys = state.finish(&host_pake).expect("a well-formed PAKE message");
    let confirm = loop {
        match link.recv().await.expect("relay answers") {
            RelayToClient::PeerConfirm { msg } => break msg,
            _ => continue,
        }
    };
    assert!(keys.verify_peer(&confirm).is_err(), "the host's confirmation tells the guesser it was wrong");
    link.close();
}

/// The next event the host sends that `pick` accepts; fails if the host ends first.
async fn host_event<T>(host: &mut TestHost, mut pick: impl FnMut(&HostEvent) -> Option<T>) -> T {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(20), host.events.recv())
            .await
            .expect("an event within 20 s");
        match event {
            Some(e) => {
                if let Some(found) = pick(&e) {
                    return found;
                }
            }
            None => panic!("the host ended: {:?}", (&mut host.task).await),
        }
    }
}

async fn next_restart(host: &mut TestHost) -> Restart {
    host_event(host, |e| match e {
        HostEvent::CodeReplaced(why) => Some(*why),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pairing_message_out_of_order_does_not_end_the_waiting_host() {
    let relay = start_relay(|_| {});
    let mut host = start_host(&relay, Permissions::VIEW_ONLY);
    let code = host.next_code().await;

    out_of_order(&relay.spec(), &code).await;
    assert!(next_restart(&mut host).await.is_failed_guess(), "counted as a failed attempt");
    let fresh = host.next_code().await;
    assert_ne!(fresh.nameplate, code.nameplate);

    // Still the same host, and its new code works.
    let viewer = ViewerSession::connect(&viewer_config(&relay), &fresh).await.expect("the fresh code pairs");
    viewer.next_frame(None).await.expect("a frame");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_failed_guesses_in_a_row_stop_the_codes_until_the_user_asks() {
    let relay = start_relay(|_| {});
    let cfg = host_config(&relay, Permissions::VIEW_ONLY);
    let new_code = cfg.new_code.clone();
    let mut host = start_host_with(cfg, test_pattern);

    // Three different ways to spend a guess.
    let code = host.next_code().await;
    let wrong = ViewerSession::connect(&viewer_config(&relay), &wrong_secret(&code)).await;
    assert!(matches!(wrong, Err(ViewerError::Connect(ClientError::WrongCode))), "a plain wrong code");
    assert_eq!(next_restart(&mut host).await, Restart::WrongCode);

    let code = host.next_code().await;
    guess_and_leave(&relay.spec(), &code).await;
    assert_eq!(next_restart(&mut host).await, Restart::Abandoned, "leaving after a guess counts");

    let code = host.next_code().await;
    out_of_order(&relay.spec(), &code).await;
    let why = next_restart(&mut host).await;
    assert!(why.is_failed_guess(), "{why:?}");

    let times = host_event(&mut host, |e| match e {
        HostEvent::TooManyWrongCodes(n) => Some(*n),
        HostEvent::Code { code, .. } => panic!("a fourth code {code} was offered after three failures"),
        _ => None,
    })
    .await;
    assert_eq!(times, 3);
    // Nothing waits at the relay for another guess.
    eventually(|| relay.handle.stats().waiting_hosts == 0, "the host left the relay").await;
    assert!(!host.task.is_finished(), "the window's host waits for the user, it does not end");

    // The user clicks New code: a code again, and the real technician connects.
    new_code.notify_one();
    let fresh = host.next_code().await;
    let viewer = ViewerSession::connect(&viewer_config(&relay), &fresh).await.expect("the fresh code pairs");
    viewer.next_frame(None).await.expect("a frame");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_told_to_stop_after_wrong_codes_ends_with_a_typed_error() {
    let relay = start_relay(|_| {});
    let mut cfg = host_config(&relay, Permissions::VIEW_ONLY);
    cfg.codes.after_too_many = AfterTooMany::Stop;
    let mut host = start_host_with(cfg, test_pattern);
    for _ in 0..3 {
        let code = host.next_code().await;
        guess_and_leave(&relay.spec(), &code).await;
    }
    match host.report().await {
        Err(HostError::TooManyWrongCodes(3)) => {}
        other => panic!("expected TooManyWrongCodes(3), got {:?}", other.map(|r| r.end)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_refuses_registrations_slows_the_host_down_but_does_not_end_it() {
    // One registration every 3 s, and codes that expire after 1 s: every other registration is refused.
    let relay = start_relay(|cfg| {
        cfg.code_ttl = Duration::from_secs(1);
        cfg.registers_per_minute = 20;
        cfg.register_burst = 1;
    });
    let mut host = start_host(&relay, Permissions::VIEW_ONLY);
    let first = host.next_code().await;
    host_event(&mut host, |e| matches!(e, HostEvent::CodeDelayed(_)).then_some(())).await;
    let second = host.next_code().await;
    assert_ne!(first.nameplate, second.nameplate);
    assert!(!host.task.is_finished(), "the host keeps going");
    host.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_prints_a_line_and_exits_non_zero_after_three_wrong_codes() {
    let relay = start_relay(|_| {});
    let spec = relay.spec();
    let addr = spec.addr.to_string();
    let fingerprint = relay.handle.fingerprint().to_string();
    let mut host = Proc::spawn(
        "tether-host",
        &cli_args(&addr, &fingerprint, &["--headless", "--source", "test-pattern"]),
    );
    for _ in 0..3 {
        let code = Code::parse(&host.line("code").await).expect("a code");
        guess_and_leave(&spec, &code).await;
    }
    assert_eq!(host.line("stopped").await, "wrong-codes 3");
    let status = host.wait().await;
    assert!(!status.success(), "headless exits non-zero: {status:?}");
    assert!(!host.seen.iter().skip(3).any(|l| l.starts_with("code ")), "no fourth code: {:?}", host.seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_counts_a_guess_abandoned_after_the_hosts_confirmation_against_its_budget() {
    let relay = start_relay(|cfg| cfg.failed_claims_per_address = 2);
    let mut host = start_host(&relay, Permissions::VIEW_ONLY);
    for _ in 0..2 {
        let code = host.next_code().await;
        guess_and_leave(&relay.spec(), &code).await;
    }
    // The relay's budget for this address is spent: even the right code is refused from it.
    let code = host.next_code().await;
    let refused = ViewerSession::connect(&viewer_config(&relay), &code).await;
    match refused {
        Err(ViewerError::Connect(ClientError::Relay(RelayErrorKind::TooManyWrongCodes))) => {}
        other => panic!("expected TooManyWrongCodes, got {:?}", other.map(|_| "a session")),
    }
    let failed = relay.handle.metrics_text();
    assert!(failed.lines().any(|l| l == "tether_relay_failed_claims_total 2"), "{failed}");
}
