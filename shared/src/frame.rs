//! A screen image in memory: 4 bytes per pixel in B, G, R, X order (what X11 capture gives), rows packed
//! without padding. Both the host's capture and the viewer's framebuffer use it.

/// Largest width or height accepted from the network (8K). Bounds the memory a peer can make us allocate.
pub const MAX_DIMENSION: u32 = 8192;

#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    width: u32,
    height: u32,
    bgrx: Vec<u8>,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Frame({}x{})", self.width, self.height)
    }
}

/// A frame size outside 1..=MAX_DIMENSION, or pixel data of the wrong length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame size {width}x{height} is outside 1..={MAX_DIMENSION}")]
    BadSize { width: u32, height: u32 },
    #[error("pixel data has {got} bytes; {width}x{height} needs {want}")]
    BadLength { width: u32, height: u32, got: usize, want: usize },
}

impl Frame {
    /// A black frame.
    pub fn new(width: u32, height: u32) -> Result<Self, FrameError> {
        check_size(width, height)?;
        Ok(Self { width, height, bgrx: vec![0; width as usize * height as usize * 4] })
    }

    /// Wrap tightly packed BGRX pixels.
    pub fn from_bgrx(width: u32, height: u32, bgrx: Vec<u8>) -> Result<Self, FrameError> {
        check_size(width, height)?;
        let want = width as usize * height as usize * 4;
        if bgrx.len() != want {
            return Err(FrameError::BadLength { width, height, got: bgrx.len(), want });
        }
        Ok(Self { width, height, bgrx })
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    pub fn bgrx(&self) -> &[u8] {
        &self.bgrx
    }

    pub fn bgrx_mut(&mut self) -> &mut [u8] {
        &mut self.bgrx
    }

    /// Copy the rectangle out as tightly packed rows. The caller keeps it inside the frame.
    pub fn copy_rect(&self, x: u32, y: u32, w: u32, h: u32, out: &mut Vec<u8>) {
        out.clear();
        let stride = self.width as usize * 4;
        for row in y..y + h {
            let start = row as usize * stride + x as usize * 4;
            out.extend_from_slice(&self.bgrx[start..start + w as usize * 4]);
        }
    }

    /// Whether the rectangle holds the same pixels in both frames (same size assumed).
    pub fn rect_eq(&self, other: &Frame, x: u32, y: u32, w: u32, h: u32) -> bool {
        let stride = self.width as usize * 4;
        (y..y + h).all(|row| {
            let start = row as usize * stride + x as usize * 4;
            let end = start + w as usize * 4;
            self.bgrx[start..end] == other.bgrx[start..end]
        })
    }

    /// Convert to RGB bytes (for PNG output and comparisons with screenshots).
    pub fn to_rgb(&self) -> Vec<u8> {
        let mut rgb = Vec::with_capacity(self.width as usize * self.height as usize * 3);
        for px in self.bgrx.chunks_exact(4) {
            rgb.extend_from_slice(&[px[2], px[1], px[0]]);
        }
        rgb
    }
}

pub fn check_size(width: u32, height: u32) -> Result<(), FrameError> {
    if width == 0 || height == 0 || width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(FrameError::BadSize { width, height });
    }
    Ok(())
}
