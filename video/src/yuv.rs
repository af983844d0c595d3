//! BGRX ↔ I420 (planar Y, then U and V at half resolution), BT.601 limited range in 8-bit fixed point:
//! what VP9 encodes by default and every decoder assumes without colour metadata.
//!
//! Plain safe code on slices; the loops are simple enough for the compiler to vectorise.

/// A borrowed I420 picture: three planes with their row strides, `w`×`h` luma pixels.
#[derive(Debug, Clone, Copy)]
pub struct I420<'a> {
    pub w: u32,
    pub h: u32,
    pub y: &'a [u8],
    pub u: &'a [u8],
    pub v: &'a [u8],
    pub y_stride: usize,
    pub uv_stride: usize,
}

impl I420<'_> {
    /// Whether every row of every plane lies inside its slice.
    pub fn is_consistent(&self) -> bool {
        let (w, h) = (self.w as usize, self.h as usize);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let fits = |plane: &[u8], stride: usize, rw: usize, rows: usize| {
            rows == 0 || (stride >= rw && (rows - 1) * stride + rw <= plane.len())
        };
        fits(self.y, self.y_stride, w, h)
            && fits(self.u, self.uv_stride, cw, ch)
            && fits(self.v, self.uv_stride, cw, ch)
    }
}

/// Bytes of a tightly packed I420 picture of `w`×`h` (even) pixels.
pub fn i420_len(w: u32, h: u32) -> usize {
    let (w, h) = (w as usize, h as usize);
    w * h + 2 * (w / 2) * (h / 2)
}

/// Convert tightly packed BGRX rows of an even-sized `w`×`h` picture into `out` as packed I420
/// (Y plane, then U, then V). Chroma is the average of each 2×2 block.
pub fn bgrx_to_i420(bgrx: &[u8], w: u32, h: u32, out: &mut Vec<u8>) {
    let (w, h) = (w as usize, h as usize);
    debug_assert!(w.is_multiple_of(2) && h.is_multiple_of(2) && bgrx.len() == w * h * 4);
    out.clear();
    out.resize(i420_len(w as u32, h as u32), 0);
    let (luma, chroma) = out.split_at_mut(w * h);
    let (u_plane, v_plane) = chroma.split_at_mut((w / 2) * (h / 2));
    for (row, y_row) in luma.chunks_exact_mut(w).enumerate() {
        let src = &bgrx[row * w * 4..(row + 1) * w * 4];
        for (y, px) in y_row.iter_mut().zip(src.chunks_exact(4)) {
            let (b, g, r) = (i32::from(px[0]), i32::from(px[1]), i32::from(px[2]));
            *y = (((66 * r + 129 * g + 25 * b + 128) >> 8) + 16) as u8;
        }
    }
    let cw = w / 2;
    for cy in 0..h / 2 {
        let top = &bgrx[2 * cy * w * 4..(2 * cy + 1) * w * 4];
        let bottom = &bgrx[(2 * cy + 1) * w * 4..(2 * cy + 2) * w * 4];
        let (u_row, v_row) = (&mut u_plane[cy * cw..(cy + 1) * cw], &mut v_plane[cy * cw..(cy + 1) * cw]);
        for (cx, (u, v)) in u_row.iter_mut().zip(v_row.iter_mut()).enumerate() {
            let (mut b, mut g, mut r) = (0i32, 0i32, 0i32);
            for px in [&top[cx * 8..cx * 8 + 8], &bottom[cx * 8..cx * 8 + 8]] {
                b += i32::from(px[0]) + i32::from(px[4]);
                g += i32::from(px[1]) + i32::from(px[5]);
                r += i32::from(px[2]) + i32::from(px[6]);
            }
            let (b, g, r) = ((b + 2) >> 2, (g + 2) >> 2, (r + 2) >> 2);
            *u = (((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128) as u8;
            *v = (((112 * r - 94 * g - 18 * b + 128) >> 8) + 128) as u8;
        }
    }
}

/// Write `pic` as BGRX into `dst`, whose rows are `dst_stride` bytes apart and which starts at the
/// picture's top-left pixel. `false` (and nothing written) if the picture's planes or `dst` are too
/// small for its size.
///
/// Chroma is interpolated between its samples (weights 3:1 in each direction, the samples sitting
/// between pixels as [`bgrx_to_i420`] makes them), not repeated: on photographic content that is worth
/// about 2 dB over nearest-sample upsampling.
pub fn i420_to_bgrx(pic: &I420<'_>, dst: &mut [u8], dst_stride: usize) -> bool {
    let (w, h) = (pic.w as usize, pic.h as usize);
    let fits_dst = h == 0 || (dst_stride >= w * 4 && (h - 1) * dst_stride + w * 4 <= dst.len());
    if !pic.is_consistent() || !fits_dst {
        return false;
    }
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    // One row of chroma blended vertically (×4), for U and V.
    let (mut u_mix, mut v_mix) = (vec![0u16; cw], vec![0u16; cw]);
    for row in 0..h {
        // The chroma row nearest this pixel row, and the next nearest (above for even rows, below for odd).
        let near = row / 2;
        let far = if row % 2 == 0 { near.saturating_sub(1) } else { (near + 1).min(ch - 1) };
        let (un, uf) = (&pic.u[near * pic.uv_stride..][..cw], &pic.u[far * pic.uv_stride..][..cw]);
        let (vn, vf) = (&pic.v[near * pic.uv_stride..][..cw], &pic.v[far * pic.uv_stride..][..cw]);
        for i in 0..cw {
            u_mix[i] = 3 * u16::from(un[i]) + u16::from(uf[i]);
            v_mix[i] = 3 * u16::from(vn[i]) + u16::from(vf[i]);
        }
        let y_row = &pic.y[row * pic.y_stride..row * pic.y_stride + w];
        let out = &mut dst[row * dst_stride..row * dst_stride + w * 4];
        for (col, (px, &y)) in out.chunks_exact_mut(4).zip(y_row).enumerate() {
            let near = col / 2;
            let far = if col % 2 == 0 { near.saturating_sub(1) } else { (near + 1).min(cw - 1) };
            // ×16, rounded: back to 8 bits with the offset removed.
            let u = (3 * i32::from(u_mix[near]) + i32::from(u_mix[far]) + 8) >> 4;
            let v = (3 * i32::from(v_mix[near]) + i32::from(v_mix[far]) + 8) >> 4;
            let c = 298 * (i32::from(y) - 16);
            let (d, e) = (u - 128, v - 128);
            let clamp = |v: i32| ((v + 128) >> 8).clamp(0, 255) as u8;
            px.copy_from_slice(&[clamp(c + 516 * d), clamp(c - 100 * d - 208 * e), clamp(c + 409 * e), 0]);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(i420: &[u8], w: u32, h: u32) -> I420<'_> {
        let (ys, cs) = ((w * h) as usize, ((w / 2) * (h / 2)) as usize);
        I420 {
            w,
            h,
            y: &i420[..ys],
            u: &i420[ys..ys + cs],
            v: &i420[ys + cs..],
            y_stride: w as usize,
            uv_stride: (w / 2) as usize,
        }
    }

    fn round_trip(bgrx: &[u8], w: u32, h: u32) -> Vec<u8> {
        let mut i420 = Vec::new();
        bgrx_to_i420(bgrx, w, h, &mut i420);
        let mut back = vec![0u8; bgrx.len()];
        assert!(i420_to_bgrx(&packed(&i420, w, h), &mut back, w as usize * 4));
        back
    }

    #[test]
    fn flat_colours_survive_a_round_trip_closely() {
        for colour in
            [[0u8, 0, 0, 0], [255, 255, 255, 0], [255, 0, 0, 0], [40, 200, 90, 0], [128, 128, 128, 0]]
        {
            let bgrx: Vec<u8> = colour.iter().copied().cycle().take(8 * 6 * 4).collect();
            let back = round_trip(&bgrx, 8, 6);
            for (a, b) in bgrx.iter().zip(&back) {
                assert!(a.abs_diff(*b) <= 3, "{colour:?} became {:?}", &back[..4]);
            }
        }
    }

    #[test]
    fn chroma_is_interpolated_across_an_edge_not_repeated() {
        // Red on the left half, blue on the right: the pixels next to the edge blend, the far ones do not.
        let (w, h) = (16u32, 4u32);
        let bgrx: Vec<u8> =
            (0..w * h).flat_map(|i| if i % w < 8 { [0, 0, 255, 0] } else { [255, 0, 0, 0] }).collect();
        let back = round_trip(&bgrx, w, h);
        let px = |x: usize| &back[(w as usize + x) * 4..][..3];
        assert!(px(0)[2] > 230 && px(15)[0] > 230, "{:?} {:?}", px(0), px(15));
        assert!(px(7)[0] > 20 && px(8)[2] > 20, "the edge blends: {:?} {:?}", px(7), px(8));
    }

    #[test]
    fn planes_too_small_for_the_size_are_refused() {
        let i420 = vec![0u8; i420_len(8, 8)];
        let mut pic = packed(&i420, 8, 8);
        pic.h = 9;
        let mut dst = vec![0u8; 8 * 9 * 4];
        assert!(!i420_to_bgrx(&pic, &mut dst, 32));
        let pic = packed(&i420, 8, 8);
        assert!(!i420_to_bgrx(&pic, &mut dst[..100], 32));
    }
}
