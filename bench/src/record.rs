//! `codec record`: start a private Xvfb (or a headless sway: `--desktop sway`), stage each workload on it
//! and capture it into a clip.
//!
//! The capture runs as a subprocess of this same binary (`codec capture`) with `DISPLAY` (or
//! `WAYLAND_DISPLAY`) pointing at the private server, because the capturers read it when they connect
//! and this process never changes its own environment.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::assets::Assets;
use crate::workloads::{self, Workload};
use crate::xsession::{Proc, Xvfb};

/// Rate of every recording (the screen size is the workload's: [`Workload::screen`]).
pub const FPS: u32 = 30;
/// Desktop colour (Xvfb's default root is a stipple pattern, which no real desktop looks like).
const BACKGROUND: &str = "#336699";

/// The file in a recording directory that names a desktop other than X (`sway`).
pub const DESKTOP_NOTE: &str = "desktop";

/// The desktop the workloads are recorded on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Desktop {
    /// A private Xvfb, no window manager, xterms driven by xdotool.
    X11,
    /// A headless sway (wlroots), a foot terminal, captured by the host's wlroots capturer.
    Sway,
}

/// Record `seconds` of each workload on `desktop` into `out`.
pub fn record(out: &Path, seconds: f64, which: &[Workload], desktop: Desktop) -> Result<()> {
    if desktop == Desktop::Sway {
        return record_sway(out, seconds, which);
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let frames = (seconds * f64::from(FPS)).round().max(2.0) as usize;
    let video_seconds = which.contains(&Workload::Video).then_some(seconds + 4.0);
    eprintln!("preparing assets…");
    let assets = Assets::create(out, video_seconds)?;
    let exe = std::env::current_exe().context("finding this program's path")?;
    let mut screen: Option<((u32, u32), Xvfb)> = None;
    for &workload in which {
        // One X server per screen size, started when a workload first needs it.
        let size = workload.screen();
        if screen.as_ref().is_none_or(|(s, _)| *s != size) {
            drop(screen.take()); // the last one stops first
            let x = Xvfb::start(size.0, size.1)?;
            eprintln!("Xvfb {} at {}x{}x24", x.display(), size.0, size.1);
            x.run("xsetroot", &["-solid", BACKGROUND])?;
            screen = Some((size, x));
        }
        let Some((_, x)) = screen.as_ref() else { unreachable!("started above") };
        let path = workload.clip_path(out);
        eprintln!("recording {} ({frames} frames)…", workload.name());
        let mut stage = workloads::stage(workload, x, &assets, frames)?;
        let action = stage.start_action()?;
        let mut capture = Command::new(&exe);
        capture
            .args(["codec", "capture", "--frames", &frames.to_string()])
            .args(["--fps", &FPS.to_string(), "--out"])
            .arg(&path)
            .env("DISPLAY", x.display());
        Proc::spawn("tether-bench codec capture", &mut capture)?
            .wait_success()
            .with_context(|| format!("capturing {}", workload.name()))?;
        if let Some(mut action) = action {
            if action.exited() {
                eprintln!("  warning: the scripted input ended before the capture did");
            }
        }
        drop(stage);
        // Let the server repaint the empty desktop before the next scene starts.
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    Ok(())
}

/// The same on a headless sway per workload.
fn record_sway(out: &Path, seconds: f64, which: &[Workload]) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let frames = (seconds * f64::from(FPS)).round().max(2.0) as usize;
    std::fs::write(out.join(DESKTOP_NOTE), "sway\n").context("noting the desktop")?;
    let assets = Assets::create(out, None)?;
    let exe = std::env::current_exe().context("finding this program's path")?;
    for &workload in which {
        let path = workload.clip_path(out);
        let stage = crate::workloads_sway::stage(workload, &assets)?;
        eprintln!("recording {} on sway ({frames} frames)…", workload.name());
        let mut capture = Command::new(&exe);
        capture
            .args(["codec", "capture", "--screen", "wlroots", "--frames", &frames.to_string()])
            .args(["--fps", &FPS.to_string(), "--out"])
            .arg(&path)
            .envs(stage.env());
        let capture = Proc::spawn("tether-bench codec capture", &mut capture)?;
        // The capture waits for its first picture before its first tick; the action starts with it,
        // as xdotool does on X (a few frames of the still terminal lead both).
        stage.start_action()?;
        capture.wait_success().with_context(|| format!("capturing {}", workload.name()))?;
    }
    Ok(())
}
