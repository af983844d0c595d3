//! Captures a screen at a fixed rate into a clip (the hidden `codec capture` command, which `codec record`
//! runs as a subprocess so `DISPLAY` or `WAYLAND_DISPLAY` is set before anything starts).
//!
//! Two screens: the X screen named by `DISPLAY`, read with scrap, and a wlroots compositor's first output
//! at `WAYLAND_DISPLAY`, read through the host's own capturer ([`tether_host::capture::wlroots`]), so a
//! clip shows exactly the pictures a session on that desktop starts from.
//!
//! scrap pipelines its requests: each `frame()` call returns the image requested by the previous call and
//! asks for the next one. So the capturer is primed once, and then one call per tick yields a steady 30 fps
//! sequence (each image shows the screen one tick before it is read). The wlroots capturer keeps the
//! compositor's latest picture, which each tick takes. Compression and writing run on a second thread so
//! they do not delay the ticks.

use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use tether_host::capture::{self, Capturer, Source};

use crate::clip::{ClipHeader, ClipWriter};

/// Frames waiting for the writer; bounds memory to ~500 MB at 1080p if the disk or zstd falls behind.
const QUEUE: usize = 64;

/// What a capture run achieved.
#[derive(Debug)]
pub struct CaptureReport {
    pub frames: usize,
    /// Ticks at which the capture loop was already late by more than half a period.
    pub late: usize,
    pub elapsed: Duration,
    pub stored_bytes: u64,
}

/// The screen a clip is captured from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Screen {
    /// The X screen in `$DISPLAY`.
    X11,
    /// The first output of the wlroots compositor at `$WAYLAND_DISPLAY`.
    Wlroots,
}

/// A screen being captured: tightly packed BGRX pictures of one size.
enum Grabber {
    X11(scrap::Capturer),
    Wlroots(Box<dyn Capturer>),
}

impl Grabber {
    fn open(screen: Screen) -> Result<Self> {
        Ok(match screen {
            Screen::X11 => {
                let display = scrap::Display::primary().context("opening the X display ($DISPLAY)")?;
                Self::X11(scrap::Capturer::new(display).context("starting scrap capture")?)
            }
            Screen::Wlroots => Self::Wlroots(
                capture::open(Source::Wlroots { monitor: 0 }).context("capturing the Wayland output")?,
            ),
        })
    }

    /// The next picture and its size.
    fn grab(&mut self) -> Result<(usize, usize, Vec<u8>)> {
        match self {
            Self::X11(capturer) => {
                let (w, h) = (capturer.width(), capturer.height());
                let raw = capturer.frame().context("capturing a frame")?;
                Ok((w, h, pack_bgrx(&raw, w, h)?))
            }
            Self::Wlroots(capturer) => {
                let frame = capturer.capture().context("capturing a frame")?.frame;
                let (w, h) = (frame.width() as usize, frame.height() as usize);
                Ok((w, h, pack_bgrx(frame.bgrx(), w, h)?))
            }
        }
    }
}

/// Capture `frames` images of `screen` at `fps` into `out`.
pub fn run(out: &Path, frames: usize, fps: u32, screen: Screen) -> Result<CaptureReport> {
    let mut grabber = Grabber::open(screen)?;
    // Priming: scrap's first call only asks; the wlroots capturer waits here for its first picture.
    let (w, h, _) = grabber.grab().context("priming the capture")?;
    let header = ClipHeader { width: u32::try_from(w)?, height: u32::try_from(h)?, fps };
    let mut writer = ClipWriter::create(out, header)?;
    let (tx, rx) = mpsc::sync_channel::<(u64, Vec<u8>)>(QUEUE);
    let write_thread = thread::spawn(move || -> Result<(usize, u64)> {
        for (t_us, bgrx) in rx {
            writer.write_frame(t_us, &bgrx)?;
        }
        Ok(writer.finish()?)
    });

    let period = Duration::from_secs_f64(1.0 / f64::from(fps));
    let start = Instant::now();
    let mut late = 0;
    for k in 0..frames {
        let due = start + period * u32::try_from(k)?;
        let now = Instant::now();
        if now < due {
            thread::sleep(due - now);
        } else if now - due > period / 2 {
            late += 1;
        }
        let t_us = u64::try_from(start.elapsed().as_micros())?;
        let (fw, fh, bgrx) = grabber.grab()?;
        if (fw, fh) != (w, h) {
            bail!("the screen changed size while recording ({w}x{h} to {fw}x{fh})");
        }
        if tx.send((t_us, bgrx)).is_err() {
            break; // The writer failed; its error is reported below.
        }
    }
    let elapsed = start.elapsed();
    drop(tx);
    let (written, stored_bytes) = write_thread.join().map_err(|_| anyhow!("the clip writer panicked"))??;
    Ok(CaptureReport { frames: written, late, elapsed, stored_bytes })
}

/// Copy scrap's rows (stride = len / height) into tightly packed BGRX with the fourth byte zeroed.
fn pack_bgrx(raw: &[u8], w: usize, h: usize) -> Result<Vec<u8>> {
    let row = w * 4;
    let stride = raw.len() / h;
    if stride < row {
        bail!("capture has {} bytes for {w}x{h}: rows too short", raw.len());
    }
    let mut out = Vec::with_capacity(row * h);
    for line in raw.chunks_exact(stride).take(h) {
        out.extend_from_slice(&line[..row]);
    }
    for px in out.chunks_exact_mut(4) {
        px[3] = 0;
    }
    Ok(out)
}
