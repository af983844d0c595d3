//! The host's screen encoder: which parts of the screen to send, and how.
//!
//! Each capture is compared with what the viewer has (the last image sent), tile by tile. When many tiles
//! changed, [`moves`] looks for regions that moved by some (dx, dy) — a dragged window, a scrolled page
//! or pane (vertical moves are found by [`scroll`]'s row hashes) — and the update starts with one copy
//! instruction per region; the tiles are then compared again against the reference with the copies
//! applied, so only what was exposed or changed is sent. The remaining changed tiles are encoded by [`tether_shared::codec`]
//! (lossless for text and UI; JPEG for photographic tiles when the quality setting allows), and the
//! lossless ones of each message part go as one bundle sharing a single zstd stream
//! ([`tether_shared::codec::packed`]): per-tile streams cost a frame header each and find no repetition
//! across tiles.
//!
//! The result is always exact for lossless tiles: a wrong move guess costs bytes, never correctness,
//! because tiles are re-diffed against the reference the viewer will really have.
//!
//! An update can be held to a byte budget (the link model's, [`tether_shared::link::Link::budget`]). What
//! does not fit carries over to the next update: the reference is updated only for the tiles that went,
//! and a new picture's tiles that did not go yet are kept as owed. The viewer's picture still converges
//! exactly. Under a budget, tiles that changed once (a key press) go before tiles in [`motion`] (a
//! video), so typing beside a video is not held behind it.
//!
//! A region that keeps changing with photographic content goes through [`video`] (VP9) instead, when a
//! [`VideoRate`] is set: the tile path then clips every rectangle to what lies outside the region and
//! moves never copy from or into it; the region is refined to tiles once it stops changing.

mod damage;
mod motion;
pub mod moves;
pub mod scroll;
pub mod video;

use std::time::Duration;

use tether_shared::codec::{copy_tile, copy_within, PartEncoder, Quality, Tile};
use tether_shared::frame::Frame;

pub(crate) use damage::bounding_box;
use damage::{all_tiles, changed_part, damaged_in, damaged_tiles, full_rect, grid, inside};
pub use video::VideoRate;

/// Payload bytes per message part before compression. Compressed it stays well under
/// [`tether_shared::wire::MAX_VIDEO_MSG`] (zstd never grows data by more than a fraction of a percent),
/// and the bundle well under [`tether_shared::codec::MAX_BUNDLE_BYTES`].
const PART_BUDGET: usize = 8 * 1024 * 1024;
/// Updates to skip the sampled move search after it found nothing: the first time, and at most after it
/// found nothing several times in a row (doubling in between).
const SEARCH_BACKOFF: (u8, u8) = (8, 64);
/// Damaged tiles from which looking for moves is worth its cost.
const SCROLL_MIN_TILES: usize = 6;

/// A budget that never stops an update: everything that changed goes at once.
pub const UNLIMITED: usize = usize::MAX;
/// The clock step of [`DamageEncoder::encode`] (which has no clock of its own): 30 captures a second.
const NOMINAL_FRAME: Duration = Duration::from_millis(33);

#[derive(Debug)]
pub struct DamageEncoder {
    /// What the viewer has (once the last update is applied), except in the tiles of `owed`.
    sent: Option<Frame>,
    /// Grid tiles (in grid order) of a new picture that a budget cut short: what the viewer shows there is
    /// not known, so they go whole whatever the comparison with `sent` says.
    owed: Vec<Rect>,
    /// The last update stopped at its budget: changed tiles are still to send.
    behind: bool,
    quality: Quality,
    scratch: Vec<u8>,
    /// Costs learnt from the parts finished lately, to guess against a budget.
    guess: Guess,
    /// Which changed tiles are in motion: under a budget they go after the others.
    motion: motion::Motion,
    /// The offsets of the last update's moves: the first ones to try next time (a drag goes on).
    last_moves: Vec<(i64, i64)>,
    /// Updates left before the sampled move search may run again, and the last wait ([`SEARCH_BACKOFF`]).
    search_skip: u8,
    search_wait: u8,
    /// The region that goes as video, if any.
    video: video::VideoPath,
    /// The time of the last update (the caller's clock, see [`Self::encode_at`]).
    clock: Duration,
    /// The box of the tiles held back for the video path in the last update.
    held: Option<Rect>,
    /// Rectangles to compare next time even if X Damage does not name them (see [`Self::encode_drawn`]).
    rescan: Vec<Rect>,
    /// The video frame is left out of the update, for [`Self::take_video_frame`].
    video_apart: bool,
    /// A video region just left: its owed tiles go split at its edge, so the photo inside is one
    /// piece (JPEG when allowed) and what is around it another (exact), until they all went.
    refine: Option<Rect>,
}

/// What pixels have cost lately, per mille: of the bundle's raw bytes once compressed, and of a
/// rectangle's raw BGR bytes whatever it became (solid, JPEG, bundled). Both start at 1000: no
/// compression assumed until a part has shown some.
#[derive(Debug, Clone, Copy)]
struct Guess {
    bundle: usize,
    rect: usize,
}

impl Guess {
    const RAW: Self = Self { bundle: 1000, rect: 1000 };

    /// What the part will cost once finished: its encoded tiles as they are, its bundle as compressed lately.
    fn part(&self, part: &PartEncoder) -> usize {
        part.encoded_bytes() + per_mille(part.bundled_bytes(), self.bundle)
    }

    /// What a rectangle of `raw` BGR bytes will add, before it is classified.
    fn rect(&self, raw: usize) -> usize {
        per_mille(raw, self.rect) + 16
    }

    /// Finish `part` (of `raw` rectangle bytes) into `parts`, learn from what it cost, and return that.
    fn finish(&mut self, part: &mut PartEncoder, parts: &mut Vec<Vec<Tile>>, raw: usize) -> usize {
        let (encoded, bundled) = (part.encoded_bytes(), part.bundled_bytes());
        let tiles = part.finish();
        let total = payload(&tiles);
        if bundled > 0 {
            self.bundle = ratio(total.saturating_sub(encoded), bundled);
        }
        if raw > 0 {
            self.rect = ratio(total, raw);
        }
        parts.push(tiles);
        total
    }
}

fn per_mille(bytes: usize, ratio: usize) -> usize {
    bytes.saturating_mul(ratio) / 1000
}

/// `part` of `whole` per mille, within 1–100 %.
fn ratio(part: usize, whole: usize) -> usize {
    (part.saturating_mul(1000) / whole.max(1)).clamp(10, 1000)
}

impl Default for DamageEncoder {
    fn default() -> Self {
        Self::new()
    }
}

/// A rectangle on the screen.
type Rect = (u32, u32, u32, u32);

/// One rectangle to send: the grid tile it lies in, the part of it to send, and whether it is owed.
#[derive(Clone, Copy)]
struct Item {
    tile: Rect,
    rect: Rect,
    owed: bool,
}

impl DamageEncoder {
    /// A lossless encoder.
    pub fn new() -> Self {
        Self::with_quality(Quality::Lossless)
    }

    pub fn with_quality(quality: Quality) -> Self {
        Self {
            sent: None,
            owed: Vec::new(),
            behind: false,
            quality,
            scratch: Vec::new(),
            guess: Guess::RAW,
            motion: motion::Motion::default(),
            last_moves: Vec::new(),
            search_skip: 0,
            search_wait: 0,
            video: video::VideoPath::default(),
            clock: Duration::ZERO,
            held: None,
            refine: None,
            rescan: Vec::new(),
            video_apart: false,
        }
    }

    /// Let photographic regions that keep changing go as video at `rate` (`None`: never, every pixel
    /// is a tile; a region in progress is refined at the next update).
    pub fn set_video_rate(&mut self, rate: Option<VideoRate>) {
        self.video.set_rate(rate);
    }

    /// Leave the video frame out of each update: [`Self::take_video_frame`] encodes it afterwards, so the
    /// caller can send the update's tiles (a key press beside the video) before spending the milliseconds
    /// a video frame takes to encode, and send the frame as an update of its own.
    pub fn set_video_apart(&mut self, apart: bool) {
        self.video_apart = apart;
    }

    /// The video frame the last update left out (with [`Self::set_video_apart`]), encoded now; `None` if
    /// there is none.
    pub fn take_video_frame(&mut self) -> Option<Tile> {
        self.video.encode_pending()
    }

    /// Drop the video frame the last update left out (the line has no room for it now): the stream
    /// skips a picture, the next change brings the next one.
    pub fn drop_video_frame(&mut self) {
        self.video.drop_pending();
    }

    /// Whether the last update left a video frame for [`Self::take_video_frame`].
    pub fn has_video_frame(&self) -> bool {
        self.video.has_pending()
    }

    /// The region that currently goes as video: outside it the viewer converges to the exact screen
    /// (or JPEG photos at the quality setting), inside it shows the video stream.
    pub fn video_region(&self) -> Option<(u32, u32, u32, u32)> {
        self.video.region()
    }

    /// The box of the tiles the last update held back because they are about to go as video (a
    /// candidate region building up; at most a few updates): the viewer shows them a little late.
    pub fn held_for_video(&self) -> Option<(u32, u32, u32, u32)> {
        self.held.filter(|r| r.2 > 0)
    }

    /// When to encode again even if nothing was drawn (on the clock of [`Self::encode_at`]): a video
    /// region that stops changing is left then, and its tiles refined.
    pub fn poll_at(&self) -> Option<Duration> {
        self.video.poll_at()
    }

    pub fn set_quality(&mut self, quality: Quality) {
        self.quality = quality;
    }

    /// Forget what the viewer has (a new viewer, or a lost update): the next update is a full frame.
    pub fn reset(&mut self) {
        self.sent = None;
        self.owed.clear();
        self.behind = false;
        self.motion.reset();
        self.video.reset();
        self.refine = None;
    }

    /// Whether the last update stopped at its budget: encode again (even if the screen did not change)
    /// to send the rest.
    pub fn is_behind(&self) -> bool {
        self.behind
    }

    /// Encode what changed since the last call, grouped into message parts; empty if nothing changed.
    ///
    /// `budget` is the bytes of tile payload this update may carry ([`UNLIMITED`]: no limit). An update
    /// that would exceed it stops before the rectangle that would not fit, and the rest carries over to
    /// the next call ([`Self::is_behind`]): what was not sent still differs from what the viewer has, and
    /// a new picture's tiles not yet sent stay owed, so nothing is lost. The first rectangle of pixels
    /// always goes, even over the budget: every call makes progress. Tiles already encoded (solid, JPEG)
    /// count as they are, bundled pixels and the next rectangle at what such bytes cost in the last
    /// finished parts (raw at first); when that would exceed the budget the part is finished first and
    /// its real size counted, so a compressible screen still fills the budget, and a hopeful guess
    /// overshoots by about one rectangle.
    ///
    /// Without a clock this runs at a nominal 30 updates a second ([`Self::encode_at`] takes one).
    pub fn encode(&mut self, frame: &Frame, budget: usize) -> Vec<Vec<Tile>> {
        let now = self.clock + NOMINAL_FRAME;
        self.encode_at(frame, budget, now)
    }

    /// [`Self::encode`] at `now` (any monotonic clock, e.g. the time since the session started): what the
    /// video path's bitrate and its hysteresis count in.
    pub fn encode_at(&mut self, frame: &Frame, budget: usize, now: Duration) -> Vec<Vec<Tile>> {
        self.encode_drawn(frame, budget, now, None)
    }

    /// [`Self::encode_at`], told where the screen was drawn since the last call (`Some`: X Damage's
    /// rectangles, in frame coordinates): only those tiles are compared with what the viewer has, so an
    /// unchanged screen costs nothing and a key press a few tiles. `None` compares everything. What an
    /// update could not send, or held back, is compared again next time whatever the rectangles say.
    pub fn encode_drawn(
        &mut self,
        frame: &Frame,
        budget: usize,
        now: Duration,
        drawn: Option<&[(u32, u32, u32, u32)]>,
    ) -> Vec<Vec<Tile>> {
        self.clock = now;
        let rescan = std::mem::take(&mut self.rescan);
        let mut part = PartEncoder::new(self.quality);
        let same_size = |prev: &Frame| prev.width() == frame.width() && prev.height() == frame.height();
        let fresh = !self.sent.as_ref().is_some_and(same_size);
        if fresh {
            // A new picture: the viewer's content is known nowhere, every tile is owed.
            self.sent = Some(frame.clone());
            self.owed = all_tiles(frame);
            self.video.reset();
        }
        let Some(prev) = self.sent.as_mut() else { return Vec::new() };
        // (A fresh `sent` is this frame: nothing differs, everything is owed.)
        let mut damaged = match (fresh, drawn) {
            (true, _) => Vec::new(),
            (false, None) => damaged_tiles(prev, frame, full_rect(frame)),
            (false, Some(drawn)) => damaged_in(prev, frame, drawn.iter().chain(&rescan)),
        };
        // The video region: inside it `sent` holds the last picture encoded (not what the viewer shows).
        let region_changed = self.video.region().is_some_and(|(x, y, w, h)| {
            let maybe = drawn.is_none_or(|d| {
                d.iter().chain(&rescan).any(|&r| video::intersect(r, (x, y, w, h)).is_some())
            });
            maybe && !prev.rect_eq(frame, x, y, w, h)
        });
        if let Some(left) = self.video.handle_region(region_changed, now) {
            // Back to tiles: the viewer shows video there, so the region's tiles go whole.
            let mut owed: Vec<Rect> =
                grid(frame, full_rect(frame)).filter(|&t| video::intersect(t, left).is_some()).collect();
            owed.append(&mut self.owed);
            owed.sort_by_key(|t| (t.1, t.0));
            owed.dedup();
            self.owed = owed;
            self.refine = Some(left);
        }
        let region = self.video.region();
        if let Some(r) = region {
            damaged.retain(|&t| !inside(t, r));
        }
        // Moves copy pixels the viewer has; with tiles owed it does not know them all.
        let mut offsets = Vec::new();
        let changed = !damaged.is_empty();
        if self.owed.is_empty() && damaged.len() >= SCROLL_MIN_TILES {
            let bbox = bounding_box(&damaged);
            let search = self.search_skip == 0;
            let detected = moves::detect(prev, frame, &damaged, bbox, &self.last_moves, search);
            if detected.searched_in_vain {
                // Each fruitless search in a row doubles the wait: a video never moves.
                self.search_wait =
                    self.search_wait.saturating_mul(2).clamp(SEARCH_BACKOFF.0, SEARCH_BACKOFF.1);
                self.search_skip = self.search_wait;
            } else {
                self.search_skip = self.search_skip.saturating_sub(1);
                if search && !detected.moves.is_empty() {
                    self.search_wait = 0;
                }
            }
            let mut found = detected.moves;
            if let Some(r) = region {
                // What the viewer shows in the region is not `sent`: no copies from or into it.
                found.retain(|m| {
                    let (src, dst) = ((m.src_x, m.src_y, m.w, m.h), (m.x, m.y, m.w, m.h));
                    video::intersect(src, r).is_none() && video::intersect(dst, r).is_none()
                });
            }
            for m in &found {
                copy_within(prev, (m.src_x, m.src_y), (m.x, m.y), (m.w, m.h));
                part.push_tile(copy_tile(m.x, m.y, m.w, m.h, m.src_x, m.src_y));
                offsets.push(m.offset());
            }
            if !found.is_empty() {
                damaged = damaged_tiles(prev, frame, bbox);
            }
        }
        if changed {
            // (An update with nothing changed keeps the hints: a drag pauses between mouse events.)
            self.last_moves = offsets;
        }
        self.motion.observe(frame, &damaged, &mut self.scratch);
        let mut held = Vec::new();
        if !fresh {
            // Candidates for the video path: tiles in motion that changed again in this capture.
            let near: Vec<Rect> =
                damaged.iter().copied().filter(|&t| region.is_none_or(|r| !inside(t, r))).collect();
            let (prev_ref, motion) = (&*prev, &self.motion);
            held = self
                .video
                .consider(frame, &near, motion, now, &mut self.scratch, |t| changed_part(prev_ref, frame, t));
        }
        let region = self.video.region();
        self.held = (!held.is_empty()).then(|| bounding_box(&held));
        if !held.is_empty() {
            // About to go as video: they stay damaged (and owed, if so) until then.
            damaged.retain(|t| held.binary_search_by_key(&(t.1, t.0), |h| (h.1, h.0)).is_err());
            self.behind = true;
        }
        let is_held = |t: &Rect| held.binary_search_by_key(&(t.1, t.0), |h| (h.1, h.0)).is_ok();
        let (held_owed, owed_now): (Vec<Rect>, Vec<Rect>) = self.owed.iter().partition(|t| is_held(t));
        let mut items = merge(&owed_now, damaged, |t| changed_part(prev, frame, t));
        if let Some(r) = self.refine.filter(|_| region.is_none()) {
            // Owed tiles across the edge of the region just left: the photo and its surroundings apart.
            items = items
                .into_iter()
                .flat_map(|item| {
                    let pieces = match (item.owed, video::intersect(item.rect, r)) {
                        (true, Some(inner)) if inner != item.rect => {
                            let mut pieces = video::outside(item.rect, r);
                            pieces.push(inner);
                            pieces
                        }
                        _ => vec![item.rect],
                    };
                    pieces.into_iter().map(move |rect| Item { rect, ..item })
                })
                .collect();
        }
        if let Some(r) = region {
            // The tile path sends only what lies outside the region.
            items = items
                .into_iter()
                .flat_map(|item| {
                    video::outside(item.rect, r).into_iter().map(move |rect| Item { rect, ..item })
                })
                .collect();
        }
        if budget != UNLIMITED {
            // What changed once (a key press) before what keeps changing (a video); grid order within
            // each. (Without a budget everything goes, in grid order, as the codec benchmark measures.)
            items.sort_by_key(|item| !item.owed && self.motion.is_busy(item.tile));
        }
        let video_due = self.video.frame_due(region_changed);
        if items.is_empty() && part.is_empty() && !video_due {
            self.rescan.extend(self.held);
            self.behind = false;
            return Vec::new();
        }
        let mut parts = Vec::new();
        let (mut spent, mut pixels_sent) = (0usize, false);
        // Raw bytes of the rectangles in the current part.
        let mut part_raw = 0usize;
        let mut carried = None;
        for (i, item) in items.iter().enumerate() {
            let (x, y, w, h) = item.rect;
            frame.copy_rect(x, y, w, h, &mut self.scratch);
            let raw = self.scratch.len() / 4 * 3;
            if pixels_sent && spent + self.guess.part(&part) + self.guess.rect(raw) > budget {
                if !part.is_empty() {
                    spent += self.guess.finish(&mut part, &mut parts, std::mem::take(&mut part_raw));
                }
                if spent + self.guess.rect(raw) > budget {
                    carried = Some(i);
                    break;
                }
            }
            part.push(x, y, w, h, &self.scratch);
            part_raw += raw;
            pixels_sent = true;
            if !fresh {
                sync(prev, frame, item.tile);
            }
            if part.pending_bytes() >= PART_BUDGET {
                spent += self.guess.finish(&mut part, &mut parts, std::mem::take(&mut part_raw));
            }
        }
        // The video frame goes last, if the budget has room (else the region waits: it still differs).
        let mut video_waits = false;
        if let Some(r) = region {
            if budget == UNLIMITED || spent + self.guess.part(&part) < budget {
                if self.video.capture(frame, region_changed, now) {
                    sync(prev, frame, r);
                    if !self.video_apart {
                        if let Some(tile) = self.video.encode_pending() {
                            part.push_tile(tile);
                        }
                    }
                }
            } else {
                video_waits = region_changed;
            }
        }
        if !part.is_empty() {
            self.guess.finish(&mut part, &mut parts, part_raw);
        }
        let rest = carried.map_or(&items[..0], |i| &items[i..]);
        // Compared again next time, whatever X Damage reports: what did not go, what was held for the video.
        self.rescan = rest.iter().map(|item| item.tile).chain(held_owed.iter().copied()).collect();
        self.rescan.extend(self.held);
        if video_waits {
            self.rescan.extend(region);
        }
        self.owed = rest.iter().filter(|item| item.owed).map(|item| item.tile).collect();
        if !held_owed.is_empty() {
            self.owed.extend(held_owed);
            self.owed.sort_by_key(|t| (t.1, t.0));
            self.owed.dedup();
        }
        self.behind = !rest.is_empty() || video_waits;
        if !self.owed.iter().any(|&t| self.refine.is_some_and(|r| video::intersect(t, r).is_some())) {
            self.refine = None;
        }
        parts
    }
}

/// The rectangles to send, in grid order: owed tiles whole, damaged ones as `part` of them.
fn merge(owed: &[Rect], damaged: Vec<Rect>, part: impl Fn(Rect) -> Rect) -> Vec<Item> {
    let key = |t: &Rect| (t.1, t.0);
    let mut items = Vec::with_capacity(owed.len().max(damaged.len()));
    let (mut owed, mut damaged) = (owed.iter().copied().peekable(), damaged.into_iter().peekable());
    loop {
        let next = match (owed.peek(), damaged.peek()) {
            (Some(o), Some(d)) if key(o) == key(d) => {
                damaged.next();
                owed.next().map(|t| Item { tile: t, rect: t, owed: true })
            }
            (Some(o), Some(d)) if key(o) < key(d) => {
                owed.next().map(|t| Item { tile: t, rect: t, owed: true })
            }
            (_, Some(_)) => damaged.next().map(|t| Item { tile: t, rect: part(t), owed: false }),
            (Some(_), None) => owed.next().map(|t| Item { tile: t, rect: t, owed: true }),
            (None, None) => None,
        };
        match next {
            Some(item) => items.push(item),
            None => return items,
        }
    }
}

/// Bytes a finished part carries: its tiles' payload and a header each.
fn payload(tiles: &[Tile]) -> usize {
    tiles.iter().map(|t| t.payload_len() + 16).sum()
}

/// Copy rectangle `r` of `from` into `to` (a frame of the same size): the viewer now has it.
fn sync(to: &mut Frame, from: &Frame, (x, y, w, h): Rect) {
    let stride = from.width() as usize * 4;
    let (start, len) = (x as usize * 4, w as usize * 4);
    for row in y..y + h {
        let i = row as usize * stride + start;
        to.bgrx_mut()[i..i + len].copy_from_slice(&from.bgrx()[i..i + len]);
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod video_tests;
