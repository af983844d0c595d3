//! The Tether viewer: connects to a host by one-time code, keeps a framebuffer of the host's screen, and
//! sends input. [`session::ViewerSession`] is the whole viewer behind the CLI (and, later, the window).
//!
//! Path: network → [`decode`] → framebuffer (`display`, the GUI, comes later); [`input`] → network.

pub mod decode;
pub mod files;
pub mod input;
pub mod session;
pub mod snapshot;
