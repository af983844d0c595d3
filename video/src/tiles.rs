//! The viewer's side of video regions: applies `Video` tiles with the decoder of their stream, and
//! every other tile with [`tether_shared::codec::apply_tile`].
//!
//! One stream at a time: a tile of another stream number or rectangle replaces the decoder (the host
//! starts every stream with a keyframe). A hostile host gets errors, never a decoder for a rectangle
//! outside the screen or a picture of another size than the rectangle it claims.

use tether_shared::codec::{apply_tile, check_rect, CodecError, Tile, TileData};
use tether_shared::frame::Frame;

use crate::vp9;
use crate::yuv::i420_to_bgrx;
use crate::VideoError;

/// Why a tile could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum TileError {
    #[error(transparent)]
    Tile(#[from] CodecError),
    #[error("video stream {stream}: {error}")]
    Video { stream: u32, error: VideoError },
}

/// The decoder of the current video stream, if any.
#[derive(Debug, Default)]
pub struct VideoTiles {
    current: Option<Stream>,
}

#[derive(Debug)]
struct Stream {
    id: u32,
    rect: (u32, u32, u32, u32),
    decoder: vp9::Decoder,
}

impl VideoTiles {
    /// Apply any tile to `frame`; `scratch` is working memory.
    pub fn apply(&mut self, tile: &Tile, frame: &mut Frame, scratch: &mut Vec<u8>) -> Result<(), TileError> {
        let TileData::Video { stream, frame: data } = &tile.data else {
            return Ok(apply_tile(tile, frame, scratch)?);
        };
        let rect = (tile.x, tile.y, tile.w, tile.h);
        check_rect(tile.x, tile.y, tile.w, tile.h, frame)?;
        let error = |error| TileError::Video { stream: *stream, error };
        let same = self.current.as_ref().is_some_and(|s| s.id == *stream && s.rect == rect);
        if !same {
            self.current = None;
            let decoder = vp9::Decoder::new(tile.w, tile.h).map_err(error)?;
            self.current = Some(Stream { id: *stream, rect, decoder });
        }
        let Some(current) = self.current.as_mut() else { unreachable!("set above") };
        let stride = frame.width() as usize * 4;
        let start = tile.y as usize * stride + tile.x as usize * 4;
        let pixels = &mut frame.bgrx_mut()[start..];
        let written =
            current.decoder.decode(data, |picture| i420_to_bgrx(picture, pixels, stride)).map_err(error)?;
        if written {
            Ok(())
        } else {
            Err(error(VideoError::Format))
        }
    }

    /// Forget the stream (a new picture from the host).
    pub fn reset(&mut self) {
        self.current = None;
    }
}
