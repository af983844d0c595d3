use super::*;
use crate::capture::test_pattern::render;
use proptest::prelude::*;
use tether_shared::codec::{apply_tile, TileData};
use tether_shared::codec::{encode_tile, Quality};

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

/// A well-mixed hash (splitmix64): text that does not repeat.
fn mix(v: u64) -> u64 {
    let mut z = v.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A terminal-like page showing lines `first..`, with a white margin; each text line is 8 rows tall.
fn terminal(w: u32, h: u32, first: u32) -> Frame {
    let mut px = Vec::with_capacity((w * h * 4) as usize);
    for y in 0..h {
        let line = first + y / 8;
        for x in 0..w {
            let glyph = mix(u64::from(line) << 16 | u64::from(x / 6));
            let ink = x > 20 && x < w - 20 && y % 8 < 6 && (glyph >> (x % 6 + 6 * (y % 8))) & 1 == 1;
            px.extend_from_slice(if ink { &[30, 30, 30, 0] } else { &[250, 250, 250, 0] });
        }
    }
    Frame::from_bgrx(w, h, px).expect("size")
}

fn apply(parts: &[Vec<Tile>], viewer: &mut Frame) {
    let mut scratch = Vec::new();
    for tile in parts.iter().flatten() {
        apply_tile(tile, viewer, &mut scratch).expect("apply");
    }
}

fn bytes(parts: &[Vec<Tile>]) -> usize {
    parts.iter().flatten().map(|t| t.payload_len() + 24).sum()
}

#[test]
fn a_scrolled_page_is_one_copy_and_the_new_lines() {
    let (w, h) = (640, 480);
    let mut enc = DamageEncoder::new();
    let mut viewer = Frame::new(w, h).expect("size");
    apply(&enc.encode(&terminal(w, h, 0)), &mut viewer);
    let scrolled = terminal(w, h, 3);
    let parts = enc.encode(&scrolled);
    apply(&parts, &mut viewer);
    assert_eq!(viewer, scrolled, "exact after the scroll");
    let first = &parts[0][0];
    assert!(matches!(first.data, TileData::Copy { .. }), "starts with a copy: {first:?}");
    // Without scroll detection every changed tile of the page is resent.
    let old = terminal(w, h, 0);
    let naive: Vec<Vec<Tile>> = vec![damaged_tiles(&old, &scrolled, full_rect(&scrolled))
        .into_iter()
        .map(|(x, y, tw, th)| {
            let mut px = Vec::new();
            scrolled.copy_rect(x, y, tw, th, &mut px);
            encode_tile(x, y, tw, th, &px, Quality::Lossless)
        })
        .collect()];
    let (with, without) = (bytes(&parts), bytes(&naive));
    assert!(with * 5 < without, "{with} bytes with scroll detection, {without} without");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn any_sequence_of_scrolls_and_edits_stays_exact(steps in proptest::collection::vec((0u32..40, any::<bool>(), 0u32..600, 0u32..440), 1..8)) {
        let (w, h) = (600, 440);
        let mut enc = DamageEncoder::new();
        let mut viewer = Frame::new(w, h).expect("size");
        let mut line = 0;
        for (scroll, edit, ex, ey) in steps {
            line += scroll;
            let mut frame = terminal(w, h, line);
            if edit {
                let (ew, eh) = (40.min(w - ex), 30.min(h - ey));
                for y in ey..ey + eh {
                    let start = (y * w + ex) as usize * 4;
                    for px in frame.bgrx_mut()[start..start + ew as usize * 4].chunks_exact_mut(4) {
                        px.copy_from_slice(&[90, 90, 90, 0]);
                    }
                }
            }
            apply(&enc.encode(&frame), &mut viewer);
            prop_assert_eq!(&viewer, &frame);
        }
    }
}
