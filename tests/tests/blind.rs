//! The relay is blind: a tap on its forwarding path records every byte it forwards, and a canary sent in
//! the screen and in typed input never shows up there — although both demonstrably crossed the relay.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use tether_host::capture::{CaptureError, Captured, Capturer};
use tether_relay::Tap;
use tether_shared::codec::{encode_tile, Quality, TileData};
use tether_shared::frame::Frame;
use tether_shared::input::InputEvent;
use tether_shared::relay_proto::Role;
use tether_shared::session_proto::Permissions;
use tether_viewer::session::ViewerSession;

const CANARY: &[u8; 24] = b"TETHER*CANARY*5EB1C0DE**";

#[derive(Default)]
struct Recorder {
    forwarded: Mutex<Vec<u8>>,
    pake: Mutex<Vec<u8>>,
}

impl Tap for Recorder {
    fn forwarded(&self, _from: Role, inner: &mut [u8]) {
        self.forwarded.lock().expect("lock").extend_from_slice(inner);
    }
    fn pake(&self, _from: Role, msg: &mut Vec<u8>) {
        self.pake.lock().expect("lock").extend_from_slice(msg);
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Noise (so tiles are sent raw, bytes as they are) with the canary written into row 10 as BGR pixels.
fn canary_screen() -> Frame {
    let mut px = Vec::with_capacity((W * H * 4) as usize);
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..W * H {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let b = state.to_le_bytes();
        px.extend_from_slice(&[b[0], b[1], b[2], 0]);
    }
    let row = 10 * W as usize * 4;
    for (i, rgb) in CANARY.chunks_exact(3).enumerate() {
        px[row + i * 4..row + i * 4 + 3].copy_from_slice(rgb);
    }
    Frame::from_bgrx(W, H, px).expect("size")
}

struct CanaryCapturer;

impl Capturer for CanaryCapturer {
    fn capture(&mut self) -> Result<Captured, CaptureError> {
        Ok(Captured { id: 0, frame: canary_screen() })
    }
}

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
    let relay = start_relay(|cfg| cfg.tap = Some(tap_dyn));
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
