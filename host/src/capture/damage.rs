//! "Something changed on screen, and where": X Damage events wake the capture at once instead of at the
//! next frame tick (up to a whole tick, 16.7 ms at 60 fps, of the screen-to-viewer latency), and the
//! rectangles drawn let the encoder compare only those parts of the screen with what the viewer has.
//!
//! A thread listens for DamageNotify on the root window (level NonEmpty: one event per burst of drawing,
//! re-armed by DamageSubtract). Each subtract moves the damaged region into an XFixes region, whose
//! rectangles go into a [`DamageLog`]; then it pokes a [`Notify`]. The capture is still paced by the
//! frame rate; this decides *when* within that budget to look, and *where*.
//!
//! Each participant reads the log from its own position ([`DamageLog::since`]); one that fell behind
//! more than the log holds, or a fetch that failed, gets `None`: "compare everything".

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::thread;

use tokio::sync::Notify;
use x11rb::connection::Connection;
use x11rb::protocol::damage::{self, ConnectionExt as _};
use x11rb::protocol::xfixes::ConnectionExt as _;
use x11rb::protocol::Event;
use x11rb::NONE;

use super::CaptureError;

/// A drawn rectangle on the root window: x, y, width, height.
pub type Drawn = (i32, i32, u32, u32);

/// Rectangles the log keeps (a participant further behind compares everything).
const CAPACITY: usize = 4096;

/// Rectangles drawn, in order, numbered from the display's start.
#[derive(Debug, Default)]
pub struct DamageLog {
    inner: Mutex<Log>,
}

#[derive(Debug, Default)]
struct Log {
    /// The number of the first rectangle kept.
    base: u64,
    rects: VecDeque<Drawn>,
}

impl DamageLog {
    /// The number the next rectangle will get: read from here on.
    pub fn end(&self) -> u64 {
        let log = self.lock();
        log.base + log.rects.len() as u64
    }

    /// Everything drawn from rectangle `from` on, and where to read next; `None` when some of it is no
    /// longer known (compare everything, and read on from the returned position).
    pub fn since(&self, from: u64) -> (Option<Vec<Drawn>>, u64) {
        let log = self.lock();
        let end = log.base + log.rects.len() as u64;
        if from < log.base {
            return (None, end);
        }
        let skip = usize::try_from(from - log.base).unwrap_or(usize::MAX);
        (Some(log.rects.iter().skip(skip).copied().collect()), end)
    }

    /// Note rectangles drawn.
    pub fn push(&self, drawn: impl IntoIterator<Item = Drawn>) {
        let mut log = self.lock();
        for rect in drawn {
            if log.rects.len() == CAPACITY {
                log.rects.pop_front();
                log.base += 1;
            }
            log.rects.push_back(rect);
        }
    }

    /// Something was drawn where nobody knows: every reader compares everything once.
    pub fn forget(&self) {
        let mut log = self.lock();
        log.base += log.rects.len() as u64 + 1;
        log.rects.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        // A panic while holding the lock leaves a consistent log (every change is one assignment).
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn failed(e: impl std::fmt::Display) -> CaptureError {
    CaptureError::Failed(format!("X Damage: {e}"))
}

/// Start watching `$DISPLAY` for drawing. The thread ends when the X connection does.
pub fn watch() -> Result<(Arc<Notify>, Arc<DamageLog>), CaptureError> {
    let (conn, screen) = x11rb::connect(None).map_err(failed)?;
    conn.damage_query_version(1, 1).map_err(failed)?.reply().map_err(failed)?;
    conn.xfixes_query_version(2, 0).map_err(failed)?.reply().map_err(failed)?;
    let root = conn.setup().roots.get(screen).ok_or_else(|| failed("no screen"))?.root;
    let damage = conn.generate_id().map_err(failed)?;
    conn.damage_create(damage, root, damage::ReportLevel::NON_EMPTY).map_err(failed)?;
    let region = conn.generate_id().map_err(failed)?;
    conn.xfixes_create_region(region, &[]).map_err(failed)?;
    conn.flush().map_err(failed)?;
    let (notify, log) = (Arc::new(Notify::new()), Arc::new(DamageLog::default()));
    let (poke, drawn) = (notify.clone(), log.clone());
    thread::Builder::new()
        .name("tether-damage".into())
        .spawn(move || {
            while let Ok(event) = conn.wait_for_event() {
                if let Event::DamageNotify(_) = event {
                    // Move what was drawn into `region` (re-arming the notice), then read it.
                    let fetched = conn
                        .damage_subtract(damage, NONE, region)
                        .map_err(failed)
                        .and_then(|_| conn.xfixes_fetch_region(region).map_err(failed))
                        .and_then(|cookie| cookie.reply().map_err(failed));
                    match fetched {
                        Ok(reply) => drawn.push(reply.rectangles.iter().map(|r| {
                            (i32::from(r.x), i32::from(r.y), u32::from(r.width), u32::from(r.height))
                        })),
                        Err(e) => {
                            tracing::debug!("{e}");
                            drawn.forget();
                        }
                    }
                    poke.notify_one();
                    if conn.flush().is_err() {
                        break;
                    }
                }
            }
        })
        .map_err(failed)?;
    Ok((notify, log))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reader_gets_what_was_drawn_since_it_last_read_or_none_when_it_fell_too_far_behind() {
        let log = DamageLog::default();
        let start = log.end();
        log.push([(0, 0, 10, 10), (5, 5, 1, 1)]);
        let (drawn, next) = log.since(start);
        assert_eq!(drawn, Some(vec![(0, 0, 10, 10), (5, 5, 1, 1)]));
        assert_eq!(log.since(next), (Some(vec![]), next));
        log.push((0..CAPACITY as i32 + 1).map(|i| (i, 0, 1, 1)));
        let (drawn, behind_next) = log.since(next);
        assert_eq!(drawn, None, "fell behind");
        assert_eq!(log.since(behind_next).0, Some(vec![]));
        log.forget();
        assert_eq!(log.since(behind_next).0, None, "a forgotten stretch means compare everything");
    }
}
