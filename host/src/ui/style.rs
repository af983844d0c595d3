//! Large, calm text: the person reading this may be anxious, far from the screen, or reading a code
//! aloud over the phone. Everything is bigger than egui's defaults, with roomy buttons.

use eframe::egui::{self, Color32, FontFamily, FontId, TextStyle};

/// Size of the one-time code.
pub const CODE_SIZE: f32 = 56.0;
/// The "your screen is being shared" bar.
pub const SHARING_RED: Color32 = Color32::from_rgb(190, 30, 30);
/// The verified mark.
pub const VERIFIED_GREEN: Color32 = Color32::from_rgb(20, 130, 60);
/// The "name not verified" mark.
pub const CAUTION_ORANGE: Color32 = Color32::from_rgb(190, 100, 0);

/// Apply the window's text sizes and spacing to `ctx`.
pub fn apply(ctx: &egui::Context) {
    ctx.set_theme(egui::Theme::Light);
    ctx.all_styles_mut(|style| {
        style.text_styles = [
            (TextStyle::Heading, FontId::new(28.0, FontFamily::Proportional)),
            (TextStyle::Body, FontId::new(19.0, FontFamily::Proportional)),
            (TextStyle::Button, FontId::new(19.0, FontFamily::Proportional)),
            (TextStyle::Monospace, FontId::new(18.0, FontFamily::Monospace)),
            (TextStyle::Small, FontId::new(15.0, FontFamily::Proportional)),
        ]
        .into();
        style.spacing.button_padding = egui::vec2(14.0, 8.0);
        style.spacing.item_spacing = egui::vec2(10.0, 10.0);
        style.spacing.interact_size.y = 34.0;
    });
}

/// A big button, for the one thing to do now.
pub fn big_button(text: &str) -> egui::Button<'static> {
    egui::Button::new(egui::RichText::new(text.to_owned()).size(22.0)).min_size(egui::vec2(150.0, 44.0))
}
