//! `tether-bench wan`: a real session on a real X screen (Xvfb 1920×1080), the host reaching the relay
//! through an emulated internet line ([`tether_linkemu`]), for every link of a matrix ([`links`]) and
//! every load beside the probes ([`load`]). Per cell, after a 2 s warm-up that lets a transfer fill the
//! line: input → injected and screen change → viewer (p50/p95, [`crate::probes`]), screen updates per
//! second, what crossed the line each way, the line's queueing delay p95, and how fast the file moved.
//!
//! Prints a Markdown table (progress on stderr).

mod links;
mod load;

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tether_host::capture::Source;
use tether_host::files::UploadPolicy;
use tether_host::Sources;
use tether_shared::link::ScreenQuality;
use tether_shared::session_proto::Permissions;

use crate::probes::Probe;
use crate::session_rig::{self, percentiles};
use crate::xsession::Xvfb;
pub use links::LinkName;
pub use load::Load;

/// How long each probe may take per cell; it reports the samples it got in that time.
const PROBE_BUDGET: Duration = Duration::from_secs(30);

/// One cell of the table.
struct Row {
    link: LinkName,
    load: Load,
    input: (f64, f64),
    screen: (f64, f64),
    /// Samples taken (screen, input), when fewer than asked.
    short: Option<(usize, usize)>,
    updates_per_sec: f64,
    up_kbit: f64,
    down_kbit: f64,
    queue_p95_ms: (f64, f64),
    transfer_mb_s: Option<f64>,
    /// The transfer's share of its direction's line rate.
    share: Option<f64>,
    /// The host's last report at the end of the cell: its estimate of the uplink, and what its screen
    /// sender did about it.
    sender: String,
}

pub fn run(samples: usize, links: &[LinkName], loads: &[Load], queue: Duration) -> Result<()> {
    let x = Xvfb::start(1920, 1080)?;
    // scrap reads $DISPLAY: set it while this process is still single-threaded (before the runtime).
    std::env::set_var("DISPLAY", x.display());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(matrix(x.display(), samples, links, loads, queue))
}

async fn matrix(
    display: &str,
    samples: usize,
    links: &[LinkName],
    loads: &[Load],
    queue: Duration,
) -> Result<()> {
    let probe = Probe::open(display)?;
    let dir = tempfile::tempdir()?;
    let folders = load::Folders {
        shared: dir.path().join("shared"),
        incoming: dir.path().join("incoming"),
        local: dir.path().join("local"),
    };
    for d in [&folders.shared, &folders.incoming, &folders.local] {
        std::fs::create_dir_all(d)?;
    }
    let data: Vec<u8> =
        (0..load::FILE_BYTES as u64).map(|i| (i.wrapping_mul(0x9E37_79B9) >> 13) as u8).collect();
    std::fs::write(folders.shared.join("big.bin"), &data)?;
    std::fs::write(folders.local.join("big.bin"), &data)?;
    drop(data);

    let mut rows = Vec::new();
    for &link in links {
        for &what in loads {
            eprintln!("  {} / {}", link.name(), what.name());
            let row = cell(display, &probe, link, what, samples, queue, &folders)
                .await
                .with_context(|| format!("{} with {}", link.name(), what.name()))?;
            rows.push(row);
        }
    }
    print(&rows, samples, queue);
    Ok(())
}

async fn cell(
    display: &str,
    probe: &Probe,
    link: LinkName,
    what: Load,
    samples: usize,
    queue: Duration,
    folders: &load::Folders,
) -> Result<Row> {
    let sources = Sources::open(Source::X11 { monitor: 0 })?;
    let grant = Permissions { view: true, control: true, files: what.moves_files() };
    let (shared, incoming) = (folders.shared.clone(), folders.incoming.clone());
    let rig = session_rig::start_over(
        sources,
        grant,
        Some(link.config(queue)),
        |_| {},
        |cfg| {
            cfg.session.files.shared = vec![("Bench".into(), shared)];
            cfg.session.files.incoming = Some(incoming);
            cfg.uploads = UploadPolicy::Allow;
            cfg.session.quality = ScreenQuality::Auto; // what a user gets
        },
    )
    .await?;
    tokio::time::timeout(Duration::from_secs(60), rig.viewer.next_frame(None))
        .await
        .context("no first frame")??;
    let running = load::start(what, display, rig.viewer.files(), folders)?;
    tokio::time::sleep(Duration::from_secs(2)).await; // the load fills the line
    let emulator = rig.link.as_ref().context("the rig has an emulated link")?;
    emulator.reset_stats();
    let seq = || rig.viewer.frames().borrow().as_ref().map_or(0, |s| s.info.seq);
    let (t0, seq0, moved0) = (Instant::now(), seq(), running.moved());

    let mut screen = probe.screen(&rig.viewer, samples, PROBE_BUDGET).await?;
    let mut input = probe.input(&rig.viewer, samples, PROBE_BUDGET).await?;

    let secs = t0.elapsed().as_secs_f64();
    let (seq1, moved1, stats) = (seq(), running.moved(), emulator.stats());
    let report = *rig.viewer.host_line().borrow();
    let sender = match report {
        Some(r) => match r.bandwidth_bps {
            Some(bps) => format!("{:.1} Mbit/s, {}", bps as f64 / 1e6, r.action),
            None => format!("measuring, {}", r.action),
        },
        None => "no report".into(),
    };
    running.stop();
    rig.stop.cancel();
    let (up, down, _) = link.shape();
    let moved_bytes = moved1.saturating_sub(moved0) as f64;
    let rate = match what {
        Load::Fetch => Some(up),
        Load::Upload => Some(down),
        _ => None,
    };
    let short = (screen.len() < samples || input.len() < samples).then_some((screen.len(), input.len()));
    let (s50, s95, _) = percentiles(&mut screen);
    let (i50, i95, _) = percentiles(&mut input);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    Ok(Row {
        link,
        load: what,
        input: (i50, i95),
        screen: (s50, s95),
        short,
        updates_per_sec: seq1.saturating_sub(seq0) as f64 / secs,
        up_kbit: stats.up.delivered_bytes as f64 * 8.0 / secs / 1e3,
        down_kbit: stats.down.delivered_bytes as f64 * 8.0 / secs / 1e3,
        queue_p95_ms: (ms(stats.up.queue_p95), ms(stats.down.queue_p95)),
        transfer_mb_s: rate.map(|_| moved_bytes / secs / 1e6),
        share: rate.map(|mbit| moved_bytes * 8.0 / secs / (mbit * 1e6)),
        sender,
    })
}

fn print(rows: &[Row], samples: usize, queue: Duration) {
    println!(
        "| host line (up/down, RTT) | load | input → injected p50 / p95 ms | screen → viewer p50 / p95 ms \
         | updates/s | line up / down kbit/s | queue p95 up / down ms | transfer MB/s (share of line) \
         | host's estimate, sender |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---|");
    for r in rows {
        let transfer = match (r.transfer_mb_s, r.share) {
            (Some(mb), Some(share)) => format!("{mb:.2} ({:.0} %)", share * 100.0),
            _ => "–".into(),
        };
        let load = match r.short {
            Some((screen, input)) => format!("{} (n = {screen} / {input})", r.load.name()),
            None => r.load.name().to_owned(),
        };
        println!(
            "| {} | {} | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} | {:.0} / {:.0} | {:.0} / {:.0} | {} | {} |",
            r.link.name(),
            load,
            r.input.0,
            r.input.1,
            r.screen.0,
            r.screen.1,
            r.updates_per_sec,
            r.up_kbit,
            r.down_kbit,
            r.queue_p95_ms.0,
            r.queue_p95_ms.1,
            transfer,
            r.sender,
        );
    }
    println!();
    println!(
        "{samples} samples per probe (fewer where n says so: each probe stops after {} s); bottleneck queue {} \
         ms each way; relay and viewer on loopback, the host behind the emulated line.",
        PROBE_BUDGET.as_secs(),
        queue.as_millis()
    );
}
