//! A deterministic animated test pattern: [`render`]`(width, height, n)` is frame `n`. Tests compare what
//! the viewer shows with `render` of the capture id it reports, pixel for pixel.
//!
//! The picture has what a desktop has: flat areas (solid tiles), fine detail like text (zstd tiles), a
//! colour gradient, and a moving square plus a frame counter so consecutive frames differ in a few tiles.

use tether_shared::frame::Frame;

use super::{CaptureError, Captured, Capturer};

#[derive(Debug)]
pub struct TestPattern {
    width: u32,
    height: u32,
    next: u64,
}

impl TestPattern {
    pub fn new(width: u32, height: u32) -> Result<Self, CaptureError> {
        tether_shared::frame::check_size(width, height).map_err(|e| CaptureError::Failed(e.to_string()))?;
        Ok(Self { width, height, next: 0 })
    }
}

impl Capturer for TestPattern {
    fn capture(&mut self) -> Result<Captured, CaptureError> {
        let id = self.next;
        self.next += 1;
        Ok(Captured { id, frame: std::sync::Arc::new(render(self.width, self.height, id)) })
    }
}

/// Frame `n` of the pattern. Pure: the same arguments always give the same pixels.
pub fn render(width: u32, height: u32, n: u64) -> Frame {
    let mut px = vec![0u8; width as usize * height as usize * 4];
    let square = 48u32.min(width).min(height);
    let span_x = width.saturating_sub(square).max(1) as u64;
    let span_y = height.saturating_sub(square).max(1) as u64;
    let (sx, sy) = (((n * 7) % span_x) as u32, ((n * 3) % span_y) as u32);
    for y in 0..height {
        for x in 0..width {
            let colour = if (sx..sx + square).contains(&x) && (sy..sy + square).contains(&y) {
                [40, 40, 220]
            } else if y < 16 && x < 64 {
                // frame counter: 64 bits of n, one 1-pixel column each
                if (n >> x) & 1 == 1 {
                    [255, 255, 255]
                } else {
                    [0, 0, 0]
                }
            } else if y >= height / 2 && x < width / 2 {
                // "text": fine black-on-white detail
                if (x % 7 < 2 && y % 11 < 8) || (y % 11 == 3 && x % 7 < 5) {
                    [20, 20, 20]
                } else {
                    [250, 250, 250]
                }
            } else if y >= height / 2 {
                // gradient
                [(x * 255 / width) as u8, (y * 255 / height) as u8, 128]
            } else {
                [90, 60, 30] // desktop background
            };
            let i = (y as usize * width as usize + x as usize) * 4;
            px[i..i + 3].copy_from_slice(&colour);
        }
    }
    Frame::from_bgrx(width, height, px).unwrap_or_else(|_| unreachable!("size checked by the caller"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_frames_differ_and_rendering_is_deterministic() {
        assert_eq!(render(320, 200, 5), render(320, 200, 5));
        assert_ne!(render(320, 200, 5), render(320, 200, 6));
        let mut p = TestPattern::new(320, 200).expect("size");
        let a = p.capture().expect("frame");
        let b = p.capture().expect("frame");
        assert_eq!((a.id, b.id), (0, 1));
        assert_eq!(*b.frame, render(320, 200, 1));
    }
}
