//! Input from a script (the CLI's `--type` and `--click`), turned into the events a person would make.
//! The GUI's mapping from egui events comes with the window.

use tether_shared::input::{InputEvent, MouseButton};

/// A click at host coordinates: move there, press, release.
pub fn click(x: i32, y: i32, button: MouseButton) -> Vec<InputEvent> {
    vec![
        InputEvent::MouseMove { x, y },
        InputEvent::MouseButton { button, pressed: true },
        InputEvent::MouseButton { button, pressed: false },
    ]
}

/// Text as `Text` events of at most [`tether_shared::input::MAX_TEXT_EVENT`] bytes (split on character
/// boundaries).
pub fn type_text(text: &str) -> Vec<InputEvent> {
    let mut events = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > tether_shared::input::MAX_TEXT_EVENT {
            events.push(InputEvent::Text(std::mem::take(&mut chunk)));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        events.push(InputEvent::Text(chunk));
    }
    events
}

/// Parse `X,Y`.
pub fn parse_point(text: &str) -> Result<(i32, i32), String> {
    let (x, y) = text.split_once(',').ok_or_else(|| format!("{text:?}: a point is X,Y"))?;
    let parse = |s: &str| s.trim().parse::<i32>().map_err(|e| format!("{s:?}: {e}"));
    Ok((parse(x)?, parse(y)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_split_on_char_boundaries() {
        let text = "é".repeat(3000);
        let events = type_text(&text);
        assert_eq!(events.len(), 2);
        let joined: String = events
            .iter()
            .map(|e| match e {
                InputEvent::Text(t) => t.as_str(),
                _ => "",
            })
            .collect();
        assert_eq!(joined, text);
    }

    #[test]
    fn points_parse() {
        assert_eq!(parse_point("10, 20"), Ok((10, 20)));
        assert!(parse_point("10").is_err());
    }
}
