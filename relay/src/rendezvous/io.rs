//! Framed messages on a client's control stream, with the relay's error handling.

use quinn::{Connection, RecvStream, SendStream};
use tether_shared::relay_proto::{ClientToRelay, RelayErrorKind, RelayToClient, Role};
use tether_shared::wire::{self, WireError, MAX_CONTROL_MSG};
use tether_shared::PROTOCOL_VERSION;

pub const CLOSE_PROTOCOL: u32 = 1;
pub const CLOSE_TIMEOUT: u32 = 2;
/// Over a connection cap.
pub const CLOSE_BUSY: u32 = 3;

/// Why a client's hello was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum HelloError {
    /// The stream failed or carried no readable message.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The hello was read but refused (wrong version, another message first); the client was told this.
    #[error("refused: {0}")]
    Refused(RelayErrorKind),
}

/// The close code that goes with a relay error.
pub fn close_code(kind: &RelayErrorKind) -> u32 {
    match kind {
        RelayErrorKind::Timeout => CLOSE_TIMEOUT,
        _ => CLOSE_PROTOCOL,
    }
}

pub struct ClientIo {
    conn: Connection,
    send: SendStream,
    recv: RecvStream,
}

impl ClientIo {
    /// Accept the client's control stream and read its hello. A wrong version is answered with an error
    /// naming both versions.
    pub async fn accept(conn: Connection) -> Result<(Self, Role), HelloError> {
        let (send, recv) = conn.accept_bi().await.map_err(|e| WireError::Io(e.into()))?;
        let mut io = Self { conn, send, recv };
        match io.recv_raw().await {
            Ok(Some(ClientToRelay::Hello { version, role })) if version == PROTOCOL_VERSION => Ok((io, role)),
            Ok(Some(ClientToRelay::Hello { version, .. })) => {
                let kind = RelayErrorKind::VersionMismatch { relay: PROTOCOL_VERSION, client: version };
                io.fail(kind.clone()).await;
                Err(HelloError::Refused(kind))
            }
            Ok(other) => {
                let kind = RelayErrorKind::Protocol(format!("expected Hello, got {other:?}"));
                io.fail(kind.clone()).await;
                Err(HelloError::Refused(kind))
            }
            Err(e) => {
                io.fail(RelayErrorKind::Protocol(e.to_string())).await;
                Err(HelloError::Wire(e))
            }
        }
    }

    async fn recv_raw(&mut self) -> Result<Option<ClientToRelay>, WireError> {
        wire::read_msg(&mut self.recv, MAX_CONTROL_MSG).await
    }

    /// The next message; `Ok(None)` when the client closed. A malformed message is a protocol error.
    pub async fn recv(&mut self) -> Result<Option<ClientToRelay>, RelayErrorKind> {
        match self.recv_raw().await {
            Ok(msg) => Ok(msg),
            Err(WireError::Io(_)) => Ok(None), // connection lost: nothing to tell anyone
            Err(e) => Err(RelayErrorKind::Protocol(e.to_string())),
        }
    }

    pub async fn send(&mut self, msg: &RelayToClient) -> Result<(), RelayErrorKind> {
        wire::write_msg(&mut self.send, msg, MAX_CONTROL_MSG)
            .await
            .map_err(|e| RelayErrorKind::Protocol(format!("could not send: {e}")))
    }

    /// Tell the client an error, but keep the connection (it may try again).
    pub async fn notify(&mut self, kind: RelayErrorKind) -> Result<(), RelayErrorKind> {
        self.send(&RelayToClient::Error { kind }).await
    }

    /// Tell the client an error and close the connection.
    ///
    /// The close waits until the client has the whole stream, error included (`stopped()`: every byte
    /// acknowledged): a close frame sent sooner can overtake the error, and the client would see a bare
    /// close instead of why. No timer of its own: a client that never acknowledges is bounded by the
    /// connection's idle timeout (`stopped()` fails then) and by the caller's deadline (the handshake
    /// deadline before the hello, the relay's idle timeout after it; see [`super::serve`]).
    pub async fn fail(&mut self, kind: RelayErrorKind) {
        let _ = self.send(&RelayToClient::Error { kind: kind.clone() }).await;
        let _ = self.send.finish();
        let _ = self.send.stopped().await;
        let reason = kind.to_string();
        self.conn.close(close_code(&kind).into(), &reason.as_bytes()[..reason.len().min(120)]);
    }

    /// Whether the client vanished (its connection timed out) rather than closing.
    pub fn vanished(&self) -> bool {
        matches!(self.conn.close_reason(), Some(quinn::ConnectionError::TimedOut))
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.conn.remote_address()
    }
}
