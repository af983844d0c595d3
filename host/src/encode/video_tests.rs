//! The video path inside the encoder: what enters it, that everything outside the region stays exact
//! in every update, and that a region that stops changing is refined to exact tiles.

use std::time::Duration;

use proptest::prelude::*;
use tether_shared::codec::{Tile, TileData};
use tether_shared::frame::Frame;
use tether_video::VideoTiles;

use super::tests::{desktop_with, grey_patch};
use super::{DamageEncoder, VideoRate, UNLIMITED};

const RATE: VideoRate = VideoRate { kbps_per_megapixel: 8000, cap_kbps: None };
const FRAME: Duration = Duration::from_millis(33);

/// Draw a moving photographic picture (smooth waves, every pixel its own colour) into `rect`.
fn play(frame: &mut Frame, (x0, y0, w, h): (u32, u32, u32, u32), n: u32) {
    let stride = frame.width() as usize * 4;
    let t = f64::from(n) * 0.2;
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (f64::from(x) / 13.0, f64::from(y) / 19.0);
            let wave = |a: f64, b: f64, p: f64| (128.0 + 110.0 * (a * fx + b * fy + p + t).sin()) as u8;
            let i = (y0 + y) as usize * stride + (x0 + x) as usize * 4;
            frame.bgrx_mut()[i..i + 3].copy_from_slice(&[
                wave(1.0, 0.3, 0.0) ^ (x as u8 & 3),
                wave(0.4, 1.1, 2.0),
                wave(0.7, -0.8, 4.0) ^ (y as u8 & 3),
            ]);
        }
    }
}

/// The viewer: applies every tile (video ones through their stream's decoder).
struct Viewer {
    frame: Frame,
    tiles: VideoTiles,
    scratch: Vec<u8>,
}

impl Viewer {
    fn new(w: u32, h: u32) -> Self {
        Self { frame: Frame::new(w, h).expect("size"), tiles: VideoTiles::default(), scratch: Vec::new() }
    }

    /// Apply an update; returns its bytes of payload and whether it carried a video frame.
    fn apply(&mut self, parts: &[Vec<Tile>]) -> (usize, bool) {
        let mut video = false;
        let mut bytes = 0;
        for tile in parts.iter().flatten() {
            video |= matches!(tile.data, TileData::Video { .. });
            bytes += tile.payload_len();
            self.tiles.apply(tile, &mut self.frame, &mut self.scratch).expect("apply");
        }
        (bytes, video)
    }

    /// Is every pixel outside the encoder's video region and the tiles it holds for video the source's?
    fn exact_outside(&self, source: &Frame, enc: &DamageEncoder) -> bool {
        let (region, held) = (enc.video_region(), enc.held_for_video());
        let w = source.width() as usize;
        self.frame.bgrx().chunks_exact(4).zip(source.bgrx().chunks_exact(4)).enumerate().all(|(i, (a, b))| {
            let (x, y) = ((i % w) as u32, (i / w) as u32);
            let within = |r: Option<(u32, u32, u32, u32)>| {
                r.is_some_and(|(rx, ry, rw, rh)| x >= rx && x < rx + rw && y >= ry && y < ry + rh)
            };
            within(region) || within(held) || a[..3] == b[..3]
        })
    }
}

#[test]
fn a_playing_video_goes_as_a_stream_text_beside_it_stays_exact_and_a_pause_is_refined() {
    let (w, h) = (640, 480);
    let video = (40, 60, 320, 240);
    let mut enc = DamageEncoder::new();
    enc.set_video_rate(Some(RATE));
    let mut viewer = Viewer::new(w, h);
    let mut now = Duration::ZERO;
    let (mut video_updates, mut video_bytes) = (0, 0);
    let mut screen = desktop_with(w, h, (420, 40), (100, 80), 0);
    for n in 0..40 {
        // The terminal pane beside the video scrolls now and then; the video plays at every capture.
        screen = desktop_with(w, h, (420, 40), (100, 80), n / 8);
        play(&mut screen, video, n);
        now += FRAME;
        let parts = enc.encode_at(&screen, UNLIMITED, now);
        let (bytes, carried_video) = viewer.apply(&parts);
        assert!(viewer.exact_outside(&screen, &enc), "update {n}: a pixel outside the video differs");
        if carried_video {
            video_updates += 1;
            video_bytes += bytes;
        }
    }
    let region = enc.video_region().expect("the video became a region");
    assert_eq!(region, video, "the region is the video's rectangle");
    assert!(video_updates >= 25, "only {video_updates} updates went as video");
    // Lossless, each update of this picture is ~300 KB; the stream is a few KB a frame.
    assert!(video_bytes / video_updates < 40_000, "{} bytes per video update", video_bytes / video_updates);

    // The video pauses: nothing is drawn; the encoder asks to run once the pause is long enough.
    let at = enc.poll_at().expect("a region asks for a wake-up");
    assert!(at > now && at <= now + super::video::LEAVE_AFTER);
    now = at;
    let parts = enc.encode_at(&screen, UNLIMITED, now);
    viewer.apply(&parts);
    assert_eq!(enc.video_region(), None);
    assert_eq!(viewer.frame, screen, "the paused picture is refined to exact");
    assert_eq!(enc.poll_at(), None);
}

#[test]
fn without_a_rate_or_for_small_or_text_motion_there_is_no_video() {
    let (w, h) = (640, 480);
    let mut enc = DamageEncoder::new();
    let mut viewer = Viewer::new(w, h);
    for n in 0..20 {
        let mut screen = desktop_with(w, h, (420, 40), (100, 80), n);
        play(&mut screen, (40, 60, 320, 240), n);
        let parts = enc.encode(&screen, UNLIMITED);
        assert!(!parts.iter().flatten().any(|t| matches!(t.data, TileData::Video { .. })));
        viewer.apply(&parts);
        assert_eq!(viewer.frame, screen);
    }
    // With a rate: a scrolling terminal (few colours) and a small animation (under four tiles) stay tiles.
    let mut enc = DamageEncoder::new();
    enc.set_video_rate(Some(RATE));
    for n in 0..20 {
        let mut screen = desktop_with(w, h, (420, 40), (100, 80), n);
        play(&mut screen, (40, 60, 100, 60), n);
        let parts = enc.encode(&screen, UNLIMITED);
        assert!(!parts.iter().flatten().any(|t| matches!(t.data, TileData::Video { .. })), "update {n}");
        viewer.apply(&parts);
        assert_eq!(viewer.frame, screen);
    }
}

#[test]
fn turning_the_video_path_off_refines_the_region_at_the_next_update() {
    let (w, h) = (640, 480);
    let mut enc = DamageEncoder::new();
    enc.set_video_rate(Some(RATE));
    let mut viewer = Viewer::new(w, h);
    let mut screen = desktop_with(w, h, (420, 40), (100, 80), 0);
    for n in 0..15 {
        play(&mut screen, (40, 60, 320, 240), n);
        viewer.apply(&enc.encode(&screen, UNLIMITED));
    }
    assert!(enc.video_region().is_some());
    // The technician picks lossless.
    enc.set_video_rate(None);
    play(&mut screen, (40, 60, 320, 240), 15);
    viewer.apply(&enc.encode(&screen, UNLIMITED));
    assert_eq!(enc.video_region(), None);
    assert_eq!(viewer.frame, screen);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    /// Windows moved, a pane scrolled, edits, and a video that plays and pauses: in every update every
    /// pixel outside the video region is exact, and once everything stops the whole screen is.
    #[test]
    fn with_the_video_path_everything_outside_the_region_is_exact_in_every_update(
        steps in proptest::collection::vec(
            ((-30i32..30, -30i32..30), 0u32..3, any::<bool>(), (0u32..560, 0u32..400), any::<bool>()),
            10..30,
        )
    ) {
        let (w, h) = (640, 480);
        let video = (200, 220, 256, 192);
        let mut enc = DamageEncoder::new();
        enc.set_video_rate(Some(RATE));
        let mut viewer = Viewer::new(w, h);
        let (mut wx, mut wy, mut line, mut n) = (150i32, 100i32, 0, 0);
        let mut now = Duration::ZERO;
        let mut screen = Frame::new(w, h).expect("size");
        for ((dx, dy), scroll, edit, (ex, ey), playing) in steps {
            wx = (wx + dx).clamp(0, 500);
            wy = (wy + dy).clamp(0, 400);
            line += scroll;
            n += u32::from(playing);
            screen = desktop_with(w, h, (wx as u32, wy as u32), (180, 120), line);
            play(&mut screen, video, n);
            if edit {
                grey_patch(&mut screen, ex, ey);
            }
            now += FRAME;
            viewer.apply(&enc.encode_at(&screen, UNLIMITED, now));
            prop_assert!(viewer.exact_outside(&screen, &enc));
        }
        // Everything stops: at the latest when the encoder asks, the whole screen is exact.
        if let Some(at) = enc.poll_at() {
            now = now.max(at);
        }
        viewer.apply(&enc.encode_at(&screen, UNLIMITED, now + FRAME));
        prop_assert_eq!(enc.video_region(), None);
        prop_assert!(viewer.frame == screen);
    }
}
