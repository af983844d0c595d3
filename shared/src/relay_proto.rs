//! Messages between a client (host or viewer) and the relay, on the relay's TLS-protected control stream.
//!
//! Flow:
//! ```text
//! host   → relay: Hello{version, Host}     relay → host:   Welcome
//! host   → relay: Register                 relay → host:   Registered{nameplate, expires_in_ms}
//! viewer → relay: Hello{version, Viewer}   relay → viewer: Welcome
//! viewer → relay: Claim{nameplate, token}  relay → both:   PeerJoined{tag, technician}
//!                                          (or to the viewer: Redirect{relay}, see below)
//! both   → relay: Pake{msg}                relay → other:  PeerPake{msg}
//! both   → relay: Confirm{msg}             relay → other:  PeerConfirm{msg}
//! both   → relay: ResumeCommit{commitment} (just before PairingResult{ok: true})
//! both   → relay: PairingResult{ok}        relay → both:   SessionReady  (only if both ok)
//! ```
//! A paired client that loses the relay reconnects and sends `Rejoin{resume_id}`; when both ends have,
//! both get `Rejoined{tag}` and their end-to-end connection carries on.
//!
//! Rejoining is only for sessions this relay paired. The relay never learns the PAKE key, so each end sends
//! [`resume_commitment`]`(resume_id)` in `ResumeCommit` before its `PairingResult { ok: true }`; when both
//! ends of a pairing sent the same commitment, the relay keeps a *resume record* (the commitment, both
//! addresses, the verified technician account) in its database until a configurable window after the
//! session was last seen live. `Rejoin{resume_id}` is accepted only if the commitment of `resume_id`
//! matches a live record (`UnknownSession` otherwise), the technician's account is not revoked since
//! (`Revoked`), and the address's rejoin rate and the relay's session cap allow it.
//!
//! A failed pairing burns the nameplate: the viewer gets `Error{WrongCode}`, the host `Error{PeerWrongCode}`
//! and may `Register` again for a fresh code. The PAKE and confirmation payloads are opaque to the relay.
//!
//! Several relays of one organization (sharing a PostgreSQL database) share one directory of waiting
//! nameplates. A claim that reaches a relay other than the host's gets `Redirect { relay }`: the address
//! and certificate fingerprint of the host's relay, as the relay the viewer asked vouches for it. The
//! viewer claims there (once: a second redirect is an error). A lying redirect can only deny service: the
//! viewer pins the fingerprint it was given, and the end-to-end PAKE still decides who pairs.
//!
//! Technician accounts: a viewer may send its account token with `Claim`. The relay checks it and tells the
//! host the verified account in `PeerJoined { technician: Some(..) }` (the viewer's own `PeerJoined` carries
//! `None`). A relay that requires accounts refuses a claim without a valid token (`AuthRequired`,
//! `BadToken`); revoking an account ends its live sessions (`Revoked` to both sides).

use serde::{Deserialize, Serialize};

use crate::code::Nameplate;
use crate::token::Token;

/// Which end of a session a client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    Host,
    Viewer,
}

/// Largest PAKE or confirmation payload the relay forwards.
pub const MAX_PAIRING_PAYLOAD: usize = 256;

/// Longest technician token the relay accepts (a relay id of up to 253 characters, then the secret).
pub const MAX_TOKEN_LEN: usize = 512;

/// A technician account the relay has verified by its token, told to the host.
///
/// `account` and `organization` are the relay's word: a client refuses to decode them unless they are
/// short and free of control and format characters ([`crate::shown`]). `verified_by` is not sent: the host
/// fills it in with the relay it connected to (its TLS name or address), the one thing here that does not
/// come from the relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedTechnician {
    #[serde(deserialize_with = "crate::shown::deserialize")]
    pub account: String,
    #[serde(deserialize_with = "crate::shown::deserialize")]
    pub organization: String,
    #[serde(skip)]
    pub verified_by: String,
}

impl VerifiedTechnician {
    /// As the relay sends it (`verified_by` empty: the host fills it in).
    pub fn new(account: impl Into<String>, organization: impl Into<String>) -> Self {
        Self { account: account.into(), organization: organization.into(), verified_by: String::new() }
    }

    /// The relay that verified the account, as the host names it ("the relay" if unknown).
    pub fn verifier(&self) -> &str {
        if self.verified_by.is_empty() {
            "the relay"
        } else {
            &self.verified_by
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientToRelay {
    Hello {
        version: u32,
        role: Role,
    },
    Register,
    /// [`ClientToRelay::Register`] for a colleague joining a live session (an invite): `session` is that
    /// session's [`resume_commitment`], which the relay already holds, so the audit row of what follows
    /// names the session it joins. Nothing else changes; the relay learns only that link.
    RegisterInvite {
        session: [u8; 32],
    },
    /// `token`: the technician's account token, if they have one (its `Debug` is redacted; the viewer
    /// sends it only to the relay it names, see [`crate::token`]).
    Claim {
        nameplate: Nameplate,
        token: Option<Token>,
    },
    Pake {
        msg: Vec<u8>,
    },
    Confirm {
        msg: Vec<u8>,
    },
    PairingResult {
        ok: bool,
    },
    /// After losing the relay (a restart, a network change): find the peer of a paired session again.
    /// `resume_id` is derived from the PAKE key, so only the two ends know it.
    Rejoin {
        resume_id: [u8; 32],
    },
    /// Sent just before `PairingResult { ok: true }`: [`resume_commitment`] of this session's resume id, so
    /// the relay can later admit `Rejoin` for this session, and only for it.
    ResumeCommit {
        commitment: [u8; 32],
    },
    /// From a host in a session: its session record now has `len` entries with this head (32 bytes, no
    /// content). The relay keeps the latest in the session's audit row, so a saved record can later be
    /// checked against what the organization's relay saw.
    RecordHead {
        len: u64,
        head: [u8; 32],
    },
}

/// What a client tells the relay about its session's resume id at pairing: a one-way, domain-separated
/// hash, so the relay can recognize the id at `Rejoin` without learning it before.
pub fn resume_commitment(resume_id: &[u8; 32]) -> [u8; 32] {
    blake3::derive_key("tether relay resume commitment v1", resume_id)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelayToClient {
    Welcome {
        version: u32,
    },
    Registered {
        nameplate: Nameplate,
        expires_in_ms: u64,
    },
    /// The other side arrived; `tag` marks this client's end-to-end packets from now on. To the host,
    /// `technician` is the viewer's verified account, if it presented a valid token.
    PeerJoined {
        tag: u64,
        technician: Option<VerifiedTechnician>,
    },
    PeerPake {
        msg: Vec<u8>,
    },
    PeerConfirm {
        msg: Vec<u8>,
    },
    /// Both sides confirmed: the relay forwards tagged packets now.
    SessionReady,
    /// To the host: the pairing failed (wrong code); the nameplate is burned, register again.
    PairingFailed,
    /// The waiting code expired; the host may register again.
    CodeExpired,
    /// Rejoined after `Rejoin`: tagged packets flow again, under this new tag.
    Rejoined {
        tag: u64,
    },
    /// The other side closed or vanished.
    PeerGone,
    Error {
        kind: RelayErrorKind,
    },
    /// To a viewer's `Claim`: the code waits on another relay of this organization; claim it there.
    /// (Last, so the numbers postcard gives the other variants stay as they were.)
    Redirect {
        relay: RelayAddress,
    },
}

/// Longest relay address in a [`RelayToClient::Redirect`]: a DNS name (253), a colon and a port.
pub const MAX_RELAY_ADDRESS: usize = 253 + 6;

/// Another relay of the organization, as the relay a client asked vouches for it: where it is
/// (`HOST:PORT`) and the SHA-256 fingerprint of the certificate it presents.
///
/// Decoding checks the address ([`is_relay_address`]): a relay cannot make a client show, or look up,
/// anything but a host name or an IP address and a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayAddress {
    #[serde(deserialize_with = "deserialize_relay_address")]
    pub address: String,
    pub fingerprint: [u8; 32],
}

impl RelayAddress {
    pub fn fingerprint(&self) -> crate::tls::Fingerprint {
        crate::tls::Fingerprint(self.fingerprint)
    }
}

/// `HOST:PORT` with a port number, at most [`MAX_RELAY_ADDRESS`] characters, of letters, digits and
/// `.-:[]` only (a DNS name, an IPv4 address, or an IPv6 address in brackets).
pub fn is_relay_address(text: &str) -> bool {
    let Some((host, port)) = text.rsplit_once(':') else { return false };
    text.len() <= MAX_RELAY_ADDRESS
        && !host.trim_matches(['[', ']']).is_empty()
        && port.parse::<u16>().is_ok_and(|p| p != 0)
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

fn deserialize_relay_address<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    if is_relay_address(&text) {
        Ok(text)
    } else {
        Err(serde::de::Error::custom("a relay address that is not HOST:PORT"))
    }
}

/// Errors the relay reports. Each has a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum RelayErrorKind {
    #[error("protocol version mismatch: the relay speaks version {relay}, this program version {client}")]
    VersionMismatch { relay: u32, client: u32 },
    #[error("no session is waiting under this code (mistyped, expired or withdrawn, or the session ended)")]
    UnknownCode,
    #[error("this code has expired; ask for a new one")]
    Expired,
    #[error("this code was already used; ask for a new one")]
    AlreadyUsed,
    #[error("wrong code: the secret part did not match; ask for a new one")]
    WrongCode,
    #[error("someone tried to connect with a wrong code; a new code was made")]
    PeerWrongCode,
    #[error("too many attempts from this address; wait a minute and try again")]
    RateLimited,
    #[error("the relay is full; try again later")]
    Busy,
    #[error("pairing took too long and was abandoned")]
    Timeout,
    /// The relay's description (made safe to show as it is decoded: [`crate::shown::deserialize_lossy`]).
    #[error("protocol violation: {0}")]
    Protocol(#[serde(deserialize_with = "crate::shown::deserialize_lossy")] String),
    #[error("this relay admits only technicians with an account: pass your token (--token or TETHER_TOKEN)")]
    AuthRequired,
    #[error("the technician token was not accepted (mistyped, or the account does not exist)")]
    BadToken,
    #[error("the technician's account was revoked; the session was ended by the relay")]
    Revoked,
    #[error("the relay is shutting down")]
    ShuttingDown,
    #[error("the relay knows no session to rejoin under this id (it ended, or its rejoin window passed)")]
    UnknownSession,
    #[error("too many wrong codes were tried recently; wait a few minutes and try again")]
    TooManyWrongCodes,
    #[error(
        "the relay cannot check technician accounts right now (its database is unreachable); try again in \
         a minute — sessions already running are not affected"
    )]
    AccountsUnavailable,
    #[error(
        "this code is not on the relay you asked, and that relay cannot ask the organization's other relays \
         right now (its database is unreachable); try again in a minute, or ask on the relay the user's \
         screen names"
    )]
    DirectoryUnavailable,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_name_only_a_host_and_a_port() {
        for ok in ["relay-b.example.org:4433", "192.0.2.7:4433", "[2001:db8::1]:4433", "localhost:1"] {
            assert!(is_relay_address(ok), "{ok}");
        }
        let long = format!("{}.org:4433", "a".repeat(260));
        for bad in
            ["relay", "relay:", ":4433", "relay:0", "relay:70000", "re lay:1", "relay\u{202e}:1", &long]
        {
            assert!(!is_relay_address(bad), "{bad:?}");
        }
        let redirect = RelayToClient::Redirect {
            relay: RelayAddress { address: "relay-b.example.org:4433".into(), fingerprint: [7; 32] },
        };
        let bytes = crate::wire::encode(&redirect, 1024).expect("encodes");
        assert_eq!(crate::wire::decode::<RelayToClient>(&bytes[4..]).expect("decodes"), redirect);
        let hostile = RelayToClient::Redirect {
            relay: RelayAddress { address: "evil\nname:1".into(), fingerprint: [7; 32] },
        };
        let bytes = crate::wire::encode(&hostile, 1024).expect("encodes");
        assert!(crate::wire::decode::<RelayToClient>(&bytes[4..]).is_err(), "refused as it is decoded");
    }
}
