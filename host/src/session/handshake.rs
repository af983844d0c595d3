//! The start of a session: the viewer's control stream and hello (in time), the protocol version, and
//! the host user's consent. A session that does not start is refused the one way, [`refuse`]: the
//! reason on the control stream, then the connection closed.

use std::time::Duration;

use super::{SessionConfig, SessionError, SessionIo};
use crate::access::{self, AccessPolicy, Asker, Consent};
use quinn::{Connection, RecvStream, SendStream};
use tether_shared::net::pairing::{CLOSE_NORMAL, CLOSE_PROTOCOL};
use tether_shared::relay_proto::VerifiedTechnician;
use tether_shared::session_proto::{self as proto, priority, HelloReply, Permissions, RefusalReason};
use tether_shared::wire::{self, MAX_CONTROL_MSG};
use tether_shared::PROTOCOL_VERSION;

/// A viewer that said hello in our protocol version.
pub(super) struct Hello {
    pub send: SendStream,
    pub recv: RecvStream,
    /// As typed, made safe to show ([`sanitize_name`]).
    pub technician: String,
    pub want: Permissions,
}

/// Accept the control stream and read the hello, each within `cfg.hello_timeout`; refuse another
/// protocol version.
pub(super) async fn hello(conn: &Connection, cfg: &SessionConfig) -> Result<Hello, SessionError> {
    let (mut send, mut recv) = tokio::time::timeout(cfg.hello_timeout, conn.accept_bi())
        .await
        .map_err(|_| SessionError::NoHello("no control stream"))??;
    let _ = send.set_priority(priority::CONTROL);
    let hello = tokio::time::timeout(cfg.hello_timeout, wire::read_msg(&mut recv, MAX_CONTROL_MSG)).await;
    match hello {
        Ok(Ok(Some(proto::Hello { version, technician, want }))) => {
            if version != PROTOCOL_VERSION {
                let reason = RefusalReason::VersionMismatch { host: PROTOCOL_VERSION, viewer: version };
                refuse(conn, &mut send, reason).await;
                return Err(SessionError::VersionMismatch { viewer: version, host: PROTOCOL_VERSION });
            }
            Ok(Hello { send, recv, technician: sanitize_name(&technician), want })
        }
        Ok(Ok(None)) => Err(close_protocol(conn, "the control stream ended before Hello".into())),
        Ok(Err(e)) => Err(close_protocol(conn, e.to_string())),
        Err(_) => Err(SessionError::NoHello("no hello")),
    }
}

/// What the host grants: within `allowed`, without asking (headless) or as the user answers, and
/// whether an invited technician gets the session so far (only when the user says so: never headless).
/// `None` (nothing granted, the session is refused) when the user declines, does not answer, stops
/// sharing, or the viewer goes away meanwhile.
pub(super) async fn consent(
    conn: &Connection,
    cfg: &SessionConfig,
    io: &mut SessionIo,
    hello: &Hello,
    verified: Option<VerifiedTechnician>,
) -> Option<Consent> {
    match &io.access {
        AccessPolicy::Auto => {
            Some(Consent { granted: hello.want.intersect(cfg.allowed), share_history: false })
        }
        AccessPolicy::Ask(to) => tokio::select! {
            answer = access::ask(to, asker(io, hello, verified), hello.want, Permissions::default()) => {
                answer
                    .map(|c| Consent { granted: c.granted.intersect(cfg.allowed), ..c })
                    .filter(|c| c.granted != Permissions::default())
            }
            _ = io.stop.cancelled() => None,
            Some(_) = io.relay_gone.recv() => None,
            _ = conn.closed() => None,
        },
    }
}

fn asker(io: &SessionIo, hello: &Hello, verified: Option<VerifiedTechnician>) -> Asker {
    Asker {
        technician: hello.technician.clone(),
        verified,
        invited_by: io.invited_by.clone(),
        offers_history: io.invited_by.is_some(),
    }
}

/// Tell the viewer why there is no session, let that reach it (a moment at most), and close.
pub(super) async fn refuse(conn: &Connection, send: &mut SendStream, reason: RefusalReason) {
    let (code, why): (u32, &[u8]) = match reason {
        RefusalReason::VersionMismatch { .. } => (CLOSE_PROTOCOL, b"version mismatch"),
        RefusalReason::Declined => (CLOSE_NORMAL, b"declined"),
    };
    let _ = wire::write_msg(send, &HelloReply::Refused { reason }, MAX_CONTROL_MSG).await;
    let _ = send.finish();
    let _ = tokio::time::timeout(Duration::from_secs(1), send.stopped()).await;
    conn.close(code.into(), why);
}

fn close_protocol(conn: &Connection, why: String) -> SessionError {
    conn.close(CLOSE_PROTOCOL.into(), b"protocol error");
    SessionError::Protocol(why)
}

/// A name for display, bounded length: control, format and text-reordering characters escaped
/// ([`tether_shared::text::visible`]), so the name the user is asked to trust reads as it was typed.
fn sanitize_name(name: &str) -> String {
    let bounded: String = name.chars().take(64).collect();
    if bounded.trim().is_empty() {
        "(no name given)".into()
    } else {
        tether_shared::text::visible(&bounded).into_owned()
    }
}
