//! After a session (or a refused one): what happened, in plain words, and the two ways on — share again
//! with a fresh code, or quit.

use eframe::egui::{self, RichText};

use super::style;
use tether_shared::end::EndReason;

use crate::session::SessionReport;
use crate::HostError;

/// How the last attempt ended, ready to show.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub headline: String,
    pub details: Vec<String>,
}

impl Outcome {
    pub fn from_result(result: &Result<SessionReport, HostError>) -> Self {
        match result {
            Ok(report) => {
                let name = &report.technician;
                let headline = match &report.end {
                    EndReason::ViewerLeft => {
                        format!("{name} disconnected. Your screen is no longer shared.")
                    }
                    EndReason::HostStopped => {
                        "You stopped sharing. Your screen is no longer shared.".to_owned()
                    }
                    EndReason::ProtocolViolation { detail, .. } => {
                        format!("The session with {name} was closed after an error ({detail}).")
                    }
                    why => {
                        format!("The connection to {name} was lost ({why}). Your screen is no longer shared.")
                    }
                };
                let (updates, actions) = (report.frames_sent, report.input_injected);
                let details = vec![
                    match updates {
                        1 => "1 screen update was sent.".to_owned(),
                        n => format!("{n} screen updates were sent."),
                    },
                    format!(
                        "{actions} mouse and keyboard {} carried out, {} refused.",
                        if actions == 1 { "action was" } else { "actions were" },
                        report.input_dropped
                    ),
                ];
                Self { headline, details }
            }
            Err(HostError::Stopped) => {
                Self { headline: "You stopped sharing. Nothing was shared.".into(), details: vec![] }
            }
            Err(HostError::Session(crate::session::SessionError::Declined)) => {
                Self { headline: "You said no. Nothing was shared.".into(), details: vec![] }
            }
            Err(e) => Self {
                headline: "Sharing could not start.".into(),
                details: vec![format!("{e}"), "Check your internet connection and try again.".into()],
            },
        }
    }
}

/// What the user chose on the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndAction {
    None,
    ShareAgain,
    Quit,
    SaveReport,
}

/// The end screen; `report` offers *Save report* (there is a session record to save).
pub fn show(ui: &mut egui::Ui, outcome: &Outcome, report: bool) -> EndAction {
    let mut action = EndAction::None;
    ui.add_space(12.0);
    ui.heading("Sharing has ended");
    ui.label(RichText::new(&outcome.headline).size(21.0));
    for line in &outcome.details {
        ui.label(line);
    }
    ui.add_space(8.0);
    ui.horizontal(|ui| {
        if ui.add(style::big_button("Share again")).clicked() {
            action = EndAction::ShareAgain;
        }
        if ui.add(style::big_button("Quit")).clicked() {
            action = EndAction::Quit;
        }
        if report && ui.add(style::big_button("Save report")).clicked() {
            action = EndAction::SaveReport;
        }
    });
    action
}
