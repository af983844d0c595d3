//! Latency on a wlroots Wayland desktop: a headless sway (software rendering) shared by an in-process
//! host through the relay on loopback.
//!
//! Screen: the change is the output's background colour, set over sway's IPC (`swaymsg` returns once
//! sway applied it, as the X probe's round trip returns once the X server drew); the time runs until the
//! viewer's framebuffer shows it. Input: a Wayland client cannot read the pointer back, so the probe is a
//! key — from the viewer's send until a program in a terminal on the host has read it (foot, its shell's
//! `cat` appending to a file: the whole way to an application, a little more than X11's probe, which
//! stops when the X server moved the pointer). The terminal floats in a corner, off the screen probe.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use tether_host::capture::Source;
use tether_host::Sources;
use tether_shared::session_proto::Permissions;

use crate::session_rig::{self, percentiles};
use crate::sway::Sway;

pub fn run(samples: usize) -> Result<()> {
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
    // The host finds the compositor through the environment: set while this process is single-threaded.
    std::env::set_var("XDG_RUNTIME_DIR", sway.dir());
    std::env::set_var("WAYLAND_DISPLAY", "wayland-1");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(measure(&sway, samples))
}

async fn measure(sway: &Sway, samples: usize) -> Result<()> {
    let sources = Sources::open(Source::Wlroots { monitor: 0 })?;
    let rig = session_rig::start(sources, Permissions::ALL, |_| {}).await?;
    rig.viewer.next_frame(None).await?;
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
    let mut keys = key_latency(sway, &rig.viewer, samples).await?;
    rig.stop.cancel();
    println!("| path (1920x1080, headless sway, relay on loopback, {samples} samples) | p50 ms | p95 ms | max ms |");
    println!("|---|---:|---:|---:|");
    let (p50, p95, max) = percentiles(&mut out);
    println!("| Wayland screen change -> viewer framebuffer | {p50:.1} | {p95:.1} | {max:.1} |");
    let (p50, p95, max) = percentiles(&mut keys);
    println!(
        "| viewer key -> read by a program in a terminal on the host | {p50:.1} | {p95:.1} | {max:.1} |"
    );
    Ok(())
}

/// From the viewer's key until the terminal's `cat` wrote it to its file, `samples` times.
async fn key_latency(
    sway: &Sway,
    viewer: &tether_viewer::session::ViewerSession,
    samples: usize,
) -> Result<Vec<f64>> {
    use tether_shared::input::{InputEvent, Key};
    let typed = sway.dir().join("typed");
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
