//! The Notes panel: what the technician writes down about the session — the problem, the steps taken,
//! the resolution, a ticket reference. *Save* puts them into the session record, so the user's copy and
//! log show them too; saving again records the new version.

use tether_shared::session_proto::Notes;

/// The panel's fields, and whether what is shown was saved.
#[derive(Debug, Default)]
pub struct NotesPanel {
    pub notes: Notes,
    /// The notes as last saved (`None`: never).
    saved: Option<Notes>,
}

impl NotesPanel {
    /// Draw the panel; the notes to save when *Save* was clicked.
    pub fn show(&mut self, ui: &mut egui::Ui) -> Option<Notes> {
        ui.heading("Notes");
        ui.weak("Saved into the session record: the user sees them in their log and report.");
        let width = ui.available_width();
        for (label, text, rows) in [
            ("Problem", &mut self.notes.problem, 3),
            ("Steps taken", &mut self.notes.steps, 5),
            ("Resolution", &mut self.notes.resolution, 3),
        ] {
            ui.label(label);
            ui.add(egui::TextEdit::multiline(text).desired_rows(rows).desired_width(width));
        }
        ui.label("Ticket");
        ui.add(
            egui::TextEdit::singleline(&mut self.notes.ticket).hint_text("e.g. HD-4711").desired_width(width),
        );
        let changed = self.saved.as_ref() != Some(&self.notes);
        let mut save = None;
        ui.horizontal(|ui| {
            let enabled = changed && !self.notes.is_empty();
            if ui.add_enabled(enabled, egui::Button::new("Save notes")).clicked() {
                self.saved = Some(self.notes.clone());
                save = Some(self.notes.clone());
            }
            if self.saved.is_some() && !changed {
                ui.weak("Saved.");
            } else if self.saved.is_some() {
                ui.weak("Changed since saved.");
            }
        });
        save
    }
}
