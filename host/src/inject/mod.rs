//! Input injection behind one trait. Backends: [`record`] (keeps the events, for tests and the headless
//! demo) now; X11 injection comes next, in its own file.

pub mod record;

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
