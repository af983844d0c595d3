//! "Something changed on screen": X Damage events wake the capture at once instead of at the next frame
//! tick, which takes up to a whole tick (16.7 ms at 60 fps) out of the screen-to-viewer latency.
//!
//! A thread listens for DamageNotify on the root window (level NonEmpty: one event per burst of drawing,
//! re-armed by DamageSubtract) and pokes a [`Notify`]. The capture is still paced by the frame rate; this
//! only decides *when* within that budget to look.

use std::sync::Arc;
use std::thread;

use tokio::sync::Notify;
use x11rb::connection::Connection;
use x11rb::protocol::damage::{self, ConnectionExt as _};
use x11rb::protocol::Event;
use x11rb::NONE;

use super::CaptureError;

fn failed(e: impl std::fmt::Display) -> CaptureError {
    CaptureError::Failed(format!("X Damage: {e}"))
}

/// Start watching `$DISPLAY` for drawing. The thread ends when the X connection does.
pub fn watch() -> Result<Arc<Notify>, CaptureError> {
    let (conn, screen) = x11rb::connect(None).map_err(failed)?;
    conn.damage_query_version(1, 1).map_err(failed)?.reply().map_err(failed)?;
    let root = conn.setup().roots.get(screen).ok_or_else(|| failed("no screen"))?.root;
    let damage = conn.generate_id().map_err(failed)?;
    conn.damage_create(damage, root, damage::ReportLevel::NON_EMPTY).map_err(failed)?;
    conn.flush().map_err(failed)?;
    let notify = Arc::new(Notify::new());
    let poke = notify.clone();
    thread::Builder::new()
        .name("tether-damage".into())
        .spawn(move || {
            while let Ok(event) = conn.wait_for_event() {
                if let Event::DamageNotify(_) = event {
                    poke.notify_one();
                    if conn.damage_subtract(damage, NONE, NONE).and_then(|_| conn.flush()).is_err() {
                        break;
                    }
                }
            }
        })
        .map_err(failed)?;
    Ok(notify)
}
