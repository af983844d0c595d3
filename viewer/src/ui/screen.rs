//! The remote screen: one GPU texture kept in step with the framebuffer, the host's cursor on top, and
//! the technician's mouse and keyboard turned into input events while the view has focus.
//!
//! Uploads are partial (`set_partial` of the rectangle the update changed) when the texture is exactly
//! one frame behind; otherwise — first frame, new size, frames skipped between repaints — the whole image
//! goes up. Sampling is nearest for magnification, so at 1:1 (placed on whole physical pixels) every
//! host pixel is one screen pixel: no filtering blur on text.

use std::sync::Arc;

use egui::{Color32, ColorImage, Pos2, Rect, Sense, TextureHandle, TextureOptions, Vec2};
use tether_shared::frame::Frame;
use tether_shared::input::{InputEvent, MouseButton};
use tether_shared::session_proto::CursorShape;

use super::keys;
use crate::session::{CursorState, Shown};

/// How the remote screen is sized in the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// As large as fits the window, keeping proportions.
    Fit,
    /// One host pixel per screen pixel (scroll to see the rest).
    OneToOne,
}

const SAMPLING: TextureOptions = TextureOptions {
    magnification: egui::TextureFilter::Nearest,
    minification: egui::TextureFilter::Linear,
    wrap_mode: egui::TextureWrapMode::ClampToEdge,
    mipmap_mode: None,
};

#[derive(Default)]
pub struct Screen {
    texture: Option<TextureHandle>,
    size: [usize; 2],
    seq: Option<u64>,
    cursor: Option<(Arc<CursorShape>, TextureHandle)>,
    /// Whether keyboard input goes to the host.
    pub keyboard_captured: bool,
    last_pointer: Option<(i32, i32)>,
    /// Buttons pressed on the screen and not yet released: their release goes to the host wherever it
    /// happens (a drag may end outside the picture); other releases (clicks in the side panel) do not.
    held: Vec<MouseButton>,
    /// The screen widget's id, to give its keyboard focus back.
    focus_id: Option<egui::Id>,
    /// Statistics: full and partial uploads so far.
    pub full_uploads: u64,
    pub partial_uploads: u64,
}

impl std::fmt::Debug for Screen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Screen").field("size", &self.size).field("seq", &self.seq).finish_non_exhaustive()
    }
}

fn to_image(frame: &Frame, x: u32, y: u32, w: u32, h: u32) -> ColorImage {
    let stride = frame.width() as usize * 4;
    let bgrx = frame.bgrx();
    let mut pixels = Vec::with_capacity(w as usize * h as usize);
    for row in y..y + h {
        let start = row as usize * stride + x as usize * 4;
        for px in bgrx[start..start + w as usize * 4].chunks_exact(4) {
            pixels.push(Color32::from_rgb(px[2], px[1], px[0]));
        }
    }
    ColorImage::new([w as usize, h as usize], pixels)
}

impl Screen {
    /// Bring the texture up to date with `shown`.
    pub fn update(&mut self, ctx: &egui::Context, shown: &Shown) {
        if self.seq == Some(shown.info.seq) {
            return;
        }
        let frame = &shown.frame;
        let size = [frame.width() as usize, frame.height() as usize];
        let next_in_line = self.seq.is_some_and(|s| s + 1 == shown.info.seq);
        match &mut self.texture {
            Some(texture) if size == self.size && next_in_line => {
                let d = shown.info.dirty;
                if d.w > 0 && d.h > 0 {
                    texture.set_partial(
                        [d.x as usize, d.y as usize],
                        to_image(frame, d.x, d.y, d.w, d.h),
                        SAMPLING,
                    );
                    self.partial_uploads += 1;
                }
            }
            _ => {
                let image = to_image(frame, 0, 0, frame.width(), frame.height());
                match &mut self.texture {
                    Some(texture) => texture.set(image, SAMPLING),
                    None => self.texture = Some(ctx.load_texture("remote-screen", image, SAMPLING)),
                }
                self.full_uploads += 1;
            }
        }
        self.size = size;
        self.seq = Some(shown.info.seq);
    }

    /// Stop sending the keyboard to the host (the "Release keyboard" button).
    pub fn release_keyboard(&mut self, ctx: &egui::Context) {
        self.keyboard_captured = false;
        if let Some(id) = self.focus_id {
            ctx.memory_mut(|m| m.surrender_focus(id));
        }
    }

    /// The host screen's size in pixels (0×0 before the first frame).
    pub fn size(&self) -> [usize; 2] {
        self.size
    }

    /// Draw the screen and collect the technician's input for the host (empty without `control`).
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        scale: Scale,
        cursor: &CursorState,
        control: bool,
    ) -> Vec<InputEvent> {
        let Some(texture) = self.texture.clone() else {
            ui.centered_and_justified(|ui| ui.label("Waiting for the first picture of the screen…"));
            return Vec::new();
        };
        let ppp = ui.ctx().pixels_per_point();
        let host = Vec2::new(self.size[0] as f32, self.size[1] as f32);
        let mut events = Vec::new();
        // `centered`: place the picture in the middle of the panel instead of at the top left.
        let mut draw = |ui: &mut egui::Ui, shown_size: Vec2, centered: bool| {
            let (rect, response) = if centered {
                let rect = Rect::from_center_size(ui.max_rect().center(), shown_size);
                (rect, ui.allocate_rect(rect, Sense::click_and_drag()))
            } else {
                ui.allocate_exact_size(shown_size, Sense::click_and_drag())
            };
            // Whole physical pixels, so 1:1 really is one texel per pixel.
            let min = Pos2::new((rect.min.x * ppp).round() / ppp, (rect.min.y * ppp).round() / ppp);
            let rect = Rect::from_min_size(min, shown_size);
            ui.painter().image(
                texture.id(),
                rect,
                Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
                Color32::WHITE,
            );
            self.draw_cursor(ui, rect, host, cursor);
            self.focus_id = Some(response.id);
            if response.clicked() || response.drag_started() {
                response.request_focus();
                self.keyboard_captured = control;
            }
            if control {
                if response.hovered() {
                    ui.ctx().set_cursor_icon(egui::CursorIcon::None);
                }
                events = self.collect_input(ui, rect, host, response.hovered(), response.has_focus());
                if response.has_focus() && self.keyboard_captured {
                    // Tab, arrows and Escape belong to the host while the keyboard is captured.
                    let filter = egui::EventFilter {
                        tab: true,
                        horizontal_arrows: true,
                        vertical_arrows: true,
                        escape: true,
                    };
                    ui.memory_mut(|m| m.set_focus_lock_filter(response.id, filter));
                } else if !response.has_focus() {
                    self.keyboard_captured = false;
                }
            }
            rect
        };
        match scale {
            Scale::Fit => {
                let avail = ui.available_size();
                let k = (avail.x / host.x).min(avail.y / host.y).max(0.05);
                draw(ui, host * k, true);
            }
            Scale::OneToOne => {
                egui::ScrollArea::both().auto_shrink([false, false]).show(ui, |ui| {
                    draw(ui, host / ppp, false);
                });
            }
        }
        events
    }

    fn draw_cursor(&mut self, ui: &egui::Ui, rect: Rect, host: Vec2, cursor: &CursorState) {
        let (Some(shape), Some((x, y))) = (&cursor.shape, cursor.position) else { return };
        if !cursor.visible {
            return;
        }
        let stale = self.cursor.as_ref().is_none_or(|(s, _)| !Arc::ptr_eq(s, shape));
        if stale {
            let image = ColorImage::from_rgba_unmultiplied(
                [shape.width as usize, shape.height as usize],
                &shape.rgba,
            );
            let texture = ui.ctx().load_texture("remote-cursor", image, SAMPLING);
            self.cursor = Some((shape.clone(), texture));
        }
        let Some((shape, texture)) = &self.cursor else { return };
        let k = rect.width() / host.x;
        let at = rect.min
            + Vec2::new((x - i32::from(shape.hot_x)) as f32, (y - i32::from(shape.hot_y)) as f32) * k;
        let size = Vec2::new(f32::from(shape.width), f32::from(shape.height)) * k.max(0.5);
        ui.painter().image(
            texture.id(),
            Rect::from_min_size(at, size),
            Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
            Color32::WHITE,
        );
    }

    fn collect_input(
        &mut self,
        ui: &egui::Ui,
        rect: Rect,
        host: Vec2,
        hovered: bool,
        focused: bool,
    ) -> Vec<InputEvent> {
        let to_host = |p: Pos2| {
            let rel = (p - rect.min) / rect.size();
            ((rel.x * host.x).floor() as i32, (rel.y * host.y).floor() as i32)
        };
        let keyboard = focused && self.keyboard_captured;
        let mut out = Vec::new();
        ui.input(|i| {
            for event in &i.events {
                match event {
                    egui::Event::PointerMoved(p) if hovered && rect.contains(*p) => {
                        let at = to_host(*p);
                        if self.last_pointer != Some(at) {
                            self.last_pointer = Some(at);
                            out.push(InputEvent::MouseMove { x: at.0, y: at.1 });
                        }
                    }
                    egui::Event::PointerButton { pos, button, pressed, .. } => {
                        let Some(button) = map_button(*button) else { continue };
                        let on_screen = rect.contains(*pos);
                        if !track_button(&mut self.held, button, *pressed, on_screen) {
                            continue;
                        }
                        if on_screen {
                            let at = to_host(*pos);
                            out.push(InputEvent::MouseMove { x: at.0, y: at.1 });
                        }
                        out.push(InputEvent::MouseButton { button, pressed: *pressed });
                    }
                    egui::Event::MouseWheel { unit, delta, .. } if hovered => {
                        let per_notch = match unit {
                            egui::MouseWheelUnit::Point => 50.0,
                            egui::MouseWheelUnit::Line => 1.0,
                            egui::MouseWheelUnit::Page => 0.1,
                        };
                        // egui: positive y scrolls up; the host: positive y scrolls down.
                        let (dx, dy) =
                            ((delta.x / per_notch).round() as i32, (-delta.y / per_notch).round() as i32);
                        if dx != 0 || dy != 0 {
                            out.push(InputEvent::Wheel { dx, dy });
                        }
                    }
                    egui::Event::Text(text) if keyboard => out.push(InputEvent::Text(text.clone())),
                    egui::Event::Key { key, pressed: true, modifiers, .. } if keyboard => {
                        out.extend(keys::key_press(*key, *modifiers));
                    }
                    egui::Event::Copy if keyboard => out.extend(keys::chord(
                        &[tether_shared::input::Key::Control],
                        tether_shared::input::Key::Char('c'),
                    )),
                    egui::Event::Cut if keyboard => out.extend(keys::chord(
                        &[tether_shared::input::Key::Control],
                        tether_shared::input::Key::Char('x'),
                    )),
                    egui::Event::Paste(text) if keyboard => out.push(InputEvent::Text(text.clone())),
                    _ => {}
                }
            }
        });
        out
    }
}

/// Whether a button event goes to the host: presses on the screen do, and the release of a button
/// pressed there does, wherever it happens. `held` keeps the buttons pressed on the screen.
fn track_button(held: &mut Vec<MouseButton>, button: MouseButton, pressed: bool, on_screen: bool) -> bool {
    if pressed && on_screen {
        held.push(button);
        true
    } else if !pressed && held.contains(&button) {
        held.retain(|b| *b != button);
        true
    } else {
        false
    }
}

fn map_button(button: egui::PointerButton) -> Option<MouseButton> {
    Some(match button {
        egui::PointerButton::Primary => MouseButton::Left,
        egui::PointerButton::Secondary => MouseButton::Right,
        egui::PointerButton::Middle => MouseButton::Middle,
        egui::PointerButton::Extra1 => MouseButton::Back,
        egui::PointerButton::Extra2 => MouseButton::Forward,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_buttons_pressed_on_the_screen_are_released_on_the_host() {
        let mut held = Vec::new();
        // A click in the side panel: neither half goes to the host.
        assert!(!track_button(&mut held, MouseButton::Left, true, false));
        assert!(!track_button(&mut held, MouseButton::Left, false, false));
        // A drag that starts on the screen and ends over the panel: both halves go, once.
        assert!(track_button(&mut held, MouseButton::Left, true, true));
        assert!(track_button(&mut held, MouseButton::Left, false, false));
        assert!(!track_button(&mut held, MouseButton::Left, false, true), "released twice");
        // Buttons are tracked apart: a right click on the screen does not release the left button.
        assert!(track_button(&mut held, MouseButton::Left, true, true));
        assert!(track_button(&mut held, MouseButton::Right, true, true));
        assert!(track_button(&mut held, MouseButton::Right, false, true));
        assert_eq!(held, [MouseButton::Left]);
        // A press that starts off the screen and is released on it is not half a click on the host.
        held.clear();
        assert!(!track_button(&mut held, MouseButton::Middle, true, false));
        assert!(!track_button(&mut held, MouseButton::Middle, false, true));
    }
}
