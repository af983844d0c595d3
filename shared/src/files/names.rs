//! What a received name may be, and how a received file gets its final name.
//!
//! A sent tree is a list of relative paths, each a list of components. Every component is checked before
//! anything touches the disk: nothing can climb out of the folder the receiver chose (`..`, absolute
//! paths, drive and UNC prefixes, separators inside a component), and nothing that some system treats
//! specially gets through (NUL and control characters, Windows device names, trailing dots and spaces,
//! over-long names). Nor does a name that would not read as what it is: one holding a format character
//! such as a right-to-left override (`invoice\u{202E}fdp.exe` shows as `invoiceexe.pdf`) or a zero-width
//! space ([`crate::text::is_hidden_char`]). Links are not representable in a manifest at all.
//!
//! A received top-level name never hides: a leading `.` becomes `_` ([`unhidden`]), so `.xsessionrc`
//! arrives as `_xsessionrc` where the person can see it, and is never a dot-file a desktop session or
//! shell would read at login. Names inside a received folder keep their dots (the folder itself shows).
//!
//! A name that already exists is never overwritten: the file gets the first free name of `report (1).pdf`,
//! `report (2).pdf`, … — claimed atomically (see [`super::receive`]).

/// Longest component, in bytes (the common file-system limit).
pub const MAX_COMPONENT: usize = 255;
/// Deepest path accepted.
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("empty name")]
    Empty,
    #[error("{0:?} refers to a parent or current folder")]
    Dots(String),
    #[error("{0:?} contains a path separator or drive prefix")]
    Separator(String),
    #[error("{0:?} contains a NUL or control character")]
    Control(String),
    #[error("“{}” contains an invisible or text-reordering character", crate::text::visible(.0))]
    Invisible(String),
    #[error("{0:?} is a reserved device name")]
    Device(String),
    #[error("{0:?} ends with a dot or a space")]
    TrailingDotOrSpace(String),
    #[error("a name of {0} bytes is longer than {MAX_COMPONENT}")]
    TooLong(usize),
    #[error("a path {0} folders deep is deeper than {MAX_DEPTH}")]
    TooDeep(usize),
}

const DEVICES: &[&str] = &["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "CLOCK$"];

/// Check one path component received from the peer.
pub fn check_component(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_COMPONENT {
        return Err(NameError::TooLong(name.len()));
    }
    if name == "." || name == ".." {
        return Err(NameError::Dots(name.into()));
    }
    if name.chars().any(|c| c == '\0' || c.is_control()) {
        return Err(NameError::Control(name.into()));
    }
    if name.chars().any(crate::text::is_hidden_char) {
        return Err(NameError::Invisible(name.into()));
    }
    if name.contains(['/', '\\', ':']) {
        return Err(NameError::Separator(name.into()));
    }
    if name.ends_with(['.', ' ']) {
        return Err(NameError::TrailingDotOrSpace(name.into()));
    }
    let stem = name.split('.').next().unwrap_or(name).trim_end().to_ascii_uppercase();
    let numbered = |prefix: &str| {
        stem.strip_prefix(prefix).is_some_and(|d| d.len() == 1 && d.chars().all(|c| c.is_ascii_digit()))
    };
    if DEVICES.contains(&stem.as_str()) || numbered("COM") || numbered("LPT") {
        return Err(NameError::Device(name.into()));
    }
    Ok(())
}

/// Check a whole relative path.
pub fn check_path(components: &[String]) -> Result<(), NameError> {
    if components.is_empty() {
        return Err(NameError::Empty);
    }
    if components.len() > MAX_DEPTH {
        return Err(NameError::TooDeep(components.len()));
    }
    components.iter().try_for_each(|c| check_component(c))
}

/// The name a received top-level entry is stored under: `name` itself, or, for a name that would be
/// hidden (a leading `.`), the same name with `_` for the dot — `.xsessionrc` → `_xsessionrc`. The
/// receiver says so when it renames ([`crate::files::receive`] returns the stored names).
pub fn unhidden(name: &str) -> std::borrow::Cow<'_, str> {
    match name.strip_prefix('.') {
        Some(rest) => format!("_{rest}").into(),
        None => name.into(),
    }
}

/// The `n`-th alternative of a file name: `report.pdf` → `report (n).pdf`; `archive.tar.gz` →
/// `archive (n).tar.gz`; `.bashrc` → `.bashrc (n)`.
pub fn numbered(name: &str, n: u32) -> String {
    let split = match name.find('.') {
        Some(0) | None => name.len(),
        Some(i) => i,
    };
    let (stem, ext) = name.split_at(split);
    format!("{stem} ({n}){ext}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hostile_names_are_refused() {
        type Expect = fn(&NameError) -> bool;
        let cases: &[(&str, Expect)] = &[
            ("", |e| matches!(e, NameError::Empty)),
            ("..", |e| matches!(e, NameError::Dots(_))),
            (".", |e| matches!(e, NameError::Dots(_))),
            ("a/b", |e| matches!(e, NameError::Separator(_))),
            ("/etc", |e| matches!(e, NameError::Separator(_))),
            ("..\\windows", |e| matches!(e, NameError::Separator(_))),
            ("C:", |e| matches!(e, NameError::Separator(_))),
            ("c:evil", |e| matches!(e, NameError::Separator(_))),
            ("\\\\server\\share", |e| matches!(e, NameError::Separator(_))),
            ("nul\0byte", |e| matches!(e, NameError::Control(_))),
            ("bell\u{7}", |e| matches!(e, NameError::Control(_))),
            ("line\nbreak", |e| matches!(e, NameError::Control(_))),
            ("CON", |e| matches!(e, NameError::Device(_))),
            ("con.txt", |e| matches!(e, NameError::Device(_))),
            ("Com1.log", |e| matches!(e, NameError::Device(_))),
            ("lpt9", |e| matches!(e, NameError::Device(_))),
            ("AUX .txt", |e| matches!(e, NameError::Device(_))),
            ("trailing.", |e| matches!(e, NameError::TrailingDotOrSpace(_))),
            ("trailing ", |e| matches!(e, NameError::TrailingDotOrSpace(_))),
            ("invoice\u{202E}fdp.exe", |e| matches!(e, NameError::Invisible(_))),
            ("a\u{2066}b", |e| matches!(e, NameError::Invisible(_))),
            ("zero\u{200B}width", |e| matches!(e, NameError::Invisible(_))),
            ("\u{FEFF}bom", |e| matches!(e, NameError::Invisible(_))),
        ];
        for (name, expected) in cases {
            let err = check_component(name).expect_err(name);
            assert!(expected(&err), "{name:?} gave {err:?}");
        }
        assert!(matches!(check_component(&"x".repeat(256)), Err(NameError::TooLong(256))));
        assert!(matches!(check_path(&vec!["d".to_string(); 65]), Err(NameError::TooDeep(65))));
    }

    #[test]
    fn ordinary_and_unicode_names_pass() {
        for name in [
            "report.pdf",
            "Grüße – été 2026",
            "日本語のファイル.txt",
            ".bashrc",
            "COM10",
            "console.log",
            "a..b",
            "می\u{200C}خواهم.txt",
        ] {
            check_component(name).unwrap_or_else(|e| panic!("{name:?}: {e}"));
        }
    }

    #[test]
    fn a_refused_invisible_character_is_named_visibly() {
        let err = check_component("invoice\u{202E}fdp.exe").expect_err("refused");
        assert_eq!(
            err.to_string(),
            "“invoice\\u{202E}fdp.exe” contains an invisible or text-reordering character"
        );
    }

    #[test]
    fn hidden_top_level_names_become_visible() {
        assert_eq!(unhidden(".xsessionrc"), "_xsessionrc");
        assert_eq!(unhidden("..bashrc"), "_.bashrc");
        assert_eq!(unhidden("report.pdf"), "report.pdf");
        assert!(matches!(unhidden("report.pdf"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn numbered_names_keep_the_extension() {
        assert_eq!(numbered("report.pdf", 1), "report (1).pdf");
        assert_eq!(numbered("archive.tar.gz", 2), "archive (2).tar.gz");
        assert_eq!(numbered(".bashrc", 1), ".bashrc (1)");
        assert_eq!(numbered("README", 3), "README (3)");
    }

    proptest! {
        #[test]
        fn an_accepted_component_is_a_plain_name(name in "\\PC{0,40}") {
            if check_component(&name).is_ok() {
                let path = std::path::Path::new(&name);
                let mut parts = path.components();
                prop_assert!(matches!(parts.next(), Some(std::path::Component::Normal(_))));
                prop_assert!(parts.next().is_none(), "{:?} is more than one component", name);
            }
        }
    }
}
