//! Injection with enigo (0.6): into the X11 desktop (x11rb backend, XTEST: no libxdo), or the keyboard of a
//! wlroots Wayland compositor (its virtual-keyboard protocol, with a keymap enigo uploads so any character
//! can be typed; [`super::wlroots`] moves the mouse there, on the right output).
//!
//! enigo sends every event to each backend it could connect to, so each sink connects to exactly one:
//! the other is given a display name that cannot be opened (an empty one). Without that, a host sharing
//! an X11 screen from inside a Wayland session would type everything twice (through Xwayland too).
//!
//! Coordinates arrive in pixels of the shared monitor; they are clamped to it and offset by its origin,
//! so a click can never land on another monitor.

use enigo::{Axis, Button, Coordinate, Direction, Enigo, Keyboard, Mouse, Settings};
use tether_shared::input::{InputEvent, Key, MouseButton};

use super::{inject_releases, Held, InjectError, InputSink};
use crate::capture::monitors::Monitor;

/// A display name no backend can open: keeps enigo off the backend a sink does not use.
const NO_DISPLAY: &str = "";

pub struct EnigoSink {
    enigo: Enigo,
    monitor: Monitor,
    held: Held,
}

impl std::fmt::Debug for EnigoSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EnigoSink({})", self.monitor)
    }
}

fn failed(e: impl std::fmt::Display) -> InjectError {
    InjectError::Failed(e.to_string())
}

impl EnigoSink {
    /// Inject into the X `display` (`None`: `$DISPLAY`), mapping coordinates to `monitor`.
    pub fn new(display: Option<String>, monitor: Monitor) -> Result<Self, InjectError> {
        let settings = Settings {
            x11_display: display,
            wayland_display: Some(NO_DISPLAY.into()),
            release_keys_when_dropped: true,
            ..Settings::default()
        };
        let enigo = Enigo::new(&settings).map_err(failed)?;
        Ok(Self { enigo, monitor, held: Held::default() })
    }

    /// Inject into the wlroots compositor at `$WAYLAND_DISPLAY`. Only its keys and text are right there:
    /// enigo moves the mouse in the first output's extent ([`super::wlroots::WlrootsSink`] does it right).
    pub fn wayland(monitor: Monitor) -> Result<Self, InjectError> {
        let settings = Settings {
            x11_display: Some(NO_DISPLAY.into()),
            wayland_display: std::env::var("WAYLAND_DISPLAY").ok(),
            release_keys_when_dropped: true,
            ..Settings::default()
        };
        let enigo = Enigo::new(&settings).map_err(failed)?;
        Ok(Self { enigo, monitor, held: Held::default() })
    }

    fn to_root(&self, x: i32, y: i32) -> (i32, i32) {
        let max_x = self.monitor.width.saturating_sub(1) as i32;
        let max_y = self.monitor.height.saturating_sub(1) as i32;
        (self.monitor.x + x.clamp(0, max_x), self.monitor.y + y.clamp(0, max_y))
    }
}

fn direction(pressed: bool) -> Direction {
    if pressed {
        Direction::Press
    } else {
        Direction::Release
    }
}

fn button(b: MouseButton) -> Button {
    match b {
        MouseButton::Left => Button::Left,
        MouseButton::Middle => Button::Middle,
        MouseButton::Right => Button::Right,
        MouseButton::Back => Button::Back,
        MouseButton::Forward => Button::Forward,
    }
}

fn key(k: Key) -> Result<enigo::Key, InjectError> {
    use enigo::Key as E;
    Ok(match k {
        Key::Char(c) => E::Unicode(c),
        Key::Enter => E::Return,
        Key::Tab => E::Tab,
        Key::Backspace => E::Backspace,
        Key::Escape => E::Escape,
        Key::Space => E::Space,
        Key::Delete => E::Delete,
        Key::Insert => E::Insert,
        Key::Home => E::Home,
        Key::End => E::End,
        Key::PageUp => E::PageUp,
        Key::PageDown => E::PageDown,
        Key::Left => E::LeftArrow,
        Key::Right => E::RightArrow,
        Key::Up => E::UpArrow,
        Key::Down => E::DownArrow,
        Key::Shift => E::Shift,
        Key::Control => E::Control,
        Key::Alt => E::Alt,
        Key::Super => E::Meta,
        Key::F(n) => match n {
            1 => E::F1,
            2 => E::F2,
            3 => E::F3,
            4 => E::F4,
            5 => E::F5,
            6 => E::F6,
            7 => E::F7,
            8 => E::F8,
            9 => E::F9,
            10 => E::F10,
            11 => E::F11,
            12 => E::F12,
            other => return Err(InjectError::Failed(format!("no key F{other}"))),
        },
    })
}

impl InputSink for EnigoSink {
    fn inject(&mut self, event: &InputEvent) -> Result<(), InjectError> {
        match event {
            InputEvent::MouseMove { x, y } => {
                let (x, y) = self.to_root(*x, *y);
                self.enigo.move_mouse(x, y, Coordinate::Abs).map_err(failed)?;
            }
            InputEvent::MouseButton { button: b, pressed } => {
                self.enigo.button(button(*b), direction(*pressed)).map_err(failed)?;
            }
            InputEvent::Wheel { dx, dy } => {
                if *dy != 0 {
                    self.enigo.scroll(*dy, Axis::Vertical).map_err(failed)?;
                }
                if *dx != 0 {
                    self.enigo.scroll(*dx, Axis::Horizontal).map_err(failed)?;
                }
            }
            InputEvent::Key { key: k, pressed } => {
                self.enigo.key(key(*k)?, direction(*pressed)).map_err(failed)?;
            }
            // A line break is the Return key: typed as a character it would be the Linefeed keysym on
            // Wayland, which a terminal shows as ^J and an editor ignores.
            InputEvent::Text(text) => {
                for (i, line) in text.split('\n').enumerate() {
                    if i > 0 {
                        self.enigo.key(enigo::Key::Return, Direction::Click).map_err(failed)?;
                    }
                    if !line.is_empty() {
                        self.enigo.text(line).map_err(failed)?;
                    }
                }
            }
        }
        self.held.note(event);
        Ok(())
    }

    fn release_all(&mut self) {
        let releases = self.held.take_releases();
        inject_releases(self, releases);
    }
}
