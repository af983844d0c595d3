//! Decode-time checks of the strings a relay sends that clients show to people: the verified technician's
//! account and organization, and the text of a protocol error. The relay is not trusted with what a user
//! reads: a field that is too long or holds control or format characters (line breaks, bidirectional
//! overrides, zero-width characters) fails to decode, so the message is refused and nothing of it is
//! shown. Error text is only made safe ([`deserialize_lossy`], [`lossy`]; also a connection's close reason,
//! see [`crate::net::ClientError`]): refusing it would hide the error itself.
//!
//! Nameplates are checked the same way by their own type ([`crate::code::Nameplate`]).

use serde::{Deserialize, Deserializer};

/// Longest account or organization name a client accepts from a relay, in bytes.
pub const MAX_SHOWN_NAME: usize = 128;
/// Longest error text a client keeps from a relay, in characters (the rest is cut).
pub const MAX_SHOWN_ERROR: usize = 300;

/// Characters that change how text around them is shown, or hide: control characters, bidirectional
/// marks and overrides, zero-width characters, line and paragraph separators.
pub fn is_hidden_or_control(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFFB}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

/// Whether a relay-supplied name may be shown: at most [`MAX_SHOWN_NAME`] bytes, nothing hidden.
pub fn is_showable_name(text: &str) -> bool {
    text.len() <= MAX_SHOWN_NAME && !text.chars().any(is_hidden_or_control)
}

/// Serde `deserialize_with` for a relay-supplied name: refused unless [`is_showable_name`].
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    if is_showable_name(&text) {
        Ok(text)
    } else {
        Err(serde::de::Error::custom("a name from the relay is too long or holds control characters"))
    }
}

/// Serde `deserialize_with` for relay-supplied error text: made safe by [`lossy`].
pub fn deserialize_lossy<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    String::deserialize(d).map(|text| lossy(&text))
}

/// Text another party chose (an error's text, a connection's close reason), made safe to show: hidden
/// and control characters become `�`, and it is cut at [`MAX_SHOWN_ERROR`] characters.
pub fn lossy(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(MAX_SHOWN_ERROR)
        .map(|c| if is_hidden_or_control(c) { char::REPLACEMENT_CHARACTER } else { c })
        .collect();
    if text.chars().count() > MAX_SHOWN_ERROR {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_pass_and_hidden_characters_do_not() {
        assert!(is_showable_name("alice@helpdesk"));
        assert!(is_showable_name("Société Générale IT"));
        for bad in ["a\nb", "invoice\u{202E}fdp", "zero\u{200B}width", "tab\t", "\u{2066}x"] {
            assert!(!is_showable_name(bad), "{bad:?}");
        }
        assert!(!is_showable_name(&"x".repeat(MAX_SHOWN_NAME + 1)));
    }
}
