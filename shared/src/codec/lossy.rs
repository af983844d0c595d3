//! JPEG for photographic tiles (image crate). Decoding is limited to the tile's own dimensions, so a
//! hostile header cannot make the viewer allocate more than the tile.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::{ExtendedColorType, ImageFormat, ImageReader, Limits};

use super::CodecError;

pub(super) fn encode(bgr: &[u8], w: u32, h: u32, quality: u8) -> Result<Vec<u8>, image::ImageError> {
    let rgb: Vec<u8> = bgr.chunks_exact(3).flat_map(|p| [p[2], p[1], p[0]]).collect();
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100)).encode(
        &rgb,
        w,
        h,
        ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}

pub(super) fn decode(jpeg: &[u8], w: u32, h: u32, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let fail = |e: image::ImageError| CodecError::Decode(format!("JPEG: {e}"));
    let mut reader = ImageReader::with_format(Cursor::new(jpeg), ImageFormat::Jpeg);
    let mut limits = Limits::default();
    limits.max_image_width = Some(w);
    limits.max_image_height = Some(h);
    limits.max_alloc = Some(u64::from(w) * u64::from(h) * 4 + 65_536);
    reader.limits(limits);
    let rgb = reader.decode().map_err(fail)?.to_rgb8();
    if rgb.dimensions() != (w, h) {
        return Err(CodecError::Decode(format!("JPEG of {:?}, tile of {w}x{h}", rgb.dimensions())));
    }
    out.clear();
    out.extend(rgb.pixels().flat_map(|p| [p[2], p[1], p[0]]));
    Ok(())
}
