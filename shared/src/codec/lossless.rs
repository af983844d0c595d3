//! Choosing and decoding the pixel representations: solid, palette + zstd, zstd, raw — and handing
//! photographic tiles to JPEG when the quality allows.

use super::{lossy, CodecError, Quality, TileData};

/// zstd level for tiles: level 1 is fast and already gives ~90× on desktop content.
pub(super) const ZSTD_LEVEL: i32 = 1;
/// Colours a palette holds at most (indices are one byte).
pub(super) const MAX_PALETTE: usize = 256;
/// Above this many distinct colours a tile counts as photographic (text and UI stay far below; a 64×64
/// photo has thousands; a smooth gradient a few hundred).
const PHOTO_COLOURS: usize = 1024;

/// Distinct colours of a tile, with the index of each pixel while there are at most [`MAX_PALETTE`].
struct Census {
    colours: Vec<u32>,
    indices: Vec<u8>,
    distinct: usize,
}

/// Count colours with a small open-addressing table; stop counting past [`PHOTO_COLOURS`].
fn census(bgrx: &[u8]) -> Census {
    const SLOTS: usize = 4096; // > 2 × PHOTO_COLOURS keeps probing short
    let mut table = vec![(u32::MAX, 0u16); SLOTS];
    let mut colours = Vec::new();
    let mut indices = Vec::with_capacity(bgrx.len() / 4);
    let mut distinct = 0usize;
    for px in bgrx.chunks_exact(4) {
        let colour = u32::from_le_bytes([px[0], px[1], px[2], 0]);
        let mut slot = (colour.wrapping_mul(0x9E37_79B1) >> 20) as usize % SLOTS;
        let index = loop {
            match table[slot] {
                (c, i) if c == colour => break i,
                (u32::MAX, _) => {
                    table[slot] = (colour, distinct as u16);
                    if distinct < MAX_PALETTE {
                        colours.push(colour);
                    }
                    distinct += 1;
                    break (distinct - 1) as u16;
                }
                _ => slot = (slot + 1) % SLOTS,
            }
        };
        if distinct <= MAX_PALETTE {
            indices.push(index as u8);
        }
        if distinct > PHOTO_COLOURS {
            break;
        }
    }
    Census { colours, indices, distinct }
}

/// More colours than a palette or zstd handle well: photographic.
pub(super) fn is_photographic(bgrx: &[u8]) -> bool {
    census(bgrx).distinct > PHOTO_COLOURS
}

/// What a tile's pixels are best sent as, before any entropy coding.
pub(super) enum Choice {
    Solid([u8; 4]),
    /// BGR colours (3 bytes each) and one index per pixel.
    Palette {
        colours: Vec<u8>,
        indices: Vec<u8>,
    },
    Jpeg(Vec<u8>),
    /// BGR rows.
    Bgr(Vec<u8>),
}

/// Pick the representation of a tile: one colour, a palette when that is smaller than plain pixels,
/// JPEG for photographic tiles when the quality allows, BGR otherwise.
pub(super) fn choose(bgrx: &[u8], w: u32, h: u32, quality: Quality) -> Choice {
    let census = census(bgrx);
    if census.distinct == 1 {
        let [b, g, r, _] = census.colours[0].to_le_bytes();
        return Choice::Solid([b, g, r, 0]);
    }
    let pixels = bgrx.len() / 4;
    // A small tile with many colours can cost more as a palette than as plain pixels.
    if census.distinct <= MAX_PALETTE && census.colours.len() * 3 + pixels < pixels * 3 {
        let colours = census.colours.iter().flat_map(|c| c.to_le_bytes()[..3].to_vec()).collect();
        return Choice::Palette { colours, indices: census.indices };
    }
    let bgr: Vec<u8> = bgrx.chunks_exact(4).flat_map(|px| [px[0], px[1], px[2]]).collect();
    if let (Quality::Balanced { jpeg_quality }, true) = (quality, census.distinct > PHOTO_COLOURS) {
        if let Ok(jpeg) = lossy::encode(&bgr, w, h, jpeg_quality) {
            return Choice::Jpeg(jpeg);
        }
    }
    Choice::Bgr(bgr)
}

/// What a tile bound for a bundle is: one colour; more than [`MAX_PALETTE`] colours (photographic or
/// nearly: compressed on its own, where zstd's entropy tables fit the one tile, or as JPEG when allowed
/// and over [`PHOTO_COLOURS`]); or text and UI (sent as BGR in the bundle's shared stream).
pub(super) enum Class {
    Solid([u8; 4]),
    Jpeg { jpeg_quality: u8 },
    Alone,
    Bundled,
}

pub(super) fn classify(bgrx: &[u8], quality: Quality) -> Class {
    let first = bgrx.get(..3).unwrap_or_default();
    if bgrx.chunks_exact(4).all(|px| &px[..3] == first) {
        if let [b, g, r] = *first {
            return Class::Solid([b, g, r, 0]);
        }
    }
    let distinct = census(bgrx).distinct;
    match quality {
        _ if distinct <= MAX_PALETTE => Class::Bundled,
        Quality::Balanced { jpeg_quality } if distinct > PHOTO_COLOURS => Class::Jpeg { jpeg_quality },
        _ => Class::Alone,
    }
}

/// A tile as its own message element, each pixel payload its own zstd stream.
pub(super) fn encode(bgrx: &[u8], w: u32, h: u32, quality: Quality) -> TileData {
    match choose(bgrx, w, h, quality) {
        Choice::Solid(c) => TileData::Solid(c),
        Choice::Jpeg(j) => TileData::Jpeg(j),
        Choice::Palette { colours, indices } => match zstd::bulk::compress(&indices, ZSTD_LEVEL) {
            Ok(indices) => TileData::Palette { colours, indices },
            Err(_) => {
                let bgr = indices.iter().flat_map(|&i| colours[i as usize * 3..i as usize * 3 + 3].to_vec());
                zstd_or_raw(bgr.collect())
            }
        },
        Choice::Bgr(bgr) => zstd_or_raw(bgr),
    }
}

pub(super) fn zstd_or_raw(bgr: Vec<u8>) -> TileData {
    match zstd::bulk::compress(&bgr, ZSTD_LEVEL) {
        Ok(z) if z.len() < bgr.len() => TileData::Zstd(z),
        _ => TileData::Raw(bgr),
    }
}

/// Decode a solid, palette or zstd tile into `want` bytes of BGR in `out`.
pub(super) fn decode(data: &TileData, want: usize, out: &mut Vec<u8>) -> Result<(), CodecError> {
    out.clear();
    match data {
        TileData::Solid(c) => out.extend(std::iter::repeat_n([c[0], c[1], c[2]], want / 3).flatten()),
        TileData::Zstd(z) => decompress_exact(z, want, out)?,
        TileData::Palette { colours, indices } => {
            if colours.len() % 3 != 0 || colours.is_empty() || colours.len() > MAX_PALETTE * 3 {
                return Err(CodecError::Decode(format!("palette of {} bytes", colours.len())));
            }
            let mut idx = Vec::new();
            decompress_exact(indices, want / 3, &mut idx)?;
            let len = colours.len() / 3;
            out.reserve(want);
            for &i in &idx {
                let c = colours
                    .get(i as usize * 3..i as usize * 3 + 3)
                    .ok_or(CodecError::BadIndex { index: i, len })?;
                out.extend_from_slice(c);
            }
        }
        other => return Err(CodecError::Decode(format!("{other:?} is not a lossless pixel tile"))),
    }
    Ok(())
}

/// Decompress into exactly `want` bytes; a stream that would grow larger is refused before it does.
pub(super) fn decompress_exact(z: &[u8], want: usize, out: &mut Vec<u8>) -> Result<(), CodecError> {
    out.clear();
    out.reserve_exact(want);
    let n = zstd::bulk::Decompressor::new()
        .and_then(|mut d| d.decompress_to_buffer(z, out))
        .map_err(|e| CodecError::Decode(e.to_string()))?;
    if n != want {
        return Err(CodecError::BadLength { got: n, want });
    }
    Ok(())
}
