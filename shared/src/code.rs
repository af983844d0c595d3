//! The one-time code: `nameplate` (assigned by the relay, routes the viewer to the waiting host) followed by
//! `secret` (7 digits ≈ 23 bits from the OS CSPRNG, made on the host, never sent to the relay).
//!
//! Format for reading aloud: `482-913-5071` — the nameplate, then the secret as 3 + 4 digits. Parsing
//! ignores spaces and dashes, so `482 9135071` and `4829135071` are the same code. The secret is always the
//! last [`SECRET_DIGITS`] digits, so nameplates may grow longer on a busy relay without changing the format.

use std::fmt;

use rand::{Rng, TryRngCore};

/// Digits of the secret part. 10^7 ≈ 2^23.25 > 2^20, the design minimum.
pub const SECRET_DIGITS: usize = 7;
/// Longest nameplate accepted when parsing.
pub const MAX_NAMEPLATE_DIGITS: usize = 9;

/// Why a typed code could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("a code has only digits, spaces and dashes; found {0:?}")]
    BadCharacter(char),
    #[error("a code has {min} to {max} digits; this one has {got}")]
    BadLength { got: usize, min: usize, max: usize },
}

/// The relay-visible half of a code. Always 1..=9 ASCII digits: decoding checks it like [`Nameplate::new`],
/// so a relay cannot make a host show other text as its code, nor a client put other text in the relay's
/// logs.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Nameplate(String);

impl<'de> serde::Deserialize<'de> for Nameplate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::new(&text).ok_or_else(|| serde::de::Error::custom("a nameplate is 1 to 9 digits"))
    }
}

impl Nameplate {
    /// A nameplate from digits; `None` unless it is 1..=9 ASCII digits.
    pub fn new(digits: &str) -> Option<Self> {
        let ok = !digits.is_empty()
            && digits.len() <= MAX_NAMEPLATE_DIGITS
            && digits.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| Self(digits.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Nameplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Nameplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nameplate({})", self.0)
    }
}

/// The secret half of a code. Its `Debug` never shows the digits, so it cannot leak into logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A fresh secret from the OS CSPRNG.
    pub fn generate() -> Self {
        let mut rng = rand::rngs::OsRng.unwrap_err();
        let n: u32 = rng.random_range(0..10u32.pow(SECRET_DIGITS as u32));
        Self(format!("{n:0width$}", width = SECRET_DIGITS))
    }

    /// The digits, for the PAKE password.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A whole one-time code. `Display` gives the spoken-friendly form; `Debug` redacts the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Code {
    pub nameplate: Nameplate,
    pub secret: Secret,
}

impl Code {
    /// Parse what a person typed: digits with any spaces and dashes.
    pub fn parse(text: &str) -> Result<Self, CodeError> {
        let mut digits = String::with_capacity(text.len());
        for c in text.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '\t' | '\u{2010}'..='\u{2015}' => {}
                other => return Err(CodeError::BadCharacter(other)),
            }
        }
        let (min, max) = (SECRET_DIGITS + 1, SECRET_DIGITS + MAX_NAMEPLATE_DIGITS);
        if digits.len() < min || digits.len() > max {
            return Err(CodeError::BadLength { got: digits.len(), min, max });
        }
        let split = digits.len() - SECRET_DIGITS;
        let nameplate =
            Nameplate::new(&digits[..split]).ok_or(CodeError::BadLength { got: digits.len(), min, max })?;
        Ok(Self { nameplate, secret: Secret(digits[split..].to_owned()) })
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.secret.expose();
        write!(f, "{}-{}-{}", self.nameplate, &s[..3], &s[3..])
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Code({}-<redacted>)", self.nameplate)
    }
}

impl std::str::FromStr for Code {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_for_reading_aloud_and_parses_back() {
        let code = Code::parse("482 913-5071").expect("valid");
        assert_eq!(code.nameplate.as_str(), "482");
        assert_eq!(code.secret.expose(), "9135071");
        assert_eq!(code.to_string(), "482-913-5071");
        assert_eq!(Code::parse("4829135071").expect("valid"), code);
        assert_eq!(Code::parse(" 482 - 913 - 5071 ").expect("valid"), code);
    }

    #[test]
    fn rejects_letters_and_wrong_lengths() {
        assert_eq!(Code::parse("482-913-507a"), Err(CodeError::BadCharacter('a')));
        assert!(matches!(Code::parse("1234567"), Err(CodeError::BadLength { got: 7, .. })));
        assert!(matches!(Code::parse(&"1".repeat(17)), Err(CodeError::BadLength { .. })));
    }

    #[test]
    fn a_nameplate_decodes_only_as_digits() {
        let decode =
            |text: &str| postcard::from_bytes::<Nameplate>(&postcard::to_stdvec(text).expect("encode"));
        assert_eq!(decode("482").expect("digits").as_str(), "482");
        for bad in ["CALL 0800-SCAM", "", "1234567890", "12\n3", "４８２"] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let code = Code::parse("482-913-5071").expect("valid");
        let dbg = format!("{code:?} {:?}", code.secret);
        assert!(!dbg.contains("9135071") && !dbg.contains("913"), "{dbg}");
    }

    #[test]
    fn generated_secrets_have_seven_digits() {
        for _ in 0..100 {
            let s = Secret::generate();
            assert_eq!(s.expose().len(), SECRET_DIGITS);
            assert!(s.expose().bytes().all(|b| b.is_ascii_digit()));
        }
    }

    proptest! {
        #[test]
        fn any_code_round_trips(np in "[1-9][0-9]{2,8}", secret in "[0-9]{7}") {
            let code = Code { nameplate: Nameplate::new(&np).expect("digits"), secret: Secret(secret) };
            prop_assert_eq!(Code::parse(&code.to_string()).expect("parses"), code);
        }

        #[test]
        fn parse_never_panics(text in ".{0,40}") {
            let _ = Code::parse(&text);
        }
    }
}
