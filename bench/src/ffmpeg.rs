//! The reference codecs, run through the `ffmpeg` command line: x264, VP9 (libvpx) and AV1 (libaom), each
//! single-threaded in its real-time mode, fed the clip's raw BGRX frames on stdin.
//!
//! Per codec and clip there are three steps:
//! 1. encode to Matroska with `-benchmark`, whose `utime + stime` (the CPU time of the whole ffmpeg
//!    process, conversion from BGRX to YUV 4:2:0 included) gives the encode cost per frame — the fastest
//!    of a few passes, like Tether's;
//! 2. `ffprobe -show_packets` for the size of every packet;
//! 3. decode and compare with the source in RGB with the `psnr` filter, both sides given the same time base
//!    and retimed by frame index, so Matroska's millisecond timestamps cannot pair the wrong frames.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;

use anyhow::{anyhow, bail, Context, Result};

use crate::clip::{ClipHeader, ClipReader};
use crate::table::{CodecResult, Fidelity};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VideoCodec {
    X264,
    Vp9,
    Av1,
}

/// Rate control for the reference codecs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    /// Constant quality: x264 CRF 23 (its default), VP9 and AV1 CRF 32 with no bitrate cap.
    Quality,
    /// Constant bitrate in kbit/s, with a one-second buffer.
    Kbps(u32),
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rate::Quality => f.write_str("constant quality (x264 CRF 23, VP9/AV1 CRF 32)"),
            Rate::Kbps(k) => write!(f, "constant bitrate {k} kbit/s"),
        }
    }
}

impl VideoCodec {
    pub const ALL: [VideoCodec; 3] = [VideoCodec::X264, VideoCodec::Vp9, VideoCodec::Av1];

    pub fn name(self) -> &'static str {
        match self {
            VideoCodec::X264 => "x264",
            VideoCodec::Vp9 => "vp9",
            VideoCodec::Av1 => "av1",
        }
    }

    /// Encoder options: real-time mode, no lookahead, screen-content tuning where the encoder has it.
    fn encoder_args(self, rate: Rate) -> Vec<String> {
        let fixed: &[&str] = match self {
            VideoCodec::X264 => &["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency"],
            VideoCodec::Vp9 => &[
                "-c:v",
                "libvpx-vp9",
                "-deadline",
                "realtime",
                "-cpu-used",
                "8",
                "-tune-content",
                "screen",
                "-row-mt",
                "0",
                "-lag-in-frames",
                "0",
            ],
            VideoCodec::Av1 => &[
                "-c:v",
                "libaom-av1",
                "-usage",
                "realtime",
                "-cpu-used",
                "8",
                "-row-mt",
                "0",
                "-lag-in-frames",
                "0",
                "-aom-params",
                "tune-content=screen",
            ],
        };
        let mut args: Vec<String> = fixed.iter().map(|s| (*s).to_owned()).collect();
        let rate_args = match (self, rate) {
            (VideoCodec::X264, Rate::Quality) => vec!["-crf".into(), "23".into()],
            (_, Rate::Quality) => vec!["-crf".into(), "32".into(), "-b:v".into(), "0".into()],
            (VideoCodec::X264, Rate::Kbps(k)) => vec![
                "-b:v".into(),
                format!("{k}k"),
                "-maxrate".into(),
                format!("{k}k"),
                "-bufsize".into(),
                format!("{k}k"),
            ],
            (_, Rate::Kbps(k)) => vec![
                "-b:v".into(),
                format!("{k}k"),
                "-minrate".into(),
                format!("{k}k"),
                "-maxrate".into(),
                format!("{k}k"),
            ],
        };
        args.extend(rate_args);
        // One keyframe at the start, like Tether's single full frame; 4:2:0 as real-time video uses.
        args.extend(["-g", "600", "-pix_fmt", "yuv420p", "-threads", "1"].map(String::from));
        args
    }
}

/// Encode the clip with one codec and measure it. Outputs go to `work` as `<stem>-<codec>.mkv`.
pub fn run(clip: &Path, codec: VideoCodec, rate: Rate, work: &Path, passes: usize) -> Result<CodecResult> {
    let header = ClipReader::open(clip)?.header();
    let stem = clip.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let encoded = work.join(format!("{stem}-{}.mkv", codec.name()));
    let log = work.join(format!("{stem}-{}.log", codec.name()));

    // The encoders are deterministic single-threaded: every pass writes the same file, and the
    // fastest pass is the encoder's own cost (other processes only ever slow it down).
    let (mut frames, mut cpu) = (0, f64::INFINITY);
    for _ in 0..passes.max(1) {
        let mut cmd = ffmpeg_reading_raw(header);
        cmd.args(["-benchmark", "-fps_mode", "passthrough"])
            .args(codec.encoder_args(rate))
            .args(["-f", "matroska", "-y"])
            .arg(&encoded);
        frames = feed(cmd, clip, &log).with_context(|| format!("encoding with {}", codec.name()))?;
        let pass = cpu_seconds(&std::fs::read_to_string(&log)?)
            .with_context(|| format!("no -benchmark line in {}", log.display()))?;
        cpu = cpu.min(pass);
    }

    let mut result = CodecResult::new(codec.name(), header.fps);
    for size in packet_sizes(&encoded)? {
        result.push_update(size);
    }
    if result.updates.len() != frames {
        eprintln!("warning: {} wrote {} packets for {frames} frames", codec.name(), result.updates.len());
    }
    result.encode_ms_per_frame = cpu * 1000.0 / frames.max(1) as f64;
    result.fidelity = psnr(clip, &encoded, header, work)?;
    Ok(result)
}

/// CPU time per frame of ffmpeg only reading the raw frames and converting them to YUV 4:2:0: the part of
/// every reference codec's encode time that is not the encoder.
pub fn conversion_ms(clip: &Path, work: &Path, passes: usize) -> Result<f64> {
    let header = ClipReader::open(clip)?.header();
    let log = work.join("conversion.log");
    let mut best = f64::INFINITY;
    for _ in 0..passes.max(1) {
        let mut cmd = ffmpeg_reading_raw(header);
        cmd.args(["-benchmark", "-pix_fmt", "yuv420p", "-f", "null", "-"]);
        let frames = feed(cmd, clip, &log)?;
        let cpu = cpu_seconds(&std::fs::read_to_string(&log)?).context("no -benchmark line")?;
        best = best.min(cpu * 1000.0 / frames.max(1) as f64);
    }
    Ok(best)
}

/// PSNR of the clip after a round trip through YUV 4:2:0 and back, with no encoder: the best any of the
/// reference codecs can reach in this setup.
pub fn conversion_psnr(clip: &Path, work: &Path) -> Result<Fidelity> {
    let header = ClipReader::open(clip)?.header();
    let log = work.join("conversion-psnr.log");
    let mut cmd = ffmpeg_reading_raw(header);
    cmd.args(["-lavfi", "split[a][b];[a]format=yuv420p,format=gbrp[c];[b]format=gbrp[d];[c][d]psnr"])
        .args(["-f", "null", "-"]);
    feed(cmd, clip, &log)?;
    parse_psnr(&log)
}

/// An ffmpeg command whose first input is raw BGRX frames of this clip on stdin, single-threaded.
fn ffmpeg_reading_raw(header: ClipHeader) -> Command {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostats", "-loglevel", "info"])
        .args(["-threads", "1", "-filter_threads", "1"])
        .args(["-filter_complex_threads", "1"])
        .args(["-f", "rawvideo", "-pix_fmt", "bgr0"])
        .args(["-s", &format!("{}x{}", header.width, header.height)])
        .args(["-r", &header.fps.to_string(), "-i", "-"]);
    cmd
}

/// Run `cmd` with the clip's frames written to its stdin and its stderr in `log`; returns frames fed.
fn feed(mut cmd: Command, clip: &Path, log: &Path) -> Result<usize> {
    let log_file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .context("starting ffmpeg (apt-get install ffmpeg)")?;
    let mut stdin = child.stdin.take().context("ffmpeg's stdin")?;
    let clip: PathBuf = clip.to_owned();
    let feeder = thread::spawn(move || -> Result<usize> {
        let mut n = 0;
        for item in ClipReader::open(&clip)? {
            stdin.write_all(item?.bgrx())?;
            n += 1;
        }
        Ok(n)
    });
    let status = child.wait().context("waiting for ffmpeg")?;
    let fed = feeder.join().map_err(|_| anyhow!("the frame feeder panicked"))?;
    if !status.success() {
        bail!("ffmpeg failed ({status}):\n{}", tail(log));
    }
    fed.with_context(|| format!("feeding frames to ffmpeg:\n{}", tail(log)))
}

/// `utime + stime` from ffmpeg's `bench: utime=1.2s stime=0.1s rtime=2.0s` line.
fn cpu_seconds(stderr: &str) -> Option<f64> {
    let line = stderr.lines().find(|l| l.contains("bench: utime="))?;
    let field = |name: &str| -> Option<f64> {
        let rest = line.split(&format!("{name}=")).nth(1)?;
        rest.split('s').next()?.parse().ok()
    };
    Some(field("utime")? + field("stime")?)
}

/// Sizes of the video packets in decode order.
fn packet_sizes(encoded: &Path) -> Result<Vec<usize>> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "packet=size", "-of", "csv=p=0"])
        .arg(encoded)
        .output()
        .context("running ffprobe")?;
    if !out.status.success() {
        bail!("ffprobe failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim()
                .trim_end_matches(',')
                .parse::<usize>()
                .with_context(|| format!("ffprobe packet size {l:?}"))
        })
        .collect()
}

/// PSNR of the decoded stream against the source, in RGB (so chroma subsampling counts as loss).
fn psnr(clip: &Path, encoded: &Path, header: ClipHeader, work: &Path) -> Result<Fidelity> {
    let log = work.join("psnr.log");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostats", "-loglevel", "info"])
        .arg("-i")
        .arg(encoded)
        .args(["-f", "rawvideo", "-pix_fmt", "bgr0"])
        .args(["-s", &format!("{}x{}", header.width, header.height)])
        .args(["-r", &header.fps.to_string(), "-i", "-"])
        .arg("-lavfi")
        .arg(format!(
            "[0:v]settb=1/{fps},setpts=N,format=gbrp[d];[1:v]settb=1/{fps},setpts=N,format=gbrp[s];\
             [d][s]psnr=shortest=1",
            fps = header.fps
        ))
        .args(["-f", "null", "-"]);
    feed(cmd, clip, &log).context("measuring PSNR")?;
    parse_psnr(&log)
}

/// The `average:` of the `psnr` filter's summary line in an ffmpeg log.
fn parse_psnr(log: &Path) -> Result<Fidelity> {
    let text = std::fs::read_to_string(log)?;
    let average = text
        .lines()
        .filter(|l| l.contains("PSNR"))
        .find_map(|l| l.split("average:").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .with_context(|| format!("no PSNR in {}", log.display()))?;
    Ok(match average {
        "inf" => Fidelity::Lossless,
        db => Fidelity::Psnr(db.parse().with_context(|| format!("PSNR {db:?}"))?),
    })
}

/// The end of a log, for error messages.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
