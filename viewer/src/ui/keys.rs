//! egui input → Tether input events.
//!
//! Printable text goes as `Text` (layout-independent: what the technician's keyboard typed is what the
//! host gets). Everything else — Enter, arrows, F-keys, and any key pressed with Ctrl/Alt/Super — goes as a
//! self-contained chord: modifiers down, key down, key up, modifiers up. A chord never leaves a modifier
//! held on the host, whatever happens to the window's focus afterwards.

use egui::{Key as EKey, Modifiers};
use tether_shared::input::{InputEvent, Key};

/// The Tether key for an egui key, if there is one.
pub fn map_key(key: EKey) -> Option<Key> {
    use EKey::*;
    Some(match key {
        Enter => Key::Enter,
        Tab => Key::Tab,
        Backspace => Key::Backspace,
        Escape => Key::Escape,
        Space => Key::Space,
        Delete => Key::Delete,
        Insert => Key::Insert,
        Home => Key::Home,
        End => Key::End,
        PageUp => Key::PageUp,
        PageDown => Key::PageDown,
        ArrowLeft => Key::Left,
        ArrowRight => Key::Right,
        ArrowUp => Key::Up,
        ArrowDown => Key::Down,
        F1 => Key::F(1),
        F2 => Key::F(2),
        F3 => Key::F(3),
        F4 => Key::F(4),
        F5 => Key::F(5),
        F6 => Key::F(6),
        F7 => Key::F(7),
        F8 => Key::F(8),
        F9 => Key::F(9),
        F10 => Key::F(10),
        F11 => Key::F(11),
        F12 => Key::F(12),
        other => {
            let name = other.symbol_or_name();
            let mut chars = name.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Key::Char(c.to_ascii_lowercase()),
                _ => return None,
            }
        }
    })
}

/// Whether a key press is typed text (and so arrives as an egui `Text` event instead).
fn is_text(key: Key, modifiers: Modifiers) -> bool {
    matches!(key, Key::Char(_) | Key::Space) && !(modifiers.ctrl || modifiers.alt || modifiers.mac_cmd)
}

/// The events for one key press as a chord, or nothing when the press is text.
pub fn key_press(key: EKey, modifiers: Modifiers) -> Vec<InputEvent> {
    let Some(key) = map_key(key) else { return Vec::new() };
    if is_text(key, modifiers) {
        return Vec::new();
    }
    let mut held = Vec::new();
    if modifiers.ctrl {
        held.push(Key::Control);
    }
    if modifiers.alt {
        held.push(Key::Alt);
    }
    if modifiers.shift {
        held.push(Key::Shift);
    }
    chord(&held, key)
}

/// Press `held` in order, tap `key`, release in reverse order.
pub fn chord(held: &[Key], key: Key) -> Vec<InputEvent> {
    let mut events: Vec<InputEvent> =
        held.iter().map(|k| InputEvent::Key { key: *k, pressed: true }).collect();
    events.push(InputEvent::Key { key, pressed: true });
    events.push(InputEvent::Key { key, pressed: false });
    events.extend(held.iter().rev().map(|k| InputEvent::Key { key: *k, pressed: false }));
    events
}

/// Ctrl+Alt+Del, which the technician's own machine would otherwise catch.
pub fn ctrl_alt_del() -> Vec<InputEvent> {
    chord(&[Key::Control, Key::Alt], Key::Delete)
}

/// A tap of the Super (Windows) key: opens the start menu or activities overview.
pub fn super_tap() -> Vec<InputEvent> {
    chord(&[], Key::Super)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_keys_are_left_to_text_events() {
        assert!(key_press(EKey::A, Modifiers::NONE).is_empty());
        assert!(key_press(EKey::A, Modifiers::SHIFT).is_empty());
    }

    #[test]
    fn shortcuts_are_chords_that_release_everything() {
        let events = key_press(EKey::C, Modifiers::CTRL);
        assert_eq!(
            events,
            vec![
                InputEvent::Key { key: Key::Control, pressed: true },
                InputEvent::Key { key: Key::Char('c'), pressed: true },
                InputEvent::Key { key: Key::Char('c'), pressed: false },
                InputEvent::Key { key: Key::Control, pressed: false },
            ]
        );
        let enter = key_press(EKey::Enter, Modifiers::NONE);
        assert_eq!(enter.len(), 2);
        assert_eq!(ctrl_alt_del().len(), 6);
    }
}
