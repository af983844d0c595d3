//! Input through the desktop portal's RemoteDesktop session (GNOME, KDE): pointer motion in the shared
//! stream's coordinates (so it lands on the shared monitor, clamped to it), buttons by their kernel
//! codes, wheel notches, and keys as X keysyms — the desktop's own keymap turns them into key presses,
//! so any character the user's layout can type arrives. The calls go to the portal's thread in order
//! ([`crate::capture::portal`]).

use tether_shared::input::{InputEvent, Key, MouseButton};

use super::{inject_releases, Held, InjectError, InputSink};
use crate::capture::monitors::Monitor;
use crate::capture::portal::{Call, Input, PortalSession};

pub struct PortalSink {
    input: Input,
    monitor: Monitor,
    held: Held,
    /// The portal session lives as long as its input.
    _session: PortalSession,
}

impl std::fmt::Debug for PortalSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PortalSink({})", self.monitor)
    }
}

impl PortalSink {
    pub fn new(input: Input, monitor: Monitor, session: PortalSession) -> Self {
        Self { input, monitor, held: Held::default(), _session: session }
    }

    fn send(&self, call: Call) -> Result<(), InjectError> {
        self.input.send(call).map_err(|e| InjectError::Failed(e.to_string()))
    }

    fn key(&self, keysym: u32, pressed: bool) -> Result<(), InjectError> {
        self.send(Call::Keysym { keysym: keysym as i32, pressed })
    }
}

/// The kernel's code for a mouse button (`linux/input-event-codes.h`).
fn button_code(button: MouseButton) -> i32 {
    match button {
        MouseButton::Left => 0x110,
        MouseButton::Right => 0x111,
        MouseButton::Middle => 0x112,
        MouseButton::Back => 0x113,
        MouseButton::Forward => 0x114,
    }
}

/// The X keysym of a character: Latin-1 is its own code point; the rest of Unicode is 0x0100_0000 plus
/// the code point (the rule in X11's keysymdef.h); a line break is Return, a tab is Tab.
pub fn char_keysym(c: char) -> u32 {
    match c {
        '\n' | '\r' => 0xff0d,
        '\t' => 0xff09,
        ' '..='~' | '\u{a0}'..='\u{ff}' => c as u32,
        other => 0x0100_0000 + other as u32,
    }
}

/// The X keysym of a named key.
pub fn keysym(key: Key) -> Result<u32, InjectError> {
    Ok(match key {
        Key::Char(c) => char_keysym(c),
        Key::Enter => 0xff0d,
        Key::Tab => 0xff09,
        Key::Backspace => 0xff08,
        Key::Escape => 0xff1b,
        Key::Space => 0x20,
        Key::Delete => 0xffff,
        Key::Insert => 0xff63,
        Key::Home => 0xff50,
        Key::End => 0xff57,
        Key::PageUp => 0xff55,
        Key::PageDown => 0xff56,
        Key::Left => 0xff51,
        Key::Up => 0xff52,
        Key::Right => 0xff53,
        Key::Down => 0xff54,
        Key::Shift => 0xffe1,
        Key::Control => 0xffe3,
        Key::Alt => 0xffe9,
        Key::Super => 0xffeb,
        Key::F(n @ 1..=12) => 0xffbe + u32::from(n) - 1,
        Key::F(other) => return Err(InjectError::Failed(format!("no key F{other}"))),
    })
}

impl InputSink for PortalSink {
    fn inject(&mut self, event: &InputEvent) -> Result<(), InjectError> {
        match event {
            InputEvent::MouseMove { x, y } => {
                let max_x = self.monitor.width.saturating_sub(1) as i32;
                let max_y = self.monitor.height.saturating_sub(1) as i32;
                let (x, y) = (f64::from((*x).clamp(0, max_x)), f64::from((*y).clamp(0, max_y)));
                self.send(Call::Motion { x, y })?;
            }
            InputEvent::MouseButton { button, pressed } => {
                self.send(Call::Button { code: button_code(*button), pressed: *pressed })?;
            }
            InputEvent::Wheel { dx, dy } => {
                if *dy != 0 {
                    self.send(Call::Wheel { vertical: true, steps: *dy })?;
                }
                if *dx != 0 {
                    self.send(Call::Wheel { vertical: false, steps: *dx })?;
                }
            }
            InputEvent::Key { key, pressed } => self.key(keysym(*key)?, *pressed)?,
            InputEvent::Text(text) => {
                for c in text.chars() {
                    let sym = char_keysym(c);
                    self.key(sym, true)?;
                    self.key(sym, false)?;
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

/// The screen shared through a portal without control: its portal offers none (xdg-desktop-portal-wlr)
/// or the user did not allow it in the desktop's dialog. Keeps the session open.
#[derive(Debug)]
pub struct NoControl(pub PortalSession);

impl InputSink for NoControl {
    fn inject(&mut self, _: &InputEvent) -> Result<(), InjectError> {
        Err(InjectError::Failed(
            "this desktop shares its screen but not its mouse and keyboard (its portal offers no remote \
             control, or the user did not allow it)"
                .into(),
        ))
    }

    fn release_all(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_become_the_keysyms_x11_defines() {
        assert_eq!(char_keysym('a'), 0x61);
        assert_eq!(char_keysym('~'), 0x7e);
        assert_eq!(char_keysym('é'), 0xe9);
        assert_eq!(char_keysym('€'), 0x0100_20ac);
        assert_eq!(char_keysym('\n'), 0xff0d);
        assert_eq!(keysym(Key::F(12)).expect("F12"), 0xffc9);
        assert!(keysym(Key::F(13)).is_err());
    }
}
