//! X11 capture with scrap (XShm: about 0.6 ms per 1920×1080 frame on this kind of machine).
//!
//! scrap pipelines its requests: each `frame()` returns the image requested by the *previous* call. We call
//! it twice per capture, so every frame is the screen as it is now (costs one more shm copy, ~0.6 ms; a
//! frame one capture interval old would add that interval to the latency instead).
//!
//! Before each capture the monitor's geometry is checked (one RandR round trip, the monitor found by name);
//! when it changed, the scrap capturer is rebuilt, so a resolution change mid-session gives frames of the
//! new size and the encoder sends a full frame.
//!
//! Known issue, kept visible: scrap 0.5 creates its shared-memory segment with mode 0777, so another local
//! user could attach it while a session runs. Replacing scrap with x11rb + a private memfd closes that.

use x11rb::rust_connection::RustConnection;

use super::monitors::{self, Monitor};
use super::{CaptureError, Captured, Capturer};
use tether_shared::frame::Frame;

pub struct X11Capturer {
    conn: RustConnection,
    screen: usize,
    monitor: Monitor,
    scrap: scrap::Capturer,
    next_id: u64,
}

fn failed(e: impl std::fmt::Display) -> CaptureError {
    CaptureError::Failed(format!("X11 capture: {e}"))
}

impl X11Capturer {
    /// Capture monitor `index` of `$DISPLAY` (scrap always uses `$DISPLAY`).
    pub fn new(index: usize) -> Result<Self, CaptureError> {
        let (conn, screen) = x11rb::connect(None).map_err(failed)?;
        let monitor = Self::monitor(&conn, screen, index)?;
        let scrap = Self::open_scrap(index, &monitor)?;
        Ok(Self { conn, screen, monitor, scrap, next_id: 0 })
    }

    fn monitor(conn: &RustConnection, screen: usize, index: usize) -> Result<Monitor, CaptureError> {
        let all = monitors::list_on(conn, screen)?;
        let count = all.len();
        all.into_iter()
            .nth(index)
            .ok_or_else(|| CaptureError::Failed(format!("no monitor {index} (this display has {count})")))
    }

    /// The shared monitor as it is now, found by name (indices shift when monitors come and go).
    fn refresh(&self) -> Result<Monitor, CaptureError> {
        monitors::list_on(&self.conn, self.screen)?
            .into_iter()
            .find(|m| m.name == self.monitor.name)
            .ok_or_else(|| CaptureError::Failed(format!("the shared monitor {} is gone", self.monitor.name)))
    }

    fn open_scrap(index: usize, monitor: &Monitor) -> Result<scrap::Capturer, CaptureError> {
        let display = scrap::Display::all()
            .map_err(failed)?
            .into_iter()
            .nth(index)
            .ok_or_else(|| failed(format!("scrap does not see monitor {index}")))?;
        if (display.width(), display.height()) != (monitor.width as usize, monitor.height as usize) {
            return Err(failed("scrap and RandR disagree about the monitor size"));
        }
        scrap::Capturer::new(display).map_err(failed)
    }

    /// The monitor being captured (origin and size on the root window).
    pub fn current_monitor(&self) -> &Monitor {
        &self.monitor
    }
}

impl Capturer for X11Capturer {
    fn capture(&mut self) -> Result<Captured, CaptureError> {
        // A monitor being redefined (RandR delete + add) is briefly absent: keep the old geometry then.
        let now = self.refresh().unwrap_or_else(|e| {
            tracing::debug!("{e}; keeping the last geometry");
            self.monitor.clone()
        });
        if now != self.monitor {
            tracing::info!("monitor changed: {} -> {}", self.monitor, now);
            self.scrap = Self::open_scrap(now.index, &now)?;
            self.monitor = now;
        }
        let (width, height) = (self.monitor.width, self.monitor.height);
        let _stale = self.scrap.frame().map_err(failed)?;
        let raw = self.scrap.frame().map_err(failed)?;
        let stride = raw.len() / height.max(1) as usize;
        let row = width as usize * 4;
        if stride < row {
            return Err(failed(format!("frame of {} bytes is too small for {width}x{height}", raw.len())));
        }
        let mut bgrx = Vec::with_capacity(row * height as usize);
        for line in raw.chunks_exact(stride).take(height as usize) {
            bgrx.extend_from_slice(&line[..row]);
        }
        let frame = Frame::from_bgrx(width, height, bgrx).map_err(failed)?;
        let id = self.next_id;
        self.next_id += 1;
        Ok(Captured { id, frame })
    }
}
