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
