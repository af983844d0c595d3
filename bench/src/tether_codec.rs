//! Runs a clip through Tether's own codec exactly as a session would: the host's `DamageEncoder` on one
//! core, every part serialized as the `FrameUpdate` message that goes on the wire (so the byte
//! counts include framing), and the viewer's `Decoder` applying it. The decoded screen is compared with the
//! source after every update: identical means lossless, otherwise the error feeds a PSNR.
//!
//! Sizes come from serializing and kinds from the variant's name, so new encoder modes show up in the
//! breakdown by themselves; the one variant looked into is a bundle (`Packed`), counted as the tiles and
//! pixels it holds. How an encoder is configured is confined to [`Mode`].

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tether_host::encode::VideoRate;
use tether_host::encode::{DamageEncoder, UNLIMITED};
use tether_shared::codec::{Quality, Tile, TileData, TILE};
use tether_shared::frame::Frame;
use tether_shared::session_proto::FrameUpdate;
use tether_shared::wire::{self, MAX_VIDEO_MSG};
use tether_viewer::decode::Decoder;
use tether_viewer::session::snapshots::Snapshots;

use crate::clip::ClipReader;
use crate::cpu_time::Stopwatch;
use crate::table::{CodecResult, Fidelity};

/// Tether's result plus where its bytes and time went.
#[derive(Debug)]
pub struct TetherRun {
    pub result: CodecResult,
    pub detail: Detail,
}

/// Per-update statistics behind the table row.
#[derive(Debug, Default)]
pub struct Detail {
    /// On-CPU encode time of every update, first included (the fastest of the timing passes).
    pub encode_times: Vec<Duration>,
    /// Wall-clock encode time of every update (includes moments the core went to another process).
    pub encode_wall: Vec<Duration>,
    /// Encode passes the times are the best of.
    pub passes: usize,
    /// Updates (after the first) that carried at least one tile.
    pub changed_updates: usize,
    /// Tiles sent after the first update.
    pub tiles: usize,
    /// Tiles by kind (variant name), after the first update.
    pub by_kind: BTreeMap<String, KindStats>,
    /// Tiles by kind in the first update.
    pub first_by_kind: BTreeMap<String, KindStats>,
    /// Cost of copying one frame (the encoder keeps a copy of what the viewer has).
    pub frame_copy: Duration,
    /// Cost of comparing two whole frames that are equal (the floor for damage detection).
    pub frame_compare: Duration,
    /// Cost of `encode()` when nothing changed: damage detection and bookkeeping alone.
    pub idle_encode: Duration,
    /// On-CPU encode time per frame when told where the screen was drawn (as X Damage does; here the
    /// box of what differs from the previous capture), and of an unchanged frame with nothing drawn.
    pub drawn_encode_times: Vec<Duration>,
    pub drawn_idle_encode: Duration,
    /// The first frame's B, G, R bytes compressed as one zstd level-1 stream (not per tile).
    pub whole_frame_zstd: usize,
    /// On-CPU time of the viewer's `Decoder` applying every part of each update, first included.
    pub decode_times: Vec<Duration>,
    /// On-CPU time of publishing each decoded picture as the session does (`Snapshots`), first included.
    pub publish_times: Vec<Duration>,
    /// Of those, snapshots made by copying only the changed rectangles.
    pub publish_reused: u64,
    /// On-CPU time of a new whole copy per picture (what the session did before `Snapshots`).
    pub copy_times: Vec<Duration>,
    /// Frames per second of the clip (for the decoder's share of a core).
    pub fps: u32,
    /// While a video region was active: the error inside it and the pixels outside it that differ.
    pub video: VideoRegionStats,
}

/// How the video path did, over the updates after which the encoder had a video region.
#[derive(Debug, Default)]
pub struct VideoRegionStats {
    /// Updates after which a region was active.
    pub updates: usize,
    /// The region of the last of them.
    pub last_region: Option<(u32, u32, u32, u32)>,
    /// Squared error and samples inside the region (for its PSNR).
    squared: f64,
    samples: u64,
    /// Updates after which some pixel outside the region differed from the source, and the most
    /// such pixels after one update.
    pub outside_differing_updates: usize,
    pub outside_differing_max: u64,
    /// The same, counting only pixels of tiles that went lossless (not JPEG): "text around exact".
    pub lossless_outside_differing_updates: usize,
}

impl VideoRegionStats {
    pub fn psnr(&self) -> Option<f64> {
        (self.samples > 0)
            .then(|| 10.0 * (255.0f64 * 255.0 / (self.squared / self.samples as f64).max(1e-9)).log10())
    }

    fn add(
        &mut self,
        shown: &Frame,
        source: &Frame,
        region: (u32, u32, u32, u32),
        lossy: &[bool],
        cols: usize,
    ) {
        let (rx, ry, rw, rh) = region;
        self.updates += 1;
        self.last_region = Some(region);
        let (mut outside, mut lossless_outside) = (0u64, 0u64);
        let width = source.width() as usize;
        for (i, (a, b)) in shown.bgrx().chunks_exact(4).zip(source.bgrx().chunks_exact(4)).enumerate() {
            let (x, y) = ((i % width) as u32, (i / width) as u32);
            let inside = x >= rx && x < rx + rw && y >= ry && y < ry + rh;
            if inside {
                for c in 0..3 {
                    let d = f64::from(a[c].abs_diff(b[c]));
                    self.squared += d * d;
                }
                self.samples += 3;
            } else if a[..3] != b[..3] {
                outside += 1;
                let tile = (y / TILE) as usize * cols + (x / TILE) as usize;
                if !lossy.get(tile).copied().unwrap_or(false) {
                    lossless_outside += 1;
                }
            }
        }
        if outside > 0 {
            self.outside_differing_updates += 1;
            self.outside_differing_max = self.outside_differing_max.max(outside);
        }
        if lossless_outside > 0 {
            self.lossless_outside_differing_updates += 1;
        }
    }
}

/// Tiles of one kind: how many, their serialized bytes and the pixels they cover.
#[derive(Debug, Default, Clone, Copy)]
pub struct KindStats {
    pub tiles: usize,
    pub bytes: u64,
    pub pixels: u64,
}

impl Detail {
    /// Mean encode time of the updates after the first.
    pub fn steady_mean(&self) -> Duration {
        mean_after_first(&self.encode_times)
    }

    /// The `p`-quantile (0–1) of the encode times after the first.
    pub fn steady_quantile(&self, p: f64) -> Duration {
        let mut rest: Vec<Duration> = self.encode_times.get(1..).unwrap_or_default().to_vec();
        rest.sort_unstable();
        let i = ((rest.len() as f64 - 1.0) * p).round().max(0.0) as usize;
        rest.get(i).copied().unwrap_or_default()
    }
}

/// The encoder settings measured. The only place that knows how an encoder is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `DamageEncoder::new()`: every pixel exact.
    Lossless,
    /// What a host session uses unless told otherwise (`Quality::default()`).
    SessionDefault,
}

impl Mode {
    /// The modes worth running: the session default only when it differs from lossless.
    pub fn all() -> Vec<Mode> {
        if Quality::default() == Quality::Lossless {
            vec![Mode::Lossless]
        } else {
            vec![Mode::Lossless, Mode::SessionDefault]
        }
    }

    pub fn name(self) -> String {
        match (self, Quality::default()) {
            (Mode::Lossless, _) | (Mode::SessionDefault, Quality::Lossless) => "tether lossless".into(),
            (Mode::SessionDefault, Quality::Balanced { jpeg_quality }) => {
                format!("tether default (JPEG q{jpeg_quality} for photos)")
            }
        }
    }

    fn encoder(self) -> DamageEncoder {
        match (self, Quality::default()) {
            (Mode::Lossless, _) | (Mode::SessionDefault, Quality::Lossless) => DamageEncoder::new(),
            (Mode::SessionDefault, quality @ Quality::Balanced { jpeg_quality }) => {
                // As a session without a line estimate: the video path at the quality's rate.
                let mut encoder = DamageEncoder::with_quality(quality);
                encoder.set_video_rate(Some(VideoRate::for_quality(jpeg_quality, None)));
                encoder
            }
        }
    }
}

/// Encode, serialize, decode and verify every frame of the clip; then encode it `passes - 1` more times
/// and keep, per frame, the fastest of all passes (other processes on a shared machine only ever make an
/// encode slower, so the minimum is the encoder's own cost).
pub fn run(clip: &Path, mode: Mode, passes: usize) -> Result<TetherRun> {
    let reader = ClipReader::open(clip)?;
    let header = reader.header();
    let mut encoder = mode.encoder();
    let mut decoder = Decoder::new();
    let mut snapshots = Snapshots::default();
    let mut published: Option<std::sync::Arc<Frame>> = None;
    let mut copied: Option<std::sync::Arc<Frame>> = None;
    let mut result = CodecResult::new(&mode.name(), header.fps);
    let mut detail = Detail { passes: passes.max(1), fps: header.fps, ..Detail::default() };
    let mut error = ErrorSum::default();
    // Which grid tiles the viewer last got as lossy (JPEG or video) pixels.
    let mut lossy: Vec<bool> = Vec::new();
    for (seq, item) in reader.enumerate() {
        let frame = item?;
        let watch = Stopwatch::start();
        let parts = encoder.encode(&frame, UNLIMITED);
        let lap = watch.stop();
        detail.encode_times.push(lap.cpu);
        detail.encode_wall.push(lap.wall);

        let first = seq == 0;
        let count = parts.len();
        if !first && count > 0 {
            detail.changed_updates += 1;
        }
        let mut bytes = 0;
        let mut decode = Duration::ZERO;
        let cols = frame.width().div_ceil(TILE) as usize;
        lossy.resize(cols * frame.height().div_ceil(TILE) as usize, false);
        for (i, tiles) in parts.into_iter().enumerate() {
            mark_lossy(&tiles, &mut lossy, cols);
            tally(&tiles, if first { &mut detail.first_by_kind } else { &mut detail.by_kind })?;
            if !first {
                detail.tiles += tiles.iter().map(|t| inner(t).0).sum::<usize>();
            }
            let update = FrameUpdate {
                seq: seq as u64,
                capture_id: seq as u64,
                width: frame.width(),
                height: frame.height(),
                tiles,
                last: i + 1 == count,
            };
            bytes += wire::encode(&update, MAX_VIDEO_MSG).context("serializing an update")?.len();
            let watch = Stopwatch::start();
            let done = decoder.apply(&update).with_context(|| format!("decoding update {seq}"))?;
            decode += watch.stop().cpu;
            if let (Some(info), Some(frame)) = (done, decoder.frame()) {
                // What the session does with a completed picture: a snapshot for the window.
                let watch = Stopwatch::start();
                let snapshot = snapshots.take(frame, info.dirty);
                snapshots.recycle(published.replace(snapshot));
                detail.publish_times.push(watch.stop().cpu);
                // For comparison, what it cost before: a new whole copy each time, the old one dropped.
                let watch = Stopwatch::start();
                drop(std::hint::black_box(copied.replace(std::sync::Arc::new(frame.clone()))));
                detail.copy_times.push(watch.stop().cpu);
            }
        }
        detail.decode_times.push(decode);
        result.push_update(bytes);
        let Some(shown) = decoder.frame() else {
            bail!("the viewer has no frame after update {seq}");
        };
        error.add(shown, &frame)?;
        if let Some(region) = encoder.video_region() {
            detail.video.add(shown, &frame, region, &lossy, cols);
        }
        if first {
            (detail.frame_copy, detail.frame_compare) = copy_and_compare_cost(&frame);
            detail.idle_encode = idle_encode_cost(&frame);
            detail.whole_frame_zstd = whole_frame_zstd(&frame)?;
        }
    }
    detail.publish_reused = snapshots.reused;
    (detail.drawn_encode_times, detail.drawn_idle_encode) = drawn_pass(clip, mode)?;
    for _ in 1..passes {
        let (cpu, wall) = timing_pass(clip, mode)?;
        keep_fastest(&mut detail.encode_times, &cpu);
        keep_fastest(&mut detail.encode_wall, &wall);
    }
    let total: Duration = detail.encode_times.iter().sum();
    result.encode_ms_per_frame = ms(total) / detail.encode_times.len().max(1) as f64;
    result.fidelity = error.fidelity();
    Ok(TetherRun { result, detail })
}

/// Encode the clip with a fresh encoder, timing only: on-CPU and wall time per frame.
fn timing_pass(clip: &Path, mode: Mode) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let mut encoder = mode.encoder();
    let (mut cpu, mut wall) = (Vec::new(), Vec::new());
    for item in ClipReader::open(clip)? {
        let frame = item?;
        let watch = Stopwatch::start();
        std::hint::black_box(encoder.encode(&frame, UNLIMITED));
        let lap = watch.stop();
        cpu.push(lap.cpu);
        wall.push(lap.wall);
    }
    Ok((cpu, wall))
}

/// Note which grid tiles the tiles of a part leave lossy (JPEG; a video rectangle) or exact: the last
/// piece touching a grid tile decides (a lossless piece over part of a JPEG tile counts it exact, so the
/// "lossless pixels that differ" this feeds is an upper bound).
fn mark_lossy(tiles: &[Tile], lossy: &mut [bool], cols: usize) {
    for tile in tiles {
        let is_lossy = !tile.is_lossless();
        let (x0, y0) = (tile.x / TILE, tile.y / TILE);
        let (x1, y1) = ((tile.x + tile.w).div_ceil(TILE), (tile.y + tile.h).div_ceil(TILE));
        for ty in y0..y1 {
            for tx in x0..x1 {
                if let Some(l) = lossy.get_mut(ty as usize * cols + tx as usize) {
                    *l = is_lossy;
                }
            }
        }
    }
}

/// Encode the clip told where each capture was drawn (the box of the pixels that differ from the
/// previous capture, found before the clock starts: X Damage hands the host this for free), timing the
/// encode only; then an unchanged frame with nothing drawn.
fn drawn_pass(clip: &Path, mode: Mode) -> Result<(Vec<Duration>, Duration)> {
    let mut encoder = mode.encoder();
    let mut times = Vec::new();
    let mut last: Option<Frame> = None;
    let mut now = Duration::ZERO;
    for item in ClipReader::open(clip)? {
        let frame = item?;
        let drawn: Vec<(u32, u32, u32, u32)> = match &last {
            Some(prev) if prev.width() == frame.width() && prev.height() == frame.height() => {
                changed_box(prev, &frame).into_iter().collect()
            }
            _ => vec![(0, 0, frame.width(), frame.height())],
        };
        now += Duration::from_millis(33);
        let watch = Stopwatch::start();
        std::hint::black_box(encoder.encode_drawn(&frame, UNLIMITED, now, Some(&drawn)));
        times.push(watch.stop().cpu);
        last = Some(frame);
    }
    let mut idle = Duration::MAX;
    if let Some(frame) = &last {
        for _ in 0..5 {
            now += Duration::from_millis(33);
            let watch = Stopwatch::start();
            std::hint::black_box(encoder.encode_drawn(frame, UNLIMITED, now, Some(&[])));
            idle = idle.min(watch.stop().cpu);
        }
    }
    Ok((times, idle))
}

/// The smallest rectangle holding every pixel that differs, if any.
fn changed_box(a: &Frame, b: &Frame) -> Option<(u32, u32, u32, u32)> {
    let (w, h) = (a.width() as usize, a.height() as usize);
    let row = |y: usize| a.bgrx()[y * w * 4..(y + 1) * w * 4] != b.bgrx()[y * w * 4..(y + 1) * w * 4];
    let top = (0..h).find(|&y| row(y))?;
    let bottom = (0..h).rev().find(|&y| row(y))?;
    let col = |x: usize| {
        (top..=bottom).any(|y| a.bgrx()[(y * w + x) * 4..][..3] != b.bgrx()[(y * w + x) * 4..][..3])
    };
    let left = (0..w).find(|&x| col(x)).unwrap_or(0);
    let right = (0..w).rev().find(|&x| col(x)).unwrap_or(w - 1);
    Some((left as u32, top as u32, (right - left + 1) as u32, (bottom - top + 1) as u32))
}

/// Per frame, the smaller of the two times.
fn keep_fastest(best: &mut [Duration], other: &[Duration]) {
    for (b, o) in best.iter_mut().zip(other) {
        *b = (*b).min(*o);
    }
}

fn mean_after_first(times: &[Duration]) -> Duration {
    let rest = times.get(1..).unwrap_or_default();
    if rest.is_empty() {
        return Duration::ZERO;
    }
    rest.iter().sum::<Duration>() / rest.len() as u32
}

/// Add the tiles of one part to the breakdown by kind.
fn tally(tiles: &[Tile], into: &mut BTreeMap<String, KindStats>) -> Result<()> {
    for tile in tiles {
        let size = wire::encode(tile, usize::MAX).context("serializing a tile")?.len() - 4;
        let entry = into.entry(kind(tile)).or_default();
        let (tiles, pixels) = inner(tile);
        entry.tiles += tiles;
        entry.bytes += size as u64;
        entry.pixels += pixels;
    }
    Ok(())
}

/// Rectangles and pixels a tile carries: a bundle's own tiles, else the tile itself.
fn inner(tile: &Tile) -> (usize, u64) {
    match &tile.data {
        TileData::Packed { tiles, .. } => {
            (tiles.len(), tiles.iter().map(|t| u64::from(t.w) * u64::from(t.h)).sum())
        }
        _ => (1, u64::from(tile.w) * u64::from(tile.h)),
    }
}

/// The tile's variant name, from its `Debug` form (`Zstd(812 bytes)` → `Zstd`).
fn kind(tile: &Tile) -> String {
    let text = format!("{:?}", tile.data);
    text.split(|c: char| !c.is_alphanumeric() && c != '_').next().unwrap_or_default().to_owned()
}

/// Time a whole-frame copy and a whole-frame comparison of equal frames (best of five).
fn copy_and_compare_cost(frame: &Frame) -> (Duration, Duration) {
    let mut copy = Duration::MAX;
    let mut compare = Duration::MAX;
    for _ in 0..5 {
        let watch = Stopwatch::start();
        let twin = std::hint::black_box(frame.clone());
        copy = copy.min(watch.stop().cpu);
        let watch = Stopwatch::start();
        std::hint::black_box(twin.rect_eq(frame, 0, 0, frame.width(), frame.height()));
        compare = compare.min(watch.stop().cpu);
    }
    (copy, compare)
}

impl std::fmt::Display for Detail {
    /// A few lines on where Tether's bytes and time went.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kinds = |m: &BTreeMap<String, KindStats>| -> String {
            m.iter()
                .map(|(k, s)| {
                    format!(
                        "{k} {} tiles / {:.1} KB / {:.2} Mpx ({:.2} bits per pixel)",
                        s.tiles,
                        s.bytes as f64 / 1024.0,
                        s.pixels as f64 / 1e6,
                        s.bytes as f64 * 8.0 / s.pixels.max(1) as f64
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let later = self.encode_times.len().saturating_sub(1);
        writeln!(f, "- first update: {}", kinds(&self.first_by_kind))?;
        writeln!(
            f,
            "- later updates: {} of {later} carried tiles, {:.1} tiles per changed update; {}",
            self.changed_updates,
            self.tiles as f64 / self.changed_updates.max(1) as f64,
            kinds(&self.by_kind)
        )?;
        writeln!(
            f,
            "- encode ms (on-CPU time, per frame the best of {} passes): first {:.1}; later mean {:.2}, \
             median {:.2}, p95 {:.2}, max {:.2} (wall-clock mean {:.2})",
            self.passes,
            ms(self.encode_times.first().copied().unwrap_or_default()),
            ms(self.steady_mean()),
            ms(self.steady_quantile(0.5)),
            ms(self.steady_quantile(0.95)),
            ms(self.steady_quantile(1.0)),
            ms(mean_after_first(&self.encode_wall)),
        )?;
        writeln!(
            f,
            "- encode() of an unchanged frame (damage scan + bookkeeping) {:.2} ms; for scale, \
             copying a frame takes {:.2} ms, comparing two equal frames in one pass {:.2} ms",
            ms(self.idle_encode),
            ms(self.frame_copy),
            ms(self.frame_compare)
        )?;
        // Per frame of the clip (an unchanged frame decodes nothing) for the share of a core; per update
        // that carried tiles for what one update costs.
        let decode_later = mean_after_first(&self.decode_times);
        let mut carried: Vec<Duration> =
            self.decode_times.iter().skip(1).copied().filter(|d| !d.is_zero()).collect();
        carried.sort();
        let mean = carried.iter().sum::<Duration>() / (carried.len().max(1) as u32);
        let p95 = carried.get((carried.len() * 95 / 100).min(carried.len().saturating_sub(1))).copied();
        writeln!(
            f,
            "- decode ms (the viewer's Decoder, on-CPU, one pass): first {:.1}; per later update with tiles \
             mean {:.2}, p95 {:.2}; the decoder's share of one core at {} fps: {:.1} %",
            ms(self.decode_times.first().copied().unwrap_or_default()),
            ms(mean),
            ms(p95.unwrap_or_default()),
            self.fps,
            ms(decode_later) * f64::from(self.fps) / 10.0,
        )?;
        writeln!(
            f,
            "- publishing each picture to the window (the session's snapshots): mean {:.3} ms after the first; \
             {} of {} by copying only the changed rectangles; a new whole copy each time: mean {:.3} ms",
            ms(mean_after_first(&self.publish_times)),
            self.publish_reused,
            self.publish_times.len(),
            ms(mean_after_first(&self.copy_times)),
        )?;
        writeln!(
            f,
            "- the first frame as one zstd-1 stream instead of per-tile streams: {:.1} KB",
            self.whole_frame_zstd as f64 / 1024.0
        )?;
        writeln!(
            f,
            "- told where the screen was drawn (X Damage; here the box of what differs from the previous \
             capture): encode ms mean {:.2} after the first, an unchanged frame {:.3} ms",
            ms(mean_after_first(&self.drawn_encode_times)),
            ms(self.drawn_idle_encode),
        )?;
        let v = &self.video;
        if let (Some((x, y, w, h)), Some(psnr)) = (v.last_region, v.psnr()) {
            writeln!(
                f,
                "- video path: a region after {} of {} updates (last {w}x{h} at {x},{y}); PSNR inside it \
                 {psnr:.1} dB; outside it some pixel differed after {} updates (at most {} pixels), \
                 in tiles that went lossless after {}",
                v.updates,
                self.encode_times.len(),
                v.outside_differing_updates,
                v.outside_differing_max,
                v.lossless_outside_differing_updates,
            )?;
        }
        Ok(())
    }
}

/// Time `encode()` of a frame the encoder has already sent (best of five, on a separate encoder).
fn idle_encode_cost(frame: &Frame) -> Duration {
    let mut encoder = DamageEncoder::new();
    let _ = encoder.encode(frame, UNLIMITED);
    (0..5)
        .map(|_| {
            let watch = Stopwatch::start();
            std::hint::black_box(encoder.encode(frame, UNLIMITED));
            watch.stop().cpu
        })
        .min()
        .unwrap_or_default()
}

/// Size of the frame's BGR bytes as a single zstd level-1 stream.
fn whole_frame_zstd(frame: &Frame) -> Result<usize> {
    let bgr: Vec<u8> = frame.bgrx().chunks_exact(4).flat_map(|px| [px[0], px[1], px[2]]).collect();
    Ok(zstd::bulk::compress(&bgr, 1).context("compressing a whole frame")?.len())
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Squared error between what the viewer shows and the source, over B, G and R.
#[derive(Debug, Default)]
struct ErrorSum {
    squared: f64,
    samples: u64,
    differing_frames: usize,
}

impl ErrorSum {
    fn add(&mut self, shown: &Frame, source: &Frame) -> Result<()> {
        if shown.width() != source.width() || shown.height() != source.height() {
            bail!(
                "the viewer shows {}x{}, the source is {}x{}",
                shown.width(),
                shown.height(),
                source.width(),
                source.height()
            );
        }
        self.samples += u64::from(source.width()) * u64::from(source.height()) * 3;
        if shown.bgrx() == source.bgrx() {
            return Ok(());
        }
        let mut sum = 0u64;
        for (a, b) in shown.bgrx().chunks_exact(4).zip(source.bgrx().chunks_exact(4)) {
            for c in 0..3 {
                let d = u64::from(a[c].abs_diff(b[c]));
                sum += d * d;
            }
        }
        if sum > 0 {
            self.differing_frames += 1;
        }
        self.squared += sum as f64;
        Ok(())
    }

    fn fidelity(&self) -> Fidelity {
        if self.differing_frames == 0 {
            return Fidelity::Lossless;
        }
        let mse = self.squared / self.samples.max(1) as f64;
        Fidelity::Psnr(10.0 * (255.0f64 * 255.0 / mse).log10())
    }
}
