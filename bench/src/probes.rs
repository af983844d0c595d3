//! The two latency probes on a real X screen, shared by `latency` and `wan`:
//! - **screen → viewer**: a 200×200 square at (100, 100) changes colour on the host's X server (drawn and
//!   synced with x11rb) until the viewer's framebuffer holds the new colour — what a keystroke's echo in
//!   a terminal is to the technician;
//! - **input → injection**: the viewer sends a mouse move until the host's X server reports the pointer
//!   there (polled with QueryPointer).
//!
//! Both return one sample per try, in milliseconds, and stop early once `budget` has passed (a line that
//! takes seconds per sample would otherwise hold a benchmark for an hour): callers report how many
//! samples they got.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tether_shared::input::InputEvent;
use tether_viewer::session::ViewerSession;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    ChangeGCAux, ConnectionExt as _, CreateGCAux, CreateWindowAux, Gcontext, Rectangle, Window, WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::COPY_DEPTH_FROM_PARENT;

/// The probe window on `display`, and the connection that draws in it and asks where the pointer is.
pub struct Probe {
    conn: RustConnection,
    root: Window,
    win: Window,
    gc: Gcontext,
}

impl Probe {
    pub fn open(display: &str) -> Result<Self> {
        let (conn, screen) = x11rb::connect(Some(display)).context("X connection")?;
        let root = conn.setup().roots[screen].root;
        let win = conn.generate_id()?;
        let aux = CreateWindowAux::new().override_redirect(1).background_pixel(0x00ff_ffff);
        conn.create_window(
            COPY_DEPTH_FROM_PARENT,
            win,
            root,
            100,
            100,
            200,
            200,
            0,
            WindowClass::INPUT_OUTPUT,
            0,
            &aux,
        )?;
        conn.map_window(win)?;
        let gc = conn.generate_id()?;
        conn.create_gc(gc, win, &CreateGCAux::new().foreground(0))?;
        conn.get_input_focus()?.reply()?; // everything above is on screen
        Ok(Self { conn, root, win, gc })
    }

    /// Screen change → viewer framebuffer, `samples` times, 40 ms apart, within `budget`.
    pub async fn screen(&self, viewer: &ViewerSession, samples: usize, budget: Duration) -> Result<Vec<f64>> {
        let mut out = Vec::with_capacity(samples);
        let mut frames = viewer.frames();
        let start = Instant::now();
        for i in 0..samples {
            if start.elapsed() > budget {
                break;
            }
            let colour: u32 = if i % 2 == 0 { 0x00c0_2040 } else { 0x0020_40c0 };
            let want = [(colour & 0xff) as u8, (colour >> 8 & 0xff) as u8, (colour >> 16 & 0xff) as u8];
            self.conn.change_gc(self.gc, &ChangeGCAux::new().foreground(colour))?;
            let square = Rectangle { x: 0, y: 0, width: 200, height: 200 };
            self.conn.poly_fill_rectangle(self.win, self.gc, &[square])?;
            self.conn.get_input_focus()?.reply()?; // drawn
            let t0 = Instant::now();
            until_shown(&mut frames, want).await?;
            out.push(t0.elapsed().as_secs_f64() * 1e3);
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        Ok(out)
    }

    /// Viewer input → pointer moved on the host's X server, `samples` times, 20 ms apart, within `budget`.
    pub async fn input(&self, viewer: &ViewerSession, samples: usize, budget: Duration) -> Result<Vec<f64>> {
        let mut out = Vec::with_capacity(samples);
        let start = Instant::now();
        for i in 0..samples {
            if start.elapsed() > budget {
                break;
            }
            let (px, py) = (300 + (i % 2) as i32 * 700, 200 + (i % 3) as i32 * 200);
            let t0 = Instant::now();
            viewer.send_input(InputEvent::MouseMove { x: px, y: py }).await?;
            loop {
                let p = self.conn.query_pointer(self.root)?.reply()?;
                if (i32::from(p.root_x), i32::from(p.root_y)) == (px, py) {
                    break;
                }
                anyhow::ensure!(t0.elapsed() < Duration::from_secs(10), "pointer never moved");
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            out.push(t0.elapsed().as_secs_f64() * 1e3);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(out)
    }
}

/// Wait until the viewer's picture has the colour `bgr` (blue, green, red: the frame's byte order) at
/// (150, 150), inside the square the screen probes paint.
pub async fn until_shown(
    frames: &mut tokio::sync::watch::Receiver<Option<tether_viewer::session::Shown>>,
    bgr: [u8; 3],
) -> Result<()> {
    loop {
        let seen = frames.borrow_and_update().as_ref().is_some_and(|s| {
            let i = (150 * s.frame.width() as usize + 150) * 4;
            s.frame.bgrx()[i..i + 3] == bgr
        });
        if seen {
            return Ok(());
        }
        tokio::time::timeout(Duration::from_secs(10), frames.changed())
            .await
            .context("no frame in 10 s")??;
    }
}
