//! The questions the window asks: may this technician see / control / exchange files (at the start of a
//! session, or when they ask for more later), and may these files come in.
//!
//! Each question is a card with the technician's identity stated plainly — a name they typed is marked
//! "(name not verified)"; an account a relay checked is marked "Verified by <that relay>" (the relay this
//! host connected to, by the name or address it was given), and the organization the relay states is shown
//! as the relay's word — and
//! one checkbox per permission asked, pre-set to what was asked, so the user can grant less.
//!
//! A card's buttons take clicks only once it has been on screen for [`ARM_DELAY`]: when two questions
//! queue up, the second click of a double click on the first card (or a click already on its way) would
//! otherwise land on the next card's button, in the same place, and answer a question nobody read.
//! Browsers hold their permission prompts back the same way.

use std::time::Duration;

use eframe::egui::{self, RichText};
use tether_shared::human;
use tether_shared::relay_proto::VerifiedTechnician;
use tether_shared::session_proto::Permissions;

use super::style;
use crate::access::AccessRequest;
use crate::files::{ConsentRequest, Decision};

/// Plain-language names of the permissions, as the checkboxes and the log show them.
pub const VIEW: &str = "See your screen";
pub const CONTROL: &str = "Use your mouse and keyboard";
pub const FILES: &str = "Send and receive files";

/// How long a question is shown before its buttons take a click (seconds of the window's clock).
pub const ARM_DELAY: f64 = 0.6;

/// When a card was first drawn, to hold its buttons back for [`ARM_DELAY`].
#[derive(Debug, Default)]
pub struct Arming {
    since: Option<f64>,
}

impl Arming {
    /// Whether the card's buttons take clicks now; until they do, asks for a repaint when they will.
    fn armed(&mut self, ui: &egui::Ui) -> bool {
        let now = ui.input(|i| i.time);
        let left = ARM_DELAY - (now - *self.since.get_or_insert(now));
        if left > 0.0 {
            ui.ctx().request_repaint_after(Duration::from_secs_f64(left));
        }
        left <= 0.0
    }
}

/// A pending "may they?" question.
#[derive(Debug)]
pub struct AccessDialog {
    pub request: AccessRequest,
    /// What the checkboxes say now.
    pub choice: Permissions,
    /// Share the chat and session log so far (asked only of someone invited).
    pub share_history: bool,
    pub mid_session: bool,
    arming: Arming,
}

/// The user's answer to an [`AccessDialog`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessAnswer {
    Allow(Permissions),
    Deny,
}

impl AccessDialog {
    pub fn new(request: AccessRequest, mid_session: bool) -> Self {
        let share_history = request.offers_history;
        Self { choice: request.asked, request, share_history, mid_session, arming: Arming::default() }
    }

    pub fn show(&mut self, ui: &mut egui::Ui) -> Option<AccessAnswer> {
        let mut answer = None;
        let armed = self.arming.armed(ui);
        card(ui, |ui| {
            let heading = if self.mid_session {
                let name =
                    crate::participants::short_name(&self.request.technician, self.request.verified.as_ref());
                format!("{name} asks for more access")
            } else if let Some(by) = &self.request.invited_by {
                format!("{by} invited a colleague to help you")
            } else {
                "Someone wants to connect to your computer".to_owned()
            };
            ui.heading(heading);
            ui.add_space(4.0);
            who(ui, &self.request.technician, self.request.verified.as_ref());
            if let Some(by) = &self.request.invited_by {
                ui.label(RichText::new(format!("Invited by {by}, who stays in the session.")).strong());
            }
            ui.add_space(8.0);
            ui.label("They ask to:");
            let asked = self.request.asked;
            let current = self.request.current;
            for (on, wanted, had, label) in [
                (&mut self.choice.view, asked.view, current.view, VIEW),
                (&mut self.choice.control, asked.control, current.control, CONTROL),
                (&mut self.choice.files, asked.files, current.files, FILES),
            ] {
                if wanted {
                    let text = if had { format!("{label} (already allowed)") } else { label.to_owned() };
                    ui.checkbox(on, text);
                }
            }
            if self.request.offers_history {
                ui.add_space(4.0);
                ui.checkbox(&mut self.share_history, "Show them the chat and the session log so far");
            }
            ui.add_space(4.0);
            ui.weak("Untick anything you do not want to allow. You can take it back at any time.");
            ui.weak("No answer within 2 minutes counts as Deny.");
            ui.add_space(8.0);
            ui.horizontal(|ui| {
                if ui.add_enabled(armed, style::big_button("Allow")).clicked() {
                    answer = Some(AccessAnswer::Allow(self.choice));
                }
                if ui.add_enabled(armed, style::big_button("Deny")).clicked() {
                    answer = Some(AccessAnswer::Deny);
                }
            });
        });
        answer
    }
}

/// A pending "may these files come in?" question.
#[derive(Debug)]
pub struct UploadDialog {
    pub request: ConsentRequest,
    /// How the technician is named (as on the sharing bar).
    pub who: String,
    /// Where accepted files go, as the user should read it.
    pub folder: String,
    pub arming: Arming,
}

impl UploadDialog {
    pub fn show(&mut self, ui: &mut egui::Ui) -> Option<Decision> {
        let mut decision = None;
        let armed = self.arming.armed(ui);
        let r = &self.request;
        card(ui, |ui| {
            ui.heading("Your technician wants to send you files");
            ui.add_space(4.0);
            let files = if r.files == 1 { "1 file".to_owned() } else { format!("{} files", r.files) };
            ui.label(format!("{} wants to send {files} ({}):", self.who, human::bytes(r.bytes)));
            const SHOWN: usize = 8;
            for name in r.names.iter().take(SHOWN) {
                ui.label(RichText::new(format!("  • {name}")).monospace());
            }
            if r.names.len() > SHOWN {
                ui.label(format!("  … and {} more", r.names.len() - SHOWN));
            }
            ui.label(format!("They will be saved in {}.", self.folder));
            ui.add_space(8.0);
            ui.horizontal_wrapped(|ui| {
                if ui.add_enabled(armed, style::big_button("Allow once")).clicked() {
                    decision = Some(Decision::AllowOnce);
                }
                if ui.add_enabled(armed, style::big_button("Allow for this session")).clicked() {
                    decision = Some(Decision::AllowForSession);
                }
                if ui.add_enabled(armed, style::big_button("Deny")).clicked() {
                    decision = Some(Decision::Deny);
                }
            });
        });
        decision
    }
}

/// Who is asking, said plainly.
pub fn who(ui: &mut egui::Ui, typed: &str, verified: Option<&VerifiedTechnician>) {
    match verified {
        Some(v) => {
            ui.label(RichText::new(&v.account).size(24.0).strong());
            egui::Frame::new()
                .fill(style::VERIFIED_GREEN)
                .corner_radius(4.0)
                .inner_margin(egui::Margin::symmetric(10, 4))
                .show(ui, |ui| {
                    ui.label(
                        RichText::new(format!("Verified by {}", v.verifier()))
                            .color(egui::Color32::WHITE)
                            .strong(),
                    );
                });
            if !v.organization.is_empty() {
                ui.weak(format!("Organization, as that relay states it: {}", v.organization));
            }
            ui.weak(format!("They call themselves “{typed}”."));
        }
        None => {
            ui.label(RichText::new(typed).size(24.0).strong());
            ui.label(RichText::new("(name not verified)").color(style::CAUTION_ORANGE).strong());
            ui.weak("Anyone can type any name. Only allow someone you are expecting.");
        }
    }
}

/// How the log and notices name a technician.
pub fn display_name(typed: &str, verified: Option<&VerifiedTechnician>) -> String {
    match verified {
        Some(v) => format!("{} (verified by {})", v.account, v.verifier()),
        None => format!("{typed} (name not verified)"),
    }
}

/// "view, control" in the user's words (the session record's words: [`tether_shared::record::describe`]).
pub fn describe(p: Permissions) -> String {
    tether_shared::record::describe::permissions(p)
}

/// A framed card that stands out from the window.
fn card(ui: &mut egui::Ui, content: impl FnOnce(&mut egui::Ui)) {
    egui::Frame::group(ui.style())
        .inner_margin(egui::Margin::same(18))
        .corner_radius(8.0)
        .stroke(egui::Stroke::new(2.0, ui.visuals().selection.bg_fill))
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            content(ui);
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_in_words() {
        assert_eq!(describe(Permissions::default()), "nothing");
        assert_eq!(describe(Permissions::VIEW_ONLY), "see the screen");
    }
}
