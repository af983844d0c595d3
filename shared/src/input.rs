//! Input events the viewer sends and the host injects. Coordinates are in host screen pixels
//! (`pos_in_host`); the viewer maps from its view before sending.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MouseButton {
    Left,
    Middle,
    Right,
    Back,
    Forward,
}

/// A key by its meaning on a US layout; `Char` covers printable keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Key {
    Char(char),
    Enter,
    Tab,
    Backspace,
    Escape,
    Space,
    Delete,
    Insert,
    Home,
    End,
    PageUp,
    PageDown,
    Left,
    Right,
    Up,
    Down,
    F(u8),
    Shift,
    Control,
    Alt,
    Super,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InputEvent {
    MouseMove {
        x: i32,
        y: i32,
    },
    MouseButton {
        button: MouseButton,
        pressed: bool,
    },
    Wheel {
        dx: i32,
        dy: i32,
    },
    Key {
        key: Key,
        pressed: bool,
    },
    /// Text typed as a whole (layout-independent).
    Text(String),
}

/// Longest `Text` event accepted; longer text is split by the sender.
pub const MAX_TEXT_EVENT: usize = 4096;
