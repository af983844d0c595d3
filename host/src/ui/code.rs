//! The code card: the one-time code, big and monospaced so it can be read aloud digit by digit, how long
//! it stays valid, a Copy button and a "New code" button.

use std::time::{Duration, Instant};

use eframe::egui::{self, RichText};

use super::style;

/// The code on screen and when it stops working.
#[derive(Debug, Clone)]
pub struct ShownCode {
    /// Spoken-friendly form, e.g. `482-913-5071`.
    pub text: String,
    pub expires_at: Instant,
}

/// What the user clicked on the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeAction {
    None,
    Copy,
    NewCode,
}

/// "9:05" for a duration (rounded up, so a fresh 10-minute code shows 10:00).
pub fn countdown(left: Duration) -> String {
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    format!("{}:{:02}", secs / 60, secs % 60)
}

/// Draw the card. `status` is a short line under the buttons (e.g. "Copied"); `organization` names the help
/// desk the settings file set up.
pub fn show(
    ui: &mut egui::Ui,
    code: Option<&ShownCode>,
    replacing: bool,
    status: &str,
    organization: Option<&str>,
) -> CodeAction {
    let mut action = CodeAction::None;
    ui.vertical_centered(|ui| {
        ui.add_space(12.0);
        if let Some(organization) = organization {
            ui.label(
                RichText::new(format!("Help from {organization}")).size(24.0).color(style::HELP_DESK_BLUE),
            );
            ui.add_space(6.0);
        }
        ui.heading("Your one-time code");
        let to = organization
            .map_or_else(|| "your technician".to_owned(), |org| format!("your technician at {org}"));
        ui.label(format!("Read this code to {to}. It works once."));
        ui.add_space(8.0);
        match code {
            Some(code) if !replacing => {
                let text = RichText::new(&code.text)
                    .font(style::code_font(style::CODE_SIZE))
                    .color(ui.visuals().strong_text_color());
                ui.add(egui::Label::new(text).selectable(true));
                let left = code.expires_at.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    ui.label("This code has expired. A new one is on its way…");
                } else {
                    ui.label(format!("Expires in {}", countdown(left)));
                }
                ui.add_space(6.0);
                ui.horizontal(|ui| {
                    // Centre the two buttons under the code.
                    let width = 2.0 * 150.0 + ui.spacing().item_spacing.x;
                    ui.add_space(((ui.available_width() - width) / 2.0).max(0.0));
                    if ui.add(style::big_button("Copy")).clicked() {
                        action = CodeAction::Copy;
                    }
                    if ui.add(style::big_button("New code")).clicked() {
                        action = CodeAction::NewCode;
                    }
                });
                if !status.is_empty() {
                    ui.label(status);
                }
            }
            _ => {
                ui.add_space(20.0);
                ui.spinner();
                ui.label(if replacing { "Getting a new code…" } else { "Connecting…" });
                if !status.is_empty() {
                    ui.label(status);
                }
            }
        }
        ui.add_space(12.0);
        ui.weak("Only share this code with someone you trust. Nothing is shared until you say yes.");
    });
    action
}

/// The card after too many wrong codes in a row: no code, the warning, and *New code* to go on.
pub fn stopped(ui: &mut egui::Ui, times: u32) -> CodeAction {
    let mut action = CodeAction::None;
    ui.vertical_centered(|ui| {
        ui.add_space(12.0);
        ui.heading("No code is being offered");
        ui.add_space(8.0);
        let warning = format!(
            "Someone entered a wrong code {times} times. If that was not your technician, do not share."
        );
        ui.label(RichText::new(warning).strong().color(style::SHARING_RED));
        ui.add_space(6.0);
        ui.label("When your technician is ready, ask for a new code and read it to them.");
        ui.add_space(6.0);
        if ui.add(style::big_button("New code")).clicked() {
            action = CodeAction::NewCode;
        }
    });
    action
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countdown_rounds_up() {
        assert_eq!(countdown(Duration::from_secs(600)), "10:00");
        assert_eq!(countdown(Duration::from_millis(545_200)), "9:06");
        assert_eq!(countdown(Duration::from_millis(300)), "0:01");
        assert_eq!(countdown(Duration::ZERO), "0:00");
    }
}
