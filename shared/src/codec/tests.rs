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
        frame_with(64, 64, |x, y| if (x / 3 + y / 5) % 2 == 0 { [0, 0, 0, 0] } else { [255, 255, 255, 0] }),
        frame_with(64, 64, |x, y| {
            let v = noise(x, y).to_le_bytes();
            [v[0], v[1], v[2], 0]
        }),
    ];
    let kinds: Vec<_> = sources
        .iter()
        .map(|src| {
            let tile = encode_tile(0, 0, 64, 64, src.bgrx(), Quality::Lossless);
            let mut out = Frame::new(64, 64).expect("size");
            apply_tile(&tile, &mut out, &mut Vec::new()).expect("apply");
            assert_eq!(&out, src);
            std::mem::discriminant(&tile.data)
        })
        .collect();
    assert_eq!(kinds[0], std::mem::discriminant(&TileData::Solid([0; 4])));
    assert_eq!(kinds[1], std::mem::discriminant(&TileData::Palette { colours: vec![], indices: vec![] }));
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
        let tile = encode_tile(0, 0, w, h, src.bgrx(), Quality::Lossless);
        let mut out = Frame::new(w, h).expect("size");
        apply_tile(&tile, &mut out, &mut Vec::new()).expect("apply");
        prop_assert_eq!(out, src);
    }
}

#[test]
fn copies_handle_overlap_in_both_directions() {
    let src = frame_with(8, 40, |x, y| [x as u8, y as u8, 7, 0]);
    for (from, to) in [(0u32, 5u32), (5, 0)] {
        let mut f = src.clone();
        let tile = copy_tile(0, to, 8, 30, 0, from);
        apply_tile(&tile, &mut f, &mut Vec::new()).expect("apply");
        for y in 0..30 {
            for x in 0..8 {
                let i = ((to + y) * 8 + x) as usize * 4;
                assert_eq!(f.bgrx()[i..i + 2], [x as u8, (from + y) as u8], "from {from} to {to}");
            }
        }
    }
    let mut f = src.clone();
    let bad = copy_tile(0, 0, 8, 30, 0, 20);
    assert!(matches!(apply_tile(&bad, &mut f, &mut Vec::new()), Err(CodecError::OutOfBounds { .. })));
}

#[test]
fn palette_indices_beyond_the_palette_are_refused() {
    let indices = zstd::bulk::compress(&[0u8, 1, 2, 9], 1).expect("compress");
    let t =
        Tile { x: 0, y: 0, w: 2, h: 2, data: TileData::Palette { colours: vec![1, 2, 3, 4, 5, 6], indices } };
    let mut f = Frame::new(4, 4).expect("size");
    assert!(matches!(apply_tile(&t, &mut f, &mut Vec::new()), Err(CodecError::BadIndex { .. })));
}

fn psnr(a: &Frame, b: &Frame) -> f64 {
    let (mut sum, mut n) = (0f64, 0f64);
    for (pa, pb) in a.bgrx().chunks_exact(4).zip(b.bgrx().chunks_exact(4)) {
        for c in 0..3 {
            let d = f64::from(pa[c]) - f64::from(pb[c]);
            sum += d * d;
            n += 1.0;
        }
    }
    10.0 * (255.0f64 * 255.0 / (sum / n).max(1e-9)).log10()
}

#[test]
fn photographic_tiles_go_jpeg_only_when_allowed_and_text_never() {
    let photo = frame_with(64, 64, |x, y| {
        let n = noise(x / 2, y / 2).to_le_bytes();
        [(x * 3 + u32::from(n[0] % 16)) as u8, (y * 3 + u32::from(n[1] % 16)) as u8, ((x + y) * 2) as u8, 0]
    });
    let balanced = Quality::Balanced { jpeg_quality: 80 };
    let tile = encode_tile(0, 0, 64, 64, photo.bgrx(), balanced);
    assert!(matches!(tile.data, TileData::Jpeg(_)), "{:?}", tile.data);
    let mut out = Frame::new(64, 64).expect("size");
    apply_tile(&tile, &mut out, &mut Vec::new()).expect("apply");
    assert!(psnr(&photo, &out) > 30.0, "PSNR {}", psnr(&photo, &out));
    assert!(!matches!(encode_tile(0, 0, 64, 64, photo.bgrx(), Quality::Lossless).data, TileData::Jpeg(_)));
    let text =
        frame_with(64, 64, |x, y| if (x / 3 + y / 5) % 2 == 0 { [0, 0, 0, 0] } else { [255, 255, 255, 0] });
    assert!(encode_tile(0, 0, 64, 64, text.bgrx(), balanced).is_lossless());
}

#[test]
fn a_jpeg_larger_than_its_tile_is_refused() {
    let big = frame_with(64, 64, |x, y| {
        let n = noise(x, y).to_le_bytes();
        [n[0], n[1], n[2], 0]
    });
    let tile = encode_tile(0, 0, 64, 64, big.bgrx(), Quality::Balanced { jpeg_quality: 50 });
    let TileData::Jpeg(jpeg) = tile.data else { panic!("noise is photographic") };
    let claimed = Tile { x: 0, y: 0, w: 16, h: 16, data: TileData::Jpeg(jpeg) };
    let mut f = Frame::new(64, 64).expect("size");
    assert!(matches!(apply_tile(&claimed, &mut f, &mut Vec::new()), Err(CodecError::Decode(_))));
}

/// Encode rectangles of `src` through a [`PartEncoder`] and apply the result to a blank frame.
fn through_part(src: &Frame, rects: &[(u32, u32, u32, u32)], quality: Quality) -> (Vec<Tile>, Frame) {
    let mut part = PartEncoder::new(quality);
    let mut px = Vec::new();
    for &(x, y, w, h) in rects {
        src.copy_rect(x, y, w, h, &mut px);
        part.push(x, y, w, h, &px);
    }
    let tiles = part.finish();
    assert!(part.is_empty(), "finish empties the encoder");
    let mut out = Frame::new(src.width(), src.height()).expect("size");
    for tile in &tiles {
        apply_tile(tile, &mut out, &mut Vec::new()).expect("apply");
    }
    (tiles, out)
}

fn text_noise_and_flat(w: u32, h: u32) -> Frame {
    frame_with(w, h, |x, y| match (x / 64 + y / 64) % 3 {
        0 => [10, 20, 30, 0],
        1 if (x / 3 + y / 5) % 2 == 0 => [0, 0, 0, 0],
        1 => [255, 255, 255, 0],
        _ => {
            let v = noise(x, y).to_le_bytes();
            [v[0], v[1], v[2], 0]
        }
    })
}

#[test]
fn a_part_bundles_text_tiles_and_leaves_flat_and_noisy_tiles_alone() {
    let src = text_noise_and_flat(192, 128);
    let rects: Vec<_> =
        (0..2).flat_map(|ty| (0..3).map(move |tx| (tx * 64, ty * 64, 64, 64))).collect::<Vec<_>>();
    let (tiles, out) = through_part(&src, &rects, Quality::Lossless);
    assert_eq!(out, src);
    let bundles: Vec<_> = tiles.iter().filter(|t| matches!(t.data, TileData::Packed { .. })).collect();
    assert_eq!(bundles.len(), 1, "{tiles:?}");
    let TileData::Packed { tiles: inner, .. } = &bundles[0].data else { unreachable!() };
    assert_eq!(inner.len(), 2, "text tiles bundled: {inner:?}");
    let alone = tiles.iter().filter(|t| matches!(t.data, TileData::Raw(_) | TileData::Zstd(_))).count();
    assert_eq!(alone, 2, "noise tiles (over 256 colours) compressed on their own");
    assert!(tiles.iter().any(|t| matches!(t.data, TileData::Solid(_))), "flat tiles stay solid");
    assert_eq!(
        (bundles[0].x, bundles[0].y, bundles[0].w, bundles[0].h),
        (0, 0, 128, 128),
        "bounding box of the text tiles"
    );
}

#[test]
fn repeated_tiles_cost_little_in_one_stream() {
    // The same tile of 200 colours in random order, six times: one stream finds the repetition,
    // per-tile streams cannot.
    let src = frame_with(384, 64, |x, y| {
        let v = (noise(x % 64, y) % 200) as u8;
        [v, v / 2, 255 - v, 0]
    });
    let rects: Vec<_> = (0..6).map(|i| (i * 64, 0, 64, 64)).collect();
    let (tiles, out) = through_part(&src, &rects, Quality::Lossless);
    assert_eq!(out, src);
    let one_stream: usize = tiles.iter().map(Tile::payload_len).sum();
    let per_tile: usize = rects
        .iter()
        .map(|&(x, y, w, h)| {
            let mut px = Vec::new();
            src.copy_rect(x, y, w, h, &mut px);
            encode_tile(x, y, w, h, &px, Quality::Lossless).payload_len()
        })
        .sum();
    assert!(one_stream * 2 < per_tile, "one stream {one_stream} bytes, per tile {per_tile}");
}

proptest! {
    #[test]
    fn any_set_of_rects_round_trips_as_a_part(
        rects in proptest::collection::vec((0u32..4, 0u32..3, 1u32..=64, 1u32..=64), 1..8),
        seed in any::<u32>(),
        colours in 1u32..400,
    ) {
        let src = frame_with(256, 192, |x, y| {
            let v = (x.wrapping_mul(seed | 1) ^ y.wrapping_mul(7919)) % colours;
            [v as u8, (v >> 8) as u8 * 40, 255 - v as u8, 0]
        });
        // Disjoint rectangles: at most one per 64-pixel grid cell, like the encoder's.
        let mut cells: Vec<_> = rects.iter().map(|&(cx, cy, w, h)| (cx * 64, cy * 64, w, h)).collect();
        cells.sort_unstable_by_key(|r| (r.0, r.1));
        cells.dedup_by_key(|r| (r.0, r.1));
        let (_, out) = through_part(&src, &cells, Quality::Lossless);
        let mut want = Frame::new(256, 192).expect("size");
        let mut px = Vec::new();
        for &(x, y, w, h) in &cells {
            src.copy_rect(x, y, w, h, &mut px);
            apply_tile(&encode_tile(x, y, w, h, &px, Quality::Lossless), &mut want, &mut Vec::new())
                .expect("apply");
        }
        prop_assert_eq!(out, want);
    }
}

fn bundle(x: u32, y: u32, w: u32, h: u32, tiles: Vec<PackedTile>, stream: Vec<u8>) -> Tile {
    Tile { x, y, w, h, data: TileData::Packed { tiles, stream } }
}

fn packed(x: u32, y: u32, w: u32, h: u32) -> PackedTile {
    PackedTile { x, y, w, h }
}

#[test]
fn malformed_bundles_are_rejected() {
    let mut f = Frame::new(64, 64).expect("size");
    let z = |bytes: &[u8]| zstd::bulk::compress(bytes, 1).expect("compress");
    let good = bundle(0, 0, 4, 4, vec![packed(0, 0, 2, 2)], z(&[7; 12]));
    apply_tile(&good, &mut f, &mut Vec::new()).expect("a valid bundle applies");
    let bad = [
        // The bundle's own rectangle outside the screen.
        bundle(40, 40, 32, 32, vec![packed(40, 40, 2, 2)], z(&[7; 12])),
        // A tile outside its bundle (but on the screen), and one that overflows u32.
        bundle(0, 0, 4, 4, vec![packed(3, 0, 2, 2)], z(&[7; 12])),
        bundle(0, 0, 4, 4, vec![packed(u32::MAX, 0, 2, 2)], z(&[7; 12])),
        bundle(0, 0, 4, 4, vec![packed(0, 0, 0, 2)], z(&[])),
        // Two tiles, stream for one.
        bundle(0, 0, 4, 4, vec![packed(0, 0, 2, 2), packed(2, 2, 2, 2)], z(&[7; 12])),
        // Streams shorter or longer than declared, not zstd at all, or a bomb.
        bundle(0, 0, 4, 4, vec![packed(0, 0, 2, 2)], z(&[7; 11])),
        bundle(0, 0, 4, 4, vec![packed(0, 0, 2, 2)], z(&[7; 13])),
        bundle(0, 0, 4, 4, vec![packed(0, 0, 2, 2)], vec![1, 2, 3, 4]),
        bundle(0, 0, 4, 4, vec![packed(0, 0, 2, 2)], z(&vec![0; 1 << 20])),
        bundle(0, 0, 4, 4, vec![], vec![]),
    ];
    for tile in &bad {
        assert!(apply_tile(tile, &mut f, &mut Vec::new()).is_err(), "accepted {tile:?}");
    }
}

#[test]
fn a_bundle_declaring_more_than_the_cap_is_refused_before_decompressing() {
    // 2,000 whole-screen BGR tiles of a 1920x1080 screen would be 12 GB; the stream is a few bytes.
    let mut f = Frame::new(1920, 1080).expect("size");
    let tiles = vec![packed(0, 0, 1920, 1080); 2000];
    let mut scratch = Vec::new();
    let err = apply_tile(&bundle(0, 0, 1920, 1080, tiles, vec![0; 16]), &mut f, &mut scratch);
    assert!(matches!(err, Err(CodecError::Decode(ref m)) if m.contains("bundle over")), "{err:?}");
    assert_eq!(scratch.capacity(), 0, "nothing was allocated");
}
