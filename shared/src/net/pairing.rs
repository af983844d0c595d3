//! From a one-time code to an authenticated end-to-end QUIC connection.
//!
//! Host: [`HostRendezvous::connect`] → [`HostRendezvous::register`] (show the code) →
//! [`HostRendezvous::wait_for_viewer`], which returns either a [`Session`] or why it must start over
//! ([`Restart`]: the code expired, someone tried a wrong code, the viewer left before or during the
//! pairing, or the user asked for a new code).
//! Viewer: [`connect_viewer`] with the code the user read.
//!
//! Both sides run the same steps once the relay has matched them: SPAKE2 over the relay, key confirmation
//! carrying each side's certificate fingerprint, a commitment to the session's resume id (`ResumeCommit`),
//! `PairingResult`, then a QUIC connection viewer → host through the relay whose TLS verifiers accept only
//! the confirmed fingerprints. Any failure ends the attempt; nothing falls back. The steps are a pure state
//! machine ([`super::handshake::Handshake`]); [`drive`] here is its thin async shell.
//!
//! Once paired, [`Session::spawn_relay_watch`] keeps the control link: it reports the peer leaving (or the
//! relay ending the session) to the session, whose [`crate::end::EndArbiter`] decides the end, and, when
//! the relay is lost, reconnects and rejoins with the resume id while the end-to-end connection waits
//! ([`RelayEvent`]).

use std::time::{Duration, Instant};

use quinn::Connection;

use super::handshake::{Action, Failure, Handshake, Progress};
use super::link::RelayLink;
use super::{ClientError, RelaySpec, Timeouts};
use crate::code::{Code, Secret};
use crate::relay_proto::{
    ClientToRelay, RelayAddress, RelayErrorKind, RelayToClient, Role, VerifiedTechnician,
};
use crate::tls::{self, Fingerprint, Identity};
use crate::token::{TechnicianToken, Token};

/// A paired session: the end-to-end connection plus the control link that keeps the relay's route alive.
#[derive(Debug)]
pub struct Session {
    pub conn: Connection,
    pub peer_fingerprint: Fingerprint,
    /// Lets the two ends find each other again on a relay that lost them (see `spawn_relay_watch`).
    pub resume_id: [u8; 32],
    pub link: RelayLink,
    /// On the host: the technician's account as the relay verified it (`None`: no account, the name the
    /// viewer sends is unverified), with `verified_by` set to the relay this host connected to. Always
    /// `None` on the viewer.
    pub technician: Option<VerifiedTechnician>,
}

/// What the relay watch reports to the session (and so to the people using it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayEvent {
    /// The relay is out of reach. The session waits — up to the end-to-end idle timeout — while the watch
    /// rejoins; transfers and the screen pick up where they were.
    Lost,
    /// Back on the relay with the peer; traffic flows again.
    Rejoined,
    /// The peer left (`None`), or the relay ended the session (its reason). The session's
    /// [`crate::end::EndArbiter`] decides what that means for the end ([`crate::end::EndEvent::RelayGone`]).
    PeerGone(Option<RelayErrorKind>),
}

impl Session {
    /// Watch the control link for the relay's word that the peer left (or that the relay ended the
    /// session, e.g. because the technician's account was revoked) and report it
    /// ([`RelayEvent::PeerGone`]): the session decides the end and closes the end-to-end connection. A
    /// lost relay is reported ([`RelayEvent::Lost`]) and rejoined ([`RelayEvent::Rejoined`]) while the
    /// end-to-end connection waits.
    ///
    /// The watch reads the link until the relay's word comes or the session aborts it (once its
    /// end-to-end connection has closed and its end is decided): so the relay's reason still reaches the
    /// session's [`crate::end::EndArbiter`] while it weighs the peer's close, which may overtake it. A
    /// leaving side aborts it only after its `Bye` was acknowledged, so the relay's notice to the peer
    /// comes after the `Bye`.
    ///
    /// `leaving` is cancelled by a side that has decided to leave: the relay dropping the link after that
    /// (it may, once the peer has closed) is part of leaving, not a loss to report or rejoin.
    ///
    /// `outbound`: messages for the relay during the session (the host's record heads), sent on the link
    /// as they come (on the new link after a rejoin).
    pub fn spawn_relay_watch(
        mut link: RelayLink,
        conn: Connection,
        resume_id: [u8; 32],
        leaving: tokio_util::sync::CancellationToken,
        mut outbound: Option<tokio::sync::mpsc::UnboundedReceiver<ClientToRelay>>,
        mut on_event: impl FnMut(RelayEvent) + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let received = match outbound.as_mut() {
                    Some(outbound) => link.recv_sending(outbound).await,
                    None => link.recv().await,
                };
                match received {
                    Ok(RelayToClient::PeerGone) => {
                        on_event(RelayEvent::PeerGone(None));
                        break;
                    }
                    Ok(_) => continue,
                    // The relay ended the session (e.g. the technician's account was revoked).
                    Err(ClientError::Relay(kind)) => {
                        on_event(RelayEvent::PeerGone(Some(kind)));
                        break;
                    }
                    // The relay went away (restart, network): find the peer again on it, while the
                    // end-to-end connection waits (its idle timeout is the limit).
                    Err(e) => {
                        // A session that has closed has nothing to rejoin: the relay's link ending now is
                        // part of leaving, not a loss.
                        if leaving.is_cancelled() || conn.close_reason().is_some() {
                            break;
                        }
                        tracing::warn!("lost the relay ({e}); rejoining");
                        on_event(RelayEvent::Lost);
                        tokio::select! {
                            rejoined = rejoin(&link, resume_id) => match rejoined {
                                Ok(new_link) => {
                                    link = new_link;
                                    on_event(RelayEvent::Rejoined);
                                }
                                // The relay will not rejoin this session (e.g. the technician's
                                // account was revoked meanwhile): end it and say why.
                                Err(kind) => {
                                    on_event(RelayEvent::PeerGone(Some(kind)));
                                    break;
                                }
                            },
                            // Nothing left to rejoin for.
                            _ = conn.closed() => break,
                        }
                    }
                }
            }
            // Keep the relay's route until the session has closed the end-to-end connection.
            conn.closed().await;
            link.close();
        })
    }
}

/// Reconnect to the relay and rejoin the session; retried until the end-to-end connection gives up, or
/// the relay refuses for good (the account was revoked, the relay knows no such session).
async fn rejoin(link: &RelayLink, resume_id: [u8; 32]) -> Result<RelayLink, RelayErrorKind> {
    loop {
        match try_rejoin(link, resume_id).await {
            Ok(new_link) => {
                tracing::info!("rejoined the session on the relay");
                return Ok(new_link);
            }
            Err(ClientError::Relay(kind @ (RelayErrorKind::Revoked | RelayErrorKind::UnknownSession))) => {
                tracing::warn!("the relay refused to rejoin: {kind}");
                return Err(kind);
            }
            Err(e) => {
                tracing::debug!("rejoin failed: {e}");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }
}

async fn try_rejoin(link: &RelayLink, resume_id: [u8; 32]) -> Result<RelayLink, ClientError> {
    let mut new_link = link.reconnect().await?;
    new_link.send(&ClientToRelay::Rejoin { resume_id }).await?;
    match new_link.recv().await? {
        RelayToClient::Rejoined { tag } => {
            new_link.socket.set_tag(tag);
            Ok(new_link)
        }
        other => Err(ClientError::Unexpected(format!("{other:?} instead of Rejoined"))),
    }
}

/// Application close codes of the end-to-end connection (defined with the reasons they carry).
pub use crate::end::{
    CLOSE_NORMAL, CLOSE_PEER_GONE, CLOSE_PROTOCOL, CLOSE_RELAY_ENDED, CLOSE_STOPPED_BY_USER,
};

/// Why the host must show a new code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    Expired,
    /// Someone tried a wrong code (or tampered with the pairing); the code is burned.
    WrongCode,
    /// The viewer left before it could have tested a guess (it never sent its PAKE message).
    PeerLeft,
    /// The host user asked for a new code.
    Requested,
    /// Someone claimed the code and could have tested a guess, but the pairing did not finish: it broke the
    /// protocol (a message out of order), went silent until the deadline, or left after the host's key
    /// confirmation — which tells a guesser whether its guess was right as surely as a wrong-code verdict.
    Abandoned,
    /// The connection to the relay broke while the code waited, unclaimed ([`HostOutcome::RelayLost`]);
    /// the new code may come from another relay of the organization.
    RelayLost,
}

impl Restart {
    /// What happened to the old code, as the host's user reads it.
    pub fn explain(self) -> &'static str {
        match self {
            Restart::Expired => "The code expired; a new one was made.",
            Restart::WrongCode => {
                "Someone tried a wrong code. That code no longer works; a new one was made."
            }
            Restart::PeerLeft => "Someone started connecting and left; a new code was made.",
            Restart::Requested => "You asked for a new code. The old one no longer works.",
            Restart::Abandoned => {
                "Someone entered a code and did not finish connecting. That code no longer works; a new one \
                 was made."
            }
            Restart::RelayLost => "The connection to the relay was lost; a new code was made.",
        }
    }

    /// Whether this attempt could have been a guess at the secret, and so counts against the host's limit
    /// of wrong codes in a row.
    pub fn is_failed_guess(self) -> bool {
        matches!(self, Self::WrongCode | Self::Abandoned)
    }
}

pub enum HostOutcome {
    Paired(Session),
    Restart(HostRendezvous, Restart),
    /// The connection to the relay broke while the code waited and nobody had claimed it, so nobody could
    /// have tested a guess: connect again (to whichever relay answers) and show a new code
    /// ([`Restart::RelayLost`]). A break once a viewer has joined stays an error: it may follow a guess.
    RelayLost(ClientError),
}

/// A host connected to the relay, able to register codes and wait for a viewer.
pub struct HostRendezvous {
    link: RelayLink,
    identity: Identity,
    timeouts: Timeouts,
}

impl std::fmt::Debug for HostRendezvous {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HostRendezvous({:?})", self.link)
    }
}

impl HostRendezvous {
    pub async fn connect(relay: &RelaySpec, timeouts: Timeouts) -> Result<Self, ClientError> {
        Self::connect_nearest(std::slice::from_ref(relay), timeouts).await
    }

    /// [`Self::connect`] to whichever of an organization's `relays` answers first
    /// ([`super::nearest`]).
    pub async fn connect_nearest(relays: &[RelaySpec], timeouts: Timeouts) -> Result<Self, ClientError> {
        let link = super::nearest::connect_first(relays, Role::Host, &timeouts).await?;
        let identity = Identity::generate(&[tls::E2E_SERVER_NAME])?;
        Ok(Self { link, identity, timeouts })
    }

    /// The relay this host is on.
    pub fn relay(&self) -> &RelaySpec {
        self.link.relay()
    }

    /// Ask the relay for a nameplate and make a fresh secret: the code to show, and how long it lives.
    pub async fn register(&mut self) -> Result<(Code, Duration), ClientError> {
        self.register_with(ClientToRelay::Register).await
    }

    /// [`Self::register`] for an invite into the live session whose resume commitment is `session`
    /// ([`crate::relay_proto::resume_commitment`]): the relay's audit row links the two.
    pub async fn register_invite(&mut self, session: [u8; 32]) -> Result<(Code, Duration), ClientError> {
        self.register_with(ClientToRelay::RegisterInvite { session }).await
    }

    async fn register_with(&mut self, message: ClientToRelay) -> Result<(Code, Duration), ClientError> {
        self.link.send(&message).await?;
        match self.link.recv().await? {
            RelayToClient::Registered { nameplate, expires_in_ms } => {
                Ok((Code { nameplate, secret: Secret::generate() }, Duration::from_millis(expires_in_ms)))
            }
            other => Err(ClientError::Unexpected(format!("{other:?} instead of Registered"))),
        }
    }

    /// Wait until a viewer claims `code`, then pair. Blocks until the code expires at the latest.
    ///
    /// Whatever the claiming client does — a wrong code, messages out of order, silence, leaving halfway —
    /// ends in a [`HostOutcome::Restart`], never in an error: an error here would end the host, and anyone
    /// who can claim a nameplate could sweep every waiting host away. Only a failure of the host's own link
    /// to the relay is an error. After anything but a clean verdict the link's state is unknown, so the host
    /// drops it (which retires the code at the relay) and connects afresh.
    pub async fn wait_for_viewer(mut self, code: &Code) -> Result<HostOutcome, ClientError> {
        let (tag, technician) = match self.link.recv().await {
            Ok(RelayToClient::PeerJoined { tag, technician }) => {
                // The relay's claim, and the one part that is ours: which relay made it.
                let verified_by = self.link.relay().server_name.clone();
                (tag, technician.map(|t| VerifiedTechnician { verified_by, ..t }))
            }
            Ok(RelayToClient::CodeExpired) => return Ok(HostOutcome::Restart(self, Restart::Expired)),
            Ok(other) => return Err(ClientError::Unexpected(format!("{other:?} while waiting"))),
            Err(e) if e.is_link_failure() => {
                self.link.close();
                return Ok(HostOutcome::RelayLost(e));
            }
            Err(e) => return Err(e),
        };
        self.link.socket.set_tag(tag);
        let deadline = Instant::now() + self.timeouts.pairing;
        let why = match self.pair(code, deadline).await {
            Ok(Paired::Connected(conn, peer, resume_id)) => {
                return Ok(HostOutcome::Paired(Session {
                    conn,
                    peer_fingerprint: peer,
                    resume_id,
                    link: self.link,
                    technician,
                }))
            }
            Ok(Paired::Failed(Failure::WrongCode, _)) => {
                self.link.endpoint.set_server_config(None);
                return Ok(HostOutcome::Restart(self, Restart::WrongCode));
            }
            Ok(Paired::Failed(Failure::PeerLeft, progress)) if !progress.peer_pake => {
                return Ok(HostOutcome::Restart(self, Restart::PeerLeft))
            }
            Ok(Paired::Failed(failure, _)) => format!("{failure:?}"),
            Err(e) if e.is_link_failure() => return Err(e),
            Err(e) => e.to_string(),
        };
        tracing::info!("pairing attempt abandoned: {why}");
        self.link.close();
        let fresh = Self::connect(&self.link.relay, self.timeouts).await?;
        Ok(HostOutcome::Restart(fresh, Restart::Abandoned))
    }

    /// Run the handshake; once both keys are confirmed, accept the viewer's end-to-end connection (by
    /// `deadline` too).
    async fn pair(&mut self, code: &Code, deadline: Instant) -> Result<Paired, ClientError> {
        let (handshake, first) = Handshake::start(
            Role::Host,
            &code.nameplate,
            &code.secret,
            self.identity.fingerprint(),
            deadline,
        );
        let (identity, endpoint, timeouts) = (&self.identity, self.link.endpoint.clone(), self.timeouts);
        // The viewer may connect as soon as the relay says ready: be ready for exactly that peer first.
        let accept_only = |peer| {
            let transport = tls::e2e_transport(timeouts.e2e_idle, Some(timeouts.keep_alive));
            endpoint.set_server_config(Some(tls::e2e_server_config(identity, peer, transport)?));
            Ok(())
        };
        let (peer, resume_id) = match drive(&mut self.link, handshake, first, accept_only).await? {
            Driven::Ready { peer, resume_id } => (peer, resume_id),
            Driven::Failed(failure, progress) => return Ok(Paired::Failed(failure, progress)),
        };
        let accepted = tokio::time::timeout_at(deadline.into(), self.accept_viewer()).await;
        self.link.endpoint.set_server_config(None);
        match accepted {
            Ok(conn) => Ok(Paired::Connected(conn?, peer, resume_id)),
            Err(_) => Ok(Paired::Failed(Failure::TimedOut, Progress { peer_pake: true })),
        }
    }

    async fn accept_viewer(&self) -> Result<Connection, ClientError> {
        let virtual_peer = self.link.socket.virtual_peer();
        loop {
            let incoming = self.link.endpoint.accept().await.ok_or(ClientError::RelayClosed)?;
            if incoming.remote_address() != virtual_peer {
                incoming.refuse();
                continue;
            }
            return incoming.accept().map_err(ClientError::EndToEnd)?.await.map_err(ClientError::EndToEnd);
        }
    }
}

/// The viewer's whole pairing: claim the nameplate (with the technician's account token, if any), run the
/// PAKE, connect end to end.
///
/// A token is sent only to the relay it names: one for another relay (or of the old format, naming
/// none) fails with [`ClientError::Token`] before anything is sent anywhere. If that relay answers the
/// claim with a redirect to another relay of its organization, the viewer claims there, with the token:
/// the relay it trusted with the token vouches for the other (its address and certificate fingerprint,
/// which the viewer pins).
pub async fn connect_viewer(
    relay: &RelaySpec,
    code: &Code,
    timeouts: Timeouts,
    token: Option<&str>,
) -> Result<Session, ClientError> {
    if let Some(text) = token {
        TechnicianToken::parse(text)?.check_relay(relay)?;
    }
    let token = token.map(|t| Token::new(t.trim()));
    let (mut link, tag) = match claim(relay, code, token.clone(), &timeouts).await? {
        Claimed::Joined(link, tag) => (link, tag),
        // The code waits on another relay of the organization: claim it there, once. The token goes
        // along: it named the relay that vouches for the other.
        Claimed::Redirect(link, to) => {
            link.close();
            let there = RelaySpec::redirected(&to, relay.local_addr).await?;
            tracing::info!(relay = %to.address, "the code waits on another relay of the organization");
            match claim(&there, code, token, &timeouts).await? {
                Claimed::Joined(link, tag) => (link, tag),
                Claimed::Redirect(link, _) => {
                    link.close();
                    return Err(ClientError::Unexpected("a second redirect (the relays disagree)".into()));
                }
            }
        }
    };
    link.socket.set_tag(tag);
    let deadline = Instant::now() + timeouts.pairing;
    let identity = Identity::generate(&["viewer.tether.invalid"])?;
    let (handshake, first) =
        Handshake::start(Role::Viewer, &code.nameplate, &code.secret, identity.fingerprint(), deadline);
    let (peer, resume_id) = match drive(&mut link, handshake, first, |_| Ok(())).await? {
        Driven::Ready { peer, resume_id } => (peer, resume_id),
        Driven::Failed(failure, _) => {
            return Err(match failure {
                Failure::WrongCode => ClientError::WrongCode,
                Failure::PeerLeft => ClientError::PeerLeft,
                Failure::Relay(kind) => ClientError::Relay(kind),
                Failure::Unexpected(what) => ClientError::Unexpected(what),
                Failure::TimedOut => ClientError::Timeout("pairing with the host"),
            })
        }
    };
    let transport = tls::e2e_transport(timeouts.e2e_idle, Some(timeouts.keep_alive));
    let cfg = tls::e2e_client_config(&identity, peer, transport)?;
    let connecting = link.endpoint.connect_with(cfg, link.socket.virtual_peer(), tls::E2E_SERVER_NAME)?;
    let conn = tokio::time::timeout_at(deadline.into(), connecting)
        .await
        .map_err(|_| ClientError::Timeout("pairing with the host"))?
        .map_err(ClientError::EndToEnd)?;
    Ok(Session { conn, peer_fingerprint: peer, resume_id, link, technician: None })
}

/// What a claim got: matched with the host (the link, our tag), or sent to another relay.
enum Claimed {
    Joined(RelayLink, u64),
    Redirect(RelayLink, RelayAddress),
}

/// Connect to `relay` as a viewer and claim `code`'s nameplate.
async fn claim(
    relay: &RelaySpec,
    code: &Code,
    token: Option<Token>,
    timeouts: &Timeouts,
) -> Result<Claimed, ClientError> {
    let mut link = RelayLink::connect(relay, Role::Viewer, timeouts).await?;
    link.send(&ClientToRelay::Claim { nameplate: code.nameplate.clone(), token }).await?;
    match link.recv().await? {
        RelayToClient::PeerJoined { tag, .. } => Ok(Claimed::Joined(link, tag)),
        RelayToClient::Redirect { relay } => Ok(Claimed::Redirect(link, relay)),
        other => Err(ClientError::Unexpected(format!("{other:?} instead of PeerJoined"))),
    }
}

/// How a host's pairing attempt ended.
enum Paired {
    Connected(Connection, Fingerprint, [u8; 32]),
    Failed(Failure, Progress),
}

/// What driving a [`Handshake`] to its end gave.
enum Driven {
    Ready { peer: Fingerprint, resume_id: [u8; 32] },
    Failed(Failure, Progress),
}

/// The async shell of a [`Handshake`]: send `first`, then feed the machine each relay message (or the
/// deadline) and do what it says until it settles. `on_confirmed` runs when both keys are confirmed,
/// before our verdict leaves. Only our own link failing is an error; everything the peer or the relay
/// sends ends in a [`Driven`].
async fn drive(
    link: &mut RelayLink,
    mut handshake: Handshake,
    first: ClientToRelay,
    mut on_confirmed: impl FnMut(Fingerprint) -> Result<(), ClientError>,
) -> Result<Driven, ClientError> {
    link.send(&first).await?;
    loop {
        let action = tokio::select! {
            received = link.recv() => match received {
                Ok(msg) => handshake.handle(msg),
                Err(ClientError::Relay(kind)) => handshake.handle_error(kind),
                Err(e) => return Err(e),
            },
            () = tokio::time::sleep_until(handshake.deadline().into()) => {
                match handshake.poll_timeout(Instant::now()) {
                    Some(action) => action,
                    None => continue,
                }
            }
        };
        match action {
            Action::Send(msgs) => {
                for msg in &msgs {
                    link.send(msg).await?;
                }
            }
            Action::Wait => {}
            Action::Confirmed { peer, then_send, .. } => {
                on_confirmed(peer)?;
                for msg in &then_send {
                    link.send(msg).await?;
                }
            }
            Action::Ready { peer, resume_id } => return Ok(Driven::Ready { peer, resume_id }),
            Action::Failed(failure) => return Ok(Driven::Failed(failure, handshake.progress())),
        }
    }
}
