//! Latency on a wlroots Wayland desktop: a headless sway (software rendering) shared by an in-process
//! host through the relay on loopback.
//!
//! Screen: the change is the output's background colour, set over sway's IPC (`swaymsg` returns once
//! sway applied it, as the X probe's round trip returns once the X server drew); the time runs until the
//! viewer's framebuffer shows it. Input: a Wayland client cannot read the pointer back, so the probe is a
//! key — from the viewer's send until a program in a terminal on the host has read it (foot, its shell's
//! `cat` appending to a file: the whole way to an application, a little more than X11's probe, which
//! stops when the X server moved the pointer). The terminal floats in a corner, off the screen probe.
//!
//! `--source portal` takes the screen through the desktop portal instead (xdg-desktop-portal-wlr on the
//! same sway, PipeWire frames: [`tether_testbed::portal`]). Its backend offers no RemoteDesktop, so that
//! run measures the screen only. xdg-desktop-portal-wlr sends a stream's first picture only once
//! something is drawn after the stream started, so until the viewer has one the desktop's colour keeps
//! changing.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use tether_host::capture::Source;
use tether_host::Sources;
use tether_shared::session_proto::Permissions;

use crate::session_rig::{self, percentiles};
use tether_testbed::portal::Portal;
use tether_testbed::sway::Sway;

/// How the host takes the sway's screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// wlroots screencopy and virtual input, in the host.
    Wlroots,
    /// The desktop portal and PipeWire (screen only).
    Portal,
}

pub fn run(samples: usize, path: Path) -> Result<()> {
    let (width, height) = (1920, 1080);
    let sway = Sway::start(
        width,
        height,
        &format!(
            "for_window [app_id=\"foot\"] floating enable, resize set 320 200, move position {} {}\n\
             exec foot sh -c 'stty -icanon -echo; exec cat > \"$XDG_RUNTIME_DIR/typed\"'\n",
            width - 400,
            height - 300
        ),
    )?;
    // The host finds the compositor (and the portal) through the environment: set while this process is
    // single-threaded.
    std::env::set_var("XDG_RUNTIME_DIR", sway.dir.path());
    std::env::set_var("WAYLAND_DISPLAY", "wayland-1");
    let portal = match path {
        Path::Wlroots => None,
        Path::Portal => Some(Portal::start(&sway, "HEADLESS-1")?),
    };
    for (key, value) in portal.iter().flat_map(Portal::env) {
        std::env::set_var(key, value);
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let shown = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        if path == Path::Portal {
            scope.spawn(|| nudge_until(&sway, &shown));
        }
        let measured = rt.block_on(measure(&sway, samples, path, &shown));
        shown.store(true, std::sync::atomic::Ordering::Relaxed);
        measured
    })
}

/// Change the desktop's colour every 300 ms until `shown` (the portal's stream has sent a picture).
fn nudge_until(sway: &Sway, shown: &std::sync::atomic::AtomicBool) {
    let mut dark = false;
    while !shown.load(std::sync::atomic::Ordering::Relaxed) {
        dark = !dark;
        let _ = sway.background(if dark { [0x33, 0x55, 0x88] } else { [0x33, 0x66, 0x99] });
        std::thread::sleep(Duration::from_millis(300));
    }
}

async fn measure(
    sway: &Sway,
    samples: usize,
    path: Path,
    shown: &std::sync::atomic::AtomicBool,
) -> Result<()> {
    let source = match path {
        Path::Wlroots => Source::Wlroots { monitor: 0 },
        Path::Portal => Source::Portal { remember: false, answer_within: Duration::from_secs(30) },
    };
    let sources = Sources::open(source)?;
    let rig = session_rig::start(sources, Permissions::ALL, |_| {}).await?;
    rig.viewer.next_frame(None).await?;
    shown.store(true, std::sync::atomic::Ordering::Relaxed);
    // The nudging may have been mid-change: let the last one arrive before timing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut frames = rig.viewer.frames();
    let mut out = Vec::with_capacity(samples);
    for i in 0..samples {
        let want = if i % 2 == 0 { [0xc0, 0x20, 0x40] } else { [0x20, 0x40, 0xc0] };
        sway.background(want)?;
        let t0 = Instant::now();
        crate::probes::until_shown(&mut frames, [want[2], want[1], want[0]]).await?;
        out.push(t0.elapsed().as_secs_f64() * 1e3);
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let keys = match path {
        Path::Wlroots => Some(key_latency(sway, &rig.viewer, samples).await?),
        Path::Portal => None,
    };
    rig.stop.cancel();
    let how = match path {
        Path::Wlroots => "wlroots screencopy",
        Path::Portal => "desktop portal + PipeWire",
    };
    println!("| path (1920x1080, headless sway, {how}, relay on loopback, {samples} samples) | p50 ms | p95 ms | max ms |");
    println!("|---|---:|---:|---:|");
    let (p50, p95, max) = percentiles(&mut out);
    println!("| Wayland screen change -> viewer framebuffer | {p50:.1} | {p95:.1} | {max:.1} |");
    if let Some(mut keys) = keys {
        let (p50, p95, max) = percentiles(&mut keys);
        println!(
            "| viewer key -> read by a program in a terminal on the host | {p50:.1} | {p95:.1} | {max:.1} |"
        );
    }
    Ok(())
}

/// From the viewer's key until the terminal's `cat` wrote it to its file, `samples` times.
async fn key_latency(
    sway: &Sway,
    viewer: &tether_viewer::session::ViewerSession,
    samples: usize,
) -> Result<Vec<f64>> {
    use tether_shared::input::{InputEvent, Key};
    let typed = sway.dir.path().join("typed");
    let len = || std::fs::metadata(&typed).map(|m| m.len()).unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !typed.exists() {
        if Instant::now() > deadline {
            bail!("the terminal did not start");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut out = Vec::with_capacity(samples);
    // The first key finds the terminal focused and warm; it is not counted.
    for i in 0..=samples {
        let before = len();
        let t0 = Instant::now();
        for pressed in [true, false] {
            viewer.send_input(InputEvent::Key { key: Key::Char('a'), pressed }).await?;
        }
        while len() == before {
            if t0.elapsed() > Duration::from_secs(10) {
                bail!("the key never reached the terminal");
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        if i > 0 {
            out.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(out)
}
