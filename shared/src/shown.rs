//! Decode-time checks of the strings a relay sends that clients show to people: the verified technician's
//! account and organization, and the text of a protocol error. The relay is not trusted with what a user
//! reads: a field that is too long or holds control or format characters (line breaks, bidirectional
//! overrides, zero-width characters) fails to decode, so the message is refused and nothing of it is
//! shown. Error text is only made safe ([`deserialize_lossy`], [`lossy`]; also a connection's close reason,
//! see [`crate::net::ClientError`]): refusing it would hide the error itself.
//!
//! Which characters count as hidden is decided in one place, [`crate::text::is_hidden_char`].
//! Nameplates are checked the same way by their own type ([`crate::code::Nameplate`]).

use serde::{Deserialize, Deserializer};

use crate::text::is_hidden_char;

/// Longest account or organization name a client accepts from a relay, in bytes.
pub const MAX_SHOWN_NAME: usize = 128;
/// Longest error text a client keeps from a relay, in characters (the rest is cut).
pub const MAX_SHOWN_ERROR: usize = 300;

/// Whether a relay-supplied name may be shown: at most [`MAX_SHOWN_NAME`] bytes, nothing hidden.
pub fn is_showable_name(text: &str) -> bool {
    text.len() <= MAX_SHOWN_NAME && !text.chars().any(is_hidden_char)
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
        .map(|c| if is_hidden_char(c) { char::REPLACEMENT_CHARACTER } else { c })
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
