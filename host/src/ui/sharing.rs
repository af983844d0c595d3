//! While the screen is shared: the red bar that never goes away ("Your screen is being shared with …",
//! with a Stop button), the toggles that change or take back what the technician may do, and the files
//! moving right now, each with its own Stop.

use eframe::egui::{self, Color32, RichText};
use tether_shared::session_proto::Permissions;

use super::{consent, style};
use crate::transfers::{Direction, Transfer};

/// Draw the red bar across the top of `ui`. Returns true when Stop was clicked.
pub fn bar(ui: &mut egui::Ui, with: &str, stopping: bool) -> bool {
    let mut stop = false;
    egui::Panel::top("sharing bar")
        .frame(egui::Frame::new().fill(style::SHARING_RED).inner_margin(egui::Margin::symmetric(16, 10)))
        .show(ui, |ui| {
            ui.horizontal(|ui| {
                // A white dot, drawn (the default fonts have no such glyph).
                let (dot, _) = ui.allocate_exact_size(egui::vec2(16.0, 16.0), egui::Sense::hover());
                ui.painter().circle_filled(dot.center(), 7.0, Color32::WHITE);
                // Leave room for the Stop button; a long name wraps instead of running under it.
                let room = (ui.available_width() - 190.0).max(120.0);
                ui.scope(|ui| {
                    ui.set_max_width(room);
                    let text = RichText::new(format!("Your screen is being shared with {with}"))
                        .color(Color32::WHITE)
                        .size(22.0)
                        .strong();
                    ui.add(egui::Label::new(text).wrap());
                });
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    let label = if stopping { "Stopping…" } else { "Stop sharing" };
                    let button =
                        egui::Button::new(RichText::new(label).size(20.0).strong().color(style::SHARING_RED))
                            .fill(Color32::WHITE)
                            .min_size(egui::vec2(150.0, 40.0));
                    if ui.add_enabled(!stopping, button).clicked() {
                        stop = true;
                    }
                });
            });
        });
    stop
}

/// The permission toggles. `now` is what the technician may do; `ever` what they were granted at some
/// point in this session (only that can be switched back on: anything more is asked for by the
/// technician, and answered in a dialog). Returns the new set when the user changed it.
pub fn toggles(ui: &mut egui::Ui, name: &str, now: Permissions, ever: Permissions) -> Option<Permissions> {
    ui.label(RichText::new(format!("What {name} may do")).strong());
    let mut next = now;
    for (on, had, label) in [
        (&mut next.view, ever.view, consent::VIEW),
        (&mut next.control, ever.control, consent::CONTROL),
        (&mut next.files, ever.files, consent::FILES),
    ] {
        let enabled = had || *on;
        ui.add_enabled(enabled, egui::Checkbox::new(on, label));
    }
    ui.weak("Untick to take it back at once.");
    (next != now).then_some(next)
}

/// The transfers under way, with progress and a Stop button each. Returns the id of one to stop.
pub fn transfers(ui: &mut egui::Ui, name: &str, running: &[Transfer]) -> Option<u64> {
    ui.label(RichText::new("Files moving now").strong());
    let mut stop = None;
    for t in running {
        let line = match t.direction {
            Direction::ToTechnician => format!("{name} is copying {} from this computer", t.what),
            Direction::FromTechnician => format!("{name} is sending you {}", t.what),
        };
        ui.label(line);
        ui.horizontal(|ui| {
            let bar = match t.progress {
                Some(p) if p.total > 0 => {
                    egui::ProgressBar::new(p.done as f32 / p.total as f32).text(p.describe())
                }
                _ => egui::ProgressBar::new(0.0).text("starting…"),
            };
            ui.add(bar.desired_width((ui.available_width() - 90.0).max(160.0)));
            if ui.button("Stop").on_hover_text("Stop this transfer; the session goes on").clicked() {
                stop = Some(t.id);
            }
        });
    }
    stop
}
