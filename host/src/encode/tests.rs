use super::*;
use crate::capture::test_pattern::render;
use proptest::prelude::*;
use tether_shared::codec::{apply_tile, TileData};
use tether_shared::codec::{encode_tile, Quality};
use tether_shared::session_proto::FrameUpdate;
use tether_shared::wire;

/// Rectangles sent, counting each tile inside a bundle.
fn rects_sent(parts: &[Vec<Tile>]) -> usize {
    parts
        .iter()
        .flatten()
        .map(|t| match &t.data {
            TileData::Packed { tiles, .. } => tiles.len(),
            _ => 1,
        })
        .sum()
}

#[test]
fn only_changed_tiles_are_sent_and_the_result_matches() {
    let mut enc = DamageEncoder::new();
    let mut viewer = Frame::new(640, 480).expect("size");
    let mut scratch = Vec::new();
    let mut counts = Vec::new();
    for n in 0..5 {
        let frame = render(640, 480, n);
        let parts = enc.encode(&frame, UNLIMITED);
        counts.push(rects_sent(&parts));
        for tile in parts.iter().flatten() {
            apply_tile(tile, &mut viewer, &mut scratch).expect("apply");
        }
        assert_eq!(viewer, frame, "frame {n}");
    }
    assert_eq!(counts[0], 10 * 8, "first update is every tile");
    assert!(counts[1..].iter().all(|&c| c > 0 && c < 10), "later updates are a few tiles: {counts:?}");
    assert!(enc.encode(&render(640, 480, 4), UNLIMITED).is_empty(), "no change, no update");
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

/// An edit on top of a [`terminal`] screen: a grey 40×30 patch at (`ex`, `ey`), cut at the frame's edge.
pub(super) fn grey_patch(frame: &mut Frame, ex: u32, ey: u32) {
    let (w, h) = (frame.width(), frame.height());
    let (ew, eh) = (40.min(w - ex), 30.min(h - ey));
    for y in ey..ey + eh {
        let start = (y * w + ex) as usize * 4;
        for px in frame.bgrx_mut()[start..start + ew as usize * 4].chunks_exact_mut(4) {
            px.copy_from_slice(&[90, 90, 90, 0]);
        }
    }
}

/// A log in a terminal: 12 distinct lines of glyphs (6×8 pixels, 64 of them) repeated down the page.
/// Text repeats across tiles — the same lines, words and glyphs — which only one stream per part sees.
fn typeset(w: u32, h: u32) -> Frame {
    let mut px = Vec::with_capacity((w * h * 4) as usize);
    for y in 0..h {
        for x in 0..w {
            let glyph = mix(u64::from(y / 8 % 12) << 16 | u64::from(x / 6)) % 64;
            let ink = x > 20 && x < w - 20 && y % 8 < 6 && (mix(glyph) >> (x % 6 + 6 * (y % 8))) & 1 == 1;
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

/// Send the parts the way a session does — serialized as `FrameUpdate` messages within the
/// video cap and read back — and apply what arrives. Checks the encoder's part layout on the way: copies
/// come first, and each part's lossless pixels travel as at most one bundle.
fn send_and_apply(parts: Vec<Vec<Tile>>, viewer: &mut Frame) {
    let (width, height) = (viewer.width(), viewer.height());
    let count = parts.len();
    let mut received = Vec::new();
    for (i, tiles) in parts.into_iter().enumerate() {
        let bundles = tiles.iter().filter(|t| matches!(t.data, TileData::Packed { .. })).count();
        assert!(bundles <= 1, "{bundles} bundles in one part");
        // Tiles of up to 256 colours (text, UI) travel in the bundle, never as palette tiles.
        assert!(
            !tiles.iter().any(|t| matches!(t.data, TileData::Palette { .. })),
            "palette outside the bundle"
        );
        let copies_first = tiles.iter().skip_while(|t| matches!(t.data, TileData::Copy { .. }));
        assert!(i == 0 || !tiles.iter().any(|t| matches!(t.data, TileData::Copy { .. })));
        assert!(!copies_first.clone().any(|t| matches!(t.data, TileData::Copy { .. })), "copies come first");
        let msg = FrameUpdate { seq: 1, capture_id: 1, width, height, tiles, last: i + 1 == count };
        let framed = wire::encode(&msg, wire::MAX_VIDEO_MSG).expect("fits a video message");
        let update: FrameUpdate = wire::decode(&framed[4..]).expect("decodes");
        received.push(update.tiles);
    }
    apply(&received, viewer);
}

fn bytes(parts: &[Vec<Tile>]) -> usize {
    parts.iter().flatten().map(|t| t.payload_len() + 24).sum()
}

#[test]
fn a_scrolled_page_is_one_copy_and_the_new_lines() {
    let (w, h) = (640, 480);
    let mut enc = DamageEncoder::new();
    let mut viewer = Frame::new(w, h).expect("size");
    apply(&enc.encode(&terminal(w, h, 0), UNLIMITED), &mut viewer);
    let scrolled = terminal(w, h, 3);
    let parts = enc.encode(&scrolled, UNLIMITED);
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
                grey_patch(&mut frame, ex, ey);
            }
            send_and_apply(enc.encode(&frame, UNLIMITED), &mut viewer);
            prop_assert_eq!(&viewer, &frame);
        }
    }
}

#[test]
fn a_screen_too_large_for_one_part_is_split_and_each_part_decodes() {
    // Noise does not compress: 2560x1600 is 12 MB of BGR, more than one part's budget.
    let (w, h) = (2560, 1600);
    let mut px = Vec::with_capacity((w * h * 4) as usize);
    for i in 0..u64::from(w * h) {
        let v = mix(i).to_le_bytes();
        px.extend_from_slice(&[v[0], v[1], v[2], 0]);
    }
    let frame = Frame::from_bgrx(w, h, px).expect("size");
    let parts = DamageEncoder::new().encode(&frame, UNLIMITED);
    assert!(parts.len() >= 2, "{} parts", parts.len());
    assert_eq!(rects_sent(&parts), 40 * 25);
    let mut viewer = Frame::new(w, h).expect("size");
    send_and_apply(parts, &mut viewer);
    assert_eq!(viewer, frame);
}

#[test]
fn a_text_screen_is_one_bundle_far_smaller_than_tile_by_tile() {
    let (w, h) = (1280, 720);
    let page = typeset(w, h);
    let parts = DamageEncoder::new().encode(&page, UNLIMITED);
    assert_eq!(parts.len(), 1);
    let bundled = bytes(&parts);
    let tile_by_tile: Vec<Vec<Tile>> = vec![all_tiles(&page)
        .into_iter()
        .map(|(x, y, tw, th)| {
            let mut px = Vec::new();
            page.copy_rect(x, y, tw, th, &mut px);
            encode_tile(x, y, tw, th, &px, Quality::Lossless)
        })
        .collect()];
    assert!(
        bundled * 2 < bytes(&tile_by_tile),
        "{bundled} bytes bundled, {} tile by tile",
        bytes(&tile_by_tile)
    );
    let mut viewer = Frame::new(w, h).expect("size");
    send_and_apply(parts, &mut viewer);
    assert_eq!(viewer, page);
}

/// Pixel rectangles in an update (copies not counted).
fn pixel_rects(parts: &[Vec<Tile>]) -> usize {
    rects_sent(parts) - parts.iter().flatten().filter(|t| matches!(t.data, TileData::Copy { .. })).count()
}

/// Encode `frame` with `budget` until the encoder has nothing more to send, applying each update the way a
/// session does; returns how many updates it took. Every update of a budget-limited frame carries pixels.
fn catch_up(enc: &mut DamageEncoder, frame: &Frame, budget: usize, viewer: &mut Frame) -> usize {
    let mut updates = 0;
    loop {
        let parts = enc.encode(frame, budget);
        if parts.is_empty() {
            assert!(!enc.is_behind(), "nothing sent, nothing left");
            return updates;
        }
        assert!(!parts[0].is_empty(), "the first part is never empty");
        assert!(pixel_rects(&parts) > 0 || !enc.is_behind(), "a budget-limited update carries pixels");
        send_and_apply(parts, viewer);
        updates += 1;
        assert!(updates <= 10_000, "no progress");
    }
}

#[test]
fn a_tiny_budget_sends_a_frame_over_several_updates_and_converges_exactly() {
    let (w, h) = (640, 480);
    let frame = render(w, h, 0);
    let mut enc = DamageEncoder::new();
    let mut viewer = Frame::new(w, h).expect("size");
    let first = enc.encode(&frame, 1);
    assert_eq!(pixel_rects(&first), 1, "one rectangle, over the budget: progress");
    assert!(enc.is_behind());
    send_and_apply(first, &mut viewer);
    assert_ne!(viewer, frame, "not there yet");
    let more = catch_up(&mut enc, &frame, 1, &mut viewer);
    assert_eq!(more, 10 * 8 - 1, "one tile per update");
    assert_eq!(viewer, frame);
    assert!(enc.encode(&frame, 1).is_empty(), "nothing left to send");
}

#[test]
fn a_budget_is_kept_within_a_guess_unless_one_rectangle_alone_exceeds_it() {
    let (w, h) = (1280, 720);
    let page = typeset(w, h);
    let budget = 20_000;
    let mut enc = DamageEncoder::new();
    let mut viewer = Frame::new(w, h).expect("size");
    let mut updates = 0;
    loop {
        let parts = enc.encode(&page, budget);
        if parts.is_empty() {
            break;
        }
        let sent: usize = parts.iter().flatten().map(|t| t.payload_len() + 16).sum();
        // Pending pixels are costed at the last parts' compression: on a page of the same kind of text
        // that guess is close, so the update stays within half a budget of it.
        assert!(
            sent <= budget * 3 / 2 || pixel_rects(&parts) == 1,
            "{sent} bytes in {} rects",
            pixel_rects(&parts)
        );
        send_and_apply(parts, &mut viewer);
        updates += 1;
    }
    assert!(updates > 1, "the text screen does not fit {budget} bytes");
    assert_eq!(viewer, page);
    // Compression counts: an update holds far more than the budget's worth of raw pixels (64×64 BGR
    // tiles are 12 KB each).
    let raw = (w * h * 3) as usize;
    assert!(updates < raw / budget / 2, "{updates} updates for {raw} raw bytes");
}

#[test]
fn a_small_budget_carries_many_compressible_tiles_once_their_ratio_is_known() {
    // A budget smaller than one raw tile (64×64 BGR is 12 KB): costed raw, every update would carry a
    // single rectangle; at the compression text achieves, each carries many.
    let (w, h) = (1280, 720);
    let page = typeset(w, h);
    let mut enc = DamageEncoder::new();
    let mut viewer = Frame::new(w, h).expect("size");
    let budget = 5_000;
    let mut most = 0;
    loop {
        let parts = enc.encode(&page, budget);
        if parts.is_empty() {
            break;
        }
        most = most.max(pixel_rects(&parts));
        send_and_apply(parts, &mut viewer);
    }
    assert_eq!(viewer, page);
    assert!(most >= 4, "at most {most} rectangles per update");
}

#[test]
fn the_rest_of_a_cut_update_follows_a_changing_screen_and_converges() {
    let (w, h) = (640, 480);
    let mut enc = DamageEncoder::new();
    let mut viewer = Frame::new(w, h).expect("size");
    // The screen changes while the first frame is still being caught up.
    for n in 0..6 {
        let frame = render(w, h, n);
        send_and_apply(enc.encode(&frame, 4_000), &mut viewer);
    }
    let last = render(w, h, 6);
    catch_up(&mut enc, &last, 4_000, &mut viewer);
    assert_eq!(viewer, last);
}

#[test]
fn after_a_reset_owed_tiles_go_even_where_they_look_unchanged() {
    // A monitor switch: the viewer keeps its old picture (same size), the encoder forgets it. The new
    // screen is black but for one corner, so comparing with a blank picture would skip most tiles.
    let (w, h) = (640, 480);
    let mut enc = DamageEncoder::new();
    let mut viewer = Frame::new(w, h).expect("size");
    let old = render(w, h, 3);
    catch_up(&mut enc, &old, UNLIMITED, &mut viewer);
    assert_eq!(viewer, old);
    enc.reset();
    let mut new = Frame::new(w, h).expect("size");
    for px in new.bgrx_mut()[..4 * 100].chunks_exact_mut(4) {
        px.copy_from_slice(&[200, 200, 200, 0]);
    }
    let updates = catch_up(&mut enc, &new, 1, &mut viewer);
    assert_eq!(updates, 10 * 8, "every tile, one at a time");
    assert_eq!(viewer, new);
}

#[test]
fn a_scroll_under_a_budget_is_a_copy_first_and_converges() {
    let (w, h) = (640, 480);
    let mut enc = DamageEncoder::new();
    let mut viewer = Frame::new(w, h).expect("size");
    catch_up(&mut enc, &terminal(w, h, 0), UNLIMITED, &mut viewer);
    let scrolled = terminal(w, h, 3);
    let parts = enc.encode(&scrolled, 1);
    assert!(matches!(parts[0][0].data, TileData::Copy { .. }), "starts with the copy");
    assert_eq!(pixel_rects(&parts), 1, "and one rectangle of pixels");
    send_and_apply(parts, &mut viewer);
    catch_up(&mut enc, &scrolled, 1, &mut viewer);
    assert_eq!(viewer, scrolled);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    #[test]
    fn any_edits_under_any_budget_converge_exactly(
        steps in proptest::collection::vec(
            (0u32..40, any::<bool>(), 0u32..600, 0u32..440, 1usize..60_000),
            1..6,
        ),
    ) {
        let (w, h) = (600, 440);
        let mut enc = DamageEncoder::new();
        let mut viewer = Frame::new(w, h).expect("size");
        let mut line = 0;
        let mut frame = terminal(w, h, 0);
        for (scroll, edit, ex, ey, budget) in steps {
            line += scroll;
            frame = terminal(w, h, line);
            if edit {
                grey_patch(&mut frame, ex, ey);
            }
            // One update per screen, whatever is left over carries on to the next.
            send_and_apply(enc.encode(&frame, budget), &mut viewer);
        }
        catch_up(&mut enc, &frame, 5_000, &mut viewer);
        prop_assert_eq!(&viewer, &frame);
    }
}

#[test]
fn under_a_budget_a_key_press_goes_before_a_video_above_it() {
    // A "video" fills the top of the screen and changes at every capture; a key press changes one tile
    // at the bottom. The budget holds only part of the video, yet the key's tile goes in the first update.
    let (w, h) = (640, 480);
    let mut enc = DamageEncoder::new();
    let mut screen = Frame::new(w, h).expect("size");
    let mut viewer = Frame::new(w, h).expect("size");
    send_and_apply(enc.encode(&screen, UNLIMITED), &mut viewer);
    let draw_video = |f: &mut Frame, n: u64| {
        let stride = w as usize * 4;
        for (i, px) in f.bgrx_mut()[..stride * 256].iter_mut().enumerate() {
            *px = if i % 4 == 3 { 0 } else { mix(i as u64 ^ (n << 40)) as u8 };
        }
    };
    for n in 0..4 {
        draw_video(&mut screen, n);
        send_and_apply(enc.encode(&screen, 20_000), &mut viewer);
    }
    assert!(enc.is_behind(), "the video does not fit the budget");
    // The key press, below the video.
    let key = (320u32, 400u32);
    draw_video(&mut screen, 4);
    let stride = w as usize * 4;
    for row in key.1..key.1 + 16 {
        let i = row as usize * stride + key.0 as usize * 4;
        for px in screen.bgrx_mut()[i..i + 40].chunks_exact_mut(4) {
            px[..3].fill(0xee); // (the fourth byte is padding, never sent)
        }
    }
    send_and_apply(enc.encode(&screen, 20_000), &mut viewer);
    assert!(viewer.rect_eq(&screen, key.0, key.1, 10, 16), "the key press waited behind the video");
}

/// A `#336699` desktop with a busy `ww × wh` window at `(wx, wy)` (clipped to the screen) and, at the
/// bottom right, a 200-pixel-wide terminal pane showing lines from `line` on.
pub(super) fn desktop_with(w: u32, h: u32, (wx, wy): (u32, u32), (ww, wh): (u32, u32), line: u32) -> Frame {
    let mut f = Frame::new(w, h).expect("size");
    for px in f.bgrx_mut().chunks_exact_mut(4) {
        px.copy_from_slice(&[0x99, 0x66, 0x33, 0]);
    }
    let pane = terminal(200, h / 2, line);
    let stride = w as usize * 4;
    for r in 0..h / 2 {
        let dst = (h / 2 + r) as usize * stride + (w - 200) as usize * 4;
        let src = r as usize * 200 * 4;
        f.bgrx_mut()[dst..dst + 800].copy_from_slice(&pane.bgrx()[src..src + 800]);
    }
    for r in 0..wh.min(h.saturating_sub(wy)) {
        for c in 0..ww.min(w.saturating_sub(wx)) {
            let v = mix(u64::from(r) << 20 | u64::from(c));
            let i = (wy + r) as usize * stride + (wx + c) as usize * 4;
            f.bgrx_mut()[i..i + 3].copy_from_slice(&v.to_le_bytes()[..3]);
        }
    }
    f
}

#[test]
fn a_dragged_window_costs_a_copy_and_the_exposed_desktop() {
    let (w, h) = (800, 600);
    let mut enc = DamageEncoder::new();
    let mut viewer = Frame::new(w, h).expect("size");
    send_and_apply(enc.encode(&desktop_with(w, h, (100, 100), (300, 200), 0), UNLIMITED), &mut viewer);
    let mut most = 0;
    for step in 1..=10u32 {
        let frame = desktop_with(w, h, (100 + 6 * step, 100 + 2 * step), (300, 200), 0);
        let parts = enc.encode(&frame, UNLIMITED);
        most = most.max(bytes(&parts));
        send_and_apply(parts, &mut viewer);
        assert_eq!(viewer, frame, "exact after step {step}");
    }
    // The window is noise: resending it would be ~180 KB an update. A copy and two thin strips of
    // desktop are a few hundred bytes.
    assert!(most < 2_000, "{most} bytes for one step of the drag");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn any_sequence_of_moves_pane_scrolls_and_edits_stays_exact(
        steps in proptest::collection::vec(
            ((-40i32..40, -40i32..40), 0u32..30, any::<bool>(), (0u32..560, 0u32..400)),
            1..8,
        )
    ) {
        let (w, h) = (600, 440);
        let mut enc = DamageEncoder::new();
        let mut viewer = Frame::new(w, h).expect("size");
        let (mut wx, mut wy, mut line) = (150i32, 100i32, 0);
        for ((dx, dy), scroll, edit, (ex, ey)) in steps {
            wx = (wx + dx).clamp(0, 500);
            wy = (wy + dy).clamp(0, 400);
            line += scroll;
            let mut frame = desktop_with(w, h, (wx as u32, wy as u32), (180, 120), line);
            if edit {
                grey_patch(&mut frame, ex, ey);
            }
            send_and_apply(enc.encode(&frame, UNLIMITED), &mut viewer);
            prop_assert_eq!(&viewer, &frame);
        }
    }
}

/// X Damage's rectangles limit the comparison: drawing they name is found and sent exactly, an
/// unchanged screen with nothing drawn costs no comparison, and what a budget cut short is compared
/// again next time although nothing new is drawn there.
#[test]
fn drawn_rectangles_limit_the_comparison_and_what_did_not_fit_is_compared_again() {
    use std::time::Duration;
    let (w, h) = (640, 480);
    let mut enc = DamageEncoder::new();
    let mut viewer = Frame::new(w, h).expect("size");
    let mut screen = typeset(w, h);
    let t = |n: u64| Duration::from_millis(33 * n);
    send_and_apply(enc.encode_drawn(&screen, UNLIMITED, t(1), Some(&[])), &mut viewer);
    assert_eq!(viewer, screen, "a fresh picture goes whole whatever was drawn");
    // A key press at (300, 200): named, it is found.
    grey_patch(&mut screen, 300, 200);
    let parts = enc.encode_drawn(&screen, UNLIMITED, t(2), Some(&[(300, 200, 40, 30)]));
    assert!(rects_sent(&parts) > 0);
    send_and_apply(parts, &mut viewer);
    assert_eq!(viewer, screen);
    // Drawing nobody reported is not looked for (that is what the host's periodic full compare is for)…
    grey_patch(&mut screen, 40, 40);
    assert!(enc.encode_drawn(&screen, UNLIMITED, t(3), Some(&[(500, 400, 8, 8)])).is_empty());
    // …and found by a full compare.
    send_and_apply(enc.encode_drawn(&screen, UNLIMITED, t(4), None), &mut viewer);
    assert_eq!(viewer, screen);
    // A large change under a small budget: the rest goes in later updates though nothing is drawn.
    let mut noisy = screen.clone();
    for (i, px) in noisy.bgrx_mut().iter_mut().enumerate() {
        if i % 4 != 3 {
            *px = mix(i as u64) as u8;
        }
    }
    let everything = [(0, 0, w, h)];
    send_and_apply(enc.encode_drawn(&noisy, 40_000, t(5), Some(&everything)), &mut viewer);
    assert!(enc.is_behind());
    let mut n = 6;
    while enc.is_behind() {
        send_and_apply(enc.encode_drawn(&noisy, 40_000, t(n), Some(&[])), &mut viewer);
        n += 1;
        assert!(n < 200, "never caught up");
    }
    assert_eq!(viewer, noisy);
}
