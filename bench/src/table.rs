//! One codec's numbers on one clip, and the Markdown table that shows them side by side.
//!
//! Every codec is counted the same way: the first update (a full frame or keyframe) is reported on its own
//! and left out of the bitrate and of the largest update, which describe the steady state that follows.

use std::fmt::Write as _;

/// How close the decoded screen is to the source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fidelity {
    /// Every decoded frame equals its source, pixel for pixel.
    Lossless,
    /// Peak signal-to-noise ratio over R, G and B of all frames, in dB.
    Psnr(f64),
    Unknown,
}

impl std::fmt::Display for Fidelity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fidelity::Lossless => f.write_str("lossless"),
            Fidelity::Psnr(db) if db.is_infinite() => f.write_str("lossless"),
            Fidelity::Psnr(db) => write!(f, "{db:.1}"),
            Fidelity::Unknown => f.write_str("?"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct CodecResult {
    pub codec: String,
    pub fps: u32,
    /// Bytes of each update (or packet), in order; 0 for a frame with no change.
    pub updates: Vec<usize>,
    pub fidelity: Fidelity,
    /// Encode time per frame on one core, first frame included.
    pub encode_ms_per_frame: f64,
}

impl CodecResult {
    pub fn new(codec: &str, fps: u32) -> Self {
        Self {
            codec: codec.to_owned(),
            fps,
            updates: Vec::new(),
            fidelity: Fidelity::Unknown,
            encode_ms_per_frame: f64::NAN,
        }
    }

    pub fn push_update(&mut self, bytes: usize) {
        self.updates.push(bytes);
    }

    /// Size of the first update.
    pub fn first_bytes(&self) -> usize {
        self.updates.first().copied().unwrap_or_default()
    }

    fn rest(&self) -> &[usize] {
        self.updates.get(1..).unwrap_or_default()
    }

    /// Bitrate of the updates after the first, at the clip's frame rate.
    pub fn kbit_per_s(&self) -> f64 {
        let rest = self.rest();
        if rest.is_empty() {
            return 0.0;
        }
        let bytes: usize = rest.iter().sum();
        let seconds = rest.len() as f64 / f64::from(self.fps);
        bytes as f64 * 8.0 / seconds / 1000.0
    }

    /// Largest update after the first.
    pub fn max_rest_bytes(&self) -> usize {
        self.rest().iter().copied().max().unwrap_or_default()
    }
}

/// A Markdown table of the results for one workload.
pub fn render(results: &[CodecResult]) -> String {
    let mut out = String::new();
    out.push_str(
        "| codec | kbit/s @30fps | PSNR dB | first frame KB | largest later update KB | encode ms/frame |\n",
    );
    out.push_str("|---|---:|---:|---:|---:|---:|\n");
    for r in results {
        let _ = writeln!(
            out,
            "| {} | {:.0} | {} | {:.1} | {:.1} | {:.2} |",
            r.codec,
            r.kbit_per_s(),
            r.fidelity,
            kb(r.first_bytes()),
            kb(r.max_rest_bytes()),
            r.encode_ms_per_frame,
        );
    }
    out
}

/// Bytes as KB (1 KB = 1024 bytes, like the 64 KB target).
pub fn kb(bytes: usize) -> f64 {
    bytes as f64 / 1024.0
}
