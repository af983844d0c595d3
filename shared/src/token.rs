//! Technician account tokens, bound to the relay that issued them.
//!
//! A token reads `tether1.<relay-id>.<account-id>.<secret>`. The relay id names the relay the way a
//! client verifies it: the SHA-256 fingerprint of a relay's self-signed certificate (64 hex digits), or the
//! DNS name of a relay with a CA-issued certificate (a DNS label is at most 63 characters, so the two never
//! look alike). The viewer sends a token only to the relay it names ([`TechnicianToken::check_relay`]):
//! a relay it was pointed at by mistake, or by someone collecting tokens, never sees it.
//!
//! Tokens of the first format (`tether_<id>_<secret>`, no relay id) are refused by both the viewer and
//! the relay: the admin reissues them (`tether-relay user reissue NAME`).
//!
//! On the wire a token travels as [`Token`], whose `Debug` never shows it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::net::RelaySpec;
use crate::tls::{Fingerprint, RelayTrust};

/// What every token of the current format starts with.
pub const TOKEN_PREFIX: &str = "tether1.";
/// What tokens without a relay id (the first format) started with.
const LEGACY_PREFIX: &str = "tether_";
/// Longest relay name (a DNS name is at most 253 characters).
const MAX_RELAY_NAME: usize = 253;

/// A token as it crosses the wire. Its `Debug` is redacted, so a message that carries it can be logged.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Token(String);

impl Token {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The token itself, for checking it. Never log this.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// A relay as a client verifies it.
#[derive(Clone, PartialEq, Eq)]
pub enum RelayId {
    /// A relay with a self-signed certificate, pinned by its fingerprint.
    Fingerprint(Fingerprint),
    /// A relay with a CA-issued certificate for this (lower-case) DNS name.
    Name(String),
}

impl RelayId {
    /// The relay a client connecting with `spec` verifies: the pinned fingerprint, or the name the
    /// certificate must carry.
    pub fn of(spec: &RelaySpec) -> Self {
        match &spec.trust {
            RelayTrust::Pinned(fp) => Self::Fingerprint(*fp),
            RelayTrust::SystemRoots => Self::Name(normalize(&spec.server_name)),
        }
    }

    /// A relay id as written in a token or given by an admin.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() == 64 {
            if let Ok(fp) = text.parse::<Fingerprint>() {
                return Some(Self::Fingerprint(fp));
            }
        }
        let name = normalize(text);
        let ok = !name.is_empty()
            && name.len() <= MAX_RELAY_NAME
            && name.split('.').all(|label| !label.is_empty() && label.len() <= 63)
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        ok.then_some(Self::Name(name))
    }
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl fmt::Display for RelayId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fingerprint(fp) => write!(f, "{fp}"),
            Self::Name(name) => f.write_str(name),
        }
    }
}

impl fmt::Debug for RelayId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RelayId({self})")
    }
}

/// Why a token cannot be used (or not with this relay). Never contains the token's secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error(
        "this token was issued before tokens named their relay, so it is not sent anywhere: ask the relay's \
         admin for a new one (`tether-relay user reissue NAME`)"
    )]
    Legacy,
    #[error("this is not a technician token (they read `tether1.<relay>.<number>.<secret>`)")]
    Malformed,
    #[error("this token belongs to relay {token}, not {relay}: not sent")]
    WrongRelay { token: RelayId, relay: RelayId },
}

/// A token split into its parts.
#[derive(Clone, PartialEq, Eq)]
pub struct TechnicianToken {
    pub relay: RelayId,
    /// The account's row in the relay's database.
    pub account_id: i64,
    secret: String,
}

impl fmt::Debug for TechnicianToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TechnicianToken({}.{}.<redacted>)", self.relay, self.account_id)
    }
}

impl TechnicianToken {
    /// A new token of `relay` for the account in row `account_id`.
    pub fn new(relay: RelayId, account_id: i64, secret: String) -> Self {
        Self { relay, account_id, secret }
    }

    pub fn parse(text: &str) -> Result<Self, TokenError> {
        let text = text.trim();
        if text.starts_with(LEGACY_PREFIX) {
            return Err(TokenError::Legacy);
        }
        let rest = text.strip_prefix(TOKEN_PREFIX).ok_or(TokenError::Malformed)?;
        let (rest, secret) = rest.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let (relay, id) = rest.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let relay = RelayId::parse(relay).ok_or(TokenError::Malformed)?;
        let account_id = id.parse::<i64>().map_err(|_| TokenError::Malformed)?;
        if secret.is_empty() || !secret.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(TokenError::Malformed);
        }
        Ok(Self { relay, account_id, secret: secret.to_owned() })
    }

    /// The secret part, for the relay's hash check.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// `Ok` only if this token belongs to the relay a client connecting with `spec` verifies.
    pub fn check_relay(&self, spec: &RelaySpec) -> Result<(), TokenError> {
        let relay = RelayId::of(spec);
        if relay == self.relay {
            Ok(())
        } else {
            Err(TokenError::WrongRelay { token: self.relay.clone(), relay })
        }
    }

    /// The token as the technician holds it.
    pub fn to_text(&self) -> String {
        format!("{TOKEN_PREFIX}{}.{}.{}", self.relay, self.account_id, self.secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(trust: RelayTrust, name: &str) -> RelaySpec {
        RelaySpec {
            addr: "127.0.0.1:7700".parse().expect("addr"),
            server_name: name.into(),
            trust,
            local_addr: None,
        }
    }

    #[test]
    fn tokens_round_trip_and_name_their_relay() {
        let fp = Fingerprint([7; 32]);
        for relay in [RelayId::Fingerprint(fp), RelayId::Name("relay.example.org".into())] {
            let token = TechnicianToken::new(relay.clone(), 42, "00ff".into());
            let text = token.to_text();
            assert!(text.starts_with("tether1."), "{text}");
            let parsed = TechnicianToken::parse(&text).expect("parses");
            assert_eq!(parsed, token);
            assert_eq!(parsed.relay, relay);
            assert!(!format!("{parsed:?}").contains("00ff"));
        }
    }

    #[test]
    fn a_token_is_for_its_relay_only() {
        let fp = Fingerprint([7; 32]);
        let pinned = TechnicianToken::new(RelayId::Fingerprint(fp), 1, "aa".into());
        assert_eq!(pinned.check_relay(&spec(RelayTrust::Pinned(fp), "x")), Ok(()));
        let other = spec(RelayTrust::Pinned(Fingerprint([8; 32])), "x");
        let err = pinned.check_relay(&other).expect_err("another relay");
        assert!(err.to_string().contains("not sent"), "{err}");
        // A relay reached by name with the system's roots is not the pinned one, whatever its name.
        assert!(pinned.check_relay(&spec(RelayTrust::SystemRoots, &fp.to_string())).is_err());

        let named = TechnicianToken::new(RelayId::Name("relay.example.org".into()), 1, "aa".into());
        assert_eq!(named.check_relay(&spec(RelayTrust::SystemRoots, "Relay.Example.org.")), Ok(()));
        assert!(named.check_relay(&spec(RelayTrust::SystemRoots, "rogue.example.org")).is_err());
        // Pinning a certificate proves nothing about names: a rogue's self-signed certificate may name
        // anything.
        assert!(named.check_relay(&spec(RelayTrust::Pinned(fp), "relay.example.org")).is_err());
    }

    #[test]
    fn old_and_malformed_tokens_are_refused_without_echoing_them() {
        assert_eq!(TechnicianToken::parse("tether_3_00ff"), Err(TokenError::Legacy));
        for bad in
            ["", "nonsense", "tether1.", "tether1.x.1", "tether1.a b.1.ff", "tether1.x.y.ff", "tether1.x.1."]
        {
            assert_eq!(TechnicianToken::parse(bad), Err(TokenError::Malformed), "{bad:?}");
        }
        assert!(!format!("{:?}", Token::new("tether1.x.1.secret")).contains("secret"));
    }
}
