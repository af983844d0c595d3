//! How a session ends, said once: the typed [`EndReason`] (who ended it and why), the connection close
//! codes that carry it when no `Bye` could, and the pure [`EndArbiter`] that decides which of the
//! competing signals (the peer's `Bye`, the connection's close, the relay's notice, our own decision)
//! is the session's end.
//!
//! The reason travels end to end in `Bye { reason }` (see [`crate::session_proto`]) and will go into the
//! session record, so it is plain serialisable data. Texts in it that the peer chose are shown escaped
//! ([`crate::text::visible`]).

mod arbiter;

pub use arbiter::{EndArbiter, EndEvent, PEER_WORD_GRACE};

use serde::{Deserialize, Serialize};

use crate::relay_proto::RelayErrorKind;
use crate::text::visible;

/// Application close codes of the end-to-end connection ([`EndReason::close_code`]).
pub const CLOSE_NORMAL: u32 = 0;
pub const CLOSE_PEER_GONE: u32 = 1;
pub const CLOSE_PROTOCOL: u32 = 2;
pub const CLOSE_STOPPED_BY_USER: u32 = 3;
/// The relay ended the session; the close reason is its [`RelayErrorKind`], encoded (postcard), so a
/// peer whose own relay notice is late still learns why.
pub const CLOSE_RELAY_ENDED: u32 = 4;
/// The host user removed this technician from the session.
pub const CLOSE_REMOVED: u32 = 5;

/// One end of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    Host,
    Viewer,
}

impl Side {
    pub fn other(self) -> Self {
        match self {
            Self::Host => Self::Viewer,
            Self::Viewer => Self::Host,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::Viewer => "viewer",
        }
    }
}

/// What a peer got wrong, as far as the side that noticed can tell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Violation {
    /// A message that does not decode or is over its size cap.
    Malformed(String),
    /// A screen update that cannot be applied (out of bounds, bad tile data, wrong size).
    BadFrame(String),
    /// A frame acknowledgement for no frame in flight.
    BadAck(String),
    /// The peer closed the connection with the protocol-error code and said nothing more.
    Unspecified,
    /// The session record does not agree: an entry that does not extend it, or a head or MAC that does
    /// not match.
    Record(String),
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed(why) => write!(f, "a malformed message ({})", visible(why)),
            Self::BadFrame(why) => write!(f, "a screen update that cannot be shown ({})", visible(why)),
            Self::BadAck(why) => write!(f, "a wrong acknowledgement ({})", visible(why)),
            Self::Unspecified => f.write_str("no details given"),
            Self::Record(why) => write!(f, "a session record that does not agree ({})", visible(why)),
        }
    }
}

/// Why a session ended: who ended it, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EndReason {
    /// The technician left (closed the viewer or the session).
    ViewerLeft,
    /// The host user stopped sharing.
    HostStopped,
    /// The host user removed this technician; the session goes on for the others.
    Removed,
    /// The relay says the peer's connection to it dropped: it vanished or lost its network.
    PeerVanished { peer: Side },
    /// The relay ended the session (e.g. the technician's account was revoked).
    Relay(RelayErrorKind),
    /// Nothing came from the peer within the connection's idle timeout.
    TimedOut,
    /// `by` broke the protocol; the other side closed the session.
    ProtocolViolation { by: Side, detail: Violation },
    /// The peer closed the connection with `code` and gave no `Bye` that says more.
    PeerClosed { peer: Side, code: u64 },
    /// `side` could not go on (its screen capture failed, say).
    Failed { side: Side, why: String },
    /// The connection failed some other way (reset, a transport error): the transport's words.
    ConnectionLost(String),
    /// This side closed the connection (its session was dropped) before anything else ended it.
    LocalClose,
}

impl EndReason {
    /// The application close code that says this to a peer that missed the `Bye`.
    pub fn close_code(&self) -> u32 {
        match self {
            Self::HostStopped => CLOSE_STOPPED_BY_USER,
            Self::Removed => CLOSE_REMOVED,
            Self::ProtocolViolation { .. } => CLOSE_PROTOCOL,
            Self::PeerVanished { .. } => CLOSE_PEER_GONE,
            Self::Relay(_) => CLOSE_RELAY_ENDED,
            _ => CLOSE_NORMAL,
        }
    }

    /// The close reason that goes with [`Self::close_code`]: fixed words (no peer text is echoed back),
    /// or the relay's error for [`CLOSE_RELAY_ENDED`].
    pub fn close_reason(&self) -> Vec<u8> {
        let words: &[u8] = match self {
            Self::Relay(kind) => return postcard::to_stdvec(kind).unwrap_or_default(),
            Self::HostStopped => b"the user stopped sharing",
            Self::Removed => b"the user removed you from the session",
            Self::ProtocolViolation { .. } => b"protocol error",
            Self::PeerVanished { .. } => b"the other side left (relay)",
            _ => b"session ended",
        };
        words.to_vec()
    }

    /// The one mapping from a closed connection (and our close codes) to a reason, as seen by `me`.
    pub fn from_close(me: Side, closed: &quinn::ConnectionError) -> Self {
        use quinn::ConnectionError as E;
        let peer = me.other();
        match closed {
            E::ApplicationClosed(close) => match u32::try_from(close.error_code.into_inner()) {
                Ok(CLOSE_NORMAL) if peer == Side::Viewer => Self::ViewerLeft,
                Ok(CLOSE_STOPPED_BY_USER) if peer == Side::Host => Self::HostStopped,
                Ok(CLOSE_REMOVED) if peer == Side::Host => Self::Removed,
                Ok(CLOSE_PROTOCOL) => Self::ProtocolViolation { by: me, detail: Violation::Unspecified },
                Ok(CLOSE_RELAY_ENDED) => match postcard::from_bytes::<RelayErrorKind>(&close.reason) {
                    Ok(kind) => Self::Relay(kind),
                    Err(_) => Self::PeerClosed { peer, code: CLOSE_RELAY_ENDED.into() },
                },
                _ => Self::PeerClosed { peer, code: close.error_code.into_inner() },
            },
            E::TimedOut => Self::TimedOut,
            E::LocallyClosed => Self::LocalClose,
            other => Self::ConnectionLost(other.to_string()),
        }
    }

    /// Whether the peer ended the session on purpose (and so needs no `Bye` back).
    pub fn is_peer_leaving(&self, me: Side) -> bool {
        match self {
            Self::ViewerLeft => me == Side::Host,
            Self::HostStopped | Self::Removed => me == Side::Viewer,
            _ => false,
        }
    }
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ViewerLeft => f.write_str("the technician left"),
            Self::HostStopped => f.write_str("the host user stopped sharing"),
            Self::Removed => f.write_str("the host user removed you from the session"),
            Self::PeerVanished { peer } => write!(
                f,
                "the {}'s connection to the relay ended (it vanished or lost its network)",
                peer.name()
            ),
            Self::Relay(kind) => write!(f, "the relay ended the session: {kind}"),
            Self::TimedOut => f.write_str("the connection timed out"),
            Self::ProtocolViolation { by, detail } => {
                write!(f, "the {} broke the protocol: {detail}", by.name())
            }
            Self::PeerClosed { peer, code } => {
                write!(f, "the {} closed the connection (code {code})", peer.name())
            }
            Self::Failed { side, why } => write!(f, "the {} could not go on: {}", side.name(), visible(why)),
            Self::ConnectionLost(why) => write!(f, "the connection was lost: {}", visible(why)),
            Self::LocalClose => f.write_str("the session was closed on this side"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app_close(code: u32) -> quinn::ConnectionError {
        quinn::ConnectionError::ApplicationClosed(quinn::ApplicationClose {
            error_code: code.into(),
            reason: b"whatever the peer wrote".to_vec().into(),
        })
    }

    #[test]
    fn close_codes_map_to_reasons_for_each_side() {
        assert_eq!(EndReason::from_close(Side::Host, &app_close(CLOSE_NORMAL)), EndReason::ViewerLeft);
        assert_eq!(
            EndReason::from_close(Side::Viewer, &app_close(CLOSE_STOPPED_BY_USER)),
            EndReason::HostStopped
        );
        assert_eq!(
            EndReason::from_close(Side::Viewer, &app_close(CLOSE_NORMAL)),
            EndReason::PeerClosed { peer: Side::Host, code: 0 }
        );
        assert_eq!(
            EndReason::from_close(Side::Host, &app_close(CLOSE_PROTOCOL)),
            EndReason::ProtocolViolation { by: Side::Host, detail: Violation::Unspecified }
        );
        assert_eq!(EndReason::from_close(Side::Host, &quinn::ConnectionError::TimedOut), EndReason::TimedOut);
        assert_eq!(
            EndReason::from_close(Side::Host, &quinn::ConnectionError::LocallyClosed),
            EndReason::LocalClose
        );
        assert!(matches!(
            EndReason::from_close(Side::Viewer, &quinn::ConnectionError::Reset),
            EndReason::ConnectionLost(_)
        ));
    }

    #[test]
    fn every_reason_closes_with_the_code_that_maps_back_to_it() {
        for (reason, me) in [(EndReason::ViewerLeft, Side::Viewer), (EndReason::HostStopped, Side::Host)] {
            let seen = EndReason::from_close(me.other(), &app_close(reason.close_code()));
            assert_eq!(seen, reason);
        }
        let violation =
            EndReason::ProtocolViolation { by: Side::Viewer, detail: Violation::Malformed("x".into()) };
        assert_eq!(violation.close_reason(), b"protocol error");
        assert!(matches!(
            EndReason::from_close(Side::Viewer, &app_close(violation.close_code())),
            EndReason::ProtocolViolation { by: Side::Viewer, .. }
        ));
    }

    #[test]
    fn the_relays_reason_travels_in_the_close() {
        let ended = EndReason::Relay(RelayErrorKind::Revoked);
        let close = quinn::ConnectionError::ApplicationClosed(quinn::ApplicationClose {
            error_code: ended.close_code().into(),
            reason: ended.close_reason().into(),
        });
        assert_eq!(EndReason::from_close(Side::Viewer, &close), ended);
        let garbled = quinn::ConnectionError::ApplicationClosed(quinn::ApplicationClose {
            error_code: CLOSE_RELAY_ENDED.into(),
            reason: vec![0xff; 9].into(),
        });
        assert_eq!(
            EndReason::from_close(Side::Viewer, &garbled),
            EndReason::PeerClosed { peer: Side::Host, code: CLOSE_RELAY_ENDED.into() }
        );
    }

    #[test]
    fn reasons_read_as_people_expect_and_escape_peer_text() {
        assert!(EndReason::HostStopped.to_string().contains("stopped sharing"));
        assert!(EndReason::Relay(RelayErrorKind::Revoked).to_string().contains("revoked"));
        let sneaky = EndReason::ConnectionLost("a\u{202E}b".into()).to_string();
        assert!(!sneaky.contains('\u{202E}'), "{sneaky}");
        let bytes = postcard::to_stdvec(&EndReason::Relay(RelayErrorKind::Revoked)).expect("encodes");
        assert_eq!(
            postcard::from_bytes::<EndReason>(&bytes).expect("decodes"),
            EndReason::Relay(RelayErrorKind::Revoked)
        );
    }
}
