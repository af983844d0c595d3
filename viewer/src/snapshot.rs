//! Writing a frame as a PNG file (the CLI's `--snapshot`).

use std::path::Path;

use tether_shared::frame::Frame;

pub fn write_png(frame: &Frame, path: &Path) -> Result<(), image::ImageError> {
    image::save_buffer(path, &frame.to_rgb(), frame.width(), frame.height(), image::ColorType::Rgb8)
}
