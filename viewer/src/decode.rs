//! Applies screen updates to the viewer's framebuffer. Plain code: every check a hostile host could
//! trip (size, bounds, tile data, a video stream's pictures) is an error, never a panic or an
//! unbounded allocation. Video tiles go through their stream's decoder ([`VideoTiles`]).

use tether_shared::frame::{Frame, FrameError};
use tether_shared::session_proto::FrameUpdate;
use tether_video::{TileError, VideoTiles};

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Tile(#[from] TileError),
    #[error("update part for frame {got} arrived while frame {expected} was incomplete")]
    Interleaved { expected: u64, got: u64 },
}

/// A complete frame: which update made it, which capture it shows, and what changed since the frame
/// before it (so a window can upload just that part to the GPU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    pub seq: u64,
    pub capture_id: u64,
    /// The bounding box of everything this update changed: x, y, width, height.
    pub dirty: Dirty,
}

/// A rectangle of changed pixels: x, y, width, height.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dirty {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl Dirty {
    pub fn union(self, other: Dirty) -> Dirty {
        if self.w == 0 || self.h == 0 {
            return other;
        }
        if other.w == 0 || other.h == 0 {
            return self;
        }
        let (x0, y0) = (self.x.min(other.x), self.y.min(other.y));
        let x1 = (self.x + self.w).max(other.x + other.w);
        let y1 = (self.y + self.h).max(other.y + other.h);
        Dirty { x: x0, y: y0, w: x1 - x0, h: y1 - y0 }
    }

    /// Clamp to a `width`×`height` frame.
    fn clamp(self, width: u32, height: u32) -> Dirty {
        let x = self.x.min(width);
        let y = self.y.min(height);
        Dirty { x, y, w: self.w.min(width - x), h: self.h.min(height - y) }
    }
}

#[derive(Debug, Default)]
pub struct Decoder {
    frame: Option<Frame>,
    pending: Option<u64>,
    dirty: Dirty,
    scratch: Vec<u8>,
    video: VideoTiles,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Apply one part; `Some` when it completes a frame.
    pub fn apply(&mut self, update: &FrameUpdate) -> Result<Option<FrameInfo>, DecodeError> {
        if let Some(expected) = self.pending {
            if expected != update.seq {
                return Err(DecodeError::Interleaved { expected, got: update.seq });
            }
        }
        let resized =
            self.frame.as_ref().is_none_or(|f| f.width() != update.width || f.height() != update.height);
        if resized {
            self.frame = Some(Frame::new(update.width, update.height)?);
            self.video.reset();
            self.dirty = Dirty { x: 0, y: 0, w: update.width, h: update.height };
        }
        let Some(frame) = self.frame.as_mut() else { unreachable!("set above") };
        for tile in &update.tiles {
            self.video.apply(tile, frame, &mut self.scratch)?;
            let rect =
                Dirty { x: tile.x, y: tile.y, w: tile.w, h: tile.h }.clamp(update.width, update.height);
            self.dirty = self.dirty.union(rect);
        }
        if update.last {
            self.pending = None;
            let dirty = std::mem::take(&mut self.dirty);
            Ok(Some(FrameInfo { seq: update.seq, capture_id: update.capture_id, dirty }))
        } else {
            self.pending = Some(update.seq);
            Ok(None)
        }
    }

    pub fn frame(&self) -> Option<&Frame> {
        self.frame.as_ref()
    }
}
