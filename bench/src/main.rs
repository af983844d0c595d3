//! `tether-bench`: benchmarks for Tether that need a real desktop, so they are a program, not tests.
//!
//! `tether-bench codec record --out DIR` records four scripted workloads (typing, scrolling, dragging a
//! window, video) on a private Xvfb; `tether-bench codec compare --in DIR` runs them through Tether's screen
//! codec and through x264, VP9 and AV1 and prints the comparison. `tether-bench latency` measures the
//! end-to-end latency of a live session on Xvfb; `tether-bench files` the file transfer throughput. See
//! `docs/BENCHMARKS.md`.

mod assets;
mod capture;
mod clip;
mod compare;
mod cpu_time;
mod ffmpeg;
mod latency;
mod probes;
mod record;
mod session_rig;
mod table;
mod targets;
mod tether_codec;
mod transfer;
mod viewers;
mod wan;
mod wayland_latency;
mod workloads;
mod workloads_sway;
mod xsession;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

use ffmpeg::{Rate, VideoCodec};
use workloads::Workload;

#[derive(Debug, Parser)]
#[command(name = "tether-bench", about = "Benchmarks for Tether")]
struct Cli {
    #[command(subcommand)]
    command: Top,
}

#[derive(Debug, Subcommand)]
enum Top {
    /// Screen codec comparison: Tether vs x264, VP9 and AV1.
    #[command(subcommand)]
    Codec(CodecCmd),
    /// End-to-end latency through a relay on loopback: X screen change to viewer, viewer input to host.
    Latency {
        #[arg(long, default_value_t = 200)]
        samples: usize,
        /// Measure while the viewer fetches a large file without pause, through a relay that holds the
        /// session to this many Mbit/s (a busy office uplink): what a transfer does to the screen and input.
        #[arg(long)]
        during_fetch_mbit: Option<u64>,
        /// The host's screen.
        #[arg(long, value_enum, default_value = "x11")]
        source: LatencySource,
    },
    /// Latency, updates and throughput with the host behind an emulated internet line: a matrix of lines
    /// times loads beside the probes (a file moving either way, a video, a dragged window).
    Wan {
        #[arg(long, default_value_t = 40)]
        samples: usize,
        /// Lines to run (default: all).
        #[arg(long = "link", value_enum)]
        links: Vec<wan::LinkName>,
        /// Loads to run beside the probes (default: all).
        #[arg(long = "load", value_enum)]
        loads: Vec<wan::Load>,
        /// The bottleneck's queue each way, in milliseconds (a home router's buffer).
        #[arg(long, default_value_t = 200)]
        queue_ms: u64,
    },
    /// The host's CPU with several technicians watching (joined by invites): 1, 2, 4 viewers.
    Viewers {
        /// Viewer counts to measure, ascending.
        #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
        counts: Vec<usize>,
        /// Seconds measured at each count.
        #[arg(long, default_value_t = 10)]
        secs: u64,
        /// The test pattern's size.
        #[arg(long, default_value = "1920x1080")]
        size: String,
        /// `test-pattern`, or `x11` (the screen of $DISPLAY, with X Damage).
        #[arg(long, default_value = "test-pattern")]
        source: String,
    },
    /// File transfer throughput through a relay on loopback, both directions, BLAKE3 checked.
    Files {
        /// File size in MiB.
        #[arg(long, default_value_t = 1024)]
        mib: u64,
    },
}

#[derive(Debug, Subcommand)]
enum CodecCmd {
    /// Record the scripted workloads on a private Xvfb or headless sway (1920x1080, 30 fps) into DIR.
    Record {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Length of each clip.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Workloads to record (default: all; on sway: typing and scrolling, 1080p and 4K).
        #[arg(long = "workload", value_enum)]
        workloads: Vec<Workload>,
        /// The desktop to record on.
        #[arg(long, value_enum, default_value = "x11")]
        desktop: record::Desktop,
    },
    /// Run the recorded clips through every codec and print the comparison.
    Compare {
        #[arg(long = "in", value_name = "DIR")]
        dir: PathBuf,
        /// Workloads to compare (default: all recorded).
        #[arg(long = "workload", value_enum)]
        workloads: Vec<Workload>,
        /// Reference codecs to run (default: all; `--codec none` for Tether alone).
        #[arg(long = "codec", value_enum)]
        codecs: Vec<CodecChoice>,
        /// Run the reference codecs at this constant bitrate instead of constant quality.
        #[arg(long, value_name = "KBIT_PER_S")]
        bitrate: Option<u32>,
        /// Encode passes per codec and clip; encode times are the fastest pass (per frame for Tether).
        #[arg(long, default_value_t = 3)]
        passes: usize,
    },
    /// Capture the screen in $DISPLAY into a clip (run by `record`).
    #[command(hide = true)]
    Capture {
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        frames: usize,
        #[arg(long, default_value_t = 30)]
        fps: u32,
        #[arg(long, value_enum, default_value = "x11")]
        screen: capture::Screen,
    },
}

/// The host's screen in the latency bench.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LatencySource {
    /// A private Xvfb.
    X11,
    /// A headless sway, shared with wlroots screencopy (screen and key latency).
    Wlroots,
    /// The same sway through the desktop portal and PipeWire (screen only: its backend has no
    /// RemoteDesktop).
    Portal,
}

/// A reference codec, or none of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CodecChoice {
    X264,
    Vp9,
    Av1,
    None,
}

fn main() -> Result<()> {
    // Quiet unless RUST_LOG asks (e.g. `RUST_LOG=tether_shared::link::cc=trace` for the controller's rounds).
    // (arboard reports the X server going away at the end of a run as errors: not ours, and expected.)
    tether_shared::logging::init("error,arboard=off,enigo=off");
    let cmd = match Cli::parse().command {
        Top::Codec(cmd) => cmd,
        Top::Latency { samples, during_fetch_mbit, source } => {
            let path = match source {
                LatencySource::X11 => return latency::run(samples, during_fetch_mbit),
                LatencySource::Wlroots => wayland_latency::Path::Wlroots,
                LatencySource::Portal => wayland_latency::Path::Portal,
            };
            anyhow::ensure!(during_fetch_mbit.is_none(), "--during-fetch-mbit is measured on x11 only");
            return wayland_latency::run(samples, path);
        }
        Top::Files { mib } => return transfer::run(mib),
        Top::Viewers { counts, secs, size, source } => return viewers::run(&counts, secs, &size, &source),
        Top::Wan { samples, links, loads, queue_ms } => {
            let links = if links.is_empty() { wan::LinkName::ALL.to_vec() } else { links };
            let loads = if loads.is_empty() { wan::Load::ALL.to_vec() } else { loads };
            return wan::run(samples, &links, &loads, std::time::Duration::from_millis(queue_ms));
        }
    };
    match cmd {
        CodecCmd::Record { out, seconds, workloads, desktop } => {
            let which = match (desktop, workloads.is_empty()) {
                (record::Desktop::Sway, true) => &crate::workloads_sway::WORKLOADS[..],
                _ => or_all(&workloads),
            };
            record::record(&out, seconds, which, desktop)
        }
        CodecCmd::Compare { dir, workloads, codecs, bitrate, passes } => {
            let codecs: Vec<VideoCodec> = if codecs.is_empty() {
                VideoCodec::ALL.to_vec()
            } else {
                codecs
                    .iter()
                    .filter_map(|c| match c {
                        CodecChoice::X264 => Some(VideoCodec::X264),
                        CodecChoice::Vp9 => Some(VideoCodec::Vp9),
                        CodecChoice::Av1 => Some(VideoCodec::Av1),
                        CodecChoice::None => None,
                    })
                    .collect()
            };
            let rate = bitrate.map_or(Rate::Quality, Rate::Kbps);
            compare::compare(&dir, or_all(&workloads), &codecs, rate, passes)
        }
        CodecCmd::Capture { out, frames, fps, screen } => {
            let report = capture::run(&out, frames, fps, screen)?;
            eprintln!(
                "  captured {} frames in {:.2} s ({} late ticks), {:.1} MB stored",
                report.frames,
                report.elapsed.as_secs_f64(),
                report.late,
                report.stored_bytes as f64 / 1e6
            );
            Ok(())
        }
    }
}

/// The chosen workloads, or all of them when none was named.
fn or_all(chosen: &[Workload]) -> &[Workload] {
    if chosen.is_empty() {
        &Workload::ALL
    } else {
        chosen
    }
}
