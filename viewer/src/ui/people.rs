//! The People panel: who is in the session with us (verified or not, invited by whom, what the user
//! allows each, who has control), the control hand-over (ask for it; hand it to a colleague when we
//! have it), *Invite a colleague* with the invite code to read out and what became of it, and the
//! session so far when the user shared it with us on joining.

use egui::RichText;
use tether_shared::record::describe;
use tether_shared::session_proto::{InviteNews, Roster};

/// What the technician did in the panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeopleAction {
    RequestControl,
    HandOver(u64),
    Invite,
    Withdraw,
}

const GREEN: egui::Color32 = egui::Color32::from_rgb(30, 130, 60);
const ORANGE: egui::Color32 = egui::Color32::from_rgb(200, 120, 0);

/// Draw the panel. `history` is the user's session log before we joined (empty when not shared).
pub fn show(
    ui: &mut egui::Ui,
    roster: &Roster,
    invite: Option<&InviteNews>,
    inviting: bool,
    history: &[String],
) -> Option<PeopleAction> {
    let mut action = None;
    ui.heading("People in this session");
    let me_allowed_control = roster.member(roster.you).is_some_and(|m| m.permissions.control);
    for member in &roster.members {
        let me = member.id == roster.you;
        egui::Frame::group(ui.style()).inner_margin(egui::Margin::same(8)).show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.horizontal_wrapped(|ui| {
                let name = if me { format!("{} (you)", member.name) } else { member.name.clone() };
                ui.label(RichText::new(name).strong().size(16.0));
                if member.verified {
                    ui.label(RichText::new("verified").color(GREEN).strong());
                }
                if roster.control == Some(member.id) {
                    ui.label(RichText::new("in control").strong());
                }
                if member.wants_control {
                    ui.label(RichText::new("asks for control").color(ORANGE).strong());
                }
            });
            if let Some(by) = &member.invited_by {
                ui.weak(format!("Invited by {by}"));
            }
            ui.label(format!("Allowed to: {}", describe::permissions(member.permissions)));
            if !me && roster.you_control() && member.permissions.control {
                let button = ui.button(format!("Hand control to {}", member.name));
                if button.on_hover_text("They use mouse and keyboard; your held keys are let go").clicked() {
                    action = Some(PeopleAction::HandOver(member.id));
                }
            }
        });
    }
    // Alone, control is simply taken by using the mouse; with colleagues it is asked for.
    if me_allowed_control && !roster.you_control() && roster.members.len() > 1 {
        let asked = roster.member(roster.you).is_some_and(|m| m.wants_control);
        let label = if asked { "Control asked for…" } else { "Ask for control" };
        let button = ui.add_enabled(!asked, egui::Button::new(label));
        let hint =
            "Taken at once when nobody has it; otherwise the technician in control and the user see it";
        if button.on_hover_text(hint).clicked() {
            action = Some(PeopleAction::RequestControl);
        }
    }
    ui.separator();
    if let Some(chosen) = invite_section(ui, invite, inviting) {
        action = Some(chosen);
    }
    if !history.is_empty() {
        ui.separator();
        egui::CollapsingHeader::new("Before you joined (the user's session log)").show(ui, |ui| {
            for line in history {
                ui.label(line);
            }
        });
    }
    action
}

/// *Invite a colleague*: the button, then the code in large digits with its state.
fn invite_section(ui: &mut egui::Ui, invite: Option<&InviteNews>, inviting: bool) -> Option<PeopleAction> {
    let mut action = None;
    ui.label(RichText::new("Escalate to a colleague").strong().size(16.0));
    match invite {
        Some(InviteNews::Code { code, expires_secs }) => {
            ui.label("Read this code to your colleague. They enter it in their Tether Viewer:");
            ui.label(RichText::new(code).monospace().size(30.0).strong());
            ui.weak(format!(
                "Valid for {} minutes, once. The user is asked before they see anything.",
                expires_secs.div_ceil(60)
            ));
            if ui.button("Withdraw this invite").clicked() {
                action = Some(PeopleAction::Withdraw);
            }
            return action;
        }
        Some(InviteNews::Claimed) => {
            ui.label("Your colleague entered the code; the user decides whether they join.");
        }
        Some(InviteNews::Expired) => {
            ui.label("The invite expired unused.");
        }
        Some(InviteNews::Burned) => {
            ui.colored_label(ORANGE, "Someone entered a wrong code, so the invite no longer works.");
        }
        Some(InviteNews::Withdrawn) => {
            ui.label("The invite was withdrawn.");
        }
        Some(InviteNews::Unavailable { why }) => {
            ui.colored_label(ORANGE, format!("No invite: {why}"));
        }
        None => {
            ui.weak("A colleague joins this session with a code of their own; the user decides.");
        }
    }
    let button = ui.add_enabled(!inviting, egui::Button::new("Invite a colleague"));
    if button.on_hover_text("Get a one-time code for a colleague (level 2 or 3) to join").clicked() {
        action = Some(PeopleAction::Invite);
    }
    action
}
