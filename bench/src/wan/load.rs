//! What runs beside the probes: nothing, a file moving either way without pause, a video-like picture
//! playing, or a window being dragged — each drawn or driven for real on the host's X server or through
//! the session's file streams.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tether_viewer::files::{FileClient, Transfer};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    ConfigureWindowAux, ConnectionExt as _, CreateGCAux, CreateWindowAux, ImageFormat, Rectangle, WindowClass,
};
use x11rb::COPY_DEPTH_FROM_PARENT;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Load {
    /// Only the probes change the screen.
    Idle,
    /// The technician fetches a 64 MiB file from the host, again and again (host uplink).
    Fetch,
    /// The technician uploads a 64 MiB file to the host, again and again (host downlink).
    Upload,
    /// A 960×540 moving picture with grain at 30 fps beside the probe (photographic: the JPEG path).
    Video,
    /// A 500×350 striped window moved 6 px right, 2 px down per frame at 30 fps.
    Drag,
}

impl Load {
    pub const ALL: [Load; 5] = [Load::Idle, Load::Fetch, Load::Upload, Load::Video, Load::Drag];

    pub fn name(self) -> &'static str {
        match self {
            Load::Idle => "idle",
            Load::Fetch => "fetch",
            Load::Upload => "upload",
            Load::Video => "video",
            Load::Drag => "drag",
        }
    }

    pub fn moves_files(self) -> bool {
        matches!(self, Load::Fetch | Load::Upload)
    }
}

/// The file moved by `fetch` and `upload`.
pub const FILE_BYTES: usize = 64 << 20;

/// A load while it runs; [`Running::stop`] ends it.
pub struct Running {
    stop: Arc<AtomicBool>,
    /// File bytes moved so far (completed transfers plus the running one's progress).
    moved: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    pub fn moved(&self) -> u64 {
        self.moved.load(Ordering::Relaxed)
    }

    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Where the file loads read and write: the host's shared folder (`Bench/big.bin`), its incoming
/// folder, and the viewer's side.
pub struct Folders {
    pub shared: PathBuf,
    pub incoming: PathBuf,
    pub local: PathBuf,
}

pub fn start(load: Load, display: &str, files: FileClient, folders: &Folders) -> Result<Running> {
    let stop = Arc::new(AtomicBool::new(false));
    let moved = Arc::new(AtomicU64::new(0));
    let thread = match load {
        Load::Idle => None,
        Load::Fetch => {
            let (into, stop, moved) = (folders.local.join("fetched"), stop.clone(), moved.clone());
            std::fs::create_dir_all(&into)?;
            tokio::spawn(async move {
                let again = || files.fetch(vec!["Bench".into(), "big.bin".into()], into.clone());
                repeat(again, &into, &stop, &moved).await;
            });
            None
        }
        Load::Upload => {
            let (file, stop, moved) = (folders.local.join("big.bin"), stop.clone(), moved.clone());
            let incoming = folders.incoming.clone();
            tokio::spawn(async move {
                let again = || files.upload(&file);
                repeat(again, &incoming, &stop, &moved).await;
            });
            None
        }
        Load::Video => Some(spawn_drawing(display, stop.clone(), video, (900, 420, 960, 540))?),
        Load::Drag => Some(spawn_drawing(display, stop.clone(), drag, (400, 350, 500, 350))?),
    };
    Ok(Running { stop, moved, thread })
}

/// Run transfers one after the other until stopped, emptying `landed` after each. Bytes are counted
/// where they land (the receiver's files, temporary ones included): the sender's progress counts what it
/// handed to QUIC, which runs a whole send window ahead of the line on a slow upload.
async fn repeat(again: impl Fn() -> Transfer, landed: &Path, stop: &AtomicBool, moved: &AtomicU64) {
    let mut base = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while !stop.load(Ordering::Relaxed) {
        let result = again().result();
        tokio::pin!(result);
        loop {
            tokio::select! {
                done = &mut result => {
                    if let Err(e) = done {
                        if !stop.load(Ordering::Relaxed) {
                            eprintln!("  the background transfer failed: {e}");
                        }
                        return;
                    }
                    base += FILE_BYTES as u64;
                    moved.store(base, Ordering::Relaxed);
                    break;
                }
                _ = tick.tick() => moved.store(base + bytes_in(landed), Ordering::Relaxed),
            }
        }
        if let Ok(entries) = std::fs::read_dir(landed) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Bytes in the files directly in `dir`.
fn bytes_in(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries.flatten().filter_map(|e| e.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum()
}

type Drawing = fn(&x11rb::rust_connection::RustConnection, u32, u32, u64) -> Result<()>;

/// A thread with its own X connection and a window at `(x, y, w, h)`, calling `draw` at 30 fps until
/// stopped.
fn spawn_drawing(
    display: &str,
    stop: Arc<AtomicBool>,
    draw: Drawing,
    (x, y, w, h): (i16, i16, u16, u16),
) -> Result<std::thread::JoinHandle<()>> {
    let (conn, screen) = x11rb::connect(Some(display)).context("X connection")?;
    let root = conn.setup().roots[screen].root;
    let win = conn.generate_id()?;
    let aux = CreateWindowAux::new().override_redirect(1).background_pixel(0x00f0_f0f0);
    conn.create_window(COPY_DEPTH_FROM_PARENT, win, root, x, y, w, h, 0, WindowClass::INPUT_OUTPUT, 0, &aux)?;
    conn.map_window(win)?;
    let gc = conn.generate_id()?;
    conn.create_gc(gc, win, &CreateGCAux::new().foreground(0x0020_2020))?;
    conn.flush()?;
    Ok(std::thread::spawn(move || {
        let start = Instant::now();
        let mut frame = 0u64;
        while !stop.load(Ordering::Relaxed) {
            if let Err(e) = draw(&conn, win, gc, frame) {
                eprintln!("  drawing failed: {e}");
                return;
            }
            frame += 1;
            let next = start + Duration::from_secs_f64(frame as f64 / 30.0);
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        let _ = conn.destroy_window(win);
        let _ = conn.flush();
    }))
}

/// A smooth moving colour field with grain: every pixel changes every frame, nothing repeats.
fn video(conn: &x11rb::rust_connection::RustConnection, win: u32, gc: u32, frame: u64) -> Result<()> {
    const W: usize = 960;
    const STRIP: usize = 60;
    let mut seed = 0x2545_f491_4f6c_dd1d_u64 ^ frame.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let t = frame as f32 / 30.0;
    for strip in 0..540 / STRIP {
        let mut data = Vec::with_capacity(W * STRIP * 4);
        for row in 0..STRIP {
            let y = (strip * STRIP + row) as f32;
            for x in 0..W {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let grain = (seed & 0x1f) as f32 - 16.0;
                let (xf, v) = (x as f32, (x as f32 * 0.013 + y * 0.021 + t * 1.7).sin());
                let r = 128.0 + 90.0 * v + grain;
                let g = 128.0 + 90.0 * (xf * 0.007 - t).cos() + grain;
                let b = 128.0 + 90.0 * (y * 0.011 + t * 0.6).sin() + grain;
                data.extend_from_slice(&[
                    b.clamp(0.0, 255.0) as u8,
                    g.clamp(0.0, 255.0) as u8,
                    r.clamp(0.0, 255.0) as u8,
                    0,
                ]);
            }
        }
        let top = (strip * STRIP) as i16;
        conn.put_image(ImageFormat::Z_PIXMAP, win, gc, W as u16, STRIP as u16, 0, top, 0, 24, &data)?;
    }
    conn.flush()?;
    Ok(())
}

/// The striped window one step further along its path (bouncing inside a box right of the probe).
fn drag(conn: &x11rb::rust_connection::RustConnection, win: u32, gc: u32, frame: u64) -> Result<()> {
    if frame == 0 {
        // Text-like stripes: dark runs of varying length on light lines.
        let mut bars = Vec::new();
        for line in 0..20i16 {
            let mut x = 8i16;
            while x < 480 {
                let len = 12 + ((line as i32 * 7 + x as i32 * 3) % 40) as i16;
                bars.push(Rectangle { x, y: 8 + line * 17, width: len as u16, height: 9 });
                x += len + 6;
            }
        }
        conn.poly_fill_rectangle(win, gc, &bars)?;
    }
    let bounce =
        |pos: u64, span: u64| if (pos / span).is_multiple_of(2) { pos % span } else { span - pos % span };
    let x = 400 + bounce(frame * 6, 800) as i32;
    let y = 350 + bounce(frame * 2, 350) as i32;
    conn.configure_window(win, &ConfigureWindowAux::new().x(x).y(y))?;
    conn.flush()?;
    Ok(())
}
