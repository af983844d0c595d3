//! The client side of the relay: what host and viewer both need to reach each other through it.
//!
//! - [`socket::TaggedSocket`]: one UDP socket that carries both the control QUIC connection to the relay and
//!   the end-to-end QUIC connection to the peer (wrapped in tagged packets, see [`crate::packet`]).
//! - [`udp::BatchUdp`]: the batched (recvmmsg/GRO, GSO) UDP socket under it and under the relay's socket.
//! - [`link::RelayLink`]: the control connection and its message stream.
//! - [`nearest`]: of an organization's relays, the one that answers first.
//! - [`pairing`]: register / claim, SPAKE2, key confirmation, then the pinned end-to-end QUIC connection.

pub mod handshake;
pub mod link;
pub mod nearest;
pub mod pairing;
pub mod socket;
pub mod udp;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::tls::RelayTrust;

/// Where the relay is and how to trust it.
#[derive(Debug, Clone)]
pub struct RelaySpec {
    pub addr: SocketAddr,
    /// Name checked against a CA-issued certificate (ignored when pinned).
    pub server_name: String,
    pub trust: RelayTrust,
    /// Local address to send from (default: any address of the relay's family). Lets tests on loopback
    /// appear as a second client address (127.0.0.2).
    pub local_addr: Option<IpAddr>,
}

/// Deadlines of a client. The defaults suit the internet; tests shorten them.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Idle timeout of the control connection to the relay.
    pub relay_idle: Duration,
    /// Idle timeout of the end-to-end connection: how long a session (and its transfers) waits for a relay
    /// that went away, or a network that dropped, to come back. A peer that vanishes while the relay stays
    /// up is reported by the relay within its own idle timeout, long before this.
    pub e2e_idle: Duration,
    /// Keep-alive interval on both connections (below both idle timeouts).
    pub keep_alive: Duration,
    /// Longest time from a claim to an established end-to-end connection.
    pub pairing: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            // Short, so a lost relay is noticed (and rejoined) well within the end-to-end timeout.
            relay_idle: Duration::from_secs(5),
            // A relay restart, a Wi-Fi reconnect or a changed network is survived within this.
            e2e_idle: Duration::from_secs(60),
            keep_alive: Duration::from_secs(1),
            pairing: Duration::from_secs(30),
        }
    }
}

/// Errors of the client side, each with a message a person can act on.
///
/// A connection error shows the reason the other end gave for closing, which that end chose: it is shown
/// made safe ([`crate::shown::lossy`]), so a relay cannot put line breaks or hidden characters there.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("could not reach the relay at {addr}: {}", crate::shown::lossy(&.source.to_string()))]
    RelayUnreachable { addr: SocketAddr, source: quinn::ConnectionError },
    /// The relay's certificate is not the pinned one.
    #[error(
        "The relay at {host} answered with a different certificate than the one you were given (fingerprint \
         {presented}, not {given}). Check the fingerprint, or ask your administrator whether the relay was \
         reinstalled."
    )]
    RelayCertificateChanged {
        host: String,
        given: crate::tls::Fingerprint,
        presented: crate::tls::Fingerprint,
    },
    /// No fingerprint was given and no authority the system trusts signed the relay's certificate.
    #[error(
        "The relay at {host} has a certificate no trusted authority signed; pass --relay-fingerprint (in the \
         viewer window: Relay fingerprint) with the fingerprint the relay printed when it started, or ask your \
         administrator for it."
    )]
    RelayCertificateUntrusted { host: String },
    /// The relay's certificate is signed by a trusted authority but not valid (expired, for another name).
    #[error("The relay at {host} has a certificate that is not valid for it ({}). Check the relay address, or ask your administrator.", crate::shown::lossy(.reason))]
    RelayCertificateInvalid { host: String, reason: String },
    /// The relay address does not name a reachable place.
    #[error("{0}")]
    RelayAddress(String),
    #[error("could not start a connection: {0}")]
    Connect(#[from] quinn::ConnectError),
    #[error("the connection to the relay failed: {}", crate::shown::lossy(&.0.to_string()))]
    RelayConnection(quinn::ConnectionError),
    #[error(transparent)]
    Relay(#[from] crate::relay_proto::RelayErrorKind),
    #[error("the other side left before the session started")]
    PeerLeft,
    #[error("the relay closed the connection")]
    RelayClosed,
    #[error("the relay sent something unexpected: {0}")]
    Unexpected(String),
    #[error("message error: {}", crate::shown::lossy(&.0.to_string()))]
    Wire(#[from] crate::wire::WireError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(
        "Wrong code: it does not match the one on the user's screen. That code no longer works; ask the user \
         for the new one their screen shows."
    )]
    WrongCode,
    #[error("the end-to-end connection to the peer failed: {}", crate::shown::lossy(&.0.to_string()))]
    EndToEnd(quinn::ConnectionError),
    #[error("timed out: {0}")]
    Timeout(&'static str),
    #[error("network error: {0}")]
    Io(#[from] std::io::Error),
    /// The technician token was not sent: it names another relay, or has no relay at all.
    #[error(transparent)]
    Token(#[from] crate::token::TokenError),
    /// The relay speaks an older protocol than this program.
    #[error("the relay is too old (it speaks protocol version {relay}, this program needs {ours}): update the relay")]
    RelayTooOld { relay: u32, ours: u32 },
    /// The relay speaks a newer protocol than this program.
    #[error("the relay is newer than this program (it speaks protocol version {relay}, this program {ours}): update Tether")]
    RelayTooNew { relay: u32, ours: u32 },
    /// The relay sent a message that does not decode, or holds a field this program refuses to show (a
    /// code that is not digits, a name with control characters). Nothing of it was used.
    #[error("the relay sent an invalid message ({0}); nothing of it was shown or used. The relay may be faulty or hostile")]
    RelayInvalid(crate::wire::WireError),
}

impl ClientError {
    /// Whether this is our own connection to the relay failing (as opposed to the peer misbehaving):
    /// nothing a peer sends can cause it.
    pub fn is_link_failure(&self) -> bool {
        matches!(
            self,
            Self::RelayUnreachable { .. }
                | Self::RelayCertificateChanged { .. }
                | Self::RelayCertificateUntrusted { .. }
                | Self::RelayCertificateInvalid { .. }
                | Self::Connect(_)
                | Self::RelayConnection(_)
                | Self::RelayClosed
                | Self::Io(_)
        )
    }
}

impl From<crate::pake::PakeError> for ClientError {
    fn from(_: crate::pake::PakeError) -> Self {
        Self::WrongCode
    }
}

impl RelaySpec {
    /// Resolve `HOST:PORT`. With a fingerprint the certificate is pinned; without, it must chain to the
    /// system's roots and name `HOST`.
    pub async fn resolve(
        text: &str,
        fingerprint: Option<crate::tls::Fingerprint>,
    ) -> Result<Self, ClientError> {
        let Some((host, port)) = text.rsplit_once(':').filter(|(_, port)| port.parse::<u16>().is_ok()) else {
            return Err(ClientError::RelayAddress(format!(
                "The relay address {:?} has no port: write it as HOST:PORT, e.g. relay.example.org:7700.",
                crate::shown::lossy(text)
            )));
        };
        let host = host.trim_matches(['[', ']']);
        let unknown = || {
            ClientError::RelayAddress(format!(
                "Cannot find the relay {:?}: no such host name. Check the relay address (HOST:PORT).",
                crate::shown::lossy(host)
            ))
        };
        let addr = tokio::net::lookup_host((host, port.parse::<u16>().unwrap_or_default()))
            .await
            .map_err(|_| unknown())?
            .next()
            .ok_or_else(unknown)?;
        let trust = fingerprint.map_or(RelayTrust::SystemRoots, RelayTrust::Pinned);
        Ok(Self { addr, server_name: host.to_owned(), trust, local_addr: None })
    }

    /// The relay a [`crate::relay_proto::RelayToClient::Redirect`] names, pinned to the fingerprint it
    /// gave, sending from `local_addr` as before.
    pub async fn redirected(
        to: &crate::relay_proto::RelayAddress,
        local_addr: Option<IpAddr>,
    ) -> Result<Self, ClientError> {
        let spec = Self::resolve(&to.address, Some(to.fingerprint())).await?;
        Ok(Self { local_addr, ..spec })
    }
}
