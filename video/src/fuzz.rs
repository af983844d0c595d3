//! The fuzz entry point for video tiles: the viewer's whole tile path, with the stream state that a
//! single message cannot reach. `fuzz/fuzz_targets/video_updates.rs` calls it; the saved corpus is
//! replayed by `tests/tests/fuzz_corpus.rs` in every test run. Never panics, whatever the bytes.

use tether_shared::frame::Frame;
use tether_shared::session_proto::FrameUpdate;
use tether_shared::wire;

use crate::VideoTiles;

/// The decoders of this crate, by the name of their fuzz target (as `tether_shared::fuzz::TARGETS`).
pub const TARGETS: &[(&str, tether_shared::fuzz::Target)] = &[("video_updates", video_updates)];

/// Split `data` into messages (each a little-endian `u16` length, then a `FrameUpdate` body as on the
/// wire) and apply every tile of every update that decodes to one 256×256 screen, in order.
pub fn video_updates(data: &[u8]) {
    let Ok(mut frame) = Frame::new(256, 256) else { return };
    let (mut tiles, mut scratch) = (VideoTiles::default(), Vec::new());
    let mut rest = data;
    while let [a, b, tail @ ..] = rest {
        let len = usize::from(u16::from_le_bytes([*a, *b])).min(tail.len());
        let (body, next) = tail.split_at(len);
        rest = next;
        if let Ok(update) = wire::decode::<FrameUpdate>(body) {
            for tile in &update.tiles {
                let _ = tiles.apply(tile, &mut frame, &mut scratch);
            }
        }
    }
}

/// Frame `updates` as [`video_updates`] reads them (for seeds).
pub fn frame_messages(bodies: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for body in bodies {
        let len = u16::try_from(body.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&body[..usize::from(len)]);
    }
    out
}
