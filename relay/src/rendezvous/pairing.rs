//! Pairing as the relay sees it: the messages it passes between the two ends, and the verdict.
//!
//! Both tasks of a pairing relay the same client messages to the peer's mailbox (`from_client`: size
//! check, tap hook) and the same mailbox events back to their client (`to_client`). The host task alone
//! decides the outcome, with [`PairingVerdict`]: a pure record of what each side said, with no I/O, so its
//! rules (a refusal wins; both must accept; the resume commitment counts only if both ends sent the same
//! one; a guess is spent once the host's key confirmation reached the viewer) are tested on their own.

use tether_shared::relay_proto::{ClientToRelay, RelayErrorKind, RelayToClient, Role, MAX_PAIRING_PAYLOAD};

use super::peer::PeerEvent;
use crate::forward::Router;

/// Pairing traffic, ignored when it comes late (after the pairing ended).
pub(super) fn is_pairing(msg: &ClientToRelay) -> bool {
    matches!(
        msg,
        ClientToRelay::Pake { .. }
            | ClientToRelay::Confirm { .. }
            | ClientToRelay::PairingResult { .. }
            | ClientToRelay::ResumeCommit { .. }
    )
}

/// A client's pairing message as the event for its peer's task. Oversized payloads and anything that is
/// not pairing traffic end the connection; a PAKE message passes the router's tap (tests) on its way.
pub(super) fn from_client(
    msg: ClientToRelay,
    from: Role,
    router: &Router,
) -> Result<PeerEvent, RelayErrorKind> {
    Ok(match msg {
        ClientToRelay::Pake { mut msg } => {
            check_payload(&msg)?;
            if let Some(tap) = router.tap() {
                tap.pake(from, &mut msg);
            }
            PeerEvent::Pake(msg)
        }
        ClientToRelay::Confirm { msg } => {
            check_payload(&msg)?;
            PeerEvent::Confirm(msg)
        }
        ClientToRelay::PairingResult { ok } => PeerEvent::Result(ok),
        ClientToRelay::ResumeCommit { commitment } => PeerEvent::Commit(commitment),
        other => return Err(RelayErrorKind::Protocol(format!("unexpected {other:?} while pairing"))),
    })
}

/// The peer's PAKE and confirmation messages, passed on to this task's client; `None` for other events.
pub(super) fn to_client(event: PeerEvent) -> Option<RelayToClient> {
    match event {
        PeerEvent::Pake(msg) => Some(RelayToClient::PeerPake { msg }),
        PeerEvent::Confirm(msg) => Some(RelayToClient::PeerConfirm { msg }),
        _ => None,
    }
}

fn check_payload(msg: &[u8]) -> Result<(), RelayErrorKind> {
    if msg.len() > MAX_PAIRING_PAYLOAD {
        return Err(RelayErrorKind::Protocol(format!("pairing message of {} bytes", msg.len())));
    }
    Ok(())
}

/// How a pairing was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decided {
    /// Both ends accepted; `commitment`: both committed to this resume id (the session may rejoin).
    Paired { commitment: Option<[u8; 32]> },
    /// One end refused the other's key confirmation: a wrong code.
    WrongCode,
}

/// What each end of one pairing has said so far (the host task keeps it).
#[derive(Debug, Default)]
pub struct PairingVerdict {
    host_ok: Option<bool>,
    viewer_ok: Option<bool>,
    host_commit: Option<[u8; 32]>,
    viewer_commit: Option<[u8; 32]>,
    after_guess: bool,
}

impl PairingVerdict {
    pub fn new() -> Self {
        Self::default()
    }

    /// The host's `PairingResult`.
    pub fn handle_host_result(&mut self, ok: bool) {
        self.host_ok = Some(ok);
    }

    /// The viewer's `PairingResult`.
    pub fn handle_viewer_result(&mut self, ok: bool) {
        self.viewer_ok = Some(ok);
    }

    /// The host's `ResumeCommit`.
    pub fn handle_host_commit(&mut self, commitment: [u8; 32]) {
        self.host_commit = Some(commitment);
    }

    /// The viewer's `ResumeCommit`.
    pub fn handle_viewer_commit(&mut self, commitment: [u8; 32]) {
        self.viewer_commit = Some(commitment);
    }

    /// The host's key confirmation was handed to the viewer's task: from now on the viewer can tell whether
    /// its guess at the secret was right.
    pub fn handle_host_confirm_forwarded(&mut self) {
        self.after_guess = true;
    }

    /// Whether the viewer has seen the host's key confirmation: leaving (or stalling) from here on spends a
    /// guess as surely as a wrong-code verdict, and counts against the failed-claim budget.
    pub fn after_guess(&self) -> bool {
        self.after_guess
    }

    /// The outcome, once there is one: a refusal by either end decides at once; otherwise both must accept.
    pub fn decided(&self) -> Option<Decided> {
        match (self.host_ok, self.viewer_ok) {
            (Some(false), _) | (_, Some(false)) => Some(Decided::WrongCode),
            (Some(true), Some(true)) => Some(Decided::Paired {
                commitment: self.host_commit.filter(|_| self.host_commit == self.viewer_commit),
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undecided_until_both_accept() {
        let mut v = PairingVerdict::new();
        assert_eq!(v.decided(), None);
        v.handle_host_result(true);
        assert_eq!(v.decided(), None);
        v.handle_viewer_result(true);
        assert_eq!(v.decided(), Some(Decided::Paired { commitment: None }));
    }

    #[test]
    fn a_refusal_by_either_end_decides_at_once() {
        let mut v = PairingVerdict::new();
        v.handle_viewer_result(false);
        assert_eq!(v.decided(), Some(Decided::WrongCode));
        let mut v = PairingVerdict::new();
        v.handle_host_result(false);
        assert_eq!(v.decided(), Some(Decided::WrongCode));
        let mut v = PairingVerdict::new();
        v.handle_host_result(true);
        v.handle_viewer_result(false);
        assert_eq!(v.decided(), Some(Decided::WrongCode), "a refusal wins over an acceptance");
    }

    #[test]
    fn the_commitment_counts_only_when_both_ends_sent_the_same() {
        let accept = |v: &mut PairingVerdict| {
            v.handle_host_result(true);
            v.handle_viewer_result(true);
        };
        let mut same = PairingVerdict::new();
        same.handle_host_commit([7; 32]);
        same.handle_viewer_commit([7; 32]);
        accept(&mut same);
        assert_eq!(same.decided(), Some(Decided::Paired { commitment: Some([7; 32]) }));

        let mut different = PairingVerdict::new();
        different.handle_host_commit([7; 32]);
        different.handle_viewer_commit([8; 32]);
        accept(&mut different);
        assert_eq!(different.decided(), Some(Decided::Paired { commitment: None }));

        let mut host_only = PairingVerdict::new();
        host_only.handle_host_commit([7; 32]);
        accept(&mut host_only);
        assert_eq!(host_only.decided(), Some(Decided::Paired { commitment: None }));

        let mut viewer_only = PairingVerdict::new();
        viewer_only.handle_viewer_commit([7; 32]);
        accept(&mut viewer_only);
        assert_eq!(viewer_only.decided(), Some(Decided::Paired { commitment: None }));
    }

    #[test]
    fn a_guess_is_spent_once_the_hosts_confirmation_is_forwarded() {
        let mut v = PairingVerdict::new();
        assert!(!v.after_guess());
        v.handle_host_result(true);
        v.handle_viewer_commit([1; 32]);
        assert!(!v.after_guess(), "results and commitments do not reveal the guess");
        v.handle_host_confirm_forwarded();
        assert!(v.after_guess());
        v.handle_viewer_result(true);
        assert!(v.after_guess(), "and it stays spent");
    }

    #[test]
    fn client_messages_become_peer_events_with_their_payload_checked() {
        let router = Router::new(None);
        let ok = from_client(ClientToRelay::Confirm { msg: vec![1, 2] }, Role::Host, &router);
        assert!(matches!(ok, Ok(PeerEvent::Confirm(m)) if m == [1, 2]));
        let big = vec![0; MAX_PAIRING_PAYLOAD + 1];
        let too_big = from_client(ClientToRelay::Pake { msg: big.clone() }, Role::Viewer, &router);
        assert!(matches!(too_big, Err(RelayErrorKind::Protocol(_))));
        let too_big = from_client(ClientToRelay::Confirm { msg: big }, Role::Host, &router);
        assert!(matches!(too_big, Err(RelayErrorKind::Protocol(_))));
        let commit = from_client(ClientToRelay::ResumeCommit { commitment: [3; 32] }, Role::Viewer, &router);
        assert!(matches!(commit, Ok(PeerEvent::Commit(c)) if c == [3; 32]));
        let other = from_client(ClientToRelay::Register, Role::Host, &router);
        assert!(matches!(other, Err(RelayErrorKind::Protocol(_))));
    }
}
