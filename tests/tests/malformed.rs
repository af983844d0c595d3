//! Malformed or oversized messages from a relay client or a session peer get an error and a closed
//! connection — never a panic — and everything else keeps working.

mod common;

use std::time::Duration;

use common::*;
use tether_host::session::SessionError;
use tether_host::HostError;
use tether_shared::code::Code;
use tether_shared::codec::{Tile, TileData};
use tether_shared::end::{EndReason, Side, Violation, CLOSE_PROTOCOL};
use tether_shared::net::pairing::connect_viewer;
use tether_shared::relay_proto::{ClientToRelay, RelayErrorKind, RelayToClient, Role};
use tether_shared::session_proto::{FrameUpdate, Hello, Permissions};
use tether_shared::tls;
use tether_shared::wire::{self, MAX_CONTROL_MSG, MAX_VIDEO_MSG};
use tether_shared::PROTOCOL_VERSION;
use tether_viewer::session::ViewerError;

/// A bare QUIC connection to the relay's control port, speaking whatever bytes the test writes.
async fn raw_relay_stream(relay: &TestRelay) -> (quinn::Connection, quinn::SendStream, quinn::RecvStream) {
    let conn = relay.raw_connection(tls::transport(Duration::from_secs(5), None)).await;
    let (send, recv) = conn.open_bi().await.expect("stream");
    (conn, send, recv)
}

/// The relay's next error, skipping pairing traffic forwarded from a peer.
async fn relay_says(recv: &mut quinn::RecvStream) -> RelayErrorKind {
    loop {
        match wire::read_msg::<_, RelayToClient>(recv, MAX_CONTROL_MSG).await {
            Ok(Some(RelayToClient::Error { kind })) => return kind,
            Ok(Some(RelayToClient::PeerPake { .. } | RelayToClient::PeerConfirm { .. })) => continue,
            other => panic!("expected an error from the relay, got {other:?}"),
        }
    }
}

async fn assert_closed(conn: &quinn::Connection) {
    tokio::time::timeout(Duration::from_secs(5), conn.closed())
        .await
        .expect("the relay closes the connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_relay_clients_are_cut_off_and_the_relay_keeps_working() {
    let relay = start_relay(|_| {});

    // An announced length far over the cap.
    let (conn, mut send, mut recv) = raw_relay_stream(&relay).await;
    send.write_all(&u32::MAX.to_le_bytes()).await.expect("write");
    match relay_says(&mut recv).await {
        RelayErrorKind::Protocol(why) => assert!(why.contains("exceeds"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_closed(&conn).await;

    // Garbage that does not decode.
    let (conn, mut send, mut recv) = raw_relay_stream(&relay).await;
    send.write_all(&[5, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff]).await.expect("write");
    assert!(matches!(relay_says(&mut recv).await, RelayErrorKind::Protocol(_)));
    assert_closed(&conn).await;

    // Another protocol version: the error names both.
    let (conn, mut send, mut recv) = raw_relay_stream(&relay).await;
    wire::write_msg(&mut send, &ClientToRelay::Hello { version: 99, role: Role::Viewer }, MAX_CONTROL_MSG)
        .await
        .expect("write");
    let kind = relay_says(&mut recv).await;
    assert_eq!(kind, RelayErrorKind::VersionMismatch { relay: PROTOCOL_VERSION, client: 99 });
    let text = kind.to_string();
    assert!(text.contains(&format!("version {PROTOCOL_VERSION}")) && text.contains("version 99"), "{text}");
    assert_closed(&conn).await;

    // A claim before hello.
    let (conn, mut send, mut recv) = raw_relay_stream(&relay).await;
    let claim = ClientToRelay::Claim {
        nameplate: tether_shared::code::Nameplate::new("123").expect("digits"),
        token: None,
    };
    wire::write_msg(&mut send, &claim, MAX_CONTROL_MSG).await.expect("write");
    assert!(matches!(relay_says(&mut recv).await, RelayErrorKind::Protocol(_)));
    assert_closed(&conn).await;

    // An oversized PAKE message from a host that is waiting for a viewer.
    let (conn, mut send, mut recv) = raw_relay_stream(&relay).await;
    wire::write_msg(
        &mut send,
        &ClientToRelay::Hello { version: PROTOCOL_VERSION, role: Role::Host },
        MAX_CONTROL_MSG,
    )
    .await
    .expect("write");
    wire::write_msg(&mut send, &ClientToRelay::Register, MAX_CONTROL_MSG).await.expect("write");
    let _welcome: Option<RelayToClient> = wire::read_msg(&mut recv, MAX_CONTROL_MSG).await.expect("welcome");
    let nameplate = match wire::read_msg(&mut recv, MAX_CONTROL_MSG).await.expect("registered") {
        Some(RelayToClient::Registered { nameplate, .. }) => nameplate,
        other => panic!("{other:?}"),
    };
    let viewer_relay = relay.spec();
    let claimer = tokio::spawn(async move {
        let code = Code::parse(&format!("{nameplate}1234567")).expect("code");
        connect_viewer(&viewer_relay, &code, fast_timeouts(), None).await.map(|_| ())
    });
    match wire::read_msg(&mut recv, MAX_CONTROL_MSG).await.expect("joined") {
        Some(RelayToClient::PeerJoined { .. }) => {}
        other => panic!("{other:?}"),
    }
    wire::write_msg(&mut send, &ClientToRelay::Pake { msg: vec![7; 10_000] }, MAX_CONTROL_MSG)
        .await
        .expect("write");
    assert!(matches!(relay_says(&mut recv).await, RelayErrorKind::Protocol(_)));
    assert_closed(&conn).await;
    let viewer_result =
        tokio::time::timeout(Duration::from_secs(10), claimer).await.expect("viewer ends").expect("no panic");
    assert!(viewer_result.is_err(), "the viewer learns the pairing is off");

    // After all that, a real session still pairs and streams.
    let (_host, _viewer) = paired(&relay, Permissions::VIEW_ONLY).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sending_garbage_is_disconnected_by_the_host() {
    let relay = start_relay(|_| {});
    for garbage in [vec![3u8, 0, 0, 0, 0xff, 0xff, 0xff], u32::MAX.to_le_bytes().to_vec()] {
        let mut host = start_host(&relay, Permissions::ALL);
        let code = host.next_code().await;
        let session = connect_viewer(&relay.spec(), &code, fast_timeouts(), None).await.expect("pairs");
        let (mut send, _recv) = session.conn.open_bi().await.expect("stream");
        let hello = Hello { version: PROTOCOL_VERSION, technician: "x".into(), want: Permissions::ALL };
        wire::write_msg(&mut send, &hello, MAX_CONTROL_MSG).await.expect("hello");
        send.write_all(&garbage).await.expect("write");
        match host.report().await.expect("host survives").end {
            EndReason::ProtocolViolation { by: Side::Viewer, detail: Violation::Malformed(_) } => {}
            other => panic!("expected a protocol error, got {other:?}"),
        }
        let reason =
            tokio::time::timeout(Duration::from_secs(5), session.conn.closed()).await.expect("closed");
        assert!(closed_for_protocol(&reason), "{reason}");
    }
}

/// A first message that is not a hello is the viewer breaking the protocol (not "no hello").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_whose_first_message_is_garbage_is_a_protocol_error() {
    let relay = start_relay(|_| {});
    let mut host = start_host(&relay, Permissions::ALL);
    let code = host.next_code().await;
    let session = connect_viewer(&relay.spec(), &code, fast_timeouts(), None).await.expect("pairs");
    let (mut send, _recv) = session.conn.open_bi().await.expect("stream");
    send.write_all(&[3u8, 0, 0, 0, 0xff, 0xff, 0xff]).await.expect("write");
    let report = host.report().await;
    assert!(matches!(report, Err(HostError::Session(SessionError::Protocol(_)))), "{report:?}");
    let reason = tokio::time::timeout(Duration::from_secs(5), session.conn.closed()).await.expect("closed");
    assert!(closed_for_protocol(&reason), "{reason}");
}

/// A welcome that does not decode is the host breaking the protocol (not the session ending).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_whose_welcome_is_garbage_is_a_protocol_error() {
    let relay = start_relay(|_| {});
    let HandHost { session, control: (mut ctl_send, _ctl_recv), viewer } =
        host_by_hand(&relay, viewer_config(&relay).want).await;
    ctl_send.write_all(&[3u8, 0, 0, 0, 0xff, 0xff, 0xff]).await.expect("write");
    let err = viewer.await.expect("no panic").expect_err("a garbage welcome opens nothing");
    assert!(matches!(&err, ViewerError::Protocol(_)), "{err}");
    let reason = tokio::time::timeout(Duration::from_secs(5), session.conn.closed()).await.expect("closed");
    assert!(closed_for_protocol(&reason), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_sending_hostile_frames_is_disconnected_by_the_viewer() {
    let relay = start_relay(|_| {});
    let hostile = [
        FrameUpdate { seq: 0, capture_id: 0, width: 100_000, height: 100_000, tiles: vec![], last: true },
        FrameUpdate {
            seq: 0,
            capture_id: 0,
            width: 64,
            height: 64,
            tiles: vec![Tile { x: 60, y: 60, w: 64, h: 64, data: TileData::Solid([0; 4]) }],
            last: true,
        },
        FrameUpdate {
            seq: 0,
            capture_id: 0,
            width: 64,
            height: 64,
            tiles: vec![Tile { x: 0, y: 0, w: 64, h: 64, data: TileData::Zstd(vec![1, 2, 3, 4]) }],
            last: true,
        },
    ];
    for update in hostile {
        let mut host = host_by_hand(&relay, viewer_config(&relay).want).await;
        let viewer = host.welcome(Permissions::VIEW_ONLY).await;
        let session = host.session;
        let mut video = session.conn.open_uni().await.expect("video stream");
        wire::write_msg(&mut video, &update, MAX_VIDEO_MSG).await.expect("send");
        let err = tokio::time::timeout(Duration::from_secs(5), viewer.next_frame(None))
            .await
            .expect("the viewer reacts")
            .expect_err("a hostile update shows nothing");
        assert!(
            matches!(&err, ViewerError::Ended(EndReason::ProtocolViolation { by: Side::Host, .. })),
            "{err:?}"
        );
        let reason =
            tokio::time::timeout(Duration::from_secs(5), session.conn.closed()).await.expect("closed");
        assert!(closed_for_protocol(&reason), "{reason}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_says_hello_is_dropped_at_the_handshake_deadline() {
    let relay = start_relay(|cfg| cfg.handshake_timeout = Duration::from_secs(1));
    let (conn, _send, _recv) = raw_relay_stream(&relay).await;
    assert_closed(&conn).await;
    let reason = conn.close_reason().expect("closed").to_string();
    assert!(reason.contains("handshake timeout"), "{reason}");
    let freed = || relay.handle.stats().connections == 0;
    eventually(freed, Later(|| format!("relay still holds {:?}", relay.handle.stats()))).await;
}

/// The peer closed the connection with our protocol-error code.
fn closed_for_protocol(reason: &quinn::ConnectionError) -> bool {
    matches!(reason, quinn::ConnectionError::ApplicationClosed(close) if close.error_code == CLOSE_PROTOCOL.into())
}
