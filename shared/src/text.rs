//! Text from the other side, made safe to show: [`visible`] escapes every character that is invisible or
//! changes how the text around it is drawn, so what a person reads is what was sent.
//!
//! The other side chooses technician names, chat lines, file names and error texts. A right-to-left
//! override (U+202E) makes `invoice\u{202E}fdp.exe` read as `invoiceexe.pdf`; zero-width and other format
//! characters hide text; control characters move a terminal's cursor or rewrite its title. Each such
//! character is shown as its code point, `\u{202E}`, instead.
//!
//! Escaped: control characters (general category Cc), format characters (Cf: the bidirectional embeddings,
//! overrides and isolates U+202A–U+202E and U+2066–U+2069, the marks U+200E/U+200F and U+061C, zero-width
//! space U+200B, word joiner U+2060, invisible operators, the byte order mark U+FEFF, soft hyphen U+00AD,
//! tag characters…) and the line and paragraph separators U+2028/U+2029. Kept: the zero-width non-joiner
//! and joiner U+200C/U+200D, which Persian and Indic scripts and emoji sequences need to be written at all,
//! and which can neither reorder text nor hide a file's extension.
//!
//! File names are stricter: a received name holding any escaped character is refused, not written
//! ([`crate::files::names`]).

use std::borrow::Cow;
use std::fmt::Write;

use unicode_general_category::{get_general_category, GeneralCategory};

/// Whether `c` is shown escaped by [`visible`].
pub fn is_hidden_char(c: char) -> bool {
    match c {
        '\u{200C}' | '\u{200D}' => false,
        c if c.is_control() => true,
        c => matches!(
            get_general_category(c),
            GeneralCategory::Format | GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator
        ),
    }
}

/// `s` with every invisible or text-reordering character escaped as `\u{XXXX}` (see the module doc);
/// borrowed when there is nothing to escape.
pub fn visible(s: &str) -> Cow<'_, str> {
    escape(s, |_| false)
}

/// Like [`visible`], but line breaks (`\n`) stay line breaks: for chat messages, which may span lines.
pub fn visible_lines(s: &str) -> Cow<'_, str> {
    escape(s, |c| c == '\n')
}

fn escape(s: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    let hidden = |c: char| !keep(c) && is_hidden_char(c);
    if !s.chars().any(hidden) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if hidden(c) {
            let _ = write!(out, "\\u{{{:04X}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_right_to_left_override_is_shown_not_obeyed() {
        assert_eq!(visible("invoice\u{202E}fdp.exe"), "invoice\\u{202E}fdp.exe");
    }

    #[test]
    fn bidi_zero_width_and_control_characters_are_escaped() {
        for (raw, shown) in [
            ("a\u{202A}b\u{202B}c\u{202C}d\u{202D}", "a\\u{202A}b\\u{202B}c\\u{202C}d\\u{202D}"),
            ("\u{2066}x\u{2067}y\u{2068}z\u{2069}", "\\u{2066}x\\u{2067}y\\u{2068}z\\u{2069}"),
            ("\u{200E}\u{200F}\u{061C}", "\\u{200E}\\u{200F}\\u{061C}"),
            ("pay\u{200B}pal\u{2060}\u{FEFF}", "pay\\u{200B}pal\\u{2060}\\u{FEFF}"),
            ("soft\u{AD}hyphen", "soft\\u{00AD}hyphen"),
            ("tag\u{E0041}", "tag\\u{E0041}"),
            ("bell\u{7}\u{1B}[2J", "bell\\u{0007}\\u{001B}[2J"),
            ("line\nbreak\r\u{85}", "line\\u{000A}break\\u{000D}\\u{0085}"),
            ("sep\u{2028}para\u{2029}", "sep\\u{2028}para\\u{2029}"),
        ] {
            assert_eq!(visible(raw), shown, "{raw:?}");
        }
    }

    #[test]
    fn ordinary_text_is_borrowed_unchanged() {
        for text in [
            "report.pdf",
            "Grüße – été",
            "日本語",
            "עברית ومرحبا",
            "👨\u{200D}👩\u{200D}👧",
            "می\u{200C}خواهم",
        ] {
            assert!(matches!(visible(text), Cow::Borrowed(t) if t == text), "{text:?}");
        }
    }

    #[test]
    fn chat_keeps_its_line_breaks_but_nothing_else() {
        assert_eq!(visible_lines("hi\nthere\u{202E}\r"), "hi\nthere\\u{202E}\\u{000D}");
    }

    proptest! {
        #[test]
        fn the_shown_text_holds_no_hidden_character(s in "\\PC{0,20}[\u{0}-\u{1F}\u{200B}-\u{206F}\u{FEFF}]\\PC{0,20}") {
            let shown = visible(&s);
            prop_assert!(!shown.chars().any(is_hidden_char), "{:?} shown as {:?}", s, shown);
        }
    }
}
