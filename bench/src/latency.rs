//! End-to-end latency through the relay on loopback, on a real X screen (Xvfb 1920×1080):
//! - **screen → viewer**: a rectangle changes colour on the host's X server (drawn and synced with
//!   x11rb) until the viewer's framebuffer holds the new colour;
//! - **input → injection**: the viewer sends a mouse move until the host's X server reports the pointer
//!   there (polled with QueryPointer).
//!
//! Prints p50 / p95 / max over the samples.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tether_host::capture::Source;
use tether_host::Sources;
use tether_shared::input::InputEvent;
use tether_shared::session_proto::Permissions;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    ChangeGCAux, ConnectionExt as _, CreateGCAux, CreateWindowAux, Rectangle, WindowClass,
};
use x11rb::COPY_DEPTH_FROM_PARENT;

use crate::session_rig::{self, percentiles};
use crate::xsession::Xvfb;

pub fn run(samples: usize, during_fetch_mbit: Option<u64>) -> Result<()> {
    let x = Xvfb::start(1920, 1080)?;
    // scrap reads $DISPLAY: set it while this process is still single-threaded (before the runtime).
    std::env::set_var("DISPLAY", x.display());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(measure(x.display(), samples, during_fetch_mbit))
}

/// The file the viewer fetches over and over while measuring (`--during-fetch-mbit`).
const FETCHED_BYTES: usize = 64 << 20;

async fn measure(display: &str, samples: usize, during_fetch_mbit: Option<u64>) -> Result<()> {
    let (conn, screen) = x11rb::connect(Some(display)).context("X connection")?;
    let root = conn.setup().roots[screen].root;
    let win = conn.generate_id()?;
    let aux = CreateWindowAux::new().override_redirect(1).background_pixel(0x00ff_ffff);
    conn.create_window(
        COPY_DEPTH_FROM_PARENT,
        win,
        root,
        100,
        100,
        200,
        200,
        0,
        WindowClass::INPUT_OUTPUT,
        0,
        &aux,
    )?;
    conn.map_window(win)?;
    let gc = conn.generate_id()?;
    conn.create_gc(gc, win, &CreateGCAux::new().foreground(0))?;
    conn.get_input_focus()?.reply()?; // everything above is on screen

    let sources = Sources::open(Source::X11 { monitor: 0 })?;
    let grant = Permissions { view: true, control: true, files: during_fetch_mbit.is_some() };
    let shared = tempfile::tempdir()?;
    let rig = match during_fetch_mbit {
        None => session_rig::start(sources, grant, |_| {}).await?,
        Some(mbit) => {
            std::fs::write(shared.path().join("big.bin"), vec![0x5a; FETCHED_BYTES])?;
            let cap = |relay: &mut tether_relay::RelayConfig| relay.session_bytes_per_sec = mbit * 125_000;
            let share = shared.path().to_path_buf();
            session_rig::start_with(sources, grant, cap, |cfg| {
                cfg.session.files.shared = vec![("Bench".into(), share)];
            })
            .await?
        }
    };
    rig.viewer.next_frame(None).await?;
    let into = tempfile::tempdir()?;
    if during_fetch_mbit.is_some() {
        let (files, into, stop) = (rig.viewer.files(), into.path().to_path_buf(), rig.stop.clone());
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                let got = files.fetch(vec!["Bench".into(), "big.bin".into()], into.clone()).result().await;
                if let Err(e) = got {
                    eprintln!("the background fetch failed: {e}");
                    return;
                }
                let _ = tokio::fs::remove_file(into.join("big.bin")).await;
            }
        });
        // Let the transfer fill the link before measuring.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    let mut screen_ms = Vec::with_capacity(samples);
    let mut frames = rig.viewer.frames();
    for i in 0..samples {
        let colour: u32 = if i % 2 == 0 { 0x00c0_2040 } else { 0x0020_40c0 };
        let want = [(colour & 0xff) as u8, (colour >> 8 & 0xff) as u8, (colour >> 16 & 0xff) as u8];
        conn.change_gc(gc, &ChangeGCAux::new().foreground(colour))?;
        conn.poly_fill_rectangle(win, gc, &[Rectangle { x: 0, y: 0, width: 200, height: 200 }])?;
        conn.get_input_focus()?.reply()?; // drawn
        let t0 = Instant::now();
        loop {
            let seen = frames.borrow_and_update().as_ref().is_some_and(|s| {
                let i = (150 * s.frame.width() as usize + 150) * 4;
                s.frame.bgrx()[i..i + 3] == want
            });
            if seen {
                break;
            }
            tokio::time::timeout(Duration::from_secs(5), frames.changed())
                .await
                .context("no frame in 5 s")??;
        }
        screen_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        tokio::time::sleep(Duration::from_millis(40)).await;
    }

    let mut input_ms = Vec::with_capacity(samples);
    for i in 0..samples {
        let (px, py) = (300 + (i % 2) as i32 * 700, 200 + (i % 3) as i32 * 200);
        let t0 = Instant::now();
        rig.viewer.send_input(InputEvent::MouseMove { x: px, y: py }).await?;
        loop {
            let p = conn.query_pointer(root)?.reply()?;
            if (i32::from(p.root_x), i32::from(p.root_y)) == (px, py) {
                break;
            }
            anyhow::ensure!(t0.elapsed() < Duration::from_secs(5), "pointer never moved");
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        input_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rig.stop.cancel();

    let during = match during_fetch_mbit {
        Some(mbit) => format!(", while fetching a file through a {mbit} Mbit/s relay cap"),
        None => String::new(),
    };
    println!("| path (1920x1080, relay on loopback, {samples} samples{during}) | p50 ms | p95 ms | max ms |");
    println!("|---|---:|---:|---:|");
    for (name, mut v) in
        [("X screen change -> viewer framebuffer", screen_ms), ("viewer input -> injected on host", input_ms)]
    {
        let (p50, p95, max) = percentiles(&mut v);
        println!("| {name} | {p50:.1} | {p95:.1} | {max:.1} |");
    }
    Ok(())
}
