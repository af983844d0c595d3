//! The session log: a timestamped, plain-language record the user can read during and after a session —
//! who connected and when, what was granted, permission changes, files, chat, how it ended.

use eframe::egui;

use super::clock::Clock;

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub time: String,
    pub text: String,
}

/// Everything that happened since the window opened.
#[derive(Debug)]
pub struct SessionLog {
    clock: Clock,
    entries: Vec<Entry>,
}

impl SessionLog {
    pub fn new(clock: Clock) -> Self {
        Self { clock, entries: Vec::new() }
    }

    /// Add a line stamped with the current time (also to the program's log).
    pub fn add(&mut self, text: impl Into<String>) {
        let text = text.into();
        tracing::info!(target: "tether_host::session_log", "{text}");
        self.entries.push(Entry { time: self.clock.now(), text });
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The log as a list, newest last: while sharing in a box of its own that follows the newest line
    /// (`max_height`), at the end in full (the window scrolls), so nothing is cut off at the top.
    pub fn show(&self, ui: &mut egui::Ui, max_height: f32) {
        if self.entries.is_empty() {
            ui.weak("Nothing has happened yet.");
            return;
        }
        egui::ScrollArea::vertical()
            .id_salt("session log")
            .max_height(max_height)
            .stick_to_bottom(true)
            .show(ui, |ui| {
                for entry in &self.entries {
                    ui.horizontal_wrapped(|ui| {
                        ui.monospace(&entry.time);
                        ui.label(&entry.text);
                    });
                }
            });
    }
}
