//! Text that came from the network, made safe for the relay's log: [`Escaped`] writes it with line breaks,
//! control and format characters escaped (`\n`, `\u{202e}`), so a client cannot start a forged log line or
//! hide text in one. Needed where an error's `Display` carries a client's words — e.g. quinn shows the
//! reason a peer gave for closing its connection verbatim. Nameplates need none: they decode only as
//! digits.

use std::fmt;

/// Displays its value with anything that could break or disguise a log line escaped.
#[derive(Debug, Clone, Copy)]
pub struct Escaped<T>(pub T);

impl<T: fmt::Display> fmt::Display for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.to_string().chars().try_for_each(|c| match c {
            // Quotes stay as they are: the text is not inside a quoted string.
            '"' | '\'' => f.write_str(c.encode_utf8(&mut [0; 4])),
            c => write!(f, "{}", c.escape_debug()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_and_format_characters_are_escaped() {
        let text = Escaped("closed: \"bye\"\n2026-01-01 INFO forged\r\u{202E}x");
        assert_eq!(text.to_string(), "closed: \"bye\"\\n2026-01-01 INFO forged\\r\\u{202e}x");
    }
}
