//! `codec compare`: run every recorded workload through Tether's codec and the reference codecs, one after
//! another (never two encoders at once, so each has a core to itself), and print a Markdown report with
//! the table, Tether's breakdown and its targets. The report is also saved as `results.md` in the clip
//! directory, next to the reference codecs' encoded files in `encoded/`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::clip::ClipReader;
use crate::ffmpeg::{self, Rate, VideoCodec};
use crate::table;
use crate::targets;
use crate::tether_codec::{self, Mode};
use crate::workloads::Workload;

/// Compare codecs on the clips in `dir`; `which` and `codecs` pick a subset.
pub fn compare(
    dir: &Path,
    which: &[Workload],
    codecs: &[VideoCodec],
    rate: Rate,
    passes: usize,
) -> Result<()> {
    let work = dir.join("encoded");
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let present: Vec<Workload> = which.iter().copied().filter(|w| w.clip_path(dir).exists()).collect();
    if present.is_empty() {
        bail!(
            "no clips in {} (run `tether-bench codec record --out {}` first)",
            dir.display(),
            dir.display()
        );
    }
    let mut report = String::new();
    let _ = writeln!(
        report,
        "Reference codecs: {rate}. kbit/s and the largest later update leave out the first frame \
         (a full frame or keyframe), which has its own column; 1 KB = 1024 bytes. PSNR is over R, G \
         and B; Tether is checked frame by frame against the source. Encode ms/frame is CPU time on \
         one core, first frame included, the fastest of {passes} pass(es); for the reference codecs \
         it includes ffmpeg's conversion to YUV 4:2:0.\n"
    );
    println!("{report}");
    let mut misses = 0;
    for workload in present {
        let (section, missed) = workload_report(dir, &work, workload, codecs, rate, passes)?;
        misses += missed;
        println!("{section}");
        report.push_str(&section);
    }
    let _ = writeln!(report, "Targets missed: {misses}.");
    println!("Targets missed: {misses}.");
    let saved = dir.join("results.md");
    std::fs::write(&saved, &report).with_context(|| format!("writing {}", saved.display()))?;
    eprintln!("saved {}", saved.display());
    Ok(())
}

/// What the clip shows: as staged on X, or on sway where `codec record --desktop sway` said so.
fn describe(dir: &Path, workload: Workload) -> &'static str {
    match std::fs::read_to_string(dir.join(crate::record::DESKTOP_NOTE)) {
        Ok(desktop) if desktop.trim() == "sway" => crate::workloads_sway::describe(workload),
        _ => workload.describe(),
    }
}

/// The Markdown section of one workload, and how many of Tether's targets it missed.
fn workload_report(
    dir: &Path,
    work: &Path,
    workload: Workload,
    codecs: &[VideoCodec],
    rate: Rate,
    passes: usize,
) -> Result<(String, usize)> {
    let clip = workload.clip_path(dir);
    let header = ClipReader::open(&clip)?.header();
    let times = ClipReader::frame_times(&clip)?;
    let frames = times.len();
    let worst_gap = times.windows(2).map(|p| p[1].saturating_sub(p[0])).max().unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(out, "### {}\n", workload.name());
    let _ = writeln!(
        out,
        "{}; {frames} frames of {}x{} at {} fps ({:.1} s; longest capture interval {:.0} ms).\n",
        describe(dir, workload),
        header.width,
        header.height,
        header.fps,
        frames as f64 / f64::from(header.fps),
        worst_gap as f64 / 1000.0,
    );

    let mut tether = Vec::new();
    for mode in Mode::all() {
        eprintln!("{}: {}…", workload.name(), mode.name());
        tether.push((mode, tether_codec::run(&clip, mode, passes)?));
    }
    let mut results: Vec<_> = tether.iter().map(|(_, run)| run.result.clone()).collect();
    for &codec in codecs {
        eprintln!("{}: {}…", workload.name(), codec.name());
        results.push(ffmpeg::run(&clip, codec, rate, work, passes)?);
    }
    out.push_str(&table::render(&results));
    if !codecs.is_empty() {
        let convert = ffmpeg::conversion_ms(&clip, work, passes)?;
        let ceiling = ffmpeg::conversion_psnr(&clip, work)?;
        let _ = writeln!(
            out,
            "\nOf the reference codecs' ms/frame, {convert:.2} ms is ffmpeg reading the frame and \
             converting it to YUV 4:2:0 (measured alone). That conversion alone, with no encoder, \
             gives a PSNR of {ceiling} dB: the ceiling for the reference codecs here."
        );
    }
    for (_, run) in &tether {
        let _ = writeln!(out, "\n{} in detail:\n\n{}", run.result.codec, run.detail);
    }
    // Targets are about what a session sends: the session's default settings.
    let mut missed = 0;
    if let Some((mode, run)) = tether.last() {
        let checks = targets::check(workload, &run.result, &run.detail);
        missed = checks.iter().filter(|c| !c.pass).count();
        let _ = writeln!(out, "Targets ({}):\n\n{}", mode.name(), targets::render(&checks));
    }
    Ok((out, missed))
}
