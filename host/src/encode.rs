//! Damage-tracking encoder: compares each capture with the last image sent, tile by tile, and encodes only
//! the tiles that changed (all of them for the first frame or after a resize). The tiles of one update are
//! split into parts that fit a video message.

use tether_shared::codec::{encode_tile, Tile, TILE};
use tether_shared::frame::Frame;

/// Payload bytes per message part, well under [`tether_shared::wire::MAX_VIDEO_MSG`].
const PART_BUDGET: usize = 4 * 1024 * 1024;

#[derive(Debug, Default)]
pub struct DamageEncoder {
    /// What the viewer has (once the last update is applied).
    sent: Option<Frame>,
    scratch: Vec<u8>,
}

impl DamageEncoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forget what the viewer has (a new viewer, or a lost update): the next update is a full frame.
    pub fn reset(&mut self) {
        self.sent = None;
    }

    /// Encode what changed since the last call, grouped into message parts. Empty if nothing changed.
    pub fn encode(&mut self, frame: &Frame) -> Vec<Vec<Tile>> {
        let full = self
            .sent
            .as_ref()
            .is_none_or(|prev| prev.width() != frame.width() || prev.height() != frame.height());
        let mut parts = Vec::new();
        let mut part = Vec::new();
        let mut budget = 0;
        for y in (0..frame.height()).step_by(TILE as usize) {
            for x in (0..frame.width()).step_by(TILE as usize) {
                let w = TILE.min(frame.width() - x);
                let h = TILE.min(frame.height() - y);
                let unchanged =
                    !full && self.sent.as_ref().is_some_and(|prev| prev.rect_eq(frame, x, y, w, h));
                if unchanged {
                    continue;
                }
                frame.copy_rect(x, y, w, h, &mut self.scratch);
                let tile = encode_tile(x, y, w, h, &self.scratch);
                budget += tile.payload_len() + 32;
                part.push(tile);
                if budget >= PART_BUDGET {
                    parts.push(std::mem::take(&mut part));
                    budget = 0;
                }
            }
        }
        if !part.is_empty() {
            parts.push(part);
        }
        self.sent = Some(frame.clone());
        parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::test_pattern::render;
    use tether_shared::codec::apply_tile;

    #[test]
    fn only_changed_tiles_are_sent_and_the_result_matches() {
        let mut enc = DamageEncoder::new();
        let mut viewer = Frame::new(640, 480).expect("size");
        let mut scratch = Vec::new();
        let mut counts = Vec::new();
        for n in 0..5 {
            let frame = render(640, 480, n);
            let parts = enc.encode(&frame);
            counts.push(parts.iter().map(Vec::len).sum::<usize>());
            for tile in parts.iter().flatten() {
                apply_tile(tile, &mut viewer, &mut scratch).expect("apply");
            }
            assert_eq!(viewer, frame, "frame {n}");
        }
        assert_eq!(counts[0], 10 * 8, "first update is every tile");
        assert!(counts[1..].iter().all(|&c| c > 0 && c < 10), "later updates are a few tiles: {counts:?}");
        assert!(enc.encode(&render(640, 480, 4)).is_empty(), "no change, no update");
    }
}
