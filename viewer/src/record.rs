//! The technician's side of the session record: the same [`SessionEvent`]s the host records, built from
//! what this viewer sent and what the host told it — connect, requests and grants, chat both ways,
//! clipboard use (never its text), monitor switches, files with size and hash, the end.
//!
//! The session's tasks record into a [`Recorder`]; [`crate::session::ViewerSession::record`] hands out a
//! `watch` of every event so far, so a caller can wait for one without polling and store the whole
//! record at the end (issue 20). Each event is stamped with this machine's clock as it is recorded.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use quinn::Connection;
use tether_shared::end::{self, EndReason};
use tether_shared::record::{EventKind, SessionEvent, Side};
use tether_shared::session_proto::Permissions;
use tokio::sync::watch;

/// Where the session's tasks record; clones share the record.
#[derive(Debug, Clone)]
pub struct Recorder {
    events: Arc<watch::Sender<Vec<SessionEvent>>>,
    /// The permissions asked for and not yet answered, to tell the host's answer from the host user's own
    /// change (the wire does not say which it is).
    asked: Arc<Mutex<Option<Permissions>>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self { events: Arc::new(watch::channel(Vec::new()).0), asked: Arc::default() }
    }
}

impl Recorder {
    /// The record of a session that just started: it connected as `technician` asking for `asked` and
    /// was granted `granted` (whether the relay verified an account is the host's to know), and it will
    /// hold the end when `conn` closes or `ended` says why.
    pub(crate) fn connected(
        conn: &Connection,
        ended: watch::Receiver<Option<EndReason>>,
        technician: &str,
        asked: Permissions,
        granted: Permissions,
    ) -> Self {
        let recorder = Self::default();
        let technician = technician.to_owned();
        recorder.record(EventKind::Connected { technician, verified: None, asked, granted });
        recorder.record_end(conn.clone(), ended);
        recorder
    }

    /// Add `kind`, stamped now.
    pub fn record(&self, kind: EventKind) {
        let event = SessionEvent::new(SystemTime::now(), kind);
        self.events.send_modify(|events| events.push(event));
    }

    /// Every event so far, updated as more come.
    pub fn subscribe(&self) -> watch::Receiver<Vec<SessionEvent>> {
        self.events.subscribe()
    }

    /// We asked the host for `asked`.
    pub(crate) fn requested(&self, asked: Permissions) {
        *self.lock() = Some(asked);
        self.record(EventKind::Requested { asked });
    }

    /// The host says we may now do `now` (we had `before`).
    pub(crate) fn permissions_changed(&self, before: Permissions, now: Permissions) {
        let by = {
            let mut asked = self.lock();
            let by = answered_by(*asked, now);
            if by == Side::Technician {
                asked.take();
            }
            by
        };
        self.record(EventKind::PermissionsChanged { by, before, now });
    }

    /// The host turned down our request for `asked`.
    pub(crate) fn declined(&self, asked: Permissions) {
        self.lock().take();
        self.record(EventKind::RequestDeclined { asked });
    }

    /// Record how the session ended, once it has: the reason the session recorded in `ended`, or the
    /// connection's own.
    fn record_end(&self, conn: Connection, mut ended: watch::Receiver<Option<EndReason>>) {
        let recorder = self.clone();
        tokio::spawn(async move {
            let closed = tokio::select! {
                _ = ended.wait_for(Option::is_some) => None,
                closed = conn.closed() => Some(closed),
            };
            let recorded = ended.borrow().clone();
            let reason = recorded.or_else(|| closed.map(|c| EndReason::from_close(end::Side::Viewer, &c)));
            let reason = reason.unwrap_or(EndReason::LocalClose);
            recorder.record(EventKind::Ended { reason });
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Permissions>> {
        // A plain value no update leaves half-changed: a panic elsewhere does not make it wrong.
        self.asked.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Who changed the permissions to `now`: the answer to our pending request for exactly that (or for
/// less, which the host applies as asked) is ours; anything else is the host user's own change.
fn answered_by(asked: Option<Permissions>, now: Permissions) -> Side {
    match asked {
        Some(asked) if asked == now => Side::Technician,
        _ => Side::Host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIEW: Permissions = Permissions::VIEW_ONLY;
    const VIEW_CONTROL: Permissions = Permissions { view: true, control: true, files: false };

    fn kinds(recorder: &Recorder) -> Vec<EventKind> {
        recorder.subscribe().borrow().iter().map(|e| e.kind.clone()).collect()
    }

    #[test]
    fn a_granted_request_is_the_technicians_change_and_a_later_one_the_hosts() {
        let recorder = Recorder::default();
        recorder.requested(VIEW_CONTROL);
        recorder.permissions_changed(VIEW, VIEW_CONTROL);
        recorder.permissions_changed(VIEW_CONTROL, VIEW);
        assert_eq!(
            kinds(&recorder),
            [
                EventKind::Requested { asked: VIEW_CONTROL },
                EventKind::PermissionsChanged { by: Side::Technician, before: VIEW, now: VIEW_CONTROL },
                EventKind::PermissionsChanged { by: Side::Host, before: VIEW_CONTROL, now: VIEW },
            ]
        );
    }

    #[test]
    fn a_change_while_a_request_waits_that_is_not_its_answer_is_the_hosts() {
        let recorder = Recorder::default();
        recorder.requested(Permissions::ALL);
        // The host user takes control back while the question is open.
        recorder.permissions_changed(VIEW_CONTROL, VIEW);
        recorder.declined(Permissions::ALL);
        // A change after the refusal is the host user's too.
        recorder.permissions_changed(VIEW, Permissions::ALL);
        assert_eq!(
            kinds(&recorder),
            [
                EventKind::Requested { asked: Permissions::ALL },
                EventKind::PermissionsChanged { by: Side::Host, before: VIEW_CONTROL, now: VIEW },
                EventKind::RequestDeclined { asked: Permissions::ALL },
                EventKind::PermissionsChanged { by: Side::Host, before: VIEW, now: Permissions::ALL },
            ]
        );
    }

    #[test]
    fn events_carry_the_time_they_were_recorded() {
        let before = tether_shared::record::UnixMs::from_system(SystemTime::now());
        let recorder = Recorder::default();
        recorder.record(EventKind::Clipboard { by: Side::Technician, bytes: 5 });
        let at = recorder.subscribe().borrow()[0].at;
        assert!(at >= before);
    }
}
