//! Injection into a wlroots Wayland compositor (sway, Hyprland, labwc, river…): the mouse through our own
//! virtual pointer (`zwlr_virtual_pointer_v1`), bound to the shared output; keys and text through enigo's
//! virtual keyboard, which uploads a keymap holding every character it types, so any layout works.
//!
//! Why not enigo's pointer as well: it moves in the extent of the compositor's *first* output, so on any
//! other output the pointer lands in the wrong place, and it sends a wheel notch as one pixel of scrolling.
//! A pointer created *with an output* (protocol version 2) moves within that output: a position in the
//! shared monitor's pixels, with the monitor's size as the extent, is exactly where the technician
//! pointed, whatever the layout and the output's scale.

use std::time::Instant;

use tether_shared::input::{InputEvent, MouseButton};
use wayland_client::globals::{registry_queue_init, GlobalListContents};
use wayland_client::protocol::wl_output::WlOutput;
use wayland_client::protocol::wl_pointer::{self, ButtonState};
use wayland_client::protocol::wl_registry::WlRegistry;
use wayland_client::protocol::wl_seat::WlSeat;
use wayland_client::{delegate_noop, Connection, Dispatch, Proxy, QueueHandle};
use wayland_protocols_wlr::virtual_pointer::v1::client::zwlr_virtual_pointer_manager_v1::ZwlrVirtualPointerManagerV1;
use wayland_protocols_wlr::virtual_pointer::v1::client::zwlr_virtual_pointer_v1::ZwlrVirtualPointerV1;

use super::x11::EnigoSink;
use super::{inject_releases, Held, InjectError, InputSink};
use crate::capture::monitors::Monitor;
use crate::capture::wlroots::output_globals;

fn failed(e: impl std::fmt::Display) -> InjectError {
    InjectError::Failed(format!("Wayland input: {e}"))
}

/// How far one wheel notch scrolls, in the compositor's units (what libinput reports for a real wheel).
const NOTCH: f64 = 15.0;

/// A virtual pointer that moves on one output of the compositor at `$WAYLAND_DISPLAY`.
struct Pointer {
    conn: Connection,
    pointer: ZwlrVirtualPointerV1,
    /// The output's size in pixels: the extent of every absolute motion.
    extent: (u32, u32),
    started: Instant,
}

/// Nothing to remember: the pointer's requests have no answers.
struct NoEvents;

impl Pointer {
    /// A pointer on output `monitor.index`.
    fn new(monitor: &Monitor) -> Result<Self, InjectError> {
        let conn = Connection::connect_to_env().map_err(failed)?;
        let (globals, mut queue) = registry_queue_init::<NoEvents>(&conn).map_err(failed)?;
        let qh = queue.handle();
        let manager: ZwlrVirtualPointerManagerV1 = globals.bind(&qh, 2..=2, ()).map_err(|e| {
            failed(format!(
                "this compositor offers no virtual pointer that can be bound to an output \
                 (zwlr_virtual_pointer_manager_v1 version 2): {e}"
            ))
        })?;
        let seat: WlSeat = globals.bind(&qh, 1..=1, ()).map_err(|e| failed(format!("no seat: {e}")))?;
        let outputs = output_globals(&globals);
        let &(name, version) = outputs.get(monitor.index).ok_or_else(|| {
            failed(format!("no monitor {} (this compositor has {})", monitor.index, outputs.len()))
        })?;
        let output: WlOutput = globals.registry().bind(name, version.min(4), &qh, ());
        let pointer = manager.create_virtual_pointer_with_output(Some(&seat), Some(&output), &qh, ());
        queue.roundtrip(&mut NoEvents).map_err(failed)?;
        Ok(Self {
            conn,
            pointer,
            extent: (monitor.width.max(1), monitor.height.max(1)),
            started: Instant::now(),
        })
    }

    /// Milliseconds since the pointer was made: the protocol's timestamps.
    fn now(&self) -> u32 {
        self.started.elapsed().as_millis() as u32
    }

    /// Send what was queued as one pointer frame.
    fn frame(&self) -> Result<(), InjectError> {
        self.pointer.frame();
        self.conn.flush().map_err(failed)
    }

    /// Move to (`x`, `y`) in the output's pixels (clamped to it).
    fn move_to(&self, x: i32, y: i32) -> Result<(), InjectError> {
        let (w, h) = self.extent;
        let x = x.clamp(0, w as i32 - 1) as u32;
        let y = y.clamp(0, h as i32 - 1) as u32;
        self.pointer.motion_absolute(self.now(), x, y, w, h);
        self.frame()
    }

    fn button(&self, button: MouseButton, pressed: bool) -> Result<(), InjectError> {
        let state = if pressed { ButtonState::Pressed } else { ButtonState::Released };
        self.pointer.button(self.now(), linux_button(button), state);
        self.frame()
    }

    /// Scroll `dx`, `dy` wheel notches (positive: right, down).
    fn wheel(&self, dx: i32, dy: i32) -> Result<(), InjectError> {
        let time = self.now();
        self.pointer.axis_source(wl_pointer::AxisSource::Wheel);
        for (axis, notches) in
            [(wl_pointer::Axis::VerticalScroll, dy), (wl_pointer::Axis::HorizontalScroll, dx)]
        {
            if notches != 0 {
                self.pointer.axis_discrete(time, axis, f64::from(notches) * NOTCH, notches);
            }
        }
        self.frame()
    }
}

/// The kernel's code for a mouse button (`linux/input-event-codes.h`), which Wayland carries.
fn linux_button(button: MouseButton) -> u32 {
    match button {
        MouseButton::Left => 0x110,
        MouseButton::Right => 0x111,
        MouseButton::Middle => 0x112,
        MouseButton::Back => 0x113,
        MouseButton::Forward => 0x114,
    }
}

impl Drop for Pointer {
    fn drop(&mut self) {
        self.pointer.destroy();
        let _ = self.conn.flush();
    }
}

/// The technician's input on a wlroots compositor: the mouse on the shared output, keys and text through
/// the virtual keyboard.
pub struct WlrootsSink {
    pointer: Pointer,
    keyboard: EnigoSink,
    held: Held,
}

impl std::fmt::Debug for WlrootsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WlrootsSink({:?})", self.keyboard)
    }
}

impl WlrootsSink {
    /// Inject into the compositor at `$WAYLAND_DISPLAY`, the mouse on `monitor`.
    pub fn new(monitor: Monitor) -> Result<Self, InjectError> {
        let pointer = Pointer::new(&monitor)?;
        let keyboard = EnigoSink::wayland(monitor)?;
        Ok(Self { pointer, keyboard, held: Held::default() })
    }
}

impl InputSink for WlrootsSink {
    fn inject(&mut self, event: &InputEvent) -> Result<(), InjectError> {
        match event {
            InputEvent::MouseMove { x, y } => self.pointer.move_to(*x, *y)?,
            InputEvent::MouseButton { button, pressed } => self.pointer.button(*button, *pressed)?,
            InputEvent::Wheel { dx, dy } => self.pointer.wheel(*dx, *dy)?,
            InputEvent::Key { .. } | InputEvent::Text(_) => self.keyboard.inject(event)?,
        }
        self.held.note(event);
        Ok(())
    }

    fn release_all(&mut self) {
        let releases = self.held.take_releases();
        inject_releases(self, releases);
    }
}

impl Dispatch<WlRegistry, GlobalListContents> for NoEvents {
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

delegate_noop!(NoEvents: ignore WlSeat);
delegate_noop!(NoEvents: ignore WlOutput);
delegate_noop!(NoEvents: ZwlrVirtualPointerManagerV1);
delegate_noop!(NoEvents: ZwlrVirtualPointerV1);
