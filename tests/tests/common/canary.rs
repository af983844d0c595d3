//! A screen and a tap for proving the relay blind: a canary written into the screen's pixels (noise
//! around it, so its tile goes raw and its bytes cross as they are) and a [`Tap`] that keeps every byte
//! the relay forwards, to search for the canary afterwards.

use std::sync::Mutex;

use tether_host::capture::{CaptureError, Captured, Capturer};
use tether_relay::Tap;
use tether_shared::frame::Frame;
use tether_shared::relay_proto::Role;

use super::{H, W};

pub const CANARY: &[u8; 24] = b"TETHER*CANARY*5EB1C0DE**";

#[derive(Default)]
pub struct Recorder {
    pub forwarded: Mutex<Vec<u8>>,
    pub pake: Mutex<Vec<u8>>,
}

impl Tap for Recorder {
    fn forwarded(&self, _from: Role, inner: &mut [u8]) {
        self.forwarded.lock().expect("lock").extend_from_slice(inner);
    }
    fn pake(&self, _from: Role, msg: &mut Vec<u8>) {
        self.pake.lock().expect("lock").extend_from_slice(msg);
    }
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Noise (so tiles are sent raw, bytes as they are) with the canary written into row 10 as BGR pixels.
pub fn canary_screen() -> Frame {
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

pub struct CanaryCapturer;

impl Capturer for CanaryCapturer {
    fn capture(&mut self) -> Result<Captured, CaptureError> {
        Ok(Captured { id: 0, frame: std::sync::Arc::new(canary_screen()) })
    }
}
