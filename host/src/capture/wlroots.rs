//! Capture on wlroots Wayland compositors (sway, Hyprland, labwc, river…) with the screencopy protocol
//! (`zwlr_screencopy_manager_v1`), over a pure-Rust Wayland connection (wayland-client).
//!
//! Each capture asks the compositor to copy one output into a shared-memory buffer we made: a `memfd`
//! whose descriptor goes to the compositor over the Wayland socket (`wl_shm.create_pool`), read back
//! with `pread` as on X11 — nothing maps the memory, no `unsafe`, and nobody else holds the descriptor.
//! The buffer is kept while the output's size stays the same. The compositor draws its cursor into the
//! picture (`overlay_cursor`): wlroots offers no cursor shape apart, and without it a compositor that
//! shows the cursor on a hardware plane would show the technician none. (On X11 the cursor travels
//! apart, shape and position.)
//!
//! Outputs are listed in the order the compositor announces them (`--list-monitors`), named as it names
//! them (`wl_output` version 4: `HEADLESS-1`, `eDP-1`…).
//!
//! Capture is a [`Stream`], the Wayland twin of X Damage ([`super::damage`]) and capture in one: copies
//! *with damage* (`copy_with_damage`: the compositor answers once something was drawn, and says where), so
//! the session wakes when the screen changes, compares only what changed, and takes the picture already
//! copied — one copy per change inside the compositor, none while the screen stands still.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use rustix::fs::{ftruncate, memfd_create, MemfdFlags};
use tether_shared::frame::Frame;
use wayland_client::globals::{registry_queue_init, GlobalList, GlobalListContents};
use wayland_client::protocol::wl_buffer::WlBuffer;
use wayland_client::protocol::wl_output::{self, WlOutput};
use wayland_client::protocol::wl_registry::WlRegistry;
use wayland_client::protocol::wl_shm::{self, WlShm};
use wayland_client::protocol::wl_shm_pool::WlShmPool;
use wayland_client::{delegate_noop, Connection, Dispatch, EventQueue, Proxy, QueueHandle, WEnum};
use wayland_protocols::xdg::xdg_output::zv1::client::zxdg_output_manager_v1::ZxdgOutputManagerV1;
use wayland_protocols::xdg::xdg_output::zv1::client::zxdg_output_v1::{self, ZxdgOutputV1};
use wayland_protocols_wlr::screencopy::v1::client::zwlr_screencopy_frame_v1::{self, ZwlrScreencopyFrameV1};
use wayland_protocols_wlr::screencopy::v1::client::zwlr_screencopy_manager_v1::ZwlrScreencopyManagerV1;

use super::damage::Drawn;
use super::monitors::Monitor;
use super::stream::Stream;
use super::{CaptureError, Captured};

fn failed(e: impl std::fmt::Display) -> CaptureError {
    CaptureError::Failed(format!("Wayland capture: {e}"))
}

/// Whether this session looks like a Wayland one (`$WAYLAND_DISPLAY` set).
pub fn available() -> bool {
    std::env::var_os("WAYLAND_DISPLAY").is_some_and(|d| !d.is_empty())
}

/// Whether the compositor at `$WAYLAND_DISPLAY` offers wlroots screencopy (GNOME and KDE do not: they
/// share through the desktop portal).
pub fn offers_screencopy() -> bool {
    available() && connect().is_ok_and(|(_, _, _, globals)| globals.manager.is_some())
}

/// An output as the compositor describes it.
#[derive(Debug, Clone, Default)]
struct OutputInfo {
    name: String,
    x: i32,
    y: i32,
    width: i32,
    height: i32,
}

/// What the screencopy frame told us.
#[derive(Debug, Default)]
struct FrameState {
    buffer: Option<BufferSpec>,
    buffer_done: bool,
    y_invert: bool,
    ready: bool,
    failed: bool,
    /// Where the compositor says the output changed (`copy_with_damage`), output-relative.
    damage: Vec<Drawn>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BufferSpec {
    format: wl_shm::Format,
    width: u32,
    height: u32,
    stride: u32,
}

#[derive(Debug, Default)]
struct State {
    outputs: Vec<(WlOutput, OutputInfo)>,
    frame: FrameState,
}

/// The compositor's outputs, in the order it announced them.
pub fn list() -> Result<Vec<Monitor>, CaptureError> {
    let (_, _, state, _) = connect()?;
    Ok(state.outputs.iter().enumerate().map(|(i, (_, o))| monitor(i, o)).collect())
}

/// Output `index` as a monitor (the first counts as the primary one: Wayland has no such notion).
fn monitor(index: usize, o: &OutputInfo) -> Monitor {
    Monitor {
        index,
        name: o.name.clone(),
        x: o.x,
        y: o.y,
        width: o.width.max(0) as u32,
        height: o.height.max(0) as u32,
        primary: index == 0,
    }
}

/// The connection, its queue, the outputs (described: two round trips) and the globals we need.
fn connect() -> Result<(Connection, EventQueue<State>, State, Globals), CaptureError> {
    let conn = Connection::connect_to_env().map_err(failed)?;
    let (globals, mut queue) = registry_queue_init::<State>(&conn).map_err(failed)?;
    let qh = queue.handle();
    let shm: WlShm = globals.bind(&qh, 1..=1, ()).map_err(|e| failed(format!("no wl_shm: {e}")))?;
    let manager: Option<ZwlrScreencopyManagerV1> = globals.bind(&qh, 1..=3, ()).ok();
    let mut state = State::default();
    for (index, (name, version)) in output_globals(&globals).into_iter().enumerate() {
        let output: WlOutput = globals.registry().bind(name, version.min(4), &qh, index);
        state
            .outputs
            .push((output, OutputInfo { name: format!("output-{}", index + 1), ..OutputInfo::default() }));
    }
    // Where each output sits in the layout (and its name, for compositors without wl_output 4).
    if let Ok(xdg) = globals.bind::<ZxdgOutputManagerV1, _, _>(&qh, 1..=3, ()) {
        for (index, (output, _)) in state.outputs.iter().enumerate() {
            xdg.get_xdg_output(output, &qh, index);
        }
    }
    queue.roundtrip(&mut state).map_err(failed)?;
    queue.roundtrip(&mut state).map_err(failed)?;
    Ok((conn, queue, state, Globals { shm, manager }))
}

/// The compositor's `wl_output` globals (name, version) in the order it announced them: what a monitor
/// index means everywhere (capture, `--list-monitors`, the output the virtual pointer moves on).
pub(crate) fn output_globals(globals: &GlobalList) -> Vec<(u32, u32)> {
    globals.contents().with_list(|list| {
        list.iter()
            .filter(|g| g.interface == WlOutput::interface().name)
            .map(|g| (g.name, g.version))
            .collect()
    })
}

struct Globals {
    shm: WlShm,
    manager: Option<ZwlrScreencopyManagerV1>,
}

/// The buffer the compositor copies into, for one size and format.
struct Buffer {
    spec: BufferSpec,
    fd: OwnedFd,
    _pool: WlShmPool,
    buffer: WlBuffer,
}

pub struct WlrootsCapturer {
    _conn: Connection,
    queue: EventQueue<State>,
    state: State,
    shm: WlShm,
    manager: ZwlrScreencopyManagerV1,
    output: WlOutput,
    buffer: Option<Buffer>,
    next_id: u64,
}

impl std::fmt::Debug for WlrootsCapturer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WlrootsCapturer({:?})", self.output.id())
    }
}

impl WlrootsCapturer {
    /// Capture output `index` of the compositor at `$WAYLAND_DISPLAY`.
    pub fn new(index: usize) -> Result<Self, CaptureError> {
        let (conn, queue, state, globals) = connect()?;
        let manager = globals.manager.ok_or_else(|| {
            failed("this compositor offers no wlroots screencopy (GNOME and KDE share the screen through the desktop portal: --source portal)")
        })?;
        let count = state.outputs.len();
        let output = state.outputs.get(index).map(|(o, _)| o.clone()).ok_or_else(|| {
            CaptureError::Failed(format!("no monitor {index} (this compositor has {count})"))
        })?;
        Ok(Self { _conn: conn, queue, state, shm: globals.shm, manager, output, buffer: None, next_id: 0 })
    }

    /// Dispatch until `done` says so, or the frame failed.
    fn wait(&mut self, done: impl Fn(&FrameState) -> bool) -> Result<(), CaptureError> {
        while !done(&self.state.frame) {
            if self.state.frame.failed {
                return Err(failed("the compositor could not copy the output"));
            }
            self.queue.blocking_dispatch(&mut self.state).map_err(failed)?;
        }
        if self.state.frame.failed {
            return Err(failed("the compositor could not copy the output"));
        }
        Ok(())
    }

    /// A buffer for `spec`: the one we have if it fits, else a new memory file shared with the compositor.
    fn buffer_for(&mut self, spec: BufferSpec) -> Result<&Buffer, CaptureError> {
        if self.buffer.as_ref().is_none_or(|b| b.spec != spec) {
            if let Some(old) = self.buffer.take() {
                old.buffer.destroy();
            }
            let size = spec.stride as usize * spec.height as usize;
            let fd = memfd_create("tether-capture", MemfdFlags::CLOEXEC).map_err(failed)?;
            ftruncate(&fd, size as u64).map_err(failed)?;
            let qh = self.queue.handle();
            let size = i32::try_from(size).map_err(|_| failed("the output is too large"))?;
            let pool = self.shm.create_pool(fd.as_fd(), size, &qh, ());
            let (w, h, stride) = (spec.width as i32, spec.height as i32, spec.stride as i32);
            let buffer = pool.create_buffer(0, w, h, stride, spec.format, &qh, ());
            self.buffer = Some(Buffer { spec, fd, _pool: pool, buffer });
        }
        self.buffer.as_ref().ok_or_else(|| failed("no buffer"))
    }
}

impl WlrootsCapturer {
    /// Have the compositor copy the output into our buffer: at once, or (`damage`) once something was
    /// drawn since our last copy. The buffer's description.
    fn copy(&mut self, damage: bool) -> Result<BufferSpec, CaptureError> {
        self.state.frame = FrameState::default();
        let qh = self.queue.handle();
        let frame = self.manager.capture_output(1, &self.output, &qh, ());
        let version = frame.version();
        // Version 3 lists every buffer type and then says it is done; earlier ones send one shm buffer.
        self.wait(|f| f.buffer.is_some() && (version < 3 || f.buffer_done))?;
        let spec = self
            .state
            .frame
            .buffer
            .ok_or_else(|| failed("the compositor offered no shared-memory buffer"))?;
        let buffer = self.buffer_for(spec)?.buffer.clone();
        if damage && version >= 2 {
            frame.copy_with_damage(&buffer);
        } else {
            frame.copy(&buffer);
        }
        let copied = self.wait(|f| f.ready);
        frame.destroy();
        copied.map(|()| spec)
    }
}

/// Start the stream of output `index`: a thread asks the compositor for a copy *with damage* again and
/// again (the compositor answers only once something was drawn, and says where) and feeds each picture
/// and what changed (on the compositor's layout, like X Damage on the root window) into the [`Stream`].
/// The compositor copies only when the screen changed, once, whoever asks.
pub fn stream(index: usize) -> Result<Stream, CaptureError> {
    let mut copier = WlrootsCapturer::new(index)?;
    let origin = copier.state.outputs.get(index).map(|(_, o)| (o.x, o.y)).unwrap_or_default();
    let (stream, feed) = Stream::new();
    std::thread::Builder::new()
        .name("tether-wl-capture".into())
        .spawn(move || {
            // The first copy at once; then each when something was drawn since the one before.
            let mut damage = false;
            loop {
                match copier.picture(damage) {
                    // Nobody reads the stream any more (the session ended, or another monitor is shared):
                    // stop at the first picture after that.
                    Ok(_) if feed.abandoned() => return,
                    Ok(picture) => {
                        let rects = std::mem::take(&mut copier.state.frame.damage);
                        let rects = rects.into_iter().map(|(x, y, w, h)| (x + origin.0, y + origin.1, w, h));
                        feed.picture(picture, rects);
                    }
                    Err(e) => {
                        tracing::debug!("the compositor stopped sending pictures: {e}");
                        feed.end(e);
                        return;
                    }
                }
                damage = true;
            }
        })
        .map_err(failed)?;
    Ok(stream)
}

impl WlrootsCapturer {
    /// One copy of the output (see [`Self::copy`]) as a picture.
    fn picture(&mut self, damage: bool) -> Result<Captured, CaptureError> {
        let spec = self.copy(damage)?;
        let buffer = self.buffer.as_ref().ok_or_else(|| failed("no buffer"))?;
        let pixels = read_pixels(&buffer.fd, spec, self.state.frame.y_invert)?;
        self.next_id += 1;
        let frame = Frame::from_bgrx(spec.width, spec.height, pixels).map_err(failed)?;
        Ok(Captured { id: self.next_id, frame: Arc::new(frame) })
    }
}

/// The buffer's pixels as packed BGRX rows, top row first.
fn read_pixels(fd: &OwnedFd, spec: BufferSpec, y_invert: bool) -> Result<Vec<u8>, CaptureError> {
    let stride = spec.stride as usize;
    let row = spec.width as usize * 4;
    let mut raw = vec![0u8; stride * spec.height as usize];
    let mut done = 0;
    while done < raw.len() {
        let n = rustix::io::pread(fd, &mut raw[done..], done as u64).map_err(failed)?;
        if n == 0 {
            return Err(failed("the capture buffer is shorter than announced"));
        }
        done += n;
    }
    let swap_red_blue = matches!(spec.format, wl_shm::Format::Xbgr8888 | wl_shm::Format::Abgr8888);
    let mut out = Vec::with_capacity(row * spec.height as usize);
    for y in 0..spec.height as usize {
        let src = if y_invert { spec.height as usize - 1 - y } else { y };
        let line = &raw[src * stride..src * stride + row];
        if swap_red_blue {
            for px in line.chunks_exact(4) {
                out.extend_from_slice(&[px[2], px[1], px[0], px[3]]);
            }
        } else {
            out.extend_from_slice(line);
        }
    }
    Ok(out)
}

/// The formats we read: 32 bits a pixel, 8 bits a channel.
fn readable(format: wl_shm::Format) -> bool {
    matches!(
        format,
        wl_shm::Format::Xrgb8888
            | wl_shm::Format::Argb8888
            | wl_shm::Format::Xbgr8888
            | wl_shm::Format::Abgr8888
    )
}

impl Dispatch<WlRegistry, GlobalListContents> for State {
    fn event(
        _: &mut Self,
        _: &WlRegistry,
        _: <WlRegistry as Proxy>::Event,
        _: &GlobalListContents,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

impl Dispatch<WlOutput, usize> for State {
    fn event(
        state: &mut Self,
        _: &WlOutput,
        event: wl_output::Event,
        index: &usize,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let Some((_, info)) = state.outputs.get_mut(*index) else { return };
        match event {
            wl_output::Event::Mode { flags: WEnum::Value(flags), width, height, .. }
                if flags.contains(wl_output::Mode::Current) =>
            {
                (info.width, info.height) = (width, height);
            }
            wl_output::Event::Name { name } => info.name = name,
            _ => {}
        }
    }
}

impl Dispatch<ZxdgOutputV1, usize> for State {
    fn event(
        state: &mut Self,
        _: &ZxdgOutputV1,
        event: zxdg_output_v1::Event,
        index: &usize,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let Some((_, info)) = state.outputs.get_mut(*index) else { return };
        match event {
            zxdg_output_v1::Event::LogicalPosition { x, y } => (info.x, info.y) = (x, y),
            zxdg_output_v1::Event::Name { name } => info.name = name,
            _ => {}
        }
    }
}

impl Dispatch<ZwlrScreencopyFrameV1, ()> for State {
    fn event(
        state: &mut Self,
        _: &ZwlrScreencopyFrameV1,
        event: zwlr_screencopy_frame_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let frame = &mut state.frame;
        match event {
            zwlr_screencopy_frame_v1::Event::Buffer {
                format: WEnum::Value(format),
                width,
                height,
                stride,
            } if readable(format) && frame.buffer.is_none() => {
                frame.buffer = Some(BufferSpec { format, width, height, stride });
            }
            zwlr_screencopy_frame_v1::Event::Flags { flags: WEnum::Value(flags) } => {
                frame.y_invert = flags.contains(zwlr_screencopy_frame_v1::Flags::YInvert);
            }
            zwlr_screencopy_frame_v1::Event::BufferDone => frame.buffer_done = true,
            zwlr_screencopy_frame_v1::Event::Damage { x, y, width, height } => {
                frame.damage.push((x as i32, y as i32, width, height));
            }
            zwlr_screencopy_frame_v1::Event::Ready { .. } => frame.ready = true,
            zwlr_screencopy_frame_v1::Event::Failed => frame.failed = true,
            _ => {}
        }
    }
}

delegate_noop!(State: ignore WlShm);
delegate_noop!(State: ignore WlShmPool);
delegate_noop!(State: ignore WlBuffer);
delegate_noop!(State: ZwlrScreencopyManagerV1);
delegate_noop!(State: ZxdgOutputManagerV1);
