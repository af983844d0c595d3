//! Input injection behind one trait, one file per backend: [`x11`] (enigo, the X11 desktop; its Wayland
//! virtual keyboard too), [`wlroots`] (wlroots Wayland compositors: our virtual pointer on the shared
//! output, enigo's keyboard), [`portal`] (the desktop portal's RemoteDesktop) and [`record`] (keeps the events, for tests and the headless demo).
//!
//! Every sink tracks which keys and buttons it holds down ([`Held`]), so that when a session ends — or the
//! link drops — `release_all` lets go of each of them: no stuck Ctrl on the user's machine.

pub mod portal;
pub mod record;
pub mod wlroots;
pub mod x11;

use tether_shared::input::InputEvent;

#[derive(Debug, Clone, thiserror::Error)]
pub enum InjectError {
    #[error("could not inject input: {0}")]
    Failed(String),
}

/// Where the technician's input goes on the host.
pub trait InputSink: Send {
    fn inject(&mut self, event: &InputEvent) -> Result<(), InjectError>;
    /// Release every key and button still held (session end, link drop).
    fn release_all(&mut self);
}

/// Inject each of `releases` into `sink` (last pressed first, as [`Held::take_releases`] gives them); one
/// that fails is logged and the rest still go.
pub fn inject_releases(sink: &mut dyn InputSink, releases: Vec<InputEvent>) {
    for release in releases {
        if let Err(e) = sink.inject(&release) {
            tracing::warn!("could not release {release:?}: {e}");
        }
    }
}

/// The release event matching a press, if `event` is a press.
pub fn release_of(event: &InputEvent) -> Option<InputEvent> {
    match event {
        InputEvent::Key { key, pressed: true } => Some(InputEvent::Key { key: *key, pressed: false }),
        InputEvent::MouseButton { button, pressed: true } => {
            Some(InputEvent::MouseButton { button: *button, pressed: false })
        }
        _ => None,
    }
}

/// Keys and buttons currently held down, as press events in the order they were pressed.
#[derive(Debug, Clone, Default)]
pub struct Held(Vec<InputEvent>);

impl Held {
    /// Update after `event` was injected.
    pub fn note(&mut self, event: &InputEvent) {
        match event {
            InputEvent::Key { pressed: false, .. } | InputEvent::MouseButton { pressed: false, .. } => {
                self.0.retain(|press| release_of(press).as_ref() != Some(event));
            }
            press if release_of(press).is_some() && !self.0.contains(press) => self.0.push(press.clone()),
            _ => {}
        }
    }

    /// The releases that let go of everything held, last pressed first; forgets them.
    pub fn take_releases(&mut self) -> Vec<InputEvent> {
        std::mem::take(&mut self.0).iter().rev().filter_map(release_of).collect()
    }

    pub fn presses(&self) -> &[InputEvent] {
        &self.0
    }
}
