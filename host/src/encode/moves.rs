//! Moved regions: did parts of the screen move by some (dx, dy) since the last update? A dragged window,
//! a panned image, a pane scrolled inside a window while the rest stays. Each one found becomes a copy
//! instruction ("these pixels you already have, from there") and only what is left is sent.
//!
//! Candidate moves come from three places, cheapest first:
//! 1. [`super::scroll`]: a vertical move of rows, found by row hashes (it picks the offset most rows
//!    agree on, so it goes first: a hint that only fits a page's blank margins would take them);
//! 2. the moves of the last update (a drag goes on by the same step);
//! 3. sampled row segments: every 32-pixel run of a row gets a rolling hash in both images; the runs whose
//!    hash falls in a fixed 1/[`SAMPLE`] subset (chosen by content, so the same run is picked in both)
//!    and that are unique in the old image vote for the offset between them.
//!
//! A candidate is verified tile by tile, byte for byte: the damaged tiles whose pixels equal the old
//! image at the offset form rectangles (their bounding box when all of it moved), each grown pixel by
//! pixel while its edges still match. The sampled search runs only when the cheap candidates leave most
//! of the damage unexplained, and the encoder skips it for a few updates after it found nothing (a
//! video changes everything every frame and never moves: searching it each time slowed every update). Whatever a
//! move does not cover is compared again by the encoder against the picture with the copies applied, so a
//! wrong or partial guess costs bytes, never correctness. Pure functions over two frames.

use std::collections::HashMap;

use tether_shared::frame::Frame;

use super::{bounding_box, scroll, Rect};

/// Width of the row runs that vote, in pixels.
const RUN: usize = 32;
/// One run in this many (by hash) votes.
const SAMPLE: u64 = 16;
/// Fewest votes for a sampled offset to be tried.
const MIN_VOTES: u32 = 6;
/// At most this many moves per update.
const MAX_MOVES: usize = 4;
/// At most this many sampled offsets are verified.
const MAX_CANDIDATES: usize = 6;
/// Fewest tiles a move must cover to be worth a copy.
const MIN_TILES: usize = 2;

/// Pixels `(x, y, w, h)` of the new image are those at `(src_x, src_y)` in the old one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
    pub src_x: u32,
    pub src_y: u32,
}

impl Move {
    /// The offset, new minus old.
    pub fn offset(&self) -> (i64, i64) {
        (i64::from(self.x) - i64::from(self.src_x), i64::from(self.y) - i64::from(self.src_y))
    }
}

/// What [`detect`] found, and whether the sampled search ran and found nothing (the caller backs off).
#[derive(Debug, Default)]
pub struct Detected {
    pub moves: Vec<Move>,
    pub searched_in_vain: bool,
}

/// Moves from `prev` to `cur` (same size) covering `damaged` grid tiles (those that differ), inside
/// `bbox`; `hints` are offsets to try first (the last update's); `search`: the sampled search may run.
pub fn detect(
    prev: &Frame,
    cur: &Frame,
    damaged: &[Rect],
    bbox: Rect,
    hints: &[(i64, i64)],
    search: bool,
) -> Detected {
    let mut left: Vec<Rect> = damaged.to_vec();
    let mut moves = Vec::new();
    let mut tried: Vec<(i64, i64)> = Vec::new();
    let mut attempt = |offset: (i64, i64), left: &mut Vec<Rect>, moves: &mut Vec<Move>| {
        if offset == (0, 0) || tried.contains(&offset) || moves.len() >= MAX_MOVES {
            return;
        }
        tried.push(offset);
        let found = verify(prev, cur, left, bbox, offset, moves);
        for m in &found {
            left.retain(|t| !covers(m, *t));
        }
        moves.extend(found.into_iter().take(MAX_MOVES.saturating_sub(moves.len())));
    };
    let (x0, y0, w, h) = bbox;
    if let Some(s) = scroll::detect(prev, cur, (x0, x0 + w), (y0, y0 + h)) {
        attempt((0, i64::from(s.dst_y) - i64::from(s.src_y)), &mut left, &mut moves);
    }
    for &hint in hints {
        if left.len() < MIN_TILES {
            return Detected { moves, searched_in_vain: false };
        }
        attempt(hint, &mut left, &mut moves);
    }
    // The sampled search costs a pass over both images: only when the cheap candidates left most of
    // the damage unexplained (a scroll leaves its status line; that is no reason to search).
    if !search || left.len() < MIN_TILES || left.len() * 2 < damaged.len() {
        return Detected { moves, searched_in_vain: false };
    }
    let before = moves.len();
    for offset in votes(prev, cur, bbox) {
        attempt(offset, &mut left, &mut moves);
        if left.len() < MIN_TILES {
            break;
        }
    }
    let searched_in_vain = moves.len() == before;
    Detected { moves, searched_in_vain }
}

/// Does move `m` cover tile `t` entirely?
fn covers(m: &Move, (x, y, w, h): Rect) -> bool {
    x >= m.x && y >= m.y && x + w <= m.x + m.w && y + h <= m.y + m.h
}

/// Offsets voted for by sampled, unique row runs, most votes first (at most [`MAX_CANDIDATES`]).
fn votes(prev: &Frame, cur: &Frame, (x0, y0, w, h): Rect) -> Vec<(i64, i64)> {
    if (w as usize) < RUN {
        return Vec::new();
    }
    // Old runs: hash → position, or `None` when the hash is seen more than once.
    let mut old: HashMap<u64, Option<(u32, u32)>> = HashMap::new();
    for y in y0..y0 + h {
        sampled_runs(prev, y, x0, w, |x, hash| {
            old.entry(hash).and_modify(|seen| *seen = None).or_insert(Some((x, y)));
        });
    }
    let mut count: HashMap<(i64, i64), u32> = HashMap::new();
    for y in y0..y0 + h {
        sampled_runs(cur, y, x0, w, |x, hash| {
            if let Some(Some((ox, oy))) = old.get(&hash) {
                let offset = (i64::from(x) - i64::from(*ox), i64::from(y) - i64::from(*oy));
                if offset != (0, 0) {
                    *count.entry(offset).or_default() += 1;
                }
            }
        });
    }
    let mut ranked: Vec<((i64, i64), u32)> = count.into_iter().filter(|&(_, n)| n >= MIN_VOTES).collect();
    ranked.sort_by_key(|&((dx, dy), n)| (std::cmp::Reverse(n), dx.abs() + dy.abs(), dx, dy));
    ranked.into_iter().take(MAX_CANDIDATES).map(|(offset, _)| offset).collect()
}

/// Call `found(x, hash)` for each run of [`RUN`] pixels of row `y` (columns `x0..x0 + w`) that is not one
/// flat colour and whose hash is in the sampled subset.
fn sampled_runs(f: &Frame, y: u32, x0: u32, w: u32, mut found: impl FnMut(u32, u64)) {
    const BASE: u64 = 0x0100_0000_01b3;
    let stride = f.width() as usize * 4;
    let start = y as usize * stride + x0 as usize * 4;
    let row = &f.bgrx()[start..start + w as usize * 4];
    let px = |i: usize| u64::from(u32::from_le_bytes([row[i * 4], row[i * 4 + 1], row[i * 4 + 2], 0]));
    let top = BASE.wrapping_pow(RUN as u32 - 1);
    let mut hash = 0u64;
    // The last index whose pixel differs from the one before: a run starting after it is flat.
    let mut last_change = 0usize;
    for i in 0..w as usize {
        if i > 0 && px(i) != px(i - 1) {
            last_change = i;
        }
        if i >= RUN {
            hash = hash.wrapping_sub(px(i - RUN).wrapping_mul(top));
        }
        hash = hash.wrapping_mul(BASE).wrapping_add(px(i));
        if i + 1 >= RUN {
            let run_start = i + 1 - RUN;
            let mixed = (hash ^ (hash >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            if last_change > run_start && (mixed >> 40).is_multiple_of(SAMPLE) {
                found(x0 + run_start as u32, mixed);
            }
        }
    }
}

/// The rectangles of `damaged` tiles that moved by `offset`, each grown to the pixel. None overlaps
/// another or one of `taken`: the viewer applies copies one after the other, so a copy over an earlier
/// one would move its pixels twice.
fn verify(
    prev: &Frame,
    cur: &Frame,
    damaged: &[Rect],
    bbox: Rect,
    offset: (i64, i64),
    taken: &[Move],
) -> Vec<Move> {
    let matched: Vec<Rect> = damaged.iter().copied().filter(|&t| moved_from(prev, cur, t, offset)).collect();
    if matched.len() < MIN_TILES {
        return Vec::new();
    }
    // One rectangle when the matched tiles' bounding box moved as a whole (a scrolled page with lines of
    // different lengths: blank ends move too); else the tiles' own rectangles.
    let whole = bounding_box(&matched);
    let rects = if moved_from(prev, cur, whole, offset) { vec![whole] } else { tile_rects(&matched) };
    let mut moves: Vec<Move> = Vec::new();
    for rect in rects {
        let free = |r: Rect| !taken.iter().chain(&moves).any(|m| overlaps(m, r));
        if !free(rect) {
            continue; // inside a rectangle an earlier one grew into
        }
        let grown = grow(prev, cur, rect, bbox, offset);
        let (x, y, w, h) = if free(grown) { grown } else { rect };
        let (sx, sy) = (i64::from(x) - offset.0, i64::from(y) - offset.1);
        let (Ok(src_x), Ok(src_y)) = (u32::try_from(sx), u32::try_from(sy)) else { continue };
        moves.push(Move { x, y, w, h, src_x, src_y });
    }
    moves
}

/// Do the destination of `m` and `r` share a pixel?
fn overlaps(m: &Move, (x, y, w, h): Rect) -> bool {
    x < m.x + m.w && m.x < x + w && y < m.y + m.h && m.y < y + h
}

/// Are the pixels of `rect` in `cur` those `offset` back in `prev` (inside the frame)?
fn moved_from(prev: &Frame, cur: &Frame, (x, y, w, h): Rect, (dx, dy): (i64, i64)) -> bool {
    let (sx, sy) = (i64::from(x) - dx, i64::from(y) - dy);
    if sx < 0
        || sy < 0
        || sx + i64::from(w) > i64::from(prev.width())
        || sy + i64::from(h) > i64::from(prev.height())
    {
        return false;
    }
    let stride = cur.width() as usize * 4;
    let len = w as usize * 4;
    (0..h as usize).all(|r| {
        let a = (y as usize + r) * stride + x as usize * 4;
        let b = (sy as usize + r) * stride + sx as usize * 4;
        same_colours(&cur.bgrx()[a..a + len], &prev.bgrx()[b..b + len])
    })
}

/// Pixel rows equal in colour (the fourth byte of each pixel is padding). Equal bytes are the common
/// case and one `memcmp`; only rows that differ somewhere are compared pixel by pixel.
fn same_colours(a: &[u8], b: &[u8]) -> bool {
    a == b || a.chunks_exact(4).zip(b.chunks_exact(4)).all(|(p, q)| p[..3] == q[..3])
}

/// Grid tiles (sorted by row, then column) merged into rectangles: runs along each row, then runs of
/// the same columns in consecutive rows.
fn tile_rects(tiles: &[Rect]) -> Vec<Rect> {
    let mut sorted = tiles.to_vec();
    sorted.sort_by_key(|t| (t.1, t.0));
    let mut runs: Vec<Rect> = Vec::new();
    for t in sorted {
        match runs.last_mut() {
            Some(r) if r.1 == t.1 && r.0 + r.2 == t.0 && r.3 == t.3 => r.2 += t.2,
            _ => runs.push(t),
        }
    }
    let mut rects: Vec<Rect> = Vec::new();
    for run in runs {
        match rects.iter_mut().find(|r| r.0 == run.0 && r.2 == run.2 && r.1 + r.3 == run.1) {
            Some(r) => r.3 += run.3,
            None => rects.push(run),
        }
    }
    rects
}

/// Grow `rect` one pixel row or column at a time, within `bbox`, while the new edge still moved by
/// `offset` (so a window's copy reaches its real edges, not the tile grid's).
fn grow(prev: &Frame, cur: &Frame, rect: Rect, bbox: Rect, offset: (i64, i64)) -> Rect {
    let (mut x, mut y, mut w, mut h) = rect;
    let (bx1, by1) = (bbox.0 + bbox.2, bbox.1 + bbox.3);
    while x > bbox.0 && moved_from(prev, cur, (x - 1, y, 1, h), offset) {
        x -= 1;
        w += 1;
    }
    while x + w < bx1 && moved_from(prev, cur, (x + w, y, 1, h), offset) {
        w += 1;
    }
    while y > bbox.1 && moved_from(prev, cur, (x, y - 1, w, 1), offset) {
        y -= 1;
        h += 1;
    }
    while y + h < by1 && moved_from(prev, cur, (x, y + h, w, 1), offset) {
        h += 1;
    }
    (x, y, w, h)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A busy picture: every pixel different from its neighbours.
    fn noise(w: u32, h: u32, seed: u64) -> Vec<u8> {
        (0..u64::from(w) * u64::from(h) * 4)
            .map(|i| {
                let mut z = (i ^ (seed << 48)).wrapping_add(0x9E37_79B9_7F4A_7C15);
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                (z ^ (z >> 31)) as u8
            })
            .collect()
    }

    /// A desktop of one colour with a busy `ww × wh` window at `(wx, wy)`.
    fn desktop(wx: u32, wy: u32) -> Frame {
        let (w, h, ww, wh) = (640u32, 480u32, 200u32, 150u32);
        let mut f = Frame::new(w, h).expect("size");
        for px in f.bgrx_mut().chunks_exact_mut(4) {
            px.copy_from_slice(&[0x99, 0x66, 0x33, 0]);
        }
        let win = noise(ww, wh, 7);
        let stride = w as usize * 4;
        for r in 0..wh as usize {
            let dst = (wy as usize + r) * stride + wx as usize * 4;
            f.bgrx_mut()[dst..dst + ww as usize * 4]
                .copy_from_slice(&win[r * ww as usize * 4..][..ww as usize * 4]);
        }
        f
    }

    /// The encoder's own damage scan, over the whole frame.
    fn damaged(prev: &Frame, cur: &Frame) -> Vec<Rect> {
        super::super::damaged_tiles(prev, cur, (0, 0, cur.width(), cur.height()))
    }

    #[test]
    fn a_dragged_window_is_one_move_to_its_exact_edges() {
        let (prev, cur) = (desktop(100, 80), desktop(106, 82));
        let d = damaged(&prev, &cur);
        let moves = detect(&prev, &cur, &d, bounding_box(&d), &[], true).moves;
        assert_eq!(moves.len(), 1, "{moves:?}");
        let m = moves[0];
        assert_eq!(m.offset(), (6, 2));
        // At least the whole window, to its pixels (not the tile grid's); beyond it only flat desktop,
        // which looks the same moved.
        assert!(m.x <= 106 && m.y <= 82 && m.x + m.w >= 306 && m.y + m.h >= 232, "{m:?}");
        assert_eq!((m.src_x, m.src_y), (m.x - 6, m.y - 2));
        assert!(moved_from(&prev, &cur, (m.x, m.y, m.w, m.h), (6, 2)));
    }

    #[test]
    fn a_hint_is_tried_first_and_a_wrong_one_costs_nothing() {
        let (prev, cur) = (desktop(100, 80), desktop(94, 70));
        let d = damaged(&prev, &cur);
        let moves = detect(&prev, &cur, &d, bounding_box(&d), &[(3, 3), (-6, -10)], true).moves;
        assert_eq!(moves.iter().map(Move::offset).collect::<Vec<_>>(), vec![(-6, -10)]);
    }

    #[test]
    fn nothing_moved_means_no_move() {
        let (prev, cur) = (desktop(100, 80), Frame::from_bgrx(640, 480, noise(640, 480, 3)).expect("size"));
        let d = damaged(&prev, &cur);
        assert!(detect(&prev, &cur, &d, bounding_box(&d), &[], true).moves.is_empty());
    }
}
