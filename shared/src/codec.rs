//! The lossless tile format of screen updates, shared by the host's encoder and the viewer's decoder.
//!
//! A screen update is a list of rectangles ("tiles", normally [`TILE`]×[`TILE`] pixels). Each carries its
//! pixels as one of:
//! - `Solid`: one colour (empty desktop areas cost 4 bytes),
//! - `Zstd`: BGR rows compressed with zstd (text and UI compress very well),
//! - `Raw`: BGR rows as they are, when compression would not make them smaller (noise, photos).
//!
//! Pixel payloads are BGR, 3 bytes a pixel: the fourth byte of a captured BGRX pixel carries nothing.
//!
//! Decoding validates everything a peer could get wrong (bounds, lengths, decompressed size) and never
//! allocates more than the tile needs.

use serde::{Deserialize, Serialize};

use crate::frame::Frame;

/// Edge length of a damage tile in pixels.
pub const TILE: u32 = 64;
/// zstd level for tiles: level 1 is fast and already gives ~90× on desktop content.
const ZSTD_LEVEL: i32 = 1;

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TileData {
    Solid([u8; 4]),
    Zstd(Vec<u8>),
    Raw(Vec<u8>),
}

impl std::fmt::Debug for TileData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Solid(c) => write!(f, "Solid({c:?})"),
            Self::Zstd(d) => write!(f, "Zstd({} bytes)", d.len()),
            Self::Raw(d) => write!(f, "Raw({} bytes)", d.len()),
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
            TileData::Solid(_) => 4,
            TileData::Zstd(d) | TileData::Raw(d) => d.len(),
        }
    }
}

/// Why a tile could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("tile {w}x{h} at ({x},{y}) lies outside the {fw}x{fh} screen")]
    OutOfBounds { x: u32, y: u32, w: u32, h: u32, fw: u32, fh: u32 },
    #[error("tile pixel data has {got} bytes, expected {want}")]
    BadLength { got: usize, want: usize },
    #[error("tile data does not decompress: {0}")]
    Decompress(String),
}

/// Encode the pixels of one rectangle (tightly packed BGRX rows).
pub fn encode_tile(x: u32, y: u32, w: u32, h: u32, bgrx: &[u8]) -> Tile {
    let data = if let Some(colour) = solid_colour(bgrx) {
        TileData::Solid(colour)
    } else {
        let bgr: Vec<u8> = bgrx.chunks_exact(4).flat_map(|px| [px[0], px[1], px[2]]).collect();
        match zstd::bulk::compress(&bgr, ZSTD_LEVEL) {
            Ok(z) if z.len() < bgr.len() => TileData::Zstd(z),
            _ => TileData::Raw(bgr),
        }
    };
    Tile { x, y, w, h, data }
}

fn solid_colour(bgrx: &[u8]) -> Option<[u8; 4]> {
    let first: [u8; 3] = bgrx.get(..3)?.try_into().ok()?;
    bgrx.chunks_exact(4).all(|px| px[..3] == first).then_some([first[0], first[1], first[2], 0])
}

/// Write a tile into the frame, after checking it fits and its data has exactly the right size.
pub fn apply_tile(tile: &Tile, frame: &mut Frame, scratch: &mut Vec<u8>) -> Result<(), CodecError> {
    let (fw, fh) = (frame.width(), frame.height());
    let fits = tile.w > 0
        && tile.h > 0
        && tile.x.checked_add(tile.w).is_some_and(|r| r <= fw)
        && tile.y.checked_add(tile.h).is_some_and(|b| b <= fh);
    if !fits {
        return Err(CodecError::OutOfBounds { x: tile.x, y: tile.y, w: tile.w, h: tile.h, fw, fh });
    }
    let row_len = tile.w as usize * 3;
    let want = row_len * tile.h as usize;
    let pixels: &[u8] = match &tile.data {
        TileData::Solid(c) => {
            scratch.clear();
            scratch.extend(std::iter::repeat_n([c[0], c[1], c[2]], want / 3).flatten());
            scratch
        }
        TileData::Raw(d) => d,
        TileData::Zstd(z) => {
            scratch.clear();
            scratch.reserve(want);
            let n = zstd::bulk::Decompressor::new()
                .and_then(|mut d| d.decompress_to_buffer(z, scratch))
                .map_err(|e| CodecError::Decompress(e.to_string()))?;
            if n != want {
                return Err(CodecError::BadLength { got: n, want });
            }
            scratch
        }
    };
    if pixels.len() != want {
        return Err(CodecError::BadLength { got: pixels.len(), want });
    }
    let stride = fw as usize * 4;
    let dst = frame.bgrx_mut();
    for (row, src) in pixels.chunks_exact(row_len).enumerate() {
        let start = (tile.y as usize + row) * stride + tile.x as usize * 4;
        let out = &mut dst[start..start + tile.w as usize * 4];
        for (o, i) in out.chunks_exact_mut(4).zip(src.chunks_exact(3)) {
            o.copy_from_slice(&[i[0], i[1], i[2], 0]);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A well-mixed hash of the position (splitmix64), so the bytes do not compress.
    fn noise(x: u32, y: u32) -> u64 {
        let mut z = (u64::from(x) << 32 | u64::from(y)).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn frame_with(w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 4]) -> Frame {
        let mut px = Vec::new();
        for y in 0..h {
            for x in 0..w {
                px.extend_from_slice(&f(x, y));
            }
        }
        Frame::from_bgrx(w, h, px).expect("size")
    }

    #[test]
    fn solid_text_and_noise_tiles_round_trip() {
        let sources = [
            frame_with(64, 64, |_, _| [10, 20, 30, 0]),
            frame_with(
                64,
                64,
                |x, y| {
                    if (x / 3 + y / 5) % 2 == 0 {
                        [0, 0, 0, 0]
                    } else {
                        [255, 255, 255, 0]
                    }
                },
            ),
            frame_with(64, 64, |x, y| {
                let v = noise(x, y).to_le_bytes();
                [v[0], v[1], v[2], 0]
            }),
        ];
        let kinds: Vec<_> = sources
            .iter()
            .map(|src| {
                let tile = encode_tile(0, 0, 64, 64, src.bgrx());
                let mut out = Frame::new(64, 64).expect("size");
                apply_tile(&tile, &mut out, &mut Vec::new()).expect("apply");
                assert_eq!(&out, src);
                std::mem::discriminant(&tile.data)
            })
            .collect();
        assert_eq!(kinds[0], std::mem::discriminant(&TileData::Solid([0; 4])));
        assert_eq!(kinds[1], std::mem::discriminant(&TileData::Zstd(vec![])));
        assert_eq!(kinds[2], std::mem::discriminant(&TileData::Raw(vec![])));
    }

    #[test]
    fn out_of_bounds_and_bad_lengths_are_rejected() {
        let mut f = Frame::new(100, 100).expect("size");
        let t = Tile { x: 90, y: 0, w: 64, h: 64, data: TileData::Solid([0; 4]) };
        assert!(matches!(apply_tile(&t, &mut f, &mut Vec::new()), Err(CodecError::OutOfBounds { .. })));
        let t = Tile { x: u32::MAX, y: 0, w: 2, h: 1, data: TileData::Solid([0; 4]) };
        assert!(matches!(apply_tile(&t, &mut f, &mut Vec::new()), Err(CodecError::OutOfBounds { .. })));
        let t = Tile { x: 0, y: 0, w: 2, h: 2, data: TileData::Raw(vec![0; 11]) };
        assert!(matches!(apply_tile(&t, &mut f, &mut Vec::new()), Err(CodecError::BadLength { .. })));
        let bomb = zstd::bulk::compress(&vec![0u8; 1 << 20], 1).expect("compress");
        let t = Tile { x: 0, y: 0, w: 2, h: 2, data: TileData::Zstd(bomb) };
        assert!(apply_tile(&t, &mut f, &mut Vec::new()).is_err(), "a decompression bomb is refused");
    }

    proptest! {
        #[test]
        fn any_rect_round_trips(w in 1u32..80, h in 1u32..80, seed in any::<u32>(), palette in 1u32..6) {
            let src = frame_with(w, h, |x, y| {
                let v = (x.wrapping_mul(seed | 1) ^ y.wrapping_mul(7919)) % palette;
                [v as u8 * 40, 0, 255 - v as u8, 0]
            });
            let tile = encode_tile(0, 0, w, h, src.bgrx());
            let mut out = Frame::new(w, h).expect("size");
            apply_tile(&tile, &mut out, &mut Vec::new()).expect("apply");
            prop_assert_eq!(out, src);
        }
    }
}
