//! Pairing as a pure state machine: what one end (host or viewer) does with each relay message between
//! `PeerJoined` and `SessionReady`. No I/O and no clock of its own: the async shell in [`super::pairing`]
//! feeds it messages with [`Handshake::handle`] (and the relay's errors with [`Handshake::handle_error`]),
//! sends what it returns, and asks [`Handshake::poll_timeout`] whether the deadline has passed.
//!
//! ```text
//!            start ─► Pake
//! AwaitPake ── PeerPake ──► Confirm ──► AwaitConfirm ── PeerConfirm ──► Confirmed{peer} ──► AwaitReady
//!     │ key exchange fails              │ confirmation fails                                   │
//!     └──────────► PairingResult{ok:false} ──► AwaitVerdict ── PairingFailed / WrongCode ──► WrongCode
//!                                                         AwaitReady ── SessionReady ──► Ready
//! ```
//!
//! Every other message, in any state, ends the attempt with a typed [`Failure`], never a panic: a
//! claiming client (or the relay) chooses what arrives here. [`Progress::peer_pake`] tells a visitor who
//! left before guessing from one who could have tested a guess (its PAKE message arrived, and the host's
//! key confirmation tells it whether the guess was right).

use std::time::Instant;

use crate::code::{Nameplate, Secret};
use crate::pake::{self, PakeStart, SessionKeys};
use crate::relay_proto::{resume_commitment, ClientToRelay, RelayErrorKind, RelayToClient, Role};
use crate::tls::Fingerprint;

/// What the shell does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Send these to the relay (in order), then wait for the next message.
    Send(Vec<ClientToRelay>),
    /// Nothing to send: wait for the next message.
    Wait,
    /// Both keys confirmed: the peer's certificate is `peer`. The host installs its end-to-end server
    /// configuration for it *before* sending `then_send` (the viewer may connect as soon as the relay says
    /// ready); then wait for the relay's verdict.
    Confirmed { peer: Fingerprint, resume_id: [u8; 32], then_send: Vec<ClientToRelay> },
    /// The relay says both sides confirmed: connect end to end, to the peer confirmed before.
    Ready { peer: Fingerprint, resume_id: [u8; 32] },
    /// The attempt is over without a session.
    Failed(Failure),
}

/// Why a pairing attempt ended without a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The code was wrong (or the exchange was tampered with), on either side; the relay has given its
    /// verdict.
    WrongCode,
    /// The peer left (`PeerGone`).
    PeerLeft,
    /// A message that has no place in this state.
    Unexpected(String),
    /// The relay ended the attempt with this error.
    Relay(RelayErrorKind),
    /// The deadline passed.
    TimedOut,
}

/// How far the attempt got, for telling a guess from a visit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// The peer sent its PAKE message: from here on it can learn whether its guess was right.
    pub peer_pake: bool,
}

#[derive(Debug)]
enum State {
    AwaitPake(PakeStart),
    AwaitConfirm(SessionKeys),
    /// We sent `PairingResult { ok: false }` and wait for the relay to settle the attempt.
    AwaitVerdict,
    AwaitReady {
        peer: Fingerprint,
        resume_id: [u8; 32],
    },
    Done,
}

/// One end's pairing, from the moment the relay matched the two ends.
#[derive(Debug)]
pub struct Handshake {
    state: State,
    ours: Fingerprint,
    deadline: Instant,
    progress: Progress,
}

impl Handshake {
    /// Start pairing as `role` with the code's nameplate and secret, offering our certificate `ours`;
    /// the attempt must be settled by `deadline`. Returns the machine and the PAKE message to send.
    pub fn start(
        role: Role,
        nameplate: &Nameplate,
        secret: &Secret,
        ours: Fingerprint,
        deadline: Instant,
    ) -> (Self, ClientToRelay) {
        let (start, msg) = pake::start(role, nameplate, secret);
        let machine = Self { state: State::AwaitPake(start), ours, deadline, progress: Progress::default() };
        (machine, ClientToRelay::Pake { msg })
    }

    /// How far the attempt got.
    pub fn progress(&self) -> Progress {
        self.progress
    }

    /// The deadline, for the shell's timer.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// A message from the relay.
    pub fn handle(&mut self, msg: RelayToClient) -> Action {
        let state = std::mem::replace(&mut self.state, State::Done);
        let (next, action) = match (state, msg) {
            (State::Done, msg) => (State::Done, unexpected(&msg, "after the attempt ended")),
            // We know the code was wrong: a peer that leaves now changes nothing.
            (State::AwaitVerdict, RelayToClient::PeerGone) => {
                (State::Done, Action::Failed(Failure::WrongCode))
            }
            (_, RelayToClient::PeerGone) => (State::Done, Action::Failed(Failure::PeerLeft)),
            (State::AwaitPake(start), RelayToClient::PeerPake { msg }) => {
                self.progress.peer_pake = true;
                match start.finish(&msg) {
                    Ok(keys) => {
                        let confirm = keys.confirm(&self.ours);
                        (
                            State::AwaitConfirm(keys),
                            Action::Send(vec![ClientToRelay::Confirm { msg: confirm }]),
                        )
                    }
                    Err(_) => refuse(),
                }
            }
            (State::AwaitConfirm(keys), RelayToClient::PeerConfirm { msg }) => match keys.verify_peer(&msg) {
                Ok(peer) => {
                    let resume_id = keys.resume_id();
                    let then_send = vec![
                        ClientToRelay::ResumeCommit { commitment: resume_commitment(&resume_id) },
                        ClientToRelay::PairingResult { ok: true },
                    ];
                    (State::AwaitReady { peer, resume_id }, Action::Confirmed { peer, resume_id, then_send })
                }
                Err(_) => refuse(),
            },
            // Late pairing messages after our refusal: the peer had not heard yet.
            (State::AwaitVerdict, RelayToClient::PeerPake { .. } | RelayToClient::PeerConfirm { .. }) => {
                (State::AwaitVerdict, Action::Wait)
            }
            (State::AwaitVerdict | State::AwaitReady { .. }, RelayToClient::PairingFailed) => {
                (State::Done, Action::Failed(Failure::WrongCode))
            }
            (State::AwaitReady { peer, resume_id }, RelayToClient::SessionReady) => {
                (State::Done, Action::Ready { peer, resume_id })
            }
            (State::AwaitPake(_), msg) => {
                (State::Done, unexpected(&msg, "instead of the peer's PAKE message"))
            }
            (State::AwaitConfirm(_), msg) => {
                (State::Done, unexpected(&msg, "instead of the peer's key confirmation"))
            }
            (State::AwaitVerdict, msg) => (State::Done, unexpected(&msg, "instead of the relay's verdict")),
            (State::AwaitReady { .. }, msg) => (State::Done, unexpected(&msg, "instead of SessionReady")),
        };
        self.state = next;
        action
    }

    /// The relay answered with an error. To a viewer, `WrongCode` is the verdict on a wrong code (ours or
    /// the host's refusal); anything else ends the attempt with that error.
    pub fn handle_error(&mut self, kind: RelayErrorKind) -> Action {
        self.state = State::Done;
        match kind {
            RelayErrorKind::WrongCode => Action::Failed(Failure::WrongCode),
            other => Action::Failed(Failure::Relay(other)),
        }
    }

    /// `Some` once `now` is past the deadline and the attempt is not settled: it ends, timed out — or, when
    /// we had already found the code wrong and only the relay's word was missing, as a wrong code.
    pub fn poll_timeout(&mut self, now: Instant) -> Option<Action> {
        if matches!(self.state, State::Done) || now < self.deadline {
            return None;
        }
        let failure = match std::mem::replace(&mut self.state, State::Done) {
            State::AwaitVerdict => Failure::WrongCode,
            _ => Failure::TimedOut,
        };
        Some(Action::Failed(failure))
    }
}

/// Our side found the code wrong: say so, then wait for the relay's verdict.
fn refuse() -> (State, Action) {
    (State::AwaitVerdict, Action::Send(vec![ClientToRelay::PairingResult { ok: false }]))
}

fn unexpected(msg: &RelayToClient, when: &str) -> Action {
    Action::Failed(Failure::Unexpected(format!("{msg:?} {when}")))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn code(secret: &str) -> (Nameplate, Secret) {
        let parsed = crate::code::Code::parse(&format!("482{secret}")).expect("code");
        (parsed.nameplate, parsed.secret)
    }

    fn fp(byte: u8) -> Fingerprint {
        Fingerprint([byte; 32])
    }

    /// A host and a viewer with the given secrets, their opening PAKE messages exchanged.
    fn pair(host_secret: &str, viewer_secret: &str) -> (Handshake, Handshake, Action, Action) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let (n, s) = code(host_secret);
        let (mut host, host_pake) = Handshake::start(Role::Host, &n, &s, fp(1), deadline);
        let (n, s) = code(viewer_secret);
        let (mut viewer, viewer_pake) = Handshake::start(Role::Viewer, &n, &s, fp(2), deadline);
        let to_peer = |m: ClientToRelay| match m {
            ClientToRelay::Pake { msg } => RelayToClient::PeerPake { msg },
            other => panic!("not a PAKE message: {other:?}"),
        };
        let host_next = host.handle(to_peer(viewer_pake));
        let viewer_next = viewer.handle(to_peer(host_pake));
        (host, viewer, host_next, viewer_next)
    }

    fn confirm_of(action: Action) -> RelayToClient {
        match action {
            Action::Send(mut msgs) => match msgs.remove(0) {
                ClientToRelay::Confirm { msg } => RelayToClient::PeerConfirm { msg },
                other => panic!("expected Confirm, got {other:?}"),
            },
            other => panic!("expected Send(Confirm), got {other:?}"),
        }
    }

    #[test]
    fn the_right_code_confirms_both_fingerprints_and_waits_for_the_relay() {
        let (mut host, mut viewer, h, v) = pair("9135071", "9135071");
        let to_host = confirm_of(v);
        let to_viewer = confirm_of(h);
        let Action::Confirmed { peer, resume_id: host_id, then_send } = host.handle(to_host) else {
            panic!("host confirmed")
        };
        assert_eq!(peer, fp(2));
        assert_eq!(then_send.last(), Some(&ClientToRelay::PairingResult { ok: true }));
        let Action::Confirmed { peer, resume_id: viewer_id, .. } = viewer.handle(to_viewer) else {
            panic!("viewer confirmed")
        };
        assert_eq!(peer, fp(1));
        assert_eq!(host_id, viewer_id, "both ends derive the same resume id");
        assert_eq!(
            host.handle(RelayToClient::SessionReady),
            Action::Ready { peer: fp(2), resume_id: host_id }
        );
        assert!(host.progress().peer_pake);
    }

    #[test]
    fn a_wrong_code_is_refused_at_the_confirmation_and_settled_by_the_relay() {
        let (mut host, _viewer, _h, v) = pair("9135071", "9135072");
        assert_eq!(
            host.handle(confirm_of(v)),
            Action::Send(vec![ClientToRelay::PairingResult { ok: false }]),
            "the host says the code was wrong"
        );
        // The viewer's own late messages are passed over while the relay decides.
        assert_eq!(host.handle(RelayToClient::PeerConfirm { msg: vec![0; 40] }), Action::Wait);
        assert_eq!(host.handle(RelayToClient::PairingFailed), Action::Failed(Failure::WrongCode));
    }

    #[test]
    fn after_refusing_a_wrong_code_a_peer_leaving_or_a_silent_relay_still_means_wrong_code() {
        let (mut host, _viewer, _h, v) = pair("9135071", "9135072");
        host.handle(confirm_of(v));
        assert_eq!(host.handle(RelayToClient::PeerGone), Action::Failed(Failure::WrongCode));

        let (mut host, _viewer, _h, v) = pair("9135071", "9135072");
        host.handle(confirm_of(v));
        let late = host.deadline() + Duration::from_millis(1);
        assert_eq!(host.poll_timeout(late), Some(Action::Failed(Failure::WrongCode)));
    }

    #[test]
    fn a_malformed_pake_message_is_refused_like_a_wrong_code() {
        let deadline = Instant::now() + Duration::from_secs(30);
        let (n, s) = code("9135071");
        let (mut host, _) = Handshake::start(Role::Host, &n, &s, fp(1), deadline);
        let action = host.handle(RelayToClient::PeerPake { msg: vec![7; 3] });
        assert_eq!(action, Action::Send(vec![ClientToRelay::PairingResult { ok: false }]));
        assert!(host.progress().peer_pake, "a guess could have been made");
    }

    #[test]
    fn every_message_out_of_place_ends_the_attempt_with_a_typed_failure() {
        let out_of_place = [
            RelayToClient::PairingFailed,
            RelayToClient::SessionReady,
            RelayToClient::PeerConfirm { msg: vec![1; 40] },
            RelayToClient::CodeExpired,
            RelayToClient::Welcome { version: 1 },
            RelayToClient::Rejoined { tag: 5 },
        ];
        for msg in out_of_place {
            let deadline = Instant::now() + Duration::from_secs(30);
            let (n, s) = code("9135071");
            let (mut host, _) = Handshake::start(Role::Host, &n, &s, fp(1), deadline);
            let shown = format!("{msg:?}");
            match host.handle(msg) {
                Action::Failed(Failure::Unexpected(why)) if why.contains(&shown) => {}
                Action::Failed(Failure::WrongCode) if shown == "PairingFailed" => {
                    panic!("PairingFailed before any PAKE message is out of order, not a verdict")
                }
                other => panic!("{shown}: expected Unexpected, got {other:?}"),
            }
            assert!(!host.progress().peer_pake, "no guess was possible");
            // Whatever comes after is refused too, and nothing panics.
            assert!(matches!(host.handle(RelayToClient::SessionReady), Action::Failed(_)));
        }
    }

    #[test]
    fn a_peer_that_leaves_is_told_apart_by_whether_it_could_have_guessed() {
        let deadline = Instant::now() + Duration::from_secs(30);
        let (n, s) = code("9135071");
        let (mut early, _) = Handshake::start(Role::Host, &n, &s, fp(1), deadline);
        assert_eq!(early.handle(RelayToClient::PeerGone), Action::Failed(Failure::PeerLeft));
        assert!(!early.progress().peer_pake);

        let (mut late, _viewer, h, _v) = pair("9135071", "1111111");
        assert!(matches!(h, Action::Send(_)), "the host sent its confirmation");
        assert_eq!(late.handle(RelayToClient::PeerGone), Action::Failed(Failure::PeerLeft));
        assert!(late.progress().peer_pake, "left after it could test its guess");
    }

    #[test]
    fn the_deadline_ends_an_unsettled_attempt_once() {
        let start = Instant::now();
        let (n, s) = code("9135071");
        let (mut host, _) = Handshake::start(Role::Host, &n, &s, fp(1), start + Duration::from_secs(30));
        assert_eq!(host.deadline(), start + Duration::from_secs(30));
        assert_eq!(host.poll_timeout(start + Duration::from_secs(29)), None);
        assert_eq!(
            host.poll_timeout(start + Duration::from_secs(30)),
            Some(Action::Failed(Failure::TimedOut))
        );
        assert_eq!(host.poll_timeout(start + Duration::from_secs(31)), None, "settled already");
    }

    #[test]
    fn the_relays_errors_end_the_attempt_and_wrong_code_is_the_verdict() {
        let deadline = Instant::now() + Duration::from_secs(30);
        let (n, s) = code("9135071");
        let (mut viewer, _) = Handshake::start(Role::Viewer, &n, &s, fp(2), deadline);
        assert_eq!(viewer.handle_error(RelayErrorKind::WrongCode), Action::Failed(Failure::WrongCode));
        let (mut viewer, _) = Handshake::start(Role::Viewer, &n, &s, fp(2), deadline);
        assert_eq!(
            viewer.handle_error(RelayErrorKind::Timeout),
            Action::Failed(Failure::Relay(RelayErrorKind::Timeout))
        );
    }
}
