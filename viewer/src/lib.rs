//! The Tether viewer: connects to a host by one-time code, keeps a framebuffer of the host's screen, and
//! sends input. [`session::ViewerSession`] is the whole viewer behind both the CLI and the window ([`ui`]).
//!
//! Path: network → [`decode`] → framebuffer → [`ui::screen`] (a texture, partial uploads); egui input →
//! [`ui::keys`] → network. [`record`]: the technician's side of the session record.

pub mod decode;
pub mod files;
pub mod input;
pub mod record;
pub mod session;
pub mod snapshot;
pub mod ui;
