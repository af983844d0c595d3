//! Content the workloads show: a long generated log-like text (the same on every machine) and a short
//! "photographic" video rendered with ffmpeg (a Mandelbrot zoom with film grain; no camera footage ships
//! with the benchmark). Both live in a temporary directory that is removed after recording.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

/// Lines of generated text: more than any scrolling clip reaches.
const TEXT_LINES: usize = 3000;
/// Size of the video window's content.
pub const VIDEO_SIZE: (u32, u32) = (960, 540);

#[derive(Debug)]
pub struct Assets {
    _dir: TempDir,
    pub text: PathBuf,
    pub video: Option<PathBuf>,
}

impl Assets {
    /// Write the text, and render `video_seconds` of video if asked (it takes a few seconds of CPU).
    pub fn create(parent: &Path, video_seconds: Option<f64>) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(".assets-")
            .tempdir_in(parent)
            .context("creating a temporary directory for assets")?;
        let text = dir.path().join("session.log");
        std::fs::write(&text, generated_text(TEXT_LINES)).context("writing the text asset")?;
        let video = match video_seconds {
            Some(seconds) => {
                let path = dir.path().join("video.mkv");
                render_video(&path, seconds)?;
                Some(path)
            }
            None => None,
        };
        Ok(Self { _dir: dir, text, video })
    }
}

/// A log-like text with lines of varied length and content, from a fixed-seed generator.
pub fn generated_text(lines: usize) -> String {
    const LEVELS: [&str; 4] = ["INFO ", "DEBUG", "WARN ", "INFO "];
    const MODULES: [&str; 6] = [
        "tether::session",
        "tether::capture",
        "quinn::connection",
        "tether::relay",
        "tether::encode",
        "rustls::client",
    ];
    const WORDS: [&str; 24] = [
        "frame", "acked", "in", "ms", "tiles", "changed", "viewer", "stream", "opened", "closed", "bytes",
        "sent", "window", "credit", "pairing", "code", "retry", "timeout", "peer", "update", "queued",
        "capture", "resized", "latency",
    ];
    let mut rng = SplitMix(0x7e7e_7e7e);
    let mut out = String::new();
    for n in 0..lines {
        let ms = n as u64 * 37 + rng.below(30);
        let _ = write!(
            out,
            "2024-05-01 12:{:02}:{:02}.{:03} {} {:<18}",
            (ms / 60_000) % 60,
            (ms / 1000) % 60,
            ms % 1000,
            LEVELS[rng.below(4) as usize],
            MODULES[rng.below(6) as usize],
        );
        for _ in 0..2 + rng.below(14) {
            out.push(' ');
            if rng.below(4) == 0 {
                let _ = write!(out, "{}", rng.below(100_000));
            } else {
                out.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
            }
        }
        out.push('\n');
    }
    out
}

/// Render a Mandelbrot zoom with temporal grain, 30 fps, stored near-losslessly (x264 CRF 14, 4:2:0 like
/// any real video a user would play).
fn render_video(path: &Path, seconds: f64) -> Result<()> {
    let (w, h) = VIDEO_SIZE;
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(["-f", "lavfi", "-i"])
        .arg(format!("mandelbrot=s={w}x{h}:r=30:maxiter=2000"))
        .args(["-t", &format!("{seconds:.2}")])
        .args(["-vf", "noise=alls=6:allf=t"])
        .args(["-c:v", "libx264", "-crf", "14", "-preset", "veryfast"])
        .args(["-pix_fmt", "yuv420p"])
        .arg(path)
        .stdout(Stdio::null())
        .output()
        .context("running ffmpeg to render the video asset")?;
    if !out.status.success() {
        bail!("ffmpeg could not render the video: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// SplitMix64: a tiny deterministic generator, so the text is identical everywhere.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
