//! Large, calm text: the person reading this may be anxious, far from the screen, or reading a code
//! aloud over the phone. Everything is bigger than egui's defaults, with roomy buttons.

use eframe::egui::{self, Color32, FontFamily, FontId, TextStyle};

/// Size of the one-time code.
pub const CODE_SIZE: f32 = 56.0;
/// The "your screen is being shared" bar.
pub const SHARING_RED: Color32 = Color32::from_rgb(190, 30, 30);
/// The verified mark.
pub const VERIFIED_GREEN: Color32 = Color32::from_rgb(20, 130, 60);
/// The help desk's name on the code card (the settings file's organization).
pub const HELP_DESK_BLUE: Color32 = Color32::from_rgb(29, 78, 216);
/// The "name not verified" mark.
pub const CAUTION_ORANGE: Color32 = Color32::from_rgb(190, 100, 0);

/// The font of the code: egui's built-in monospace family, whose first font (Hack) has every digit and the
/// dash — one cell per character, digits easy to tell apart. (A family of our own, set with
/// `Context::set_fonts`, was not always in use by the first frames under Xvfb, and the code then came out
/// in the proportional font in about one start in four; the built-in family is there from the start.)
pub fn code_font(size: f32) -> FontId {
    FontId::new(size, FontFamily::Monospace)
}

/// Apply the window's fonts, text sizes and spacing to `ctx`.
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
        // Checkboxes sized to the text next to them.
        style.spacing.icon_width = 24.0;
        style.spacing.icon_width_inner = 14.0;
        // Darker text than egui's light grey: easier to read for tired eyes.
        if !style.visuals.dark_mode {
            style.visuals.widgets.noninteractive.fg_stroke.color = Color32::from_gray(25);
            style.visuals.widgets.inactive.fg_stroke.color = Color32::from_gray(15);
            style.visuals.weak_text_color = Some(Color32::from_gray(85));
        }
    });
}

/// A big button, for the one thing to do now.
pub fn big_button(text: &str) -> egui::Button<'static> {
    egui::Button::new(egui::RichText::new(text.to_owned()).size(22.0)).min_size(egui::vec2(150.0, 44.0))
}
