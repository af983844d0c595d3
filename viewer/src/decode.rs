//! Applies screen updates to the viewer's framebuffer. Plain code: every check a hostile host could
//! trip (size, bounds, tile data) is an error, never a panic or an unbounded allocation.

use tether_shared::codec::{apply_tile, CodecError};
use tether_shared::frame::{Frame, FrameError};
use tether_shared::session_proto::FrameUpdate;

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Tile(#[from] CodecError),
    #[error("update part for frame {got} arrived while frame {expected} was incomplete")]
    Interleaved { expected: u64, got: u64 },
}

/// A complete frame: which update made it and which capture it shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    pub seq: u64,
    pub capture_id: u64,
}

#[derive(Debug, Default)]
pub struct Decoder {
    frame: Option<Frame>,
    pending: Option<u64>,
    scratch: Vec<u8>,
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
        }
        let Some(frame) = self.frame.as_mut() else { unreachable!("set above") };
        for tile in &update.tiles {
            apply_tile(tile, frame, &mut self.scratch)?;
        }
        if update.last {
            self.pending = None;
            Ok(Some(FrameInfo { seq: update.seq, capture_id: update.capture_id }))
        } else {
            self.pending = Some(update.seq);
            Ok(None)
        }
    }

    pub fn frame(&self) -> Option<&Frame> {
        self.frame.as_ref()
    }
}
