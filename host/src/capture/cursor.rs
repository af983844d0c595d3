//! The mouse cursor, sent apart from frames so it moves smoothly whatever the frame rate (ARCHITECTURE §3).
//!
//! A thread polls XFixes (`GetCursorImage`: position, serial and pixels in one round trip) about 60 times a
//! second and reports what changed: the shape when its serial changes, the position when it moves.
//! Positions are relative to the shared monitor.

use std::thread;
use std::time::Duration;

use tether_shared::session_proto::CursorShape;
use tokio::sync::mpsc;
use x11rb::protocol::xfixes::{self, ConnectionExt as _};

use super::monitors::Monitor;
use super::CaptureError;

const POLL: Duration = Duration::from_millis(16);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CursorEvent {
    Shape(CursorShape),
    Position { x: i32, y: i32, visible: bool },
}

/// Start watching the cursor of `$DISPLAY`, relative to `monitor`. The thread ends when the receiver is
/// dropped.
pub fn watch(monitor: Monitor) -> Result<mpsc::Receiver<CursorEvent>, CaptureError> {
    let (conn, _) = x11rb::connect(None).map_err(failed)?;
    conn.xfixes_query_version(5, 0).map_err(failed)?.reply().map_err(failed)?;
    let (tx, rx) = mpsc::channel(64);
    thread::Builder::new()
        .name("tether-cursor".into())
        .spawn(move || {
            let mut last_serial = None;
            let mut last_pos = None;
            while let Ok(Ok(image)) = conn.xfixes_get_cursor_image().map(|c| c.reply()) {
                if last_serial != Some(image.cursor_serial) {
                    last_serial = Some(image.cursor_serial);
                    if tx.blocking_send(CursorEvent::Shape(shape(&image))).is_err() {
                        break;
                    }
                }
                let (x, y) = (i32::from(image.x) - monitor.x, i32::from(image.y) - monitor.y);
                let visible = x >= 0 && y >= 0 && x < monitor.width as i32 && y < monitor.height as i32;
                if last_pos != Some((x, y)) {
                    last_pos = Some((x, y));
                    if tx.blocking_send(CursorEvent::Position { x, y, visible }).is_err() {
                        break;
                    }
                }
                thread::sleep(POLL);
            }
        })
        .map_err(failed)?;
    Ok(rx)
}

fn failed(e: impl std::fmt::Display) -> CaptureError {
    CaptureError::Failed(format!("X11 cursor: {e}"))
}

/// XFixes gives premultiplied ARGB in native-endian u32s; the wire wants straight-alpha RGBA.
fn shape(image: &xfixes::GetCursorImageReply) -> CursorShape {
    let rgba = image
        .cursor_image
        .iter()
        .flat_map(|&argb| {
            let [a, r, g, b] = argb.to_be_bytes();
            let unpremultiply = |c: u8| {
                if a == 0 {
                    0
                } else {
                    ((u16::from(c) * 255 + u16::from(a) / 2) / u16::from(a)).min(255) as u8
                }
            };
            [unpremultiply(r), unpremultiply(g), unpremultiply(b), a]
        })
        .collect();
    CursorShape { width: image.width, height: image.height, hot_x: image.xhot, hot_y: image.yhot, rgba }
}
