use super::*;
use crate::yuv::i420_to_bgrx;

/// A moving photographic-ish picture: smooth waves drifting with the frame number.
fn picture(w: u32, h: u32, n: u32) -> Vec<u8> {
    let mut px = Vec::with_capacity((w * h * 4) as usize);
    let t = f64::from(n) * 0.15;
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (f64::from(x) / 17.0, f64::from(y) / 23.0);
            let wave = |a: f64, b: f64, p: f64| (128.0 + 100.0 * (a * fx + b * fy + p + t).sin()) as u8;
            px.extend_from_slice(&[wave(1.0, 0.3, 0.0), wave(0.4, 1.1, 2.0), wave(0.7, -0.8, 4.0), 0]);
        }
    }
    px
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let (mut sum, mut n) = (0f64, 0f64);
    for (pa, pb) in a.chunks_exact(4).zip(b.chunks_exact(4)) {
        for c in 0..3 {
            let d = f64::from(pa[c]) - f64::from(pb[c]);
            sum += d * d;
            n += 1.0;
        }
    }
    10.0 * (255.0 * 255.0 / (sum / n).max(1e-9)).log10()
}

#[test]
fn a_moving_picture_round_trips_at_a_useful_quality_and_rate() {
    let (w, h) = (320, 192);
    let mut enc = Encoder::new(w, h, 1500).expect("encoder");
    let mut dec = Decoder::new(w, h).expect("decoder");
    let mut bytes = 0;
    for n in 0..30 {
        let src = picture(w, h, n);
        let data = enc.encode(&src, i64::from(n) * 33, n == 0).expect("encode");
        assert!(!data.is_empty());
        bytes += data.len();
        let mut out = vec![0u8; src.len()];
        dec.decode(&data, |pic| assert!(i420_to_bgrx(pic, &mut out, w as usize * 4))).expect("decode");
        let q = psnr(&src, &out);
        assert!(q > 32.0, "frame {n}: {q:.1} dB");
    }
    // About a second at 1.5 Mbit/s: the rate control holds within a factor.
    assert!(bytes < 1500 * 1000 / 8 * 2, "{bytes} bytes");
}

#[test]
fn pictures_of_another_size_or_no_keyframe_are_errors() {
    let mut enc = Encoder::new(64, 64, 500).expect("encoder");
    let key = enc.encode(&picture(64, 64, 0), 0, true).expect("key");
    let inter = enc.encode(&picture(64, 64, 1), 33, false).expect("inter");
    let mut wrong = Decoder::new(96, 64).expect("decoder");
    assert!(matches!(wrong.decode(&key, |_| ()), Err(VideoError::Mismatch { got_w: 64, .. })));
    let mut fresh = Decoder::new(64, 64).expect("decoder");
    assert!(fresh.decode(&inter, |_| ()).is_err(), "an inter frame before any keyframe");
    fresh.decode(&key, |_| ()).expect("key");
    fresh.decode(&inter, |_| ()).expect("inter");
}

#[test]
fn garbage_is_an_error_and_the_decoder_goes_on() {
    let mut enc = Encoder::new(64, 64, 500).expect("encoder");
    let key = enc.encode(&picture(64, 64, 0), 0, true).expect("key");
    let mut dec = Decoder::new(64, 64).expect("decoder");
    for junk in [&b""[..], &[0u8; 3][..], &[0xff; 200][..], &key[..key.len() / 2]] {
        let _ = dec.decode(junk, |_| ());
    }
    dec.decode(&key, |_| ()).expect("a keyframe after garbage");
}

#[test]
fn odd_tiny_and_huge_sizes_are_refused() {
    for (w, h) in [(15, 16), (16, 15), (8, 8), (MAX_EDGE + 2, 64)] {
        assert!(matches!(Encoder::new(w, h, 100), Err(VideoError::Size { .. })));
        assert!(matches!(Decoder::new(w, h), Err(VideoError::Size { .. })));
    }
}
