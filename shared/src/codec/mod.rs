//! The tile format of screen updates, shared by the host's encoder and the viewer's decoder.
//!
//! A screen update is a list of rectangles ("tiles", normally [`TILE`]×[`TILE`] pixels). Each carries:
//! - `Copy`: pixels the viewer already has, from elsewhere on its screen (scrolling, moved windows) —
//!   the cheapest update there is;
//! - `Solid`: one colour (empty desktop areas cost 4 bytes);
//! - `Palette`: up to 256 colours and zstd-compressed 1-byte indices (text and UI: sharp and small);
//! - `Zstd` / `Raw`: BGR rows, compressed when that helps;
//! - `Jpeg`: lossy, only for photographic tiles and only when the quality setting allows it;
//! - `Packed`: a bundle of tiles whose BGR rows share one zstd stream ([`packed`]) —
//!   what the host's encoder sends; the single-tile `Palette` / `Zstd` / `Raw` forms remain for
//!   [`encode_tile`];
//! - `Video`: one VP9 frame of a video region's stream (the `tether-video` crate encodes and decodes
//!   it; it needs the stream's state, so [`apply_tile`] refuses it).
//!
//! Everything but `Jpeg` and `Video` is lossless. Pixel payloads are BGR (the fourth byte of a captured BGRX pixel
//! carries nothing). Decoding validates everything a peer could get wrong (bounds, lengths, decompressed
//! sizes, JPEG dimensions) and never allocates more than the tile needs. [`encode_tile`] and
//! [`apply_tile`] are pure functions; the choice of `Copy` (scroll detection) is the encoder's.

mod lossless;
mod lossy;
pub mod packed;

pub use packed::{PackedTile, PartEncoder, MAX_BUNDLE_BYTES};

use serde::{Deserialize, Serialize};

use crate::frame::Frame;

/// Edge length of a damage tile in pixels.
pub const TILE: u32 = 64;

/// How much loss the technician accepts for photographic regions. Text and UI are always lossless.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Quality {
    /// Every pixel exact.
    Lossless,
    /// Photographic tiles as JPEG of this quality (1–100); everything else lossless.
    Balanced { jpeg_quality: u8 },
}

impl Default for Quality {
    fn default() -> Self {
        Self::Balanced { jpeg_quality: 80 }
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TileData {
    Copy {
        src_x: u32,
        src_y: u32,
    },
    Solid([u8; 4]),
    Palette {
        colours: Vec<u8>,
        indices: Vec<u8>,
    },
    Zstd(Vec<u8>),
    Raw(Vec<u8>),
    Jpeg(Vec<u8>),
    /// Several tiles inside this tile's rectangle whose payloads are one zstd stream, in list order.
    Packed {
        tiles: Vec<PackedTile>,
        stream: Vec<u8>,
    },
    /// One frame of video `stream` covering this tile's rectangle. A new stream number (or rectangle)
    /// starts a new stream, with a keyframe.
    Video {
        stream: u32,
        frame: Vec<u8>,
    },
}

impl std::fmt::Debug for TileData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Copy { src_x, src_y } => write!(f, "Copy(from {src_x},{src_y})"),
            Self::Solid(c) => write!(f, "Solid({c:?})"),
            Self::Palette { colours, indices } => {
                write!(f, "Palette({} colours, {} bytes)", colours.len() / 3, indices.len())
            }
            Self::Zstd(d) => write!(f, "Zstd({} bytes)", d.len()),
            Self::Raw(d) => write!(f, "Raw({} bytes)", d.len()),
            Self::Jpeg(d) => write!(f, "Jpeg({} bytes)", d.len()),
            Self::Packed { tiles, stream } => {
                write!(f, "Packed({} tiles, {} bytes)", tiles.len(), stream.len())
            }
            Self::Video { stream, frame } => write!(f, "Video(stream {stream}, {} bytes)", frame.len()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tile {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
    pub data: TileData,
}

impl Tile {
    /// Bytes of payload this tile carries (for statistics).
    pub fn payload_len(&self) -> usize {
        match &self.data {
            TileData::Copy { .. } => 8,
            TileData::Solid(_) => 4,
            TileData::Palette { colours, indices } => colours.len() + indices.len(),
            TileData::Zstd(d) | TileData::Raw(d) | TileData::Jpeg(d) => d.len(),
            TileData::Packed { tiles, stream } => stream.len() + tiles.len() * 10,
            TileData::Video { frame, .. } => frame.len() + 4,
        }
    }

    /// Whether this tile reproduces its pixels exactly.
    pub fn is_lossless(&self) -> bool {
        !matches!(self.data, TileData::Jpeg(_) | TileData::Video { .. })
    }
}

/// Why a tile could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("tile {w}x{h} at ({x},{y}) lies outside the {fw}x{fh} screen")]
    OutOfBounds { x: u32, y: u32, w: u32, h: u32, fw: u32, fh: u32 },
    #[error("tile pixel data has {got} bytes, expected {want}")]
    BadLength { got: usize, want: usize },
    #[error("palette index {index} beyond a palette of {len} colours")]
    BadIndex { index: u8, len: usize },
    #[error("tile data does not decode: {0}")]
    Decode(String),
    #[error("a video tile needs its stream's decoder")]
    Video,
}

/// Whether a rectangle's pixels (BGRX rows) look photographic: too many colours for a palette to pay,
/// what the encoder sends as JPEG when allowed and the video path takes when it keeps changing.
pub fn is_photographic(bgrx: &[u8]) -> bool {
    lossless::is_photographic(bgrx)
}

/// Encode the pixels of one rectangle (tightly packed BGRX rows) as the smallest fitting representation.
pub fn encode_tile(x: u32, y: u32, w: u32, h: u32, bgrx: &[u8], quality: Quality) -> Tile {
    Tile { x, y, w, h, data: lossless::encode(bgrx, w, h, quality) }
}

/// A tile telling the viewer to copy `w`×`h` pixels from (`src_x`, `src_y`) to (`x`, `y`).
pub fn copy_tile(x: u32, y: u32, w: u32, h: u32, src_x: u32, src_y: u32) -> Tile {
    Tile { x, y, w, h, data: TileData::Copy { src_x, src_y } }
}

fn check_bounds(x: u32, y: u32, w: u32, h: u32, frame: &Frame) -> Result<(), CodecError> {
    let (fw, fh) = (frame.width(), frame.height());
    let fits = w > 0
        && h > 0
        && x.checked_add(w).is_some_and(|r| r <= fw)
        && y.checked_add(h).is_some_and(|b| b <= fh);
    if fits {
        Ok(())
    } else {
        Err(CodecError::OutOfBounds { x, y, w, h, fw, fh })
    }
}

/// Check that a `w`×`h` rectangle at (`x`, `y`) lies inside `frame` and is not empty.
pub fn check_rect(x: u32, y: u32, w: u32, h: u32, frame: &Frame) -> Result<(), CodecError> {
    check_bounds(x, y, w, h, frame)
}

/// Write a tile into the frame, after checking it fits and its data decodes to exactly the right size.
/// A `Video` tile is an error here: it needs its stream's decoder (`tether-video`).
pub fn apply_tile(tile: &Tile, frame: &mut Frame, scratch: &mut Vec<u8>) -> Result<(), CodecError> {
    check_bounds(tile.x, tile.y, tile.w, tile.h, frame)?;
    let want = tile.w as usize * tile.h as usize * 3;
    let bgr: &[u8] = match &tile.data {
        TileData::Copy { src_x, src_y } => {
            check_bounds(*src_x, *src_y, tile.w, tile.h, frame)?;
            copy_within(frame, (*src_x, *src_y), (tile.x, tile.y), (tile.w, tile.h));
            return Ok(());
        }
        TileData::Packed { tiles, stream } => {
            return packed::apply((tile.x, tile.y, tile.w, tile.h), tiles, stream, frame, scratch);
        }
        TileData::Video { .. } => return Err(CodecError::Video),
        TileData::Raw(d) => d,
        TileData::Jpeg(d) => {
            lossy::decode(d, tile.w, tile.h, scratch)?;
            scratch
        }
        other => {
            lossless::decode(other, want, scratch)?;
            scratch
        }
    };
    if bgr.len() != want {
        return Err(CodecError::BadLength { got: bgr.len(), want });
    }
    write_bgr(frame, (tile.x, tile.y, tile.w, tile.h), bgr);
    Ok(())
}

/// Write `w * h * 3` bytes of BGR rows into a rectangle already checked to lie inside the frame.
fn write_bgr(frame: &mut Frame, (x, y, w, _h): (u32, u32, u32, u32), bgr: &[u8]) {
    let stride = frame.width() as usize * 4;
    let dst = frame.bgrx_mut();
    for (row, src) in bgr.chunks_exact(w as usize * 3).enumerate() {
        let start = (y as usize + row) * stride + x as usize * 4;
        let out = &mut dst[start..start + w as usize * 4];
        for (o, i) in out.chunks_exact_mut(4).zip(src.chunks_exact(3)) {
            o.copy_from_slice(&[i[0], i[1], i[2], 0]);
        }
    }
}

/// Copy a rectangle inside the frame; correct when source and destination overlap (scrolling).
pub fn copy_within(frame: &mut Frame, (sx, sy): (u32, u32), (dx, dy): (u32, u32), (w, h): (u32, u32)) {
    let stride = frame.width() as usize * 4;
    let row_len = w as usize * 4;
    let px = frame.bgrx_mut();
    let copy_row = |px: &mut [u8], r: u32| {
        let src = (sy + r) as usize * stride + sx as usize * 4;
        let dst = (dy + r) as usize * stride + dx as usize * 4;
        px.copy_within(src..src + row_len, dst);
    };
    if dy > sy {
        (0..h).rev().for_each(|r| copy_row(px, r)); // moving down: bottom row first
    } else {
        (0..h).for_each(|r| copy_row(px, r));
    }
}

#[cfg(test)]
mod tests;
