//! While the screen is shared: the red bar that never goes away ("Your screen is being shared with …",
//! everyone connected with what they may do, and a Stop button), a card per technician with the toggles
//! that change or take back what they may do, "Give control" and "Remove", and the files moving right
//! now, each with its own Stop.

use eframe::egui::{self, Color32, RichText};
use tether_shared::session_proto::Permissions;

use super::{consent, style};
use crate::participants::Present;
use crate::transfers::{Direction, Transfer};

/// One technician as the bar lists them.
#[derive(Debug, Clone)]
pub struct BarEntry {
    pub name: String,
    pub permissions: Permissions,
    pub in_control: bool,
}

pub fn bar_entry(p: &Present) -> BarEntry {
    // The handle's grants are the live ones (the list is as of its last change).
    BarEntry {
        name: p.short_name().to_owned(),
        permissions: p.handle.permissions(),
        in_control: p.in_control,
    }
}

/// "Alice: see the screen, use mouse and keyboard (in control)".
fn bar_line(e: &BarEntry) -> String {
    let control = if e.in_control { " (in control)" } else { "" };
    format!("{}: {}{control}", e.name, consent::describe(e.permissions))
}

/// Draw the red bar across the top of `ui`, listing everyone connected. Returns true when Stop was
/// clicked.
pub fn bar(ui: &mut egui::Ui, with: &[BarEntry], stopping: bool) -> bool {
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
                ui.vertical(|ui| {
                    ui.set_max_width(room);
                    let names: Vec<&str> = with.iter().map(|e| e.name.as_str()).collect();
                    let whom = if names.is_empty() { "your technician".to_owned() } else { names.join(", ") };
                    let text = RichText::new(format!("Your screen is being shared with {whom}"))
                        .color(Color32::WHITE)
                        .size(22.0)
                        .strong();
                    ui.add(egui::Label::new(text).wrap());
                    for entry in with {
                        let line = RichText::new(bar_line(entry)).color(Color32::WHITE).size(16.0);
                        ui.add(egui::Label::new(line).wrap());
                    }
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

/// What the user did on a technician's card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonAction {
    Permissions(Permissions),
    GiveControl,
    Remove,
}

/// One technician's card: who (and who invited them), the toggles, and — with several in the session —
/// who has control; "Give control" for someone allowed to use mouse and keyboard who lacks it, and
/// "Remove" (the others stay).
pub fn person(ui: &mut egui::Ui, p: &Present, ever: Permissions, several: bool) -> Option<PersonAction> {
    let mut action = None;
    let name = p.short_name();
    egui::Frame::group(ui.style()).inner_margin(egui::Margin::same(10)).show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new(name).size(18.0).strong());
            if p.verified.is_some() {
                ui.label(RichText::new("verified").color(style::VERIFIED_GREEN).strong());
            }
            if let Some(by) = &p.invited_by {
                ui.weak(format!("invited by {by}"));
            }
            if p.in_control && several {
                ui.label(RichText::new("in control").strong());
            }
            if p.wants_control {
                ui.label(RichText::new("asks for control").color(style::CAUTION_ORANGE).strong());
            }
        });
        let now = p.handle.permissions();
        if let Some(next) = toggles(ui, now, ever) {
            action = Some(PersonAction::Permissions(next));
        }
        ui.horizontal_wrapped(|ui| {
            if several && now.control && !p.in_control {
                let give = ui.button(format!("Give control to {name}"));
                if give.on_hover_text("They use the mouse and keyboard; whoever had it stops").clicked() {
                    action = Some(PersonAction::GiveControl);
                }
            }
            let remove = ui.button(format!("Remove {name}"));
            let hint = if several { "Cut them off now; the others stay" } else { "Cut them off now" };
            if remove.on_hover_text(hint).clicked() {
                action = Some(PersonAction::Remove);
            }
            ui.weak("Untick to take it back at once.");
        });
    });
    action
}

/// The permission toggles, in a row. `now` is what the technician may do; `ever` what they were granted
/// at some point in this session (only that can be switched back on: anything more is asked for by the
/// technician, and answered in a dialog). Returns the new set when the user changed it.
pub fn toggles(ui: &mut egui::Ui, now: Permissions, ever: Permissions) -> Option<Permissions> {
    let mut next = now;
    ui.horizontal_wrapped(|ui| {
        for (on, had, label) in [
            (&mut next.view, ever.view, consent::VIEW),
            (&mut next.control, ever.control, consent::CONTROL),
            (&mut next.files, ever.files, consent::FILES),
        ] {
            let enabled = had || *on;
            ui.add_enabled(enabled, egui::Checkbox::new(on, label))
                .on_hover_text("Untick to take it back at once");
        }
    });
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
