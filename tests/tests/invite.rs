//! Escalation inside a live session, over the real relay: a technician asks the host for an invite code,
//! a colleague pairs with the *host* by it (a PAKE and an end-to-end connection of their own), sees the
//! screen pixel for pixel and stays when the first technician leaves; the user stopping ends it for
//! everyone. An invite burns on a wrong guess, dies when withdrawn, and a host that takes no invites
//! says so. One technician drives at a time; an invited one's screen and typing are opaque to the relay.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::canary::{canary_screen, contains, CanaryCapturer, Recorder, CANARY};
use common::*;
use tether_host::capture::test_pattern::render;
use tether_host::capture::Capturer;
use tether_relay::Tap;
use tether_shared::code::Code;
use tether_shared::end::EndReason;
use tether_shared::input::{InputEvent, Key};
use tether_shared::net::ClientError;
use tether_shared::relay_proto::RelayErrorKind;
use tether_shared::session_proto::{InviteNews, Permissions};
use tether_viewer::session::{ViewerConfig, ViewerError, ViewerSession};

fn inviting_host(relay: &TestRelay) -> TestHost {
    let mut cfg = host_config(relay, Permissions { view: true, control: true, files: false });
    cfg.invites = true;
    start_host_with(cfg, test_pattern)
}

fn colleague(relay: &TestRelay, name: &str) -> ViewerConfig {
    ViewerConfig { technician: name.into(), ..viewer_config(relay) }
}

/// The next invite news other than what `skip` matches, within 10 s.
async fn news(viewer: &ViewerSession, skip: impl Fn(&InviteNews) -> bool) -> InviteNews {
    let mut news = viewer.invite_news();
    let wait = async {
        loop {
            if let Some(n) = news.borrow_and_update().clone().filter(|n| !skip(n)) {
                return n;
            }
            news.changed().await.expect("the session is still up");
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait).await.expect("invite news within 10 s")
}

async fn invite_code(viewer: &ViewerSession) -> Code {
    viewer.invite().await.expect("asked");
    match news(viewer, |n| !matches!(n, InviteNews::Code { .. } | InviteNews::Unavailable { .. })).await {
        InviteNews::Code { code, expires_secs } => {
            assert!(expires_secs > 0);
            Code::parse(&code).expect("a code")
        }
        other => panic!("no invite code: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colleague_joins_by_invite_sees_the_screen_and_stays_when_the_first_technician_leaves() {
    let relay = start_relay(|_| {});
    let mut host = inviting_host(&relay);
    let code = host.next_code().await;
    let alice = ViewerSession::connect(&colleague(&relay, "Alice"), &code).await.expect("Alice pairs");
    alice.next_frame(None).await.expect("Alice's first frame");

    let invite = invite_code(&alice).await;
    assert_ne!(invite.nameplate, code.nameplate, "a nameplate of its own");
    let bob = ViewerSession::connect(&colleague(&relay, "Bob"), &invite).await.expect("Bob pairs by invite");
    assert_eq!(news(&alice, |n| matches!(n, InviteNews::Code { .. })).await, InviteNews::Claimed);
    assert!(bob.granted().view, "the host granted Bob too");
    let shown = bob.next_frame(None).await.expect("Bob's first frame");
    assert_eq!(*shown.frame, render(W, H, shown.info.capture_id), "Bob sees the screen exactly");

    // Alice leaves; Bob's session goes on.
    alice.close().await;
    let after = bob.next_frame(Some(shown.info.seq)).await.expect("Bob still gets frames");
    assert_eq!(*after.frame, render(W, H, after.info.capture_id));
    assert!(!host.task.is_finished(), "the host goes on while a technician is connected");

    // The user stops: Bob is told.
    host.stop.cancel();
    let why = tokio::time::timeout(Duration::from_secs(10), bob.closed()).await.expect("Bob's session ends");
    assert!(matches!(why, ViewerError::Ended(EndReason::HostStopped)), "{why:?}");
    let report = host.report().await.expect("a report");
    assert_eq!(report.technician, "Bob", "the last session to end");

    // The relay's audit: a row per technician, Bob's naming the session he joined (Alice's).
    let store = relay.store();
    let rows = || store.audit_rows().expect("rows");
    eventually(|| rows().iter().filter(|r| r.claimed_at.is_some()).count() == 2, "both rows written").await;
    let rows = rows();
    let alice_row = rows.iter().find(|r| r.claimed_at.is_some() && r.part_of.is_none()).expect("Alice's row");
    let bob_row = rows.iter().find(|r| r.part_of.is_some()).expect("Bob's row, linked");
    assert_eq!(bob_row.part_of.as_deref(), Some(alice_row.session_id.as_str()));
    assert_ne!(bob_row.session_id, alice_row.session_id, "a row of its own");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_guess_burns_an_invite_and_a_withdrawn_one_no_longer_works() {
    let relay = start_relay(|_| {});
    let mut host = inviting_host(&relay);
    let code = host.next_code().await;
    let alice = ViewerSession::connect(&colleague(&relay, "Alice"), &code).await.expect("Alice pairs");

    // A wrong secret for the invite's nameplate: burned, as a first code would be.
    let invite = invite_code(&alice).await;
    let digits = invite.to_string().replace('-', "");
    let last = digits.chars().last().and_then(|d| d.to_digit(10)).expect("a digit");
    let guess = Code::parse(&format!("{}{}", &digits[..digits.len() - 1], (last + 1) % 10)).expect("a code");
    let wrong = ViewerSession::connect(&colleague(&relay, "Mallory"), &guess).await;
    assert!(matches!(wrong, Err(ViewerError::Connect(ClientError::WrongCode))), "{:?}", wrong.err());
    assert_eq!(news(&alice, |n| matches!(n, InviteNews::Code { .. })).await, InviteNews::Burned);
    let burned = ViewerSession::connect(&colleague(&relay, "Bob"), &invite).await;
    assert!(burned.is_err(), "a burned invite works no more");

    // A new invite, withdrawn before anyone claims it: its code is gone from the relay.
    let invite = invite_code(&alice).await;
    alice.withdraw_invite().await.expect("asked");
    assert_eq!(news(&alice, |n| matches!(n, InviteNews::Code { .. })).await, InviteNews::Withdrawn);
    let late = ViewerSession::connect(&colleague(&relay, "Bob"), &invite).await;
    assert!(
        matches!(late, Err(ViewerError::Connect(ClientError::Relay(RelayErrorKind::UnknownCode)))),
        "{:?}",
        late.err()
    );
    let said = ViewerError::Connect(ClientError::Relay(RelayErrorKind::UnknownCode)).to_string();
    assert!(said.contains("expired or withdrawn"), "the colleague is told why: {said}");
    // Alice's own session was untouched by all of it.
    alice.next_frame(None).await.expect("Alice still gets frames");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_takes_no_invites_says_so() {
    let relay = start_relay(|_| {});
    let (_host, alice) = paired(&relay, Permissions::VIEW_ONLY).await;
    alice.invite().await.expect("asked");
    let answer = news(&alice, |_| false).await;
    assert_eq!(answer, InviteNews::Unavailable { why: "this host does not take invites".into() });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_technician_drives_at_a_time_and_a_leaver_s_keys_are_released() {
    let relay = start_relay(|_| {});
    let mut host = inviting_host(&relay);
    let code = host.next_code().await;
    let alice = ViewerSession::connect(&colleague(&relay, "Alice"), &code).await.expect("Alice pairs");
    let invite = invite_code(&alice).await;
    let bob = ViewerSession::connect(&colleague(&relay, "Bob"), &invite).await.expect("Bob pairs");
    bob.next_frame(None).await.expect("Bob's first frame");
    let sink = host.sink.clone();

    // Alice drives first and holds Shift: Bob's input is dropped while she has control.
    let shift = InputEvent::Key { key: Key::Shift, pressed: true };
    alice.send_input(shift.clone()).await.expect("sent");
    eventually(|| sink.held().contains(&shift), "Alice's Shift is held").await;
    bob.send_input(InputEvent::Text("from bob, too early".into())).await.expect("sent");
    // Input travels on its own stream, so nothing orders it against Alice leaving: give it a second to
    // arrive first. (Late, it would be injected and fail this test; it cannot make it pass.)
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Alice leaves: her Shift is released; then Bob takes control and his input is injected.
    alice.close().await;
    eventually(|| sink.held().is_empty(), "Alice's keys released when she leaves").await;
    bob.send_input(InputEvent::Text("from bob".into())).await.expect("sent");
    eventually(|| sink.events().contains(&InputEvent::Text("from bob".into())), "Bob's text injected").await;
    assert!(
        !sink.events().contains(&InputEvent::Text("from bob, too early".into())),
        "nothing of Bob's was injected while Alice had control"
    );
    host.stop.cancel();
    host.report().await.expect("a report");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invited_technician_s_screen_and_typing_are_opaque_to_the_relay() {
    let tap = Arc::new(Recorder::default());
    let tap_dyn: Arc<dyn Tap> = tap.clone();
    let relay = start_relay(|cfg| cfg.tap = Some(tap_dyn));
    let mut cfg = host_config(&relay, Permissions { view: true, control: true, files: false });
    cfg.invites = true;
    let mut host = start_host_with(cfg, || Ok(Box::new(CanaryCapturer) as Box<dyn Capturer>));
    let code = host.next_code().await;
    let alice = ViewerSession::connect(&colleague(&relay, "Alice"), &code).await.expect("Alice pairs");
    let invite = invite_code(&alice).await;
    let bob = ViewerSession::connect(&colleague(&relay, "Bob"), &invite).await.expect("Bob pairs");
    let forwarded_before_bob = tap.forwarded.lock().expect("lock").len();
    let shown = bob.next_frame(None).await.expect("Bob's frame");
    assert_eq!(*shown.frame, canary_screen(), "the canary screen reached Bob");
    let typed = format!("password: {}", String::from_utf8_lossy(CANARY));
    bob.send_input(InputEvent::Text(typed.clone())).await.expect("sent");
    let sink = host.sink.clone();
    eventually(|| sink.events().contains(&InputEvent::Text(typed.clone())), "Bob's canary typed").await;
    bob.close().await;
    alice.close().await;
    host.report().await.expect("a report");

    let forwarded = tap.forwarded.lock().expect("lock").clone();
    assert!(forwarded.len() - forwarded_before_bob >= (W * H * 3) as usize, "Bob's frame crossed the tap");
    assert!(!contains(&forwarded, CANARY), "canary visible on the relay's forwarding path");
    assert!(!contains(&forwarded, b"password:"), "typed text visible on the relay");
}

/// Frames `viewer` shows in `window`: distinct sequence numbers it got to.
async fn frames_in(viewer: &ViewerSession, window: Duration) -> u64 {
    let start = viewer.next_frame(None).await.expect("a frame").info.seq;
    let mut last = start;
    let deadline = tokio::time::Instant::now() + window;
    while let Ok(Ok(shown)) = tokio::time::timeout_at(deadline, viewer.next_frame(Some(last))).await {
        last = shown.info.seq;
    }
    last - start
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colleague_who_reads_nothing_does_not_slow_the_first_technician_down() {
    use tether_shared::net::pairing::connect_viewer;
    use tether_shared::session_proto::{Hello, HelloReply};
    use tether_shared::wire::{self, MAX_CONTROL_MSG};
    use tether_shared::PROTOCOL_VERSION;

    let relay = start_relay(|_| {});
    let mut host = inviting_host(&relay);
    let code = host.next_code().await;
    let alice = ViewerSession::connect(&colleague(&relay, "Alice"), &code).await.expect("Alice pairs");
    let alone = frames_in(&alice, Duration::from_secs(2)).await;

    // A colleague on a dead-slow line, to the extreme: paired and welcomed, then never reads a frame and
    // never acknowledges one (their video stream stays unaccepted).
    let invite = invite_code(&alice).await;
    let stalled = connect_viewer(&relay.spec(), &invite, fast_timeouts(), None).await.expect("pairs");
    let (mut send, mut recv) = stalled.conn.open_bi().await.expect("control");
    let hello =
        Hello { version: PROTOCOL_VERSION, technician: "Stalled".into(), want: Permissions::VIEW_ONLY };
    wire::write_msg(&mut send, &hello, MAX_CONTROL_MSG).await.expect("hello");
    let reply = wire::read_msg::<_, HelloReply>(&mut recv, MAX_CONTROL_MSG).await.expect("reply");
    assert!(matches!(reply, Some(HelloReply::Welcome { .. })), "{reply:?}");

    let beside = frames_in(&alice, Duration::from_secs(2)).await;
    eprintln!("Alice: {alone} frames in 2 s alone, {beside} beside a stalled colleague");
    assert!(alone >= 10, "the pattern animates: {alone} frames in 2 s alone");
    // Each participant has its own sender and credit: the stalled one holds back only its own frames.
    // (A shared pace would drop Alice to the stalled viewer's 0.)
    assert!(beside * 10 >= alone * 7, "{beside} frames beside a stalled colleague, {alone} alone");
    drop(stalled);
    host.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invites_stop_at_the_most_technicians_the_host_allows() {
    let relay = start_relay(|_| {});
    let mut cfg = host_config(&relay, Permissions::VIEW_ONLY);
    cfg.invites = true;
    cfg.max_viewers = 2;
    let mut host = start_host_with(cfg, test_pattern);
    let code = host.next_code().await;
    let alice = ViewerSession::connect(&colleague(&relay, "Alice"), &code).await.expect("Alice pairs");
    let invite = invite_code(&alice).await;
    let _bob = ViewerSession::connect(&colleague(&relay, "Bob"), &invite).await.expect("Bob pairs");
    assert_eq!(news(&alice, |n| matches!(n, InviteNews::Code { .. })).await, InviteNews::Claimed);
    alice.invite().await.expect("asked");
    let answer = news(&alice, |n| matches!(n, InviteNews::Claimed)).await;
    assert_eq!(
        answer,
        InviteNews::Unavailable {
            why: "this session already has 2 technicians, the most this host allows".into()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_audit_row_of_an_escalated_session_names_the_first_session() {
    let relay = start_relay(|_| {});
    let mut host = inviting_host(&relay);
    let code = host.next_code().await;
    let alice = ViewerSession::connect(&colleague(&relay, "Alice"), &code).await.expect("Alice pairs");
    let bob =
        ViewerSession::connect(&colleague(&relay, "Bob"), &invite_code(&alice).await).await.expect("Bob");
    // Bob, invited himself, invites Carol (L1 → L2 → L3).
    let carol =
        ViewerSession::connect(&colleague(&relay, "Carol"), &invite_code(&bob).await).await.expect("Carol");
    carol.next_frame(None).await.expect("Carol's first frame");
    host.stop.cancel();
    host.report().await.expect("a report");

    let store = relay.store();
    let rows = || store.audit_rows().expect("rows");
    eventually(|| rows().iter().filter(|r| r.claimed_at.is_some()).count() == 3, "three rows written").await;
    let rows = rows();
    let first = rows.iter().find(|r| r.claimed_at.is_some() && r.part_of.is_none()).expect("Alice's row");
    let joined: Vec<_> = rows.iter().filter_map(|r| r.part_of.as_deref()).collect();
    assert_eq!(joined, [first.session_id.as_str(); 2], "Bob's and Carol's rows name Alice's session");
}
