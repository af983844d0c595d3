//! The pure machine that decides how a session ended ([`EndArbiter`]).
//!
//! Several signals race at the end of a session: the peer's `Bye` on the control stream, the
//! connection's close (the peer's application close, an idle timeout, a reset), the relay's word that
//! the peer is gone (or that it ended the session), and our own decision (the user stopped, we caught the
//! peer breaking the protocol). They arrive in any order, from different tasks. The arbiter takes them
//! all and says one [`EndReason`]:
//!
//! - the first decisive signal wins, and stays: a `Bye`, our own decision, a relay error, a close;
//! - the relay's bare "peer gone" is not decisive at once: the peer's own word may be just behind it (the
//!   relay's notice and the peer's goodbye set off together on different paths), so it waits until
//!   [`PEER_WORD_GRACE`] after the notice ([`EndArbiter::poll_timeout`]); a `Bye` or a close by the peer in
//!   that time wins, and a timeout after it is the peer vanishing, as the relay said;
//! - the peer's application close waits the same grace for its `Bye`: the peer closes only once its `Bye`
//!   was acknowledged, so the `Bye` is here, but the task reading it may not have run yet;
//! - a stream's end decides nothing: the `Bye` or the close that follows it does.
//!
//! No I/O and no clock: `now` is passed in, like quinn's `handle_timeout`. The shells in the host and
//! viewer sessions feed it ([`EndEvent`]) and sleep only until its [`EndArbiter::poll_timeout`].

use std::time::{Duration, Instant};

use super::{EndReason, Side};
use crate::relay_proto::RelayErrorKind;

/// How long after the relay's "peer gone" the peer's own word (its `Bye`, its close) still counts.
///
/// A leaving peer closes its relay link only after its `Bye` was acknowledged, so the `Bye` is normally
/// already here, read or about to be read by another task: the grace covers that task being scheduled
/// and a close frame in flight, not a network round trip.
pub const PEER_WORD_GRACE: Duration = Duration::from_millis(250);

/// A signal about the end of the session, as the shells report it.
#[derive(Debug, Clone)]
pub enum EndEvent {
    /// The peer's `Bye`.
    Bye(EndReason),
    /// Our own decision (the user, a protocol violation we caught).
    Local(EndReason),
    /// The connection closed.
    Closed(quinn::ConnectionError),
    /// The relay said the peer is gone (`None`) or ended the session (its error).
    RelayGone(Option<RelayErrorKind>),
}

/// Decides the one [`EndReason`] of a session from the signals that race at its end.
#[derive(Debug)]
pub struct EndArbiter {
    me: Side,
    decided: Option<EndReason>,
    /// Whether the decision was ours (then we owe the peer a `Bye`).
    ours: bool,
    /// When the relay said the peer is gone, if it did and nothing decided yet.
    peer_gone_at: Option<Instant>,
    /// The peer's application close and when it came, while its `Bye` may still be read.
    peer_closed: Option<(Instant, EndReason)>,
}

impl EndArbiter {
    pub fn new(me: Side) -> Self {
        Self { me, decided: None, ours: false, peer_gone_at: None, peer_closed: None }
    }

    /// Feed one [`EndEvent`].
    pub fn handle(&mut self, now: Instant, event: EndEvent) {
        match event {
            EndEvent::Bye(reason) => self.handle_bye(reason),
            EndEvent::Local(reason) => self.handle_local(reason),
            EndEvent::Closed(closed) => self.handle_closed(now, &closed),
            EndEvent::RelayGone(kind) => self.handle_relay_gone(now, kind),
        }
    }

    /// The peer said goodbye, and why.
    pub fn handle_bye(&mut self, reason: EndReason) {
        self.decide(reason, false);
    }

    /// We end the session: the user did, or we caught the peer breaking the protocol.
    pub fn handle_local(&mut self, reason: EndReason) {
        self.decide(reason, true);
    }

    /// The connection closed. A close that follows a decision (ours, or the peer's after its `Bye`)
    /// changes nothing; a timeout after the relay said the peer is gone is that peer vanishing; the
    /// peer's own close is decided after [`PEER_WORD_GRACE`] unless its `Bye` comes first.
    pub fn handle_closed(&mut self, now: Instant, closed: &quinn::ConnectionError) {
        let reason = match EndReason::from_close(self.me, closed) {
            EndReason::TimedOut if self.peer_gone_at.is_some() => {
                EndReason::PeerVanished { peer: self.me.other() }
            }
            reason => reason,
        };
        match closed {
            quinn::ConnectionError::ApplicationClosed(_) if self.decided.is_none() => {
                self.peer_closed.get_or_insert((now, reason));
            }
            _ => self.decide(reason, false),
        }
    }

    /// The relay's word: the peer is gone (`None`: decided after [`PEER_WORD_GRACE`] unless the peer's
    /// own word comes first), or the relay ended the session (decided now).
    pub fn handle_relay_gone(&mut self, now: Instant, kind: Option<RelayErrorKind>) {
        match kind {
            Some(kind) => self.decide(EndReason::Relay(kind), false),
            None => {
                self.peer_gone_at.get_or_insert(now);
            }
        }
    }

    /// The session's end, once decided.
    pub fn poll_end(&mut self, now: Instant) -> Option<EndReason> {
        if self.decided.is_none() && self.poll_timeout().is_some_and(|deadline| now >= deadline) {
            // The peer's close says more than the relay's notice; either way its Bye did not come.
            let reason = match self.peer_closed.take() {
                Some((_, reason)) => reason,
                None => EndReason::PeerVanished { peer: self.me.other() },
            };
            self.decide(reason, false);
        }
        self.decided.clone()
    }

    /// When [`Self::poll_end`] may decide without a new event.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.decided.is_some() {
            return None;
        }
        let closed = self.peer_closed.as_ref().map(|(at, _)| *at);
        [self.peer_gone_at, closed].into_iter().flatten().min().map(|at| at + PEER_WORD_GRACE)
    }

    /// Whether we decided the end (and so owe the peer a `Bye` saying why).
    pub fn decided_here(&self) -> bool {
        self.decided.is_some() && self.ours
    }

    fn decide(&mut self, reason: EndReason, ours: bool) {
        if self.decided.is_none() {
            self.decided = Some(reason);
            self.ours = ours;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::end::{Violation, CLOSE_NORMAL, CLOSE_STOPPED_BY_USER};

    fn closed_by_peer(code: u32) -> quinn::ConnectionError {
        quinn::ConnectionError::ApplicationClosed(quinn::ApplicationClose {
            error_code: code.into(),
            reason: Vec::new().into(),
        })
    }

    fn violation() -> EndReason {
        EndReason::ProtocolViolation { by: Side::Viewer, detail: Violation::Malformed("garbage".into()) }
    }

    #[test]
    fn nothing_is_decided_before_a_signal() {
        let mut a = EndArbiter::new(Side::Host);
        assert_eq!(a.poll_end(Instant::now()), None);
        assert_eq!(a.poll_timeout(), None);
    }

    #[test]
    fn a_bye_that_the_relays_notice_overtook_still_wins() {
        let t0 = Instant::now();
        let mut host = EndArbiter::new(Side::Host);
        host.handle_relay_gone(t0, None);
        assert_eq!(host.poll_end(t0), None, "the relay's notice alone waits for the peer's word");
        assert_eq!(host.poll_timeout(), Some(t0 + PEER_WORD_GRACE));
        host.handle_bye(EndReason::ViewerLeft);
        assert_eq!(host.poll_end(t0 + Duration::from_millis(10)), Some(EndReason::ViewerLeft));
        assert_eq!(host.poll_end(t0 + PEER_WORD_GRACE * 4), Some(EndReason::ViewerLeft), "it stays");
        assert!(!host.decided_here());
    }

    #[test]
    fn a_peer_close_that_the_relays_notice_overtook_still_wins() {
        let t0 = Instant::now();
        let mut viewer = EndArbiter::new(Side::Viewer);
        viewer.handle_relay_gone(t0, None);
        let t1 = t0 + Duration::from_millis(5);
        viewer.handle_closed(t1, &closed_by_peer(CLOSE_STOPPED_BY_USER));
        assert_eq!(viewer.poll_end(t1), None, "its Bye may still be read");
        assert_eq!(viewer.poll_end(t0 + PEER_WORD_GRACE), Some(EndReason::HostStopped));
    }

    #[test]
    fn a_bye_read_after_the_peers_close_still_wins() {
        // The peer closed once its Bye was acknowledged; our reader task had not run yet.
        let t0 = Instant::now();
        let mut host = EndArbiter::new(Side::Host);
        host.handle_closed(t0, &closed_by_peer(crate::end::CLOSE_PEER_GONE));
        assert_eq!(host.poll_timeout(), Some(t0 + PEER_WORD_GRACE));
        host.handle_bye(EndReason::Relay(RelayErrorKind::Revoked));
        assert_eq!(host.poll_end(t0 + PEER_WORD_GRACE), Some(EndReason::Relay(RelayErrorKind::Revoked)));
    }

    #[test]
    fn the_relay_ending_it_reaches_us_by_our_relay_or_by_the_peers_close() {
        let t0 = Instant::now();
        let revoked = EndReason::Relay(RelayErrorKind::Revoked);
        let close = quinn::ConnectionError::ApplicationClosed(quinn::ApplicationClose {
            error_code: revoked.close_code().into(),
            reason: revoked.close_reason().into(),
        });
        // Our own relay notice in the grace decides at once.
        let mut viewer = EndArbiter::new(Side::Viewer);
        viewer.handle_closed(t0, &close);
        viewer.handle_relay_gone(t0 + Duration::from_millis(1), Some(RelayErrorKind::Revoked));
        assert_eq!(viewer.poll_end(t0 + Duration::from_millis(1)), Some(revoked.clone()));
        // Without it, the host's close says the same after the grace.
        let mut viewer = EndArbiter::new(Side::Viewer);
        viewer.handle_closed(t0, &close);
        assert_eq!(viewer.poll_end(t0), None);
        assert_eq!(viewer.poll_end(t0 + PEER_WORD_GRACE), Some(revoked));
    }

    #[test]
    fn a_peer_close_without_a_bye_decides_after_the_grace() {
        let t0 = Instant::now();
        let mut host = EndArbiter::new(Side::Host);
        host.handle_closed(t0, &closed_by_peer(CLOSE_NORMAL));
        assert_eq!(host.poll_end(t0), None);
        assert_eq!(host.poll_end(t0 + PEER_WORD_GRACE), Some(EndReason::ViewerLeft));
    }

    #[test]
    fn our_decision_during_the_peers_close_grace_is_ours() {
        // The user stopped just as the viewer's close came in: ours is decided first.
        let t0 = Instant::now();
        let mut host = EndArbiter::new(Side::Host);
        host.handle_closed(t0, &closed_by_peer(CLOSE_NORMAL));
        host.handle_local(EndReason::HostStopped);
        assert_eq!(host.poll_end(t0), Some(EndReason::HostStopped));
    }

    #[test]
    fn a_peer_that_says_nothing_after_the_relays_notice_vanished() {
        let t0 = Instant::now();
        let mut viewer = EndArbiter::new(Side::Viewer);
        viewer.handle_relay_gone(t0, None);
        assert_eq!(viewer.poll_end(t0 + PEER_WORD_GRACE - Duration::from_millis(1)), None);
        assert_eq!(viewer.poll_end(t0 + PEER_WORD_GRACE), Some(EndReason::PeerVanished { peer: Side::Host }));
        assert_eq!(viewer.poll_timeout(), None);
        // A late Bye or close changes nothing.
        viewer.handle_bye(EndReason::HostStopped);
        viewer.handle_closed(t0, &quinn::ConnectionError::LocallyClosed);
        assert_eq!(
            viewer.poll_end(t0 + PEER_WORD_GRACE * 2),
            Some(EndReason::PeerVanished { peer: Side::Host })
        );
    }

    #[test]
    fn a_timeout_after_the_relays_notice_is_the_peer_vanishing() {
        let t0 = Instant::now();
        let mut host = EndArbiter::new(Side::Host);
        host.handle_relay_gone(t0, None);
        host.handle_closed(t0, &quinn::ConnectionError::TimedOut);
        assert_eq!(host.poll_end(t0), Some(EndReason::PeerVanished { peer: Side::Viewer }));
    }

    #[test]
    fn a_timeout_alone_is_a_timeout() {
        let mut host = EndArbiter::new(Side::Host);
        host.handle_closed(Instant::now(), &quinn::ConnectionError::TimedOut);
        assert_eq!(host.poll_end(Instant::now()), Some(EndReason::TimedOut));
    }

    #[test]
    fn a_repeated_relay_notice_does_not_move_the_deadline() {
        let t0 = Instant::now();
        let mut host = EndArbiter::new(Side::Host);
        host.handle_relay_gone(t0, None);
        host.handle_relay_gone(t0 + Duration::from_millis(100), None);
        assert_eq!(host.poll_timeout(), Some(t0 + PEER_WORD_GRACE));
    }

    #[test]
    fn the_relay_ending_the_session_decides_at_once() {
        let t0 = Instant::now();
        let mut viewer = EndArbiter::new(Side::Viewer);
        viewer.handle_relay_gone(t0, Some(RelayErrorKind::Revoked));
        assert_eq!(viewer.poll_end(t0), Some(EndReason::Relay(RelayErrorKind::Revoked)));
        // The host's close that follows (with the peer-gone code) does not hide why.
        viewer.handle_closed(t0, &closed_by_peer(crate::end::CLOSE_PEER_GONE));
        assert_eq!(viewer.poll_end(t0), Some(EndReason::Relay(RelayErrorKind::Revoked)));
    }

    #[test]
    fn a_bye_before_the_relay_error_wins() {
        let t0 = Instant::now();
        let mut host = EndArbiter::new(Side::Host);
        host.handle_bye(EndReason::ViewerLeft);
        host.handle_relay_gone(t0, Some(RelayErrorKind::ShuttingDown));
        assert_eq!(host.poll_end(t0), Some(EndReason::ViewerLeft));
    }

    #[test]
    fn fin_then_close_is_the_close_and_bye_then_close_is_the_bye() {
        let t0 = Instant::now();
        // A stream's end is not reported; the close after it decides.
        let mut viewer = EndArbiter::new(Side::Viewer);
        viewer.handle_closed(t0, &closed_by_peer(CLOSE_STOPPED_BY_USER));
        assert_eq!(viewer.poll_end(t0 + PEER_WORD_GRACE), Some(EndReason::HostStopped));
        // The Bye says more than the close code that follows it.
        let mut viewer = EndArbiter::new(Side::Viewer);
        viewer.handle_bye(EndReason::Relay(RelayErrorKind::Revoked));
        viewer.handle_closed(t0, &closed_by_peer(crate::end::CLOSE_PEER_GONE));
        assert_eq!(viewer.poll_end(Instant::now()), Some(EndReason::Relay(RelayErrorKind::Revoked)));
    }

    #[test]
    fn both_ends_leaving_at_once_each_keeps_its_own_reason() {
        let now = Instant::now();
        let mut host = EndArbiter::new(Side::Host);
        let mut viewer = EndArbiter::new(Side::Viewer);
        host.handle_local(EndReason::HostStopped);
        viewer.handle_local(EndReason::ViewerLeft);
        // The Byes cross.
        host.handle_bye(EndReason::ViewerLeft);
        viewer.handle_bye(EndReason::HostStopped);
        host.handle_closed(now, &closed_by_peer(CLOSE_NORMAL));
        viewer.handle_closed(now, &closed_by_peer(CLOSE_STOPPED_BY_USER));
        assert_eq!(host.poll_end(now), Some(EndReason::HostStopped));
        assert_eq!(viewer.poll_end(now), Some(EndReason::ViewerLeft));
        assert!(host.decided_here() && viewer.decided_here());
    }

    #[test]
    fn a_protocol_error_beats_the_close_that_follows() {
        let mut host = EndArbiter::new(Side::Host);
        host.handle_local(violation());
        host.handle_closed(Instant::now(), &quinn::ConnectionError::LocallyClosed);
        assert_eq!(host.poll_end(Instant::now()), Some(violation()));
        assert!(host.decided_here());
    }

    #[test]
    fn a_close_before_our_decision_wins() {
        let t0 = Instant::now();
        let mut host = EndArbiter::new(Side::Host);
        host.handle_closed(t0, &quinn::ConnectionError::Reset);
        host.handle_local(EndReason::HostStopped);
        assert!(matches!(host.poll_end(t0), Some(EndReason::ConnectionLost(_))));
        assert!(!host.decided_here(), "the viewer is gone: no Bye owed");
    }

    #[test]
    fn our_decision_within_the_grace_wins_over_the_vanished_peer() {
        let t0 = Instant::now();
        let mut host = EndArbiter::new(Side::Host);
        host.handle_relay_gone(t0, None);
        host.handle_local(EndReason::HostStopped);
        assert_eq!(host.poll_end(t0 + PEER_WORD_GRACE * 2), Some(EndReason::HostStopped));
    }

    #[test]
    fn events_feed_the_same_decisions() {
        let t0 = Instant::now();
        let mut a = EndArbiter::new(Side::Viewer);
        a.handle(t0, EndEvent::RelayGone(None));
        a.handle(t0, EndEvent::Bye(EndReason::HostStopped));
        a.handle(t0, EndEvent::Local(EndReason::ViewerLeft));
        assert_eq!(a.poll_end(t0), Some(EndReason::HostStopped));
    }
}
