//! The video path: a screen region that keeps changing with photographic content (a playing video, an
//! animation, a moving photo) goes through a real video encoder (VP9, [`tether_video::vp9`]) as its own
//! stream, while everything around it stays exact tiles.
//!
//! A small state machine driven by the encoder's clock (`now`), with hysteresis both ways:
//! - **Enter**: changed tiles that are in motion ([`super::motion`]) *and* photographic (too many
//!   colours for a palette) make a candidate: the tight box of their changed pixels. When a candidate of
//!   at least [`MIN_AREA`] holds its place for [`ENTER_UPDATES`] updates in a row, it becomes the region
//!   (rounded out to even coordinates, as 4:2:0 video needs). While it builds, its tiles are held back
//!   rather than sent as a few frames of JPEG.
//! - **Stay**: the region's pixels go as VP9 frames whenever they changed; the tile path clips every
//!   rectangle to what lies outside the region and never copies from or into it.
//! - **Leave**: when the region has not changed for [`LEAVE_AFTER`] (or the technician chose lossless,
//!   or the line became too slow for it: [`MIN_KBPS_PER_MEGAPIXEL`]), its grid tiles become owed: the next update sends them whole as tiles (exact, or JPEG at the
//!   quality setting), so a video that stops is refined within a second.
//!
//! The bitrate follows the quality setting (kbit/s per megapixel of region) and, once the line's
//! bandwidth is measured, at most a share of it ([`VideoRate`]).

use std::time::Duration;

use tether_shared::codec::{is_photographic, Tile, TileData, TILE};
use tether_shared::frame::Frame;
use tether_video::vp9;

use super::motion::Motion;
use super::Rect;

/// Updates in a row a candidate must hold its place before it becomes the video region.
const ENTER_UPDATES: u8 = 6;
/// Photographic motion (the box of its changed pixels) smaller than this stays on tiles: a spinner or a
/// small animation is cheap enough as JPEG and not worth a keyframe.
const MIN_AREA: u32 = 4 * TILE * TILE;
/// The least kbit/s per megapixel of region worth a video stream. Below it (a 960×540 video on a line
/// under ~2.6 Mbit/s, given [`tether_shared::link::VIDEO_SHARE`]) a grainy picture cannot be encoded
/// into frames small enough for the line even at libvpx's highest quantizer (measured on the 2 Mbit/s
/// emulated line: frames of 15–27 KB at p90–max, 60–80 ms of the line each, screen p95 150–220 ms), and
/// JPEG tiles held to the link's budget do better (p95 72 ms there), so the region stays on tiles.
const MIN_KBPS_PER_MEGAPIXEL: u64 = 3000;
/// A region unchanged this long is left and refined.
pub const LEAVE_AFTER: Duration = Duration::from_millis(300);

/// What the video path may spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoRate {
    /// kbit/s per megapixel of region (from the quality setting).
    pub kbps_per_megapixel: u32,
    /// At most this many kbit/s (a share of the line's measured bandwidth), if known.
    pub cap_kbps: Option<u32>,
}

impl VideoRate {
    /// The rate for a JPEG quality setting: 100 kbit/s per megapixel per quality point (quality 80:
    /// 8 Mbit/s for a full megapixel, about 4 Mbit/s for a 960×540 video).
    pub fn for_quality(jpeg_quality: u8, cap_kbps: Option<u32>) -> Self {
        Self { kbps_per_megapixel: u32::from(jpeg_quality.clamp(1, 100)) * 100, cap_kbps }
    }

    /// Whether the line carries a stream for region `r` (see [`MIN_KBPS_PER_MEGAPIXEL`]); without a
    /// measured line, yes.
    fn sustains(&self, (_, _, w, h): Rect) -> bool {
        let area = (u64::from(w) * u64::from(h)).max(1);
        self.cap_kbps.is_none_or(|cap| u64::from(cap) * 1_000_000 / area >= MIN_KBPS_PER_MEGAPIXEL)
    }

    fn kbps(&self, (_, _, w, h): Rect) -> u32 {
        let area = u64::from(w) * u64::from(h);
        let by_quality = u64::from(self.kbps_per_megapixel) * area / 1_000_000;
        let kbps = u32::try_from(by_quality).unwrap_or(u32::MAX).max(100);
        self.cap_kbps.map_or(kbps, |cap| kbps.min(cap.max(100)))
    }
}

#[derive(Debug, Default)]
pub(super) struct VideoPath {
    rate: Option<VideoRate>,
    candidate: Option<(Rect, u8)>,
    region: Option<Region>,
    next_stream: u32,
    /// The region's pixels taken for the next video frame, and their time.
    pending: Option<(Vec<u8>, Duration)>,
}

#[derive(Debug)]
struct Region {
    rect: Rect,
    stream: u32,
    encoder: vp9::Encoder,
    /// When its pixels last changed (the encoder's clock).
    changed_at: Duration,
    /// The stream's next frame must be a keyframe (none went yet).
    keyframe_due: bool,
}

impl VideoPath {
    pub(super) fn set_rate(&mut self, rate: Option<VideoRate>) {
        self.rate = rate;
    }

    /// The current region, if any.
    pub(super) fn region(&self) -> Option<Rect> {
        self.region.as_ref().map(|r| r.rect)
    }

    /// When an update should run even if nothing is drawn: the instant the region may be left.
    pub(super) fn poll_at(&self) -> Option<Duration> {
        self.region.as_ref().map(|r| r.changed_at + LEAVE_AFTER)
    }

    /// Whether a region exists and has a frame to send: its pixels changed, or its stream has not started.
    pub(super) fn frame_due(&self, changed: bool) -> bool {
        self.region.as_ref().is_some_and(|r| changed || r.keyframe_due)
    }

    /// Forget the region and any candidate (a new picture: the viewer's decoder restarts too).
    pub(super) fn reset(&mut self) {
        self.region = None;
        self.candidate = None;
        self.pending = None;
    }

    /// Note whether the region's pixels changed; returns the region's rectangle if it is left now
    /// (its tiles become owed).
    pub(super) fn handle_region(&mut self, changed: bool, now: Duration) -> Option<Rect> {
        let region = self.region.as_mut()?;
        if changed {
            region.changed_at = now;
        }
        let idle = now.saturating_sub(region.changed_at) >= LEAVE_AFTER;
        let starved = self.rate.is_none_or(|rate| !rate.sustains(region.rect));
        if idle || starved {
            self.candidate = None;
            return self.region.take().map(|r| r.rect);
        }
        None
    }

    /// Look at the damaged tiles (those not wholly inside the region) for photographic motion: their
    /// changed pixels outside the region make a candidate; once it has held its place for
    /// [`ENTER_UPDATES`] updates it becomes the region, or widens the current one (a new stream).
    /// `changed_part` gives the changed pixels of a tile.
    ///
    /// Returns the tiles of a candidate that is building: their pixels are about to go as video, so
    /// the caller holds them back rather than send a few frames of a video as JPEG tiles.
    pub(super) fn consider(
        &mut self,
        frame: &Frame,
        damaged: &[Rect],
        motion: &Motion,
        now: Duration,
        scratch: &mut Vec<u8>,
        changed_part: impl Fn(Rect) -> Rect,
    ) -> Vec<Rect> {
        let Some(rate) = self.rate else { return Vec::new() };
        let region = self.region();
        let mut hot: Option<Rect> = None;
        let mut hot_tiles = Vec::new();
        // Busy tiles with few colours: a video's edge shares its tile with a window frame.
        let mut edges = Vec::new();
        for &tile in damaged {
            if !motion.is_moving(tile) {
                continue;
            }
            let (x, y, w, h) = tile;
            frame.copy_rect(x, y, w, h, scratch);
            if !is_photographic(scratch) {
                edges.push(tile);
                continue;
            }
            for piece in clip(changed_part(tile), region) {
                hot = Some(hot.map_or(piece, |b| union(b, piece)));
            }
            hot_tiles.push(tile);
        }
        // Changed pixels of those that touch the photographic motion (or the region) belong to it.
        if let Some(box_) = hot.or(region) {
            let near = grow(box_, 2);
            for tile in edges {
                for piece in clip(changed_part(tile), region) {
                    if intersect(piece, near).is_some() {
                        hot = Some(hot.map_or(piece, |b| union(b, piece)));
                        hot_tiles.push(tile);
                    }
                }
            }
            hot_tiles.sort_by_key(|t| (t.1, t.0));
            hot_tiles.dedup();
        }
        let Some(hot) = hot.filter(|&r| area(r) >= u64::from(MIN_AREA)) else {
            self.candidate = None;
            return Vec::new();
        };
        let (rect, seen) = match self.candidate {
            Some((prev, seen)) if mostly_overlap(prev, hot) => (union(prev, hot), seen + 1),
            _ => (hot, 1),
        };
        if seen < ENTER_UPDATES {
            self.candidate = Some((rect, seen));
            // (The first sighting may be a one-off burst: only a candidate seen twice holds tiles.)
            return if seen >= 2 { hot_tiles } else { Vec::new() };
        }
        self.candidate = None;
        let rect = even(region.map_or(rect, |current| union(current, rect)), frame);
        if rect.2 < 16 || rect.3 < 16 || !rate.sustains(rect) {
            return Vec::new();
        }
        match vp9::Encoder::new(rect.2, rect.3, rate.kbps(rect)) {
            Ok(encoder) => {
                let stream = self.next_stream;
                self.next_stream = self.next_stream.wrapping_add(1);
                tracing::debug!(?rect, stream, kbps = encoder.bitrate(), "video region starts");
                self.region = Some(Region { rect, stream, encoder, changed_at: now, keyframe_due: true });
            }
            Err(e) => tracing::warn!("the video encoder did not start ({e}); the region stays on tiles"),
        }
        Vec::new()
    }

    /// Take the region's pixels of `frame` for its next video frame, if it has a region and they changed
    /// or no frame went yet; [`Self::encode_pending`] encodes them. Returns whether it took them.
    pub(super) fn capture(&mut self, frame: &Frame, changed: bool, now: Duration) -> bool {
        if !self.frame_due(changed) {
            return false;
        }
        let Some((x, y, w, h)) = self.region() else { return false };
        let mut pixels = self.pending.take().map(|(p, _)| p).unwrap_or_default();
        frame.copy_rect(x, y, w, h, &mut pixels);
        self.pending = Some((pixels, now));
        true
    }

    /// Forget the pixels taken for the next frame.
    pub(super) fn drop_pending(&mut self) {
        self.pending = None;
    }

    /// Whether pixels wait for [`Self::encode_pending`].
    pub(super) fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Encode the pixels [`Self::capture`] took as a `Video` tile.
    pub(super) fn encode_pending(&mut self) -> Option<Tile> {
        let (pixels, now) = self.pending.take()?;
        let rate = self.rate?;
        let region = self.region.as_mut()?;
        let (x, y, w, h) = region.rect;
        if pixels.len() != w as usize * h as usize * 4 {
            return None; // (the region changed since: its new stream starts at its next capture)
        }
        if let Err(e) = region.encoder.set_bitrate(rate.kbps(region.rect)) {
            tracing::debug!("video bitrate unchanged: {e}");
        }
        let ms = i64::try_from(now.as_millis()).unwrap_or(i64::MAX);
        let started = std::time::Instant::now();
        let encoded = region.encoder.encode(&pixels, ms, region.keyframe_due);
        tracing::trace!(took = ?started.elapsed(), bytes = encoded.as_ref().map_or(0, Vec::len), "video frame");
        match encoded {
            Ok(data) if !data.is_empty() => {
                region.keyframe_due = false;
                Some(Tile { x, y, w, h, data: TileData::Video { stream: region.stream, frame: data } })
            }
            Ok(_) => None,
            Err(e) => {
                // The region goes back to tiles: leaving it makes its tiles owed.
                tracing::warn!("video encode failed ({e}); sending the region as tiles");
                region.changed_at = Duration::ZERO;
                None
            }
        }
    }
}

fn union(a: Rect, b: Rect) -> Rect {
    let (x0, y0) = (a.0.min(b.0), a.1.min(b.1));
    let (x1, y1) = ((a.0 + a.2).max(b.0 + b.2), (a.1 + a.3).max(b.1 + b.3));
    (x0, y0, x1 - x0, y1 - y0)
}

fn area((_, _, w, h): Rect) -> u64 {
    u64::from(w) * u64::from(h)
}

/// The overlap of two rectangles, if any.
pub(super) fn intersect(a: Rect, b: Rect) -> Option<Rect> {
    let (x0, y0) = (a.0.max(b.0), a.1.max(b.1));
    let (x1, y1) = ((a.0 + a.2).min(b.0 + b.2), (a.1 + a.3).min(b.1 + b.3));
    (x1 > x0 && y1 > y0).then(|| (x0, y0, x1 - x0, y1 - y0))
}

/// Do two candidates cover mostly the same place (their overlap is at least half the smaller)?
fn mostly_overlap(a: Rect, b: Rect) -> bool {
    intersect(a, b).is_some_and(|i| area(i) * 2 >= area(a).min(area(b)))
}

/// `r` grown to even coordinates and sizes, inside `frame`.
fn even((x, y, w, h): Rect, frame: &Frame) -> Rect {
    let (x0, y0) = (x & !1, y & !1);
    let x1 = (x + w + 1).min(frame.width()) & !1;
    let y1 = (y + h + 1).min(frame.height()) & !1;
    (x0, y0, x1.saturating_sub(x0), y1.saturating_sub(y0))
}

/// The parts of `r` outside the region, if there is one.
fn clip(r: Rect, region: Option<Rect>) -> Vec<Rect> {
    match region {
        Some(hole) => outside(r, hole),
        None => vec![r],
    }
}

/// `r` grown by `by` pixels on every side (not below zero).
fn grow((x, y, w, h): Rect, by: u32) -> Rect {
    let (x0, y0) = (x.saturating_sub(by), y.saturating_sub(by));
    (x0, y0, x + w + by - x0, y + h + by - y0)
}

/// The parts of `r` outside `hole`: up to four rectangles (above, below, left, right).
pub(super) fn outside(r: Rect, hole: Rect) -> Vec<Rect> {
    let Some((ix, iy, iw, ih)) = intersect(r, hole) else { return vec![r] };
    let (x, y, w, h) = r;
    let mut parts = Vec::with_capacity(4);
    if iy > y {
        parts.push((x, y, w, iy - y));
    }
    if iy + ih < y + h {
        parts.push((x, iy + ih, w, y + h - (iy + ih)));
    }
    if ix > x {
        parts.push((x, iy, ix - x, ih));
    }
    if ix + iw < x + w {
        parts.push((ix + iw, iy, x + w - (ix + iw), ih));
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_covers_exactly_what_the_hole_does_not() {
        let r = (0, 0, 64, 64);
        for hole in [(10, 12, 20, 30), (0, 0, 64, 64), (50, 50, 40, 40), (100, 100, 8, 8), (0, 20, 64, 8)] {
            let parts = outside(r, hole);
            for px in 0..64 {
                for py in 0..64 {
                    let inside = |(x, y, w, h): Rect| px >= x && px < x + w && py >= y && py < y + h;
                    let n = parts.iter().filter(|&&p| inside(p)).count();
                    assert_eq!(n, usize::from(!inside(hole)), "{hole:?} at {px},{py}: {parts:?}");
                }
            }
        }
    }

    #[test]
    fn the_rate_follows_the_quality_and_the_line() {
        let region = (0, 0, 960, 540);
        assert_eq!(VideoRate::for_quality(80, None).kbps(region), 4147);
        assert_eq!(VideoRate::for_quality(80, Some(1000)).kbps(region), 1000);
        assert_eq!(VideoRate::for_quality(30, None).kbps(region), 1555);
        // A line whose share carries 1.6 Mbit/s for this region does; 1.5 does not.
        assert!(VideoRate::for_quality(80, Some(1600)).sustains(region));
        assert!(!VideoRate::for_quality(80, Some(1500)).sustains(region));
        assert!(VideoRate::for_quality(80, None).sustains(region));
    }
}
