//! The control connection from a client to the relay: QUIC with the relay's certificate, one
//! bidirectional stream of framed [`ClientToRelay`] / [`RelayToClient`] messages.

use std::sync::Arc;

use quinn::{Endpoint, RecvStream, SendStream, TokioRuntime};

use super::socket::TaggedSocket;
use super::{ClientError, RelaySpec, Timeouts};
use crate::relay_proto::{ClientToRelay, RelayErrorKind, RelayToClient, Role};
use crate::tls::{self, Fingerprint, RelayTrust};
use crate::wire::{self, MAX_CONTROL_MSG};
use crate::PROTOCOL_VERSION;

pub struct RelayLink {
    pub(crate) endpoint: Endpoint,
    pub(crate) socket: Arc<TaggedSocket>,
    pub(crate) relay: RelaySpec,
    role: Role,
    timeouts: Timeouts,
    conn: quinn::Connection,
    send: SendStream,
    recv: RecvStream,
}

impl std::fmt::Debug for RelayLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RelayLink({})", self.conn.remote_address())
    }
}

impl RelayLink {
    /// Connect, say hello with our version and role, and wait for the relay's welcome.
    pub async fn connect(relay: &RelaySpec, role: Role, timeouts: &Timeouts) -> Result<Self, ClientError> {
        let socket = TaggedSocket::bind(relay.addr, relay.local_addr)?;
        let endpoint = Endpoint::new_with_abstract_socket(
            tls::endpoint_config(),
            None,
            socket.clone(),
            Arc::new(TokioRuntime),
        )?;
        Self::open(endpoint, socket, relay, role, timeouts).await
    }

    /// A new control connection on the same socket (so the end-to-end connection keeps its path), after
    /// the old one was lost.
    pub async fn reconnect(&self) -> Result<Self, ClientError> {
        Self::open(self.endpoint.clone(), self.socket.clone(), &self.relay, self.role, &self.timeouts).await
    }

    async fn open(
        endpoint: Endpoint,
        socket: Arc<TaggedSocket>,
        relay: &RelaySpec,
        role: Role,
        timeouts: &Timeouts,
    ) -> Result<Self, ClientError> {
        let transport = tls::transport(timeouts.relay_idle, Some(timeouts.keep_alive));
        let presented = Arc::default();
        let cfg = tls::relay_client_config_noting(&relay.trust, transport, Arc::clone(&presented))?;
        let conn = endpoint
            .connect_with(cfg, relay.addr, &relay.server_name)?
            .await
            .map_err(|source| unreachable(relay, source, presented.get().copied()))?;
        let (send, recv) = conn.open_bi().await.map_err(ClientError::RelayConnection)?;
        let (relay, timeouts) = (relay.clone(), *timeouts);
        let mut link = Self { endpoint, socket, relay, role, timeouts, conn, send, recv };
        link.send(&ClientToRelay::Hello { version: PROTOCOL_VERSION, role }).await?;
        match link.recv().await {
            Ok(RelayToClient::Welcome { version }) => check_version(version).map(|()| link),
            Ok(other) => Err(ClientError::Unexpected(format!("{other:?} instead of Welcome"))),
            // A relay of another version may answer with its own message set: say what matters.
            Err(ClientError::Relay(kind @ RelayErrorKind::VersionMismatch { relay, .. })) => {
                Err(check_version(relay).err().unwrap_or(ClientError::Relay(kind)))
            }
            Err(e) => Err(e),
        }
    }

    pub async fn send(&mut self, msg: &ClientToRelay) -> Result<(), ClientError> {
        wire::write_msg(&mut self.send, msg, MAX_CONTROL_MSG).await.map_err(|e| self.explain(e))
    }

    /// The next message; the relay's `Error` becomes [`ClientError::Relay`], a message that does not
    /// decode (or fails a field's check, e.g. a nameplate that is not digits) [`ClientError::RelayInvalid`].
    pub async fn recv(&mut self) -> Result<RelayToClient, ClientError> {
        let read = wire::read_msg(&mut self.recv, MAX_CONTROL_MSG).await;
        self.received(read)
    }

    /// [`Self::recv`], sending whatever comes on `outbound` meanwhile (a message being read is never cut
    /// short: the read goes on while a message is written). `outbound` closed: just the read.
    pub async fn recv_sending(
        &mut self,
        outbound: &mut tokio::sync::mpsc::UnboundedReceiver<ClientToRelay>,
    ) -> Result<RelayToClient, ClientError> {
        let read = {
            let (recv, send) = (&mut self.recv, &mut self.send);
            let reading = wire::read_msg(recv, MAX_CONTROL_MSG);
            tokio::pin!(reading);
            let mut open = true;
            loop {
                tokio::select! {
                    read = &mut reading => break read,
                    out = outbound.recv(), if open => match out {
                        // A failed write shows as the link's loss on the read.
                        Some(msg) => { let _ = wire::write_msg(send, &msg, MAX_CONTROL_MSG).await; }
                        None => open = false,
                    },
                }
            }
        };
        self.received(read)
    }

    fn received(
        &self,
        read: Result<Option<RelayToClient>, wire::WireError>,
    ) -> Result<RelayToClient, ClientError> {
        match read {
            Ok(Some(RelayToClient::Error { kind })) => Err(ClientError::Relay(kind)),
            Ok(Some(msg)) => Ok(msg),
            Ok(None) => Err(ClientError::RelayClosed),
            Err(e @ (wire::WireError::Malformed(_) | wire::WireError::TooLarge { .. })) => {
                Err(ClientError::RelayInvalid(e))
            }
            Err(e) => Err(self.explain(e)),
        }
    }

    /// Prefer the connection's close reason over a bare stream error.
    fn explain(&self, e: wire::WireError) -> ClientError {
        match self.conn.close_reason() {
            Some(reason) => ClientError::RelayConnection(reason),
            None => ClientError::Wire(e),
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The UDP socket this client's connections share (the load benchmark sends tagged datagrams
    /// through it without QUIC, to load a relay cheaply).
    pub fn socket(&self) -> &Arc<TaggedSocket> {
        &self.socket
    }

    /// The relay this link is connected to, as this client knows it.
    pub fn relay(&self) -> &RelaySpec {
        &self.relay
    }

    /// Close the control connection politely.
    pub fn close(&self) {
        self.conn.close(0u32.into(), b"bye");
    }
}

/// The relay's announced version against ours: a clear "update the relay" or "update Tether".
fn check_version(relay: u32) -> Result<(), ClientError> {
    match relay.cmp(&PROTOCOL_VERSION) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Less => Err(ClientError::RelayTooOld { relay, ours: PROTOCOL_VERSION }),
        std::cmp::Ordering::Greater => Err(ClientError::RelayTooNew { relay, ours: PROTOCOL_VERSION }),
    }
}

/// Why the relay could not be reached, in the words a person needs: a certificate other than the pinned
/// one (with the one it has now), one no trusted authority signed, one not valid for the name; otherwise
/// the connection error as it is.
fn unreachable(
    relay: &RelaySpec,
    source: quinn::ConnectionError,
    presented: Option<Fingerprint>,
) -> ClientError {
    let host = relay.server_name.clone();
    // TLS alerts travel as QUIC's "crypto error" codes 0x100 + alert (RFC 9001 §4.8).
    let alert = match &source {
        quinn::ConnectionError::TransportError(e) => {
            u64::from(e.code).checked_sub(0x100).filter(|a| *a < 0x100)
        }
        _ => None,
    };
    match (&relay.trust, alert, presented) {
        (RelayTrust::Pinned(given), _, Some(presented)) if presented != *given => {
            ClientError::RelayCertificateChanged { host, given: *given, presented }
        }
        // unknown_ca
        (RelayTrust::SystemRoots, Some(48), _) => ClientError::RelayCertificateUntrusted { host },
        // bad_certificate, unsupported_certificate, certificate_revoked, certificate_expired,
        // certificate_unknown
        (RelayTrust::SystemRoots, Some(42..=46), _) => {
            let reason = match &source {
                quinn::ConnectionError::TransportError(e) => e.reason.clone(),
                other => other.to_string(),
            };
            ClientError::RelayCertificateInvalid { host, reason }
        }
        _ => ClientError::RelayUnreachable { addr: relay.addr, source },
    }
}
