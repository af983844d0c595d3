//! X11 capture through MIT-SHM into a private memory file (x11rb + memfd).
//!
//! The X server writes each image (`ShmGetImage`, ZPixmap: BGRX on little-endian) into a `memfd` whose
//! descriptor we passed it over the X connection (`ShmAttachFd`); we read it back with `pread`. Nothing
//! else can reach the pixels: the memory file has no name in any namespace and only this process and the
//! X server hold descriptors to it. (scrap, used before, made a SysV segment with mode 0777, which any
//! local user could attach to read the screen during a session.) No `unsafe`: `pread` copies instead of
//! mapping, one 8 MB copy per 1920×1080 frame.
//!
//! Before each capture the monitor's geometry is checked (one RandR round trip, the monitor found by name);
//! when its size changed a new segment is made, so a resolution change mid-session gives frames of the
//! new size and the encoder sends a full frame. A server without MIT-SHM fd passing gets plain
//! `GetImage` (slower, same pixels).

use std::os::fd::OwnedFd;

use rustix::fs::{memfd_create, MemfdFlags};
use x11rb::connection::Connection;
use x11rb::protocol::shm::ConnectionExt as _;
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat, Window};
use x11rb::rust_connection::RustConnection;

use super::monitors::{self, Monitor};
use super::{CaptureError, Captured, Capturer};
use tether_shared::frame::Frame;

/// A memory file the X server writes images into.
struct Segment {
    id: u32,
    fd: OwnedFd,
    size: usize,
}

pub struct X11Capturer {
    conn: RustConnection,
    screen: usize,
    root: Window,
    monitor: Monitor,
    /// `None`: the server cannot share memory with us; use plain GetImage.
    segment: Option<Segment>,
    next_id: u64,
}

fn failed(e: impl std::fmt::Display) -> CaptureError {
    CaptureError::Failed(format!("X11 capture: {e}"))
}

impl X11Capturer {
    /// Capture monitor `index` of `$DISPLAY`.
    pub fn new(index: usize) -> Result<Self, CaptureError> {
        let (conn, screen) = x11rb::connect(None).map_err(failed)?;
        let root = conn.setup().roots.get(screen).ok_or_else(|| failed("no such screen"))?.root;
        let monitor = Self::monitor(&conn, screen, index)?;
        let mut capturer = Self { conn, screen, root, monitor, segment: None, next_id: 0 };
        capturer.segment = capturer.open_segment();
        Ok(capturer)
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

    fn frame_bytes(&self) -> usize {
        self.monitor.width as usize * self.monitor.height as usize * 4
    }

    /// A memory file for the current monitor size, attached to the server; `None` (with a log line) when
    /// the server cannot use it.
    fn open_segment(&self) -> Option<Segment> {
        let attach = || -> Result<Segment, String> {
            let size = self.frame_bytes();
            let fd = memfd_create("tether-capture", MemfdFlags::CLOEXEC).map_err(|e| e.to_string())?;
            rustix::fs::ftruncate(&fd, size as u64).map_err(|e| e.to_string())?;
            let id = self.conn.generate_id().map_err(|e| e.to_string())?;
            // The server gets its own descriptor (sent over the socket); ours stays for reading.
            let theirs = fd.try_clone().map_err(|e| e.to_string())?;
            self.conn
                .shm_attach_fd(id, theirs, false)
                .map_err(|e| e.to_string())?
                .check()
                .map_err(|e| e.to_string())?;
            Ok(Segment { id, fd, size })
        };
        match attach() {
            Ok(segment) => Some(segment),
            Err(e) => {
                tracing::warn!("no shared-memory capture ({e}); using plain GetImage");
                None
            }
        }
    }

    fn drop_segment(&mut self) {
        if let Some(old) = self.segment.take() {
            if let Ok(cookie) = self.conn.shm_detach(old.id) {
                let _ = cookie.check();
            }
        }
    }

    /// The monitor being captured (origin and size on the root window).
    pub fn current_monitor(&self) -> &Monitor {
        &self.monitor
    }

    fn grab(&self) -> Result<Vec<u8>, CaptureError> {
        let m = &self.monitor;
        let (x, y) = (i16::try_from(m.x).map_err(failed)?, i16::try_from(m.y).map_err(failed)?);
        let (w, h) = (u16::try_from(m.width).map_err(failed)?, u16::try_from(m.height).map_err(failed)?);
        let expected = self.frame_bytes();
        match &self.segment {
            Some(segment) => {
                let format = ImageFormat::Z_PIXMAP.into();
                let reply = self
                    .conn
                    .shm_get_image(self.root, x, y, w, h, !0, format, segment.id, 0)
                    .map_err(failed)?
                    .reply()
                    .map_err(failed)?;
                if reply.size as usize != expected || segment.size < expected {
                    return Err(failed(format!(
                        "the server sent {} bytes for {}x{} (depth {}); expected 32-bit pixels",
                        reply.size, m.width, m.height, reply.depth
                    )));
                }
                let mut bgrx = vec![0u8; expected];
                let mut done = 0;
                while done < expected {
                    let n = rustix::io::pread(&segment.fd, &mut bgrx[done..], done as u64).map_err(failed)?;
                    if n == 0 {
                        return Err(failed("the capture memory is shorter than the image"));
                    }
                    done += n;
                }
                Ok(bgrx)
            }
            None => {
                let reply = self
                    .conn
                    .get_image(ImageFormat::Z_PIXMAP, self.root, x, y, w, h, !0)
                    .map_err(failed)?
                    .reply()
                    .map_err(failed)?;
                if reply.data.len() != expected {
                    return Err(failed(format!(
                        "the server sent {} bytes for {}x{} (depth {}); expected 32-bit pixels",
                        reply.data.len(),
                        m.width,
                        m.height,
                        reply.depth
                    )));
                }
                Ok(reply.data)
            }
        }
    }
}

impl Drop for X11Capturer {
    fn drop(&mut self) {
        self.drop_segment();
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
            let resized = (now.width, now.height) != (self.monitor.width, self.monitor.height);
            self.monitor = now;
            if resized && self.segment.is_some() {
                self.drop_segment();
                self.segment = self.open_segment();
            }
        }
        let bgrx = self.grab()?;
        let frame = Frame::from_bgrx(self.monitor.width, self.monitor.height, bgrx).map_err(failed)?;
        let id = self.next_id;
        self.next_id += 1;
        Ok(Captured { id, frame: std::sync::Arc::new(frame) })
    }
}
