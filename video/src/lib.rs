//! The video path: a real video encoder with temporal prediction for screen regions that keep changing
//! with photographic content (a playing video, an animation), where lossless tiles cost tens of Mbit/s.
//!
//! - [`vp9`]: VP9 through libvpx (Debian's `libvpx-dev`), the only `unsafe` code of Tether's codec,
//!   confined to two small wrappers whose every call is commented with why it is sound.
//! - [`yuv`]: BGRX ↔ I420 (BT.601, limited range), the colour conversion on both sides of the codec.
//! - [`tiles`]: the viewer's side: `Video` tiles through their stream's decoder, other tiles as before.
//!
//! Why VP9 (measured on this bench, `docs/BENCHMARKS.md`): royalty-free; libvpx's real-time mode encodes a
//! 960×540 region in a few milliseconds on one core; AV1 (libaom real-time) spends ~30 % fewer bits but
//! 1.6× the encode time of VP9 on the same frames, and has no Debian dev package for its fast encoder
//! (SVT-AV1) here; x264/openh264 need 4× VP9's bits for the same picture.
//!
//! The host keeps text exact around a video region: only the region goes through here, and it is
//! refined to exact tiles once it stops changing (see the host's `encode::video`).

pub mod fuzz;
pub mod tiles;
pub mod vp9;
pub mod yuv;

pub use tiles::{TileError, VideoTiles};

/// Why the video codec failed. Decoding errors come from the peer's data and end nothing but the
/// picture they were for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VideoError {
    #[error("video size {w}x{h} is not supported (even sizes from 16x16 to 8192x8192)")]
    Size { w: u32, h: u32 },
    #[error("the VP9 {what} failed: {detail}")]
    Codec { what: &'static str, detail: String },
    #[error("the video picture is {got_w}x{got_h}, its region {want_w}x{want_h}")]
    Mismatch { got_w: u32, got_h: u32, want_w: u32, want_h: u32 },
    #[error("the video picture is not 8-bit 4:2:0")]
    Format,
    #[error("the video data produced no picture")]
    NoPicture,
}
