//! Which changed tiles are in motion (a video, an animation: changing at capture after capture) and
//! which changed once (a key press, a click, a menu). When an update is held to a budget the quiet ones
//! go first, so typing beside a playing video shows at once and the video takes what is left; without a
//! budget the order does not matter, since everything goes.
//!
//! Each damaged tile (one that differs from what the viewer has) gets a *heat*: +2 when its pixels
//! changed since the last capture, −1 when they did not (it only waits to be sent), 0 once the viewer
//! has it. A tile is busy from [`BUSY`] on: two changes in a row, or a video drawn at half the capture
//! rate (+2, −1, +2…). Tiles are compared by a hash of their pixels, so the last capture is not kept.

use tether_shared::frame::Frame;

use super::Rect;
use tether_shared::codec::TILE;

/// Heat from which a tile is in motion.
const BUSY: u8 = 3;
/// The most heat a tile keeps: a video that stops cools down within a few captures.
const MAX_HEAT: u8 = 6;

#[derive(Debug, Default)]
pub struct Motion {
    /// Tiles per row of the grid the vectors are for (0: none yet).
    cols: usize,
    /// The hash of each tile's pixels at the last capture, if it was damaged then.
    last: Vec<Option<u64>>,
    heat: Vec<u8>,
    /// Whether each tile's pixels changed at the last capture.
    changed: Vec<bool>,
}

impl Motion {
    /// Forget everything (a new picture).
    pub fn reset(&mut self) {
        self.cols = 0;
        self.last.clear();
        self.heat.clear();
        self.changed.clear();
    }

    /// Note a capture and its damaged tiles (grid tiles of `frame`); `scratch` is working memory.
    pub fn observe(&mut self, frame: &Frame, damaged: &[Rect], scratch: &mut Vec<u8>) {
        let cols = frame.width().div_ceil(TILE) as usize;
        let tiles = cols * frame.height().div_ceil(TILE) as usize;
        if cols != self.cols || self.heat.len() != tiles {
            self.cols = cols;
            self.last = vec![None; tiles];
            self.heat = vec![0; tiles];
        }
        self.changed.clear();
        self.changed.resize(tiles, false);
        let mut was_damaged = vec![false; tiles];
        for &(x, y, w, h) in damaged {
            let i = self.index((x, y, w, h));
            was_damaged[i] = true;
            frame.copy_rect(x, y, w, h, scratch);
            let hash =
                u64::from_le_bytes(blake3::hash(scratch).as_bytes()[..8].try_into().unwrap_or_default());
            let changed = self.last[i] != Some(hash);
            self.changed[i] = changed;
            self.heat[i] =
                if changed { (self.heat[i] + 2).min(MAX_HEAT) } else { self.heat[i].saturating_sub(1) };
            self.last[i] = Some(hash);
        }
        for (i, damaged) in was_damaged.into_iter().enumerate() {
            if !damaged {
                self.last[i] = None;
                self.heat[i] = 0;
            }
        }
    }

    /// Is grid tile `tile` in motion and did its pixels change at the last capture observed?
    pub fn is_moving(&self, tile: Rect) -> bool {
        let i = self.index(tile);
        self.is_busy(tile) && self.changed.get(i).copied().unwrap_or(false)
    }

    /// Is grid tile `tile` in motion?
    pub fn is_busy(&self, tile: Rect) -> bool {
        self.heat.get(self.index(tile)).is_some_and(|&h| h >= BUSY)
    }

    fn index(&self, (x, y, _, _): Rect) -> usize {
        (y / TILE) as usize * self.cols + (x / TILE) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_with(pixel: u8) -> Frame {
        let mut f = Frame::new(256, 128).expect("size");
        f.bgrx_mut().fill(pixel);
        f
    }

    #[test]
    fn a_tile_changing_at_every_capture_is_busy_and_one_changed_once_is_not() {
        let mut m = Motion::default();
        let mut scratch = Vec::new();
        let (video, key) = ((0, 0, 64, 64), (128, 64, 64, 64));
        // The key's tile changes once and then waits (unsent) while the video changes at every capture.
        for n in 0..4u8 {
            let f = frame_with(n);
            m.observe(&f, &[video, key], &mut scratch);
        }
        assert!(m.is_busy(video));
        // The key's tile was "changed" by the fill too; a tile that stops changing cools down.
        let still = frame_with(9);
        m.observe(&still, &[video, key], &mut scratch);
        for _ in 0..4 {
            m.observe(&still, &[video, key], &mut scratch);
        }
        assert!(!m.is_busy(video) && !m.is_busy(key));
        // Once the viewer has it, a tile starts cold: one change is not motion.
        m.observe(&still, &[], &mut scratch);
        m.observe(&frame_with(1), &[key], &mut scratch);
        assert!(!m.is_busy(key));
    }

    #[test]
    fn a_video_at_half_the_capture_rate_is_busy() {
        let mut m = Motion::default();
        let mut scratch = Vec::new();
        let tile = (64, 0, 64, 64);
        for n in 0..8u8 {
            m.observe(&frame_with(n / 2), &[tile], &mut scratch);
        }
        assert!(m.is_busy(tile));
    }
}
