//! The host's screen encoder: which parts of the screen to send, and how.
//!
//! Each capture is compared with what the viewer has (the last image sent), tile by tile. When many tiles
//! changed, [`scroll`] looks for a band that moved vertically; if found, the update starts with one copy
//! instruction and the tiles are compared again against the reference with that copy applied — so only the
//! newly exposed strip is sent. The remaining changed tiles are encoded by [`tether_shared::codec`]
//! (lossless for text and UI; JPEG for photographic tiles when the quality setting allows), and the
//! lossless ones of each message part go as one bundle sharing a single zstd stream
//! ([`tether_shared::codec::packed`]): per-tile streams cost a frame header each and find no repetition
//! across tiles.
//!
//! The result is always exact for lossless tiles: a wrong scroll guess costs bytes, never correctness,
//! because tiles are re-diffed against the reference the viewer will really have.

pub mod scroll;

use tether_shared::codec::{copy_tile, copy_within, PartEncoder, Quality, Tile, TILE};
use tether_shared::frame::Frame;

/// Payload bytes per message part before compression. Compressed it stays well under
/// [`tether_shared::wire::MAX_VIDEO_MSG`] (zstd never grows data by more than a fraction of a percent),
/// and the bundle well under [`tether_shared::codec::MAX_BUNDLE_BYTES`].
const PART_BUDGET: usize = 8 * 1024 * 1024;
/// Damaged tiles from which scroll detection is worth its cost.
const SCROLL_MIN_TILES: usize = 6;

#[derive(Debug)]
pub struct DamageEncoder {
    /// What the viewer has (once the last update is applied).
    sent: Option<Frame>,
    quality: Quality,
    scratch: Vec<u8>,
}

impl Default for DamageEncoder {
    fn default() -> Self {
        Self::new()
    }
}

/// A rectangle on the screen.
type Rect = (u32, u32, u32, u32);

impl DamageEncoder {
    /// A lossless encoder.
    pub fn new() -> Self {
        Self::with_quality(Quality::Lossless)
    }

    pub fn with_quality(quality: Quality) -> Self {
        Self { sent: None, quality, scratch: Vec::new() }
    }

    pub fn set_quality(&mut self, quality: Quality) {
        self.quality = quality;
    }

    /// Forget what the viewer has (a new viewer, or a lost update): the next update is a full frame.
    pub fn reset(&mut self) {
        self.sent = None;
    }

    /// Encode what changed since the last call, grouped into message parts. Empty if nothing changed.
    pub fn encode(&mut self, frame: &Frame) -> Vec<Vec<Tile>> {
        let mut part = PartEncoder::new(self.quality);
        let damaged = match self.sent.as_mut() {
            Some(prev) if prev.width() == frame.width() && prev.height() == frame.height() => {
                let mut damaged = damaged_tiles(prev, frame, full_rect(frame));
                if damaged.len() >= SCROLL_MIN_TILES {
                    let bbox = bounding_box(&damaged);
                    if let Some(s) =
                        scroll::detect(prev, frame, (bbox.0, bbox.0 + bbox.2), (bbox.1, bbox.1 + bbox.3))
                    {
                        copy_within(prev, (s.x, s.src_y), (s.x, s.dst_y), (s.w, s.h));
                        part.push_tile(copy_tile(s.x, s.dst_y, s.w, s.h, s.x, s.src_y));
                        damaged = damaged_tiles(prev, frame, bbox);
                    }
                }
                // Send only the part of each tile that differs: a typed glyph or an exposed text line is
                // a strip, not a whole 64-pixel tile.
                damaged.into_iter().map(|t| changed_part(prev, frame, t)).collect()
            }
            _ => all_tiles(frame),
        };
        if damaged.is_empty() && part.is_empty() {
            return Vec::new();
        }
        let mut parts = Vec::new();
        for (x, y, w, h) in damaged {
            frame.copy_rect(x, y, w, h, &mut self.scratch);
            part.push(x, y, w, h, &self.scratch);
            if part.pending_bytes() >= PART_BUDGET {
                parts.push(part.finish());
            }
        }
        if !part.is_empty() {
            parts.push(part.finish());
        }
        self.sent = Some(frame.clone());
        parts
    }
}

fn full_rect(frame: &Frame) -> Rect {
    (0, 0, frame.width(), frame.height())
}

/// The tile grid clipped to the frame.
fn grid(frame: &Frame, (x0, y0, w, h): Rect) -> impl Iterator<Item = Rect> + '_ {
    let (fw, fh) = (frame.width(), frame.height());
    (y0..y0 + h).step_by(TILE as usize).flat_map(move |y| {
        (x0..x0 + w).step_by(TILE as usize).map(move |x| (x, y, TILE.min(fw - x), TILE.min(fh - y)))
    })
}

fn all_tiles(frame: &Frame) -> Vec<Rect> {
    grid(frame, full_rect(frame)).collect()
}

/// Tiles inside `area` (tile-aligned) whose pixels differ.
fn damaged_tiles(prev: &Frame, cur: &Frame, area: Rect) -> Vec<Rect> {
    grid(cur, area).filter(|&(x, y, w, h)| !prev.rect_eq(cur, x, y, w, h)).collect()
}

/// The smallest rectangle inside tile `t` holding every pixel that differs between `prev` and `cur`.
fn changed_part(prev: &Frame, cur: &Frame, (x, y, w, h): Rect) -> Rect {
    let rows: Vec<u32> = (y..y + h).filter(|&r| !prev.rect_eq(cur, x, r, w, 1)).collect();
    let (Some(&top), Some(&bottom)) = (rows.first(), rows.last()) else { return (x, y, w, h) };
    let stride = cur.width() as usize * 4;
    let column_differs = |c: u32| {
        (top..=bottom).any(|r| {
            let i = r as usize * stride + c as usize * 4;
            prev.bgrx()[i..i + 3] != cur.bgrx()[i..i + 3]
        })
    };
    let left = (x..x + w).find(|&c| column_differs(c)).unwrap_or(x);
    let right = (x..x + w).rev().find(|&c| column_differs(c)).unwrap_or(x + w - 1);
    (left, top, right - left + 1, bottom - top + 1)
}

fn bounding_box(tiles: &[Rect]) -> Rect {
    let x0 = tiles.iter().map(|t| t.0).min().unwrap_or(0);
    let y0 = tiles.iter().map(|t| t.1).min().unwrap_or(0);
    let x1 = tiles.iter().map(|t| t.0 + t.2).max().unwrap_or(0);
    let y1 = tiles.iter().map(|t| t.1 + t.3).max().unwrap_or(0);
    (x0, y0, x1 - x0, y1 - y0)
}

#[cfg(test)]
mod tests;
