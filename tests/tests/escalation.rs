//! Escalation L1 → L2 with the user deciding, over the real relay and real QUIC: the user allows the
//! invited colleague (the card says who invited them) and shares the session so far; the chat is shared
//! and signed; control moves by request and hand-over (the giver's held keys let go, their input dropped
//! after); the first technician leaves and the second carries on; the user stops and is obeyed. The user
//! can also deny the colleague (the first technician is untouched) or remove them mid-session (cut at
//! once, keys released, the others stay).

mod common;

use std::time::Duration;

use common::*;
use tether_host::access::{AccessPolicy, AccessRequest};
use tether_shared::code::Code;
use tether_shared::end::EndReason;
use tether_shared::input::{InputEvent, Key};
use tether_shared::record::EventKind;
use tether_shared::session_proto::{InviteNews, Permissions, RefusalReason, Roster};
use tether_viewer::session::{HostNotice, ViewerConfig, ViewerError, ViewerSession};
use tokio::sync::mpsc;

const DRIVE: Permissions = Permissions { view: true, control: true, files: false };

/// What the test's user does with a consent card.
type Decide = fn(&AccessRequest) -> Option<bool>;

/// A host that asks its user (the test) about everyone, and takes invites. `decide` answers each card:
/// `Some(share_history)` allows what was asked, `None` denies. The cards seen are sent on `seen`.
fn asking_host(
    relay: &TestRelay,
    decide: Decide,
) -> (TestHost, mpsc::UnboundedReceiver<(String, Option<String>)>) {
    let (ask, mut asked) = mpsc::channel::<AccessRequest>(4);
    let (seen_tx, seen) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(request) = asked.recv().await {
            let _ = seen_tx.send((request.technician.clone(), request.invited_by.clone()));
            match decide(&request) {
                Some(history) => {
                    let asked = request.asked;
                    request.answer_with(asked, history);
                }
                None => request.deny(),
            }
        }
    });
    let mut cfg = host_config(relay, DRIVE);
    cfg.invites = true;
    cfg.access = AccessPolicy::Ask(ask);
    (start_host_with(cfg, test_pattern), seen)
}

fn technician(relay: &TestRelay, name: &str) -> ViewerConfig {
    ViewerConfig { technician: name.into(), want: DRIVE, ..viewer_config(relay) }
}

async fn invite_code(viewer: &ViewerSession) -> Code {
    viewer.invite().await.expect("asked");
    let mut news = viewer.invite_news();
    let code = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(InviteNews::Code { code, .. }) = news.borrow_and_update().clone() {
                return code;
            }
            news.changed().await.expect("session up");
        }
    })
    .await
    .expect("an invite code within 10 s");
    Code::parse(&code).expect("a code")
}

/// Alice pairs by `code` and invites Bob, who joins (the host's user allows both).
async fn alice_invites_bob(relay: &TestRelay, code: &Code) -> (ViewerSession, ViewerSession) {
    let alice = ViewerSession::connect(&technician(relay, "Alice"), code).await.expect("Alice pairs");
    let invite = invite_code(&alice).await;
    let bob = ViewerSession::connect(&technician(relay, "Bob"), &invite).await.expect("Bob pairs");
    (alice, bob)
}

/// Wait until `viewer`'s roster satisfies `ok`.
async fn roster(viewer: &ViewerSession, ok: impl Fn(&Roster) -> bool, what: &str) -> Roster {
    let mut watch = viewer.participants();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let now = watch.borrow_and_update().clone();
            if ok(&now) {
                return now;
            }
            watch.changed().await.expect("session up");
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} within 10 s: {:?}", watch.borrow()))
}

/// The next notice on `notices` that `pick` turns into something.
async fn notice<T>(
    notices: &mut tokio::sync::broadcast::Receiver<HostNotice>,
    pick: impl Fn(HostNotice) -> Option<T>,
) -> T {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(found) = pick(notices.recv().await.expect("notices open")) {
                return found;
            }
        }
    })
    .await
    .expect("the notice within 10 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l1_invites_l2_the_user_allows_control_moves_l1_leaves_and_l2_finishes() {
    let relay = start_relay(|_| {});
    let (mut host, mut cards) = asking_host(&relay, |_| Some(true));
    let code = host.next_code().await;
    let alice = ViewerSession::connect(&technician(&relay, "Alice"), &code).await.expect("Alice pairs");
    alice.next_frame(None).await.expect("Alice's frame");
    assert_eq!(cards.recv().await, Some(("Alice".into(), None)), "the user was asked about Alice");

    // Before Bob: Alice and the user talk.
    let people = host.participants(|p| p.len() == 1).await;
    let user = people[0].handle.clone();
    alice.chat("I restarted the print spooler").await.expect("sent");
    while !matches!(record_kind(&host.next_event().await), Some(EventKind::Chat { .. })) {}
    let mut alice_notices = alice.notices();
    eventually(|| user.chat("It still does not print").is_ok(), "the user's line sent").await;
    notice(&mut alice_notices, |n| {
        matches!(n, HostNotice::Chat(t) if t == "It still does not print").then_some(())
    })
    .await;

    // Alice invites Bob; the user's card says Alice invited him, and the session so far is shared.
    let invite = invite_code(&alice).await;
    let bob = ViewerSession::connect(&technician(&relay, "Bob"), &invite).await.expect("Bob pairs");
    assert_eq!(cards.recv().await, Some(("Bob".into(), Some("Alice".into()))), "invited by Alice");
    let mut bob_notices = bob.notices();
    let history = notice(&mut bob_notices, |n| match n {
        HostNotice::History(h) => Some(h),
        _ => None,
    })
    .await;
    let chat: Vec<_> = history.chat.iter().map(|c| (c.from.as_str(), c.text.as_str())).collect();
    assert_eq!(chat, [("Alice", "I restarted the print spooler"), ("the user", "It still does not print")]);
    assert!(
        history.log.iter().any(|l| l.starts_with("Alice (name not verified) connected")),
        "{:?}",
        history.log
    );
    let shown = bob.next_frame(None).await.expect("Bob's frame");
    assert_eq!(*shown.frame, tether_host::capture::test_pattern::render(W, H, shown.info.capture_id));
    let seen = roster(&bob, |r| r.members.len() == 2, "both listed").await;
    let alice_id = seen.members.iter().find(|m| m.name == "Alice").expect("Alice listed").id;
    let bob_id = seen.you;
    assert_eq!(seen.member(bob_id).and_then(|m| m.invited_by.clone()).as_deref(), Some("Alice"));

    // The chat is shared and signed.
    bob.chat("Checking the driver").await.expect("sent");
    let line = notice(&mut alice_notices, |n| match n {
        HostNotice::ColleagueChat { from, text } => Some((from, text)),
        _ => None,
    })
    .await;
    assert_eq!(line, ("Bob".to_owned(), "Checking the driver".to_owned()));

    // Alice drives and holds Shift; Bob asks for control; Alice sees it and hands over.
    let sink = host.sink.clone();
    let shift = InputEvent::Key { key: Key::Shift, pressed: true };
    alice.send_input(shift.clone()).await.expect("sent");
    eventually(|| sink.held().contains(&shift), "Alice's Shift held").await;
    roster(&alice, |r| r.you_control(), "Alice in control").await;
    bob.request_control().await.expect("asked");
    roster(&alice, |r| r.member(bob_id).is_some_and(|m| m.wants_control), "Alice sees Bob asking").await;
    alice.hand_over_control(bob_id).await.expect("handed");
    roster(&bob, |r| r.you_control(), "Bob in control").await;
    eventually(|| sink.held().is_empty(), "Alice's Shift let go on the hand-over").await;
    alice.send_input(InputEvent::Text("from alice, after".into())).await.expect("sent");
    bob.send_input(InputEvent::Text("from bob".into())).await.expect("sent");
    eventually(|| sink.events().contains(&InputEvent::Text("from bob".into())), "Bob's text injected").await;
    // Alice's input stream is ordered before her leaving below; give it a moment to arrive first.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Alice's record tells the escalation: Bob came, invited by her, and control went to him.
    let story = |record: Vec<tether_shared::record::chain::Entry>| -> Vec<EventKind> {
        record
            .into_iter()
            .map(|e| e.event.kind)
            .filter(|k| {
                matches!(
                    k,
                    EventKind::CodeIssued { .. }
                        | EventKind::ColleagueJoined { .. }
                        | EventKind::ColleagueLeft { .. }
                        | EventKind::ControlMoved { .. }
                        | EventKind::Ended { .. }
                )
            })
            .collect()
    };
    let bob_in = EventKind::ColleagueJoined { name: "Bob".into(), invited_by: Some("Alice".into()) };
    let to_bob = EventKind::ControlMoved { to: Some("Bob".into()) };
    eventually(|| story(alice.session_record()).contains(&to_bob), "the hand-over in Alice's record").await;
    let alice_story = story(alice.session_record());
    assert!(matches!(&alice_story[0], EventKind::CodeIssued { invited_by: None, .. }), "{alice_story:?}");
    assert_eq!(
        alice_story[1..],
        [bob_in, EventKind::ControlMoved { to: Some("Alice".into()) }, to_bob.clone()],
        "{alice_story:?}"
    );

    // Alice leaves; Bob carries on.
    alice.close().await;
    roster(&bob, |r| r.members.len() == 1 && r.member(alice_id).is_none(), "Alice gone").await;
    let after = bob.next_frame(Some(shown.info.seq)).await.expect("Bob still gets frames");
    assert!(after.info.seq > shown.info.seq);
    assert!(
        !sink.events().contains(&InputEvent::Text("from alice, after".into())),
        "Alice's input after the hand-over was dropped"
    );
    host.participants(|p| p.len() == 1 && p[0].technician == "Bob").await;

    // The user stops: Bob is told.
    host.stop.cancel();
    let why = tokio::time::timeout(Duration::from_secs(10), bob.closed()).await.expect("Bob's session ends");
    assert!(matches!(why, ViewerError::Ended(EndReason::HostStopped)), "{why:?}");
    // Bob's own record: his invite code (Alice asked for it), Alice there when he came, control to
    // Alice, to him, Alice leaving, the user's stop.
    let bob_story = story(bob.session_record());
    assert!(
        matches!(&bob_story[0], EventKind::CodeIssued { invited_by: Some(by), .. } if by == "Alice"),
        "{bob_story:?}"
    );
    assert_eq!(
        bob_story[1..],
        [
            EventKind::ColleagueJoined { name: "Alice".into(), invited_by: None },
            EventKind::ControlMoved { to: Some("Alice".into()) },
            to_bob,
            EventKind::ColleagueLeft { name: "Alice".into() },
            EventKind::Ended { reason: EndReason::HostStopped },
        ],
        "{bob_story:?}"
    );
    let report = host.report().await.expect("a report");
    assert_eq!(report.technician, "Bob");
    assert_eq!(report.record, bob.session_record(), "Bob and the host hold the same record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_denies_the_colleague_and_the_first_technician_is_untouched() {
    let relay = start_relay(|_| {});
    let (mut host, _cards) = asking_host(&relay, |r| r.invited_by.is_none().then_some(false));
    let code = host.next_code().await;
    let alice = ViewerSession::connect(&technician(&relay, "Alice"), &code).await.expect("Alice pairs");
    let first = alice.next_frame(None).await.expect("Alice's frame");
    let invite = invite_code(&alice).await;
    let bob = ViewerSession::connect(&technician(&relay, "Bob"), &invite).await;
    assert!(matches!(bob, Err(ViewerError::Refused(RefusalReason::Declined))), "{:?}", bob.err());
    let later = alice.next_frame(Some(first.info.seq)).await.expect("Alice still gets frames");
    assert!(later.info.seq > first.info.seq);
    assert_eq!(alice.participants().borrow().members.len(), 1, "only Alice");
    host.stop.cancel();
    host.report().await.expect("a report");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_removes_the_colleague_who_is_cut_at_once_with_keys_released() {
    let relay = start_relay(|_| {});
    let (mut host, _cards) = asking_host(&relay, |_| Some(false));
    let code = host.next_code().await;
    let (alice, bob) = alice_invites_bob(&relay, &code).await;
    let mut bob_notices = bob.notices();
    // Bob drives (nobody had control) and holds Ctrl.
    let sink = host.sink.clone();
    let ctrl = InputEvent::Key { key: Key::Control, pressed: true };
    bob.send_input(ctrl.clone()).await.expect("sent");
    eventually(|| sink.held().contains(&ctrl), "Bob's Ctrl held").await;

    let people = host.participants(|p| p.len() == 2).await;
    let bob_here = people.iter().find(|p| p.technician == "Bob").expect("Bob listed");
    bob_here.handle.remove();
    let why = tokio::time::timeout(Duration::from_secs(10), bob.closed()).await.expect("Bob cut");
    assert!(matches!(why, ViewerError::Ended(EndReason::Removed)), "{why:?}");
    eventually(|| sink.held().is_empty(), "Bob's Ctrl let go").await;
    // Bob was not sent the session so far (the user said no).
    assert!(
        !std::iter::from_fn(|| bob_notices.try_recv().ok()).any(|n| matches!(n, HostNotice::History(_))),
        "no history without consent"
    );
    // Alice stays.
    let frame = alice.next_frame(None).await.expect("Alice's frame");
    alice.next_frame(Some(frame.info.seq)).await.expect("Alice still gets frames");
    roster(&alice, |r| r.members.len() == 1, "Bob gone from Alice's list").await;
    host.stop.cancel();
    host.report().await.expect("a report");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_stopping_tells_every_technician() {
    let relay = start_relay(|_| {});
    let (mut host, _cards) = asking_host(&relay, |_| Some(false));
    let code = host.next_code().await;
    let (alice, bob) = alice_invites_bob(&relay, &code).await;
    bob.next_frame(None).await.expect("Bob's frame");
    host.stop.cancel();
    for (name, viewer) in [("Alice", &alice), ("Bob", &bob)] {
        let why = tokio::time::timeout(Duration::from_secs(10), viewer.closed()).await.expect("ended");
        assert!(matches!(why, ViewerError::Ended(EndReason::HostStopped)), "{name}: {why:?}");
    }
    host.report().await.expect("a report");
}
