//! Who may do what: the host user's consent, and the handle the host's window uses during a session.
//!
//! A technician's wish (at hello, or later with `RequestPermissions`) becomes an [`AccessRequest`] the
//! window shows as a dialog; headless hosts use [`AccessPolicy::Auto`] and grant within `--grant`. Giving
//! up permissions never asks. An unanswered request is denied after [`CONSENT_TIMEOUT`]: fail closed.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tether_shared::record::{EventKind, SessionEvent, Side};
use tether_shared::relay_proto::VerifiedTechnician;
use tether_shared::session_proto::{HostControl, Permissions, MAX_CHAT_TEXT};
use tokio::sync::{mpsc, oneshot, watch};

/// How long a consent question waits for the user before it counts as "deny".
pub const CONSENT_TIMEOUT: Duration = Duration::from_secs(120);

/// How the host decides what a technician gets.
#[derive(Debug, Clone, Default)]
pub enum AccessPolicy {
    /// Grant what is asked within the configured `allowed` set, without asking (headless).
    #[default]
    Auto,
    /// Ask the user through this channel (the host window).
    Ask(mpsc::Sender<AccessRequest>),
}

/// A question for the host user: may this technician have these permissions?
#[derive(Debug)]
pub struct AccessRequest {
    /// The name the technician typed (unverified unless `verified` says otherwise).
    pub technician: String,
    /// The account the relay verified, if any.
    pub verified: Option<VerifiedTechnician>,
    pub asked: Permissions,
    /// What the technician has now (nothing at the start of a session).
    pub current: Permissions,
    reply: oneshot::Sender<Permissions>,
}

impl AccessRequest {
    /// Grant `granted` (cut to what was asked).
    pub fn answer(self, granted: Permissions) {
        let _ = self.reply.send(granted.intersect(self.asked));
    }

    /// Grant everything asked.
    pub fn allow(self) {
        let asked = self.asked;
        self.answer(asked);
    }

    /// Keep what the technician has now (at the start: nothing, so the session is refused).
    pub fn deny(self) {
        let current = self.current;
        let _ = self.reply.send(current);
    }
}

/// Ask the user; `None` when nobody answered in time or the asker went away (= deny).
pub async fn ask(
    to: &mpsc::Sender<AccessRequest>,
    technician: &str,
    verified: Option<VerifiedTechnician>,
    asked: Permissions,
    current: Permissions,
) -> Option<Permissions> {
    let (reply, answer) = oneshot::channel();
    let request = AccessRequest { technician: technician.to_owned(), verified, asked, current, reply };
    to.send(request).await.ok()?;
    tokio::time::timeout(CONSENT_TIMEOUT, answer).await.ok()?.ok()
}

#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error("the session has ended")]
    Ended,
    #[error("the message is too long ({0} bytes; at most {MAX_CHAT_TEXT})")]
    TooLong(usize),
}

/// The host window's grip on a live session: change permissions, chat. What the user does through it
/// goes into the session record ([`crate::HostEvent::Session`]) when it has somewhere to go.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    grants: Arc<watch::Sender<Permissions>>,
    out: mpsc::Sender<HostControl>,
    record: Option<mpsc::UnboundedSender<crate::HostEvent>>,
}

impl SessionHandle {
    pub(crate) fn new(grants: Arc<watch::Sender<Permissions>>, out: mpsc::Sender<HostControl>) -> Self {
        Self { grants, out, record: None }
    }

    /// The same handle, recording the user's changes and chat lines as events on `events`.
    pub fn recording(self, events: mpsc::UnboundedSender<crate::HostEvent>) -> Self {
        Self { record: Some(events), ..self }
    }

    fn record(&self, kind: EventKind) {
        if let Some(events) = &self.record {
            let _ = events.send(crate::HostEvent::Session(SessionEvent::new(SystemTime::now(), kind)));
        }
    }

    /// What the technician may do now.
    pub fn permissions(&self) -> Permissions {
        *self.grants.borrow()
    }

    /// Change what the technician may do; takes effect at once (revoking control releases held keys on
    /// the next event) and the viewer is told.
    pub fn set_permissions(&self, now: Permissions) {
        let before = self.grants.send_replace(now);
        if before != now {
            self.record(EventKind::PermissionsChanged { by: Side::Host, before, now });
        }
    }

    /// Send a chat line to the technician.
    pub fn chat(&self, text: &str) -> Result<(), HandleError> {
        if text.len() > MAX_CHAT_TEXT {
            return Err(HandleError::TooLong(text.len()));
        }
        self.out.try_send(HostControl::Chat { text: text.to_owned() }).map_err(|_| HandleError::Ended)?;
        self.record(EventKind::Chat { from: Side::Host, text: text.to_owned() });
        Ok(())
    }
}
