//! Chat with the technician: the conversation so far and a line to type in.

use eframe::egui::{self, RichText};

/// One message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub from: String,
    pub text: String,
    pub mine: bool,
}

/// The conversation and what the user is typing.
#[derive(Debug, Default)]
pub struct Chat {
    pub lines: Vec<Line>,
    pub draft: String,
    /// Why the last message could not be sent.
    pub error: Option<String>,
}

impl Chat {
    /// Draw the chat. Returns a message to send when the user pressed Enter or Send.
    pub fn show(&mut self, ui: &mut egui::Ui, can_send: bool) -> Option<String> {
        ui.label(RichText::new("Chat").strong());
        egui::ScrollArea::vertical().id_salt("chat").max_height(180.0).stick_to_bottom(true).show(ui, |ui| {
            if self.lines.is_empty() {
                ui.weak("No messages yet.");
            }
            for line in &self.lines {
                ui.horizontal_wrapped(|ui| {
                    let who = if line.mine { "You".to_owned() } else { line.from.clone() };
                    ui.label(RichText::new(format!("{who}:")).strong());
                    ui.label(&line.text);
                });
            }
        });
        let mut send = None;
        ui.horizontal(|ui| {
            let input = egui::TextEdit::singleline(&mut self.draft)
                .hint_text("Type a message")
                .desired_width((ui.available_width() - 100.0).max(120.0));
            let response = ui.add_enabled(can_send, input);
            let entered = response.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            let clicked = ui.add_enabled(can_send, egui::Button::new("Send")).clicked();
            if (entered || clicked) && !self.draft.trim().is_empty() {
                send = Some(std::mem::take(&mut self.draft));
                if entered {
                    response.request_focus();
                }
            }
        });
        if let Some(error) = &self.error {
            ui.colored_label(ui.visuals().error_fg_color, error);
        }
        send
    }
}
