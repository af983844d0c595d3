//! Bundles: the lossless tiles of one message part sent as a single zstd stream.
//!
//! Compressing every 64×64 tile on its own costs a zstd frame per tile and finds no repetition across
//! tiles (the same glyphs, the same window chrome), so a text desktop's first frame cost 150–300 KB as
//! tiles against ~50–100 KB as one stream. A bundle lists its tiles (position and size) and carries one
//! zstd stream: the BGR rows of its tiles, concatenated in list order.
//!
//! Inside one stream plain BGR beats per-tile palettes (measured on the recorded desktops' first frames:
//! 49 / 103 / 59 KB as BGR against 111 / 237 / 129 KB as palette + indices): each tile numbers its
//! colours its own way, so the same glyph in two tiles becomes two different index strings, while its
//! BGR bytes repeat exactly. Large bundles (a full frame) also turn on zstd's long-distance matching,
//! which finds the repeats a whole tile row apart (another 20–30%).
//!
//! The decoder trusts nothing: every tile must lie inside the bundle's rectangle (itself checked against
//! the screen), the decompressed size is computed from the declared tiles with checked arithmetic and
//! capped at [`MAX_BUNDLE_BYTES`] before anything is allocated, and the stream must decompress to exactly
//! that size.

use serde::{Deserialize, Serialize};

use super::lossless::{self, Class, ZSTD_LEVEL};
use super::{lossy, CodecError, Quality, Tile, TileData};
use crate::frame::Frame;

/// Largest decompressed stream a bundle may declare (the encoder stays well below it).
pub const MAX_BUNDLE_BYTES: usize = 16 * 1024 * 1024;

/// One tile of a bundle: `w * h * 3` bytes of BGR rows in the bundle's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackedTile {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl PackedTile {
    /// Bytes this tile takes in the decompressed stream; `None` on overflow.
    fn stream_len(&self) -> Option<usize> {
        (self.w as usize).checked_mul(self.h as usize)?.checked_mul(3)
    }
}

/// Streams from this size on are compressed with long-distance matching (it costs a few milliseconds
/// of setup, worth it for a full frame, not for a typed letter).
const LONG_MATCH_FROM: usize = 1024 * 1024;

/// Collects the tiles of one message part. Lossless pixel tiles go into one bundle; solid colours,
/// JPEG tiles and copies stay tiles of their own.
#[derive(Debug)]
pub struct PartEncoder {
    quality: Quality,
    tiles: Vec<Tile>,
    packed: Vec<PackedTile>,
    stream: Vec<u8>,
    /// Payload bytes of `tiles` (JPEG data and the like).
    tile_bytes: usize,
}

impl PartEncoder {
    pub fn new(quality: Quality) -> Self {
        Self { quality, tiles: Vec::new(), packed: Vec::new(), stream: Vec::new(), tile_bytes: 0 }
    }

    /// Add a tile that is already encoded (a copy, for instance). Tiles keep their order; the bundle
    /// follows every tile added this way, so copies must not depend on bundled pixels of the same part.
    pub fn push_tile(&mut self, tile: Tile) {
        self.tile_bytes += tile.payload_len();
        self.tiles.push(tile);
    }

    /// Add the pixels of one rectangle (tightly packed BGRX rows).
    pub fn push(&mut self, x: u32, y: u32, w: u32, h: u32, bgrx: &[u8]) {
        match lossless::classify(bgrx, self.quality) {
            Class::Solid(c) => return self.push_tile(Tile { x, y, w, h, data: TileData::Solid(c) }),
            Class::Jpeg { jpeg_quality } => {
                let bgr: Vec<u8> = bgrx.chunks_exact(4).flat_map(|px| [px[0], px[1], px[2]]).collect();
                let data = match lossy::encode(&bgr, w, h, jpeg_quality) {
                    Ok(jpeg) => TileData::Jpeg(jpeg),
                    Err(_) => lossless::zstd_or_raw(bgr),
                };
                return self.push_tile(Tile { x, y, w, h, data });
            }
            Class::Alone => {
                let bgr = bgrx.chunks_exact(4).flat_map(|px| [px[0], px[1], px[2]]).collect();
                return self.push_tile(Tile { x, y, w, h, data: lossless::zstd_or_raw(bgr) });
            }
            Class::Bundled => self.stream.extend(bgrx.chunks_exact(4).flat_map(|px| [px[0], px[1], px[2]])),
        }
        self.packed.push(PackedTile { x, y, w, h });
    }

    /// Bytes this part would carry before compression: what to split parts by.
    pub fn pending_bytes(&self) -> usize {
        self.tile_bytes + self.stream.len() + self.tiles.len() * 16 + self.packed.len() * 16
    }

    /// Bytes of the tiles already encoded (solid, JPEG, alone, copies), with their headers.
    pub fn encoded_bytes(&self) -> usize {
        self.tile_bytes + self.tiles.len() * 16
    }

    /// Raw bytes waiting for the bundle's compression, with their headers.
    pub fn bundled_bytes(&self) -> usize {
        self.stream.len() + self.packed.len() * 16
    }

    pub fn is_empty(&self) -> bool {
        self.tiles.is_empty() && self.packed.is_empty()
    }

    /// The part's tiles: those added whole, then one bundle of everything else. Leaves the encoder empty.
    pub fn finish(&mut self) -> Vec<Tile> {
        let mut tiles = std::mem::take(&mut self.tiles);
        self.tile_bytes = 0;
        if self.packed.is_empty() {
            return tiles;
        }
        let packed = std::mem::take(&mut self.packed);
        let (x0, y0) = (packed.iter().map(|t| t.x).min(), packed.iter().map(|t| t.y).min());
        let (x1, y1) = (packed.iter().map(|t| t.x + t.w).max(), packed.iter().map(|t| t.y + t.h).max());
        let (x0, y0, x1, y1) = (x0.unwrap_or(0), y0.unwrap_or(0), x1.unwrap_or(0), y1.unwrap_or(0));
        match compress(&self.stream) {
            Ok(stream) => {
                let data = TileData::Packed { tiles: packed, stream };
                tiles.push(Tile { x: x0, y: y0, w: x1 - x0, h: y1 - y0, data });
            }
            // zstd fails only when it cannot allocate: send the pixels plain instead.
            Err(_) => tiles.extend(unpacked(&packed, &self.stream)),
        }
        self.stream.clear();
        tiles
    }
}

fn compress(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut zstd = zstd::bulk::Compressor::new(ZSTD_LEVEL)?;
    if data.len() >= LONG_MATCH_FROM {
        zstd.long_distance_matching(true)?;
    }
    zstd.compress(data)
}

/// The bundled tiles as plain `Raw` tiles.
fn unpacked<'a>(packed: &'a [PackedTile], mut stream: &'a [u8]) -> impl Iterator<Item = Tile> + 'a {
    packed.iter().map(move |t| {
        let (data, rest) = stream.split_at(t.stream_len().unwrap_or(0).min(stream.len()));
        stream = rest;
        Tile { x: t.x, y: t.y, w: t.w, h: t.h, data: TileData::Raw(data.to_vec()) }
    })
}

/// Apply a bundle whose rectangle `outer` has been checked against the frame.
pub(super) fn apply(
    outer: (u32, u32, u32, u32),
    tiles: &[PackedTile],
    stream: &[u8],
    frame: &mut Frame,
    scratch: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let (ox, oy, ow, oh) = outer;
    if tiles.is_empty() {
        return Err(CodecError::Decode("a bundle of no tiles".into()));
    }
    let mut total = 0usize;
    for t in tiles {
        let inside = t.w > 0
            && t.h > 0
            && t.x >= ox
            && t.y >= oy
            && t.x.checked_add(t.w).is_some_and(|r| r <= ox + ow)
            && t.y.checked_add(t.h).is_some_and(|b| b <= oy + oh);
        if !inside {
            return Err(CodecError::Decode(format!(
                "bundled tile {}x{} at ({},{}) outside its bundle {ow}x{oh} at ({ox},{oy})",
                t.w, t.h, t.x, t.y
            )));
        }
        total = t
            .stream_len()
            .and_then(|len| total.checked_add(len))
            .filter(|&sum| sum <= MAX_BUNDLE_BYTES)
            .ok_or_else(|| CodecError::Decode(format!("bundle over {MAX_BUNDLE_BYTES} bytes")))?;
    }
    lossless::decompress_exact(stream, total, scratch)?;
    let mut rest: &[u8] = scratch;
    for t in tiles {
        let (data, tail) = rest.split_at(t.stream_len().unwrap_or(0));
        rest = tail;
        super::write_bgr(frame, (t.x, t.y, t.w, t.h), data);
    }
    Ok(())
}
