//! The relay is blind: a tap on its forwarding path records every byte it forwards, and a canary sent in
//! the screen and in typed input never shows up there — although both demonstrably crossed the relay.

mod common;

use std::sync::Arc;

use common::canary::{canary_screen, contains, CanaryCapturer, Recorder, CANARY};
use common::*;
use tether_host::capture::Capturer;
use tether_relay::Tap;
use tether_shared::codec::{encode_tile, Quality, TileData};
use tether_shared::input::InputEvent;
use tether_shared::session_proto::Permissions;
use tether_viewer::session::ViewerSession;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_in_frames_and_input_never_appears_on_the_relay() {
    // The canary really is in the plaintext of a screen update: the tile holding it is sent raw.
    let screen = canary_screen();
    let mut tile_px = Vec::new();
    screen.copy_rect(0, 0, 64, 64, &mut tile_px);
    match encode_tile(0, 0, 64, 64, &tile_px, Quality::Lossless).data {
        TileData::Raw(bytes) => assert!(contains(&bytes, CANARY), "plaintext carries the canary"),
        other => panic!("noise tile should be raw, got {other:?}"),
    }

    let tap = Arc::new(Recorder::default());
    let tap_dyn: Arc<dyn Tap> = tap.clone();
    let relay = start_relay(|cfg| {
        cfg.tap = Some(tap_dyn);
        cfg.workers = 2; // forwarding on two sockets sharing the port
    });
    let mut host = start_host_with(host_config(&relay, Permissions::ALL), || {
        Ok(Box::new(CanaryCapturer) as Box<dyn Capturer>)
    });
    let code = host.next_code().await;
    let viewer = ViewerSession::connect(&viewer_config(&relay), &code).await.expect("pairs");
    let shown = viewer.next_frame(None).await.expect("frame");
    assert_eq!(*shown.frame, screen, "the canary screen arrived");
    let typed = format!("password: {}", String::from_utf8_lossy(CANARY));
    viewer.send_input(InputEvent::Text(typed.clone())).await.expect("send");
    viewer.close().await;
    let sink = host.sink.clone();
    host.report().await.expect("session ran");
    assert!(sink.events().contains(&InputEvent::Text(typed)), "the canary input arrived");

    let forwarded = tap.forwarded.lock().expect("lock").clone();
    assert!(forwarded.len() >= (W * H * 3) as usize, "the frame crossed the tap ({} bytes)", forwarded.len());
    assert!(!contains(&forwarded, CANARY), "canary visible on the relay's forwarding path");
    assert!(!contains(&forwarded, b"password:"), "typed text visible on the relay");
    let pake = tap.pake.lock().expect("lock").clone();
    assert!(!pake.is_empty() && !contains(&pake, CANARY));
}
