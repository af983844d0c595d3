//! Pairing by code over a real relay; frames arrive pixel-exact; input arrives complete and in order.

mod common;

use std::time::Duration;

use common::*;
use tether_host::capture::test_pattern::render;
use tether_shared::end::EndReason;
use tether_shared::input::{InputEvent, Key, MouseButton};
use tether_shared::record::EventKind;
use tether_shared::session_proto::Permissions;
use tether_viewer::session::{ViewerError, ViewerSession};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_are_pixel_exact_and_input_arrives_in_order() {
    let relay = start_relay(|_| {});
    let mut host = start_host(&relay, Permissions { view: true, control: true, files: false });
    let code = host.next_code().await;
    let viewer = ViewerSession::connect(&viewer_config(&relay), &code).await.expect("viewer pairs");
    assert_eq!(viewer.granted(), Permissions { view: true, control: true, files: false });
    match record_kind(&host.next_event().await) {
        Some(EventKind::Connected { technician, .. }) => assert_eq!(technician, "Test Technician"),
        other => panic!("expected Connected, got {other:?}"),
    }
    assert_eq!(relay.handle.stats().sessions, 1);

    // Several consecutive frames, each exactly the test pattern of the capture it names.
    let mut last = None;
    let mut captures = Vec::new();
    for _ in 0..6 {
        let shown = tokio::time::timeout(Duration::from_secs(10), viewer.next_frame(last))
            .await
            .expect("frame")
            .expect("session");
        assert_eq!(*shown.frame, render(W, H, shown.info.capture_id), "capture {}", shown.info.capture_id);
        captures.push(shown.info.capture_id);
        last = Some(shown.info.seq);
    }
    assert!(captures.windows(2).all(|w| w[0] < w[1]), "fresh frames: {captures:?}");

    // 300 input events of every kind, in order.
    let mut sent = Vec::new();
    for i in 0..300i32 {
        sent.push(match i % 5 {
            0 => InputEvent::MouseMove { x: i, y: 2 * i },
            1 => InputEvent::MouseButton { button: MouseButton::Left, pressed: i % 2 == 0 },
            2 => InputEvent::Wheel { dx: 0, dy: -i },
            3 => InputEvent::Key { key: Key::Char('x'), pressed: true },
            _ => InputEvent::Text(format!("text {i} ünïcödé")),
        });
    }
    for event in &sent {
        viewer.send_input(event.clone()).await.expect("send");
    }
    viewer.close().await;
    let sink = host.sink.clone();
    let report = host.report().await.expect("session ran");
    assert_eq!(report.end, EndReason::ViewerLeft);
    assert_eq!(report.input_injected, sent.len() as u64);
    let got = sink.events();
    assert_eq!(&got[..sent.len()], &sent[..], "complete and in order");
    assert!(report.frames_sent >= 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_without_control_permission_is_dropped_and_counted() {
    let relay = start_relay(|_| {});
    let mut host = start_host(&relay, Permissions::VIEW_ONLY);
    let code = host.next_code().await;
    let viewer = ViewerSession::connect(&viewer_config(&relay), &code).await.expect("viewer pairs");
    assert_eq!(viewer.granted(), Permissions::VIEW_ONLY, "control was asked for but not granted");
    viewer.next_frame(None).await.expect("viewing works");
    for i in 0..10 {
        viewer.send_input(InputEvent::MouseMove { x: i, y: i }).await.expect("send");
    }
    viewer.close().await;
    let sink = host.sink.clone();
    let report = host.report().await.expect("session ran");
    assert_eq!((report.input_injected, report.input_dropped), (0, 10));
    assert!(sink.events().is_empty(), "nothing injected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_held_when_the_session_ends_are_released() {
    let relay = start_relay(|_| {});
    let mut host = start_host(&relay, Permissions::ALL);
    let code = host.next_code().await;
    let viewer = ViewerSession::connect(&viewer_config(&relay), &code).await.expect("viewer pairs");
    viewer.send_input(InputEvent::Key { key: Key::Control, pressed: true }).await.expect("send");
    viewer
        .send_input(InputEvent::MouseButton { button: MouseButton::Right, pressed: true })
        .await
        .expect("send");
    viewer.close().await;
    let sink = host.sink.clone();
    host.report().await.expect("session ran");
    assert!(sink.held().is_empty(), "still held: {:?}", sink.held());
    let events = sink.events();
    assert!(events.contains(&InputEvent::Key { key: Key::Control, pressed: false }), "{events:?}");
    assert!(
        events.contains(&InputEvent::MouseButton { button: MouseButton::Right, pressed: false }),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_user_can_stop_the_session() {
    let relay = start_relay(|_| {});
    let (host, viewer) = paired(&relay, Permissions::VIEW_ONLY).await;
    host.stop.cancel();
    let why =
        tokio::time::timeout(Duration::from_secs(5), viewer.closed()).await.expect("viewer notices at once");
    assert!(matches!(why, ViewerError::Ended(EndReason::HostStopped)), "{why:?}");
    assert!(why.to_string().contains("stopped sharing"), "{why}");
    assert_eq!(host.report().await.expect("report").end, EndReason::HostStopped);
}
