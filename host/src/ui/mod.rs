//! The host window: what a person who has never seen Tether looks at while a technician helps them.
//!
//! It shows the one-time code to read aloud, asks before a technician may see, control or send files,
//! keeps a red bar on screen while the screen is shared (with a Stop button), lets the user take
//! permissions back, chat, and read a log of what happened.
//!
//! The window is a plain state machine, [`HostApp`], fed by channels ([`Attempt`]): host events, access
//! questions, upload questions and the session's end. The real feed is [`launch::Launcher`], which runs
//! [`crate::run_host`] on a tokio runtime next to eframe's loop; tests feed the same channels by hand and
//! drive [`HostApp::ui`] with `egui_kittest`, so no display and no network are needed.
//!
//! One file per job: [`style`] (large calm text), [`clock`] (log timestamps), [`log`] (the session log),
//! [`code`] (the code card), [`consent`] (the questions), [`sharing`] (the red bar and permission
//! toggles), [`chat`], [`ended`] (the report), [`app`] (the state machine that ties them together).

mod app;
mod chat;
pub mod clock;
mod code;
mod consent;
mod ended;
pub mod launch;
pub mod log;
mod sharing;
mod style;
#[cfg(test)]
mod tests;

pub use app::{Attempt, HostApp, Share};
pub use launch::{has_display, run_window, Launcher, WindowError, WindowSettings};
