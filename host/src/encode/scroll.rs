//! Scroll detection: did a band of the damaged area move vertically since the last update?
//!
//! Rows of the damaged columns are hashed in both images. Each distinctive row of the new image that
//! appears exactly once in the old one votes for an offset `dy`; the winning offset's longest run of rows
//! that match — verified byte for byte — becomes one copy instruction ("these rows you already have, moved
//! by `dy`"). Scrolling a page then costs a copy and the newly exposed strip instead of every tile.
//! Pure functions over two frames; the encoder decides what to do with the answer.

use std::collections::HashMap;

use tether_shared::frame::Frame;

/// Fewest matching rows worth a copy.
const MIN_BAND: u32 = 32;
/// Fewest votes for an offset to be believed.
const MIN_VOTES: u32 = 4;

/// Rows `src_y..src_y + h` of columns `x..x + w` reappear at `dst_y`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scroll {
    pub x: u32,
    pub w: u32,
    pub src_y: u32,
    pub dst_y: u32,
    pub h: u32,
}

fn row(f: &Frame, y: u32, x0: u32, x1: u32) -> &[u8] {
    let stride = f.width() as usize * 4;
    let start = y as usize * stride + x0 as usize * 4;
    &f.bgrx()[start..start + (x1 - x0) as usize * 4]
}

/// A fast hash of a row segment, and whether the segment is one flat colour (such rows match anywhere
/// and must not vote).
fn row_hash(bytes: &[u8]) -> (u64, bool) {
    let first = bytes.get(..4);
    let mut flat = true;
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for chunk in bytes.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        if flat && (chunk.get(..4) != first || chunk.get(4..8).is_some_and(|c| Some(c) != first)) {
            flat = false;
        }
        h = (h ^ u64::from_le_bytes(word)).wrapping_mul(0x1000_0000_01b3).rotate_left(29);
    }
    (h, flat)
}

/// Look for a vertical move of rows `y0..y1` within columns `x0..x1` between `prev` and `cur` (same size).
pub fn detect(prev: &Frame, cur: &Frame, (x0, x1): (u32, u32), (y0, y1): (u32, u32)) -> Option<Scroll> {
    let hashes = |f: &Frame| (y0..y1).map(|y| row_hash(row(f, y, x0, x1))).collect::<Vec<_>>();
    let (old, new) = (hashes(prev), hashes(cur));
    // Distinctive old rows: not flat, hash seen once.
    let mut index: HashMap<u64, Option<u32>> = HashMap::with_capacity(old.len());
    for (i, &(h, flat)) in old.iter().enumerate() {
        if !flat {
            index.entry(h).and_modify(|seen| *seen = None).or_insert(Some(i as u32));
        }
    }
    let mut votes: HashMap<i64, u32> = HashMap::new();
    for (i, &(h, flat)) in new.iter().enumerate() {
        if let (false, Some(Some(j))) = (flat, index.get(&h)) {
            let dy = i as i64 - i64::from(*j);
            if dy != 0 {
                *votes.entry(dy).or_default() += 1;
            }
        }
    }
    let (&dy, &count) = votes.iter().max_by_key(|(dy, n)| (**n, -dy.abs()))?;
    if count < MIN_VOTES {
        return None;
    }
    // Longest run of rows whose bytes equal the old row `dy` above (or below).
    let rows = y1 - y0;
    let matches = |i: u32| {
        let j = i64::from(i) - dy;
        (0..i64::from(rows)).contains(&j)
            && old[j as usize].0 == new[i as usize].0
            && row(prev, y0 + j as u32, x0, x1) == row(cur, y0 + i, x0, x1)
    };
    let (mut best, mut start) = ((0u32, 0u32), None);
    for i in 0..=rows {
        match (i < rows && matches(i), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                if i - s > best.1 - best.0 {
                    best = (s, i);
                }
                start = None;
            }
            _ => {}
        }
    }
    let (b0, b1) = best;
    if b1 - b0 < MIN_BAND {
        return None;
    }
    let dst_y = y0 + b0;
    let src_y = (i64::from(dst_y) - dy) as u32;
    Some(Scroll { x: x0, w: x1 - x0, src_y, dst_y, h: b1 - b0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text-like lines: each row differs from its neighbours.
    fn page(w: u32, h: u32, first_line: u32) -> Frame {
        let mut px = Vec::new();
        for y in 0..h {
            let line = first_line + y;
            for x in 0..w {
                let seed = u64::from(line).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(x / 8);
                let ink = (seed.wrapping_mul(0xBF58_476D_1CE4_E5B9) >> (x % 8 + 40)) & 1 == 1 && x % 9 != 0;
                px.extend_from_slice(if ink { &[0, 0, 0, 0] } else { &[255, 255, 255, 0] });
            }
        }
        Frame::from_bgrx(w, h, px).expect("size")
    }

    #[test]
    fn finds_a_page_scrolled_up_by_some_lines() {
        let (prev, cur) = (page(256, 300, 0), page(256, 300, 37));
        let s = detect(&prev, &cur, (0, 256), (0, 300)).expect("a scroll");
        assert_eq!((s.src_y, s.dst_y, s.h, s.x, s.w), (37, 0, 263, 0, 256));
    }

    #[test]
    fn finds_a_scroll_down_and_ignores_unrelated_changes() {
        let (prev, cur) = (page(256, 300, 50), page(256, 300, 20));
        let s = detect(&prev, &cur, (0, 256), (0, 300)).expect("a scroll");
        assert_eq!((s.src_y, s.dst_y, s.h), (0, 30, 270));
        let other = page(256, 300, 1000);
        assert_eq!(detect(&prev, &other, (0, 256), (0, 300)), None);
    }

    #[test]
    fn flat_areas_do_not_count_as_a_scroll() {
        let blank = Frame::new(128, 200).expect("size");
        assert_eq!(detect(&blank, &blank, (0, 128), (0, 200)), None);
    }
}
