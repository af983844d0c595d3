//! Everything the host user and the technician do besides pixels and input, over a real relay: consent
//! at the start, permissions asked for, granted, given up and revoked mid-session, chat both ways, system
//! information, quality, monitor requests a host cannot honour, and a new code on demand.

mod common;

use std::time::Duration;

use common::*;
use tether_host::access::{AccessPolicy, AccessRequest, SessionHandle};
use tether_host::session::SessionError;
use tether_host::{HostError, HostEvent};
use tether_shared::codec::Quality;
use tether_shared::input::{InputEvent, Key};
use tether_shared::net::pairing::Restart;
use tether_shared::record::{EventKind, Side};
use tether_shared::session_proto::{Permissions, RefusalReason};
use tether_viewer::session::{HostNotice, ViewerError, ViewerSession};
use tokio::sync::{broadcast, mpsc};

const VIEW: Permissions = Permissions::VIEW_ONLY;
const VIEW_CONTROL: Permissions = Permissions { view: true, control: true, files: false };

/// A host whose user is asked (like the window), and the channel the questions come out of.
fn asking_host(relay: &TestRelay) -> (TestHost, mpsc::Receiver<AccessRequest>) {
    let (ask, questions) = mpsc::channel(4);
    let mut cfg = host_config(relay, Permissions::ALL);
    cfg.session.access = AccessPolicy::Ask(ask);
    (start_host_with(cfg, test_pattern), questions)
}

async fn question(questions: &mut mpsc::Receiver<AccessRequest>) -> AccessRequest {
    tokio::time::timeout(Duration::from_secs(10), questions.recv())
        .await
        .expect("asked in time")
        .expect("open")
}

async fn connected(host: &mut TestHost) -> SessionHandle {
    loop {
        if let HostEvent::Live(session) = host.next_event().await {
            return session;
        }
    }
}

async fn notice(notices: &mut broadcast::Receiver<HostNotice>) -> HostNotice {
    tokio::time::timeout(Duration::from_secs(10), notices.recv())
        .await
        .expect("a notice in time")
        .expect("open")
}

async fn host_event(host: &mut TestHost, want: impl Fn(&HostEvent) -> bool) -> HostEvent {
    loop {
        let event = host.next_event().await;
        if want(&event) {
            return event;
        }
    }
}

/// Wait until `cond` holds for the viewer's current grants.
async fn grants_become(viewer: &ViewerSession, want: Permissions) {
    let mut grants = viewer.grants();
    tokio::time::timeout(Duration::from_secs(10), grants.wait_for(|g| *g == want))
        .await
        .expect("grants change in time")
        .expect("session alive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_declining_refuses_the_session() {
    let relay = start_relay(|_| {});
    let (mut host, mut questions) = asking_host(&relay);
    let code = host.next_code().await;
    let cfg = viewer_config(&relay);
    let viewer = tokio::spawn(async move { ViewerSession::connect(&cfg, &code).await });
    let q = question(&mut questions).await;
    assert_eq!(q.technician, "Test Technician");
    assert_eq!(q.verified, None, "a typed name is never shown as verified");
    assert_eq!(q.asked, VIEW_CONTROL);
    q.deny();
    match viewer.await.expect("no panic") {
        Err(ViewerError::Refused(RefusalReason::Declined)) => {}
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(matches!(host.report().await, Err(HostError::Session(SessionError::Declined))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_asked_mid_session_is_granted_then_revoked() {
    let relay = start_relay(|_| {});
    let (mut host, mut questions) = asking_host(&relay);
    let code = host.next_code().await;
    let cfg = viewer_config(&relay);
    let viewer = tokio::spawn(async move { ViewerSession::connect(&cfg, &code).await });
    // The user allows viewing only, though control was asked for.
    question(&mut questions).await.answer(VIEW);
    let viewer = viewer.await.expect("no panic").expect("session");
    assert_eq!(viewer.granted(), VIEW);
    let handle = connected(&mut host).await;
    let mut notices = viewer.notices();

    // Without control, input is dropped.
    viewer.send_input(InputEvent::Text("dropped".into())).await.expect("send");

    // Asking again: the user says no, the viewer hears it and keeps what it had.
    viewer.request_permissions(VIEW_CONTROL).await.expect("request");
    let q = question(&mut questions).await;
    assert_eq!((q.asked, q.current), (VIEW_CONTROL, VIEW));
    q.deny();
    assert_eq!(notice(&mut notices).await, HostNotice::Declined(VIEW_CONTROL));
    assert_eq!(*viewer.grants().borrow(), VIEW);
    host_event(
        &mut host,
        |e| matches!(record_kind(e), Some(EventKind::RequestDeclined { asked }) if *asked == VIEW_CONTROL),
    )
    .await;

    // Asking once more: allowed. Input now arrives.
    viewer.request_permissions(VIEW_CONTROL).await.expect("request");
    question(&mut questions).await.allow();
    grants_become(&viewer, VIEW_CONTROL).await;
    host_event(&mut host, |e| {
        matches!(record_kind(e), Some(EventKind::PermissionsChanged { by: Side::Technician, before, now })
            if *before == VIEW && *now == VIEW_CONTROL)
    })
    .await;
    viewer.send_input(InputEvent::Key { key: Key::Control, pressed: true }).await.expect("send");
    viewer.send_input(InputEvent::Text("typed".into())).await.expect("send");
    eventually(|| host.sink.events().contains(&InputEvent::Text("typed".into())), "typed text arrives").await;
    assert!(!host.sink.events().contains(&InputEvent::Text("dropped".into())));

    // The user revokes control: the held Ctrl is released at once, later input is dropped.
    handle.set_permissions(VIEW);
    grants_become(&viewer, VIEW).await;
    // Both records say who took it back: the host user, not an answer to the technician.
    let revoked = EventKind::PermissionsChanged { by: Side::Host, before: VIEW_CONTROL, now: VIEW };
    host_event(&mut host, |e| record_kind(e) == Some(&revoked)).await;
    assert!(viewer.record().borrow().iter().any(|e| e.kind == revoked), "{:?}", viewer.record().borrow());
    eventually(|| host.sink.held().is_empty(), "held keys are released").await;
    assert!(host.sink.events().contains(&InputEvent::Key { key: Key::Control, pressed: false }));
    viewer.send_input(InputEvent::Text("after revoke".into())).await.expect("send");

    // Giving up permissions never asks: view only → nothing asked, applied at once.
    viewer.request_permissions(VIEW).await.expect("request");
    viewer.close().await;
    let sink = host.sink.clone();
    let report = host.report().await.expect("session ran");
    assert_eq!(report.granted, VIEW);
    assert!(!sink.events().contains(&InputEvent::Text("after revoke".into())));
    assert!(report.input_dropped >= 2, "{report:?}");
    assert!(questions.try_recv().is_err(), "giving up permissions asked the user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_system_info_and_requests_the_host_cannot_do() {
    let relay = start_relay(|_| {});
    let mut host = start_host(&relay, VIEW_CONTROL);
    let code = host.next_code().await;
    let viewer = ViewerSession::connect(&viewer_config(&relay), &code).await.expect("session");
    let handle = connected(&mut host).await;
    let mut notices = viewer.notices();

    viewer.chat("Hello, I am looking at your printer settings now.").await.expect("chat");
    let chat = host_event(&mut host, |e| matches!(record_kind(e), Some(EventKind::Chat { .. }))).await;
    match record_kind(&chat) {
        Some(EventKind::Chat { from, text }) => {
            assert_eq!(*from, Side::Technician);
            assert_eq!(text, "Hello, I am looking at your printer settings now.");
        }
        _ => unreachable!(),
    }
    handle.chat("Thank you! ✓").expect("chat");
    assert_eq!(notice(&mut notices).await, HostNotice::Chat("Thank you! ✓".into()));
    assert!(viewer.chat(&"x".repeat(5000)).await.is_err(), "over-long chat is refused by the sender");

    viewer.request_system_info().await.expect("request");
    let mut info = viewer.system_info();
    let info = tokio::time::timeout(Duration::from_secs(10), info.wait_for(Option::is_some))
        .await
        .expect("system info in time")
        .expect("alive")
        .clone()
        .expect("some");
    assert!(info.memory_total > 0 && info.cpu_cores > 0, "{info:?}");
    assert!(!info.hostname.is_empty() && !info.os.is_empty(), "{info:?}");

    // Requests a test-pattern host cannot honour get a clear notice, and the session goes on.
    viewer.select_monitor(1).await.expect("request");
    assert!(matches!(notice(&mut notices).await, HostNotice::Notice(t) if t.contains("no monitor")));
    viewer.set_quality(Quality::Balanced { jpeg_quality: 0 }).await.expect("request");
    assert!(matches!(notice(&mut notices).await, HostNotice::Notice(t) if t.contains("quality")));
    viewer.set_quality(Quality::Lossless).await.expect("request");
    viewer.send_clipboard("secret").await.expect("request");
    assert!(matches!(notice(&mut notices).await, HostNotice::Notice(t) if t.contains("no clipboard")));
    let seq = viewer.next_frame(None).await.expect("frames still flow").info.seq;
    viewer.next_frame(Some(seq)).await.expect("frames still flow");
    viewer.close().await;
    host.report().await.expect("session ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_code_on_demand_retires_the_old_one() {
    let relay = start_relay(|_| {});
    let cfg = host_config(&relay, VIEW);
    let new_code = cfg.new_code.clone();
    let mut host = start_host_with(cfg, test_pattern);
    let old = host.next_code().await;
    new_code.notify_one();
    host_event(&mut host, |e| matches!(e, HostEvent::CodeReplaced(Restart::Requested))).await;
    let new = host.next_code().await;
    assert_ne!(old, new);
    let refused = ViewerSession::connect(&viewer_config(&relay), &old).await;
    assert!(refused.is_err(), "the old code still pairs");
    let viewer = ViewerSession::connect(&viewer_config(&relay), &new).await.expect("the new code pairs");
    viewer.close().await;
    host.report().await.expect("session ran");
}
