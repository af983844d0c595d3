//! End-to-end latency through the relay on loopback, on a real X screen (Xvfb 1920×1080), with the two
//! [`crate::probes`]: screen change → viewer framebuffer, viewer input → injected on the host.
//!
//! Prints p50 / p95 / max over the samples.

use std::time::Duration;

use anyhow::Result;
use tether_host::capture::Source;
use tether_host::Sources;
use tether_shared::session_proto::Permissions;

use crate::probes::Probe;
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
    let probe = Probe::open(display)?;
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

    let screen_ms = probe.screen(&rig.viewer, samples, Duration::MAX).await?;
    let input_ms = probe.input(&rig.viewer, samples, Duration::MAX).await?;
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
