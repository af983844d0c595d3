//! Who may do what: the host user's consent, and the handle the host's window uses during a session.
//!
//! A technician's wish (at hello, or later with `RequestPermissions`) becomes an [`AccessRequest`] the
//! window shows as a dialog; headless hosts use [`AccessPolicy::Auto`] and grant within `--grant`. Giving
//! up permissions never asks. An unanswered request is denied after [`CONSENT_TIMEOUT`]: fail closed.

use std::sync::Arc;
use std::time::Duration;

use tether_shared::record::{EventKind, Side};
use tether_shared::relay_proto::VerifiedTechnician;
use tether_shared::session_proto::{HostControl, Permissions, MAX_CHAT_TEXT};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::controller::ParticipantId;
use crate::participants::Roster;
use crate::Recorder;

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
    /// The technician who invited them into the running session (`None`: they had the user's code).
    pub invited_by: Option<String>,
    pub asked: Permissions,
    /// What the technician has now (nothing at the start of a session).
    pub current: Permissions,
    /// Whether the card should also ask to share the chat and the session log so far (someone joining a
    /// session that is already going on).
    pub offers_history: bool,
    reply: oneshot::Sender<Consent>,
}

/// The user's answer: what the technician may do, and whether they get the session so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consent {
    pub granted: Permissions,
    pub share_history: bool,
}

impl AccessRequest {
    /// Grant `granted` (cut to what was asked); share the session so far when `share_history` and it
    /// was offered.
    pub fn answer_with(self, granted: Permissions, share_history: bool) {
        let share_history = share_history && self.offers_history;
        let _ = self.reply.send(Consent { granted: granted.intersect(self.asked), share_history });
    }

    /// Grant `granted` (cut to what was asked), sharing nothing of the session so far.
    pub fn answer(self, granted: Permissions) {
        self.answer_with(granted, false);
    }

    /// Grant everything asked, and the session so far when it was offered.
    pub fn allow(self) {
        let asked = self.asked;
        self.answer_with(asked, true);
    }

    /// Keep what the technician has now (at the start: nothing, so the session is refused).
    pub fn deny(self) {
        let current = self.current;
        let _ = self.reply.send(Consent { granted: current, share_history: false });
    }
}

/// Who asks, for [`ask`].
#[derive(Debug, Clone)]
pub struct Asker {
    pub technician: String,
    pub verified: Option<VerifiedTechnician>,
    pub invited_by: Option<String>,
    pub offers_history: bool,
}

/// Ask the user; `None` when nobody answered in time or the asker went away (= deny).
pub async fn ask(
    to: &mpsc::Sender<AccessRequest>,
    asker: Asker,
    asked: Permissions,
    current: Permissions,
) -> Option<Consent> {
    let (reply, answer) = oneshot::channel();
    let Asker { technician, verified, invited_by, offers_history } = asker;
    let request = AccessRequest { technician, verified, invited_by, asked, current, offers_history, reply };
    to.send(request).await.ok()?;
    tokio::time::timeout(CONSENT_TIMEOUT, answer).await.ok()?.ok()
}

#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error("the session has ended")]
    Ended,
    #[error("the message is too long ({0} bytes; at most {MAX_CHAT_TEXT})")]
    TooLong(usize),
    #[error("control can only go to someone allowed to use mouse and keyboard")]
    NoControlGrant,
}

/// The host window's grip on one participant: change their permissions, give them control, remove
/// them; and the shared chat. What the user does through it goes into the session record
/// ([`crate::HostEvent::Session`]) when it has somewhere to go.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    id: ParticipantId,
    grants: Arc<watch::Sender<Permissions>>,
    out: mpsc::Sender<HostControl>,
    roster: Roster,
    removed: CancellationToken,
    record: Option<Recorder>,
}

impl SessionHandle {
    pub(crate) fn new(
        id: ParticipantId,
        grants: Arc<watch::Sender<Permissions>>,
        out: mpsc::Sender<HostControl>,
        roster: Roster,
        removed: CancellationToken,
    ) -> Self {
        Self { id, grants, out, roster, removed, record: None }
    }

    /// The same handle, recording the user's changes and chat lines through `record`.
    pub(crate) fn with_recorder(self, record: Option<Recorder>) -> Self {
        Self { record, ..self }
    }

    fn record(&self, kind: EventKind) {
        if let Some(record) = &self.record {
            record.record(kind);
        }
    }

    /// Which participant this is.
    pub fn id(&self) -> ParticipantId {
        self.id
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
            self.roster.touch();
            self.record(EventKind::PermissionsChanged { by: Side::Host, before, now });
        }
    }

    /// The user gives this technician control of mouse and keyboard (taking it from whoever had it,
    /// whose held keys are let go). Only for someone granted `control`.
    pub fn give_control(&self) -> Result<(), HandleError> {
        if self.removed.is_cancelled() {
            return Err(HandleError::Ended);
        }
        if !self.grants.borrow().control {
            return Err(HandleError::NoControlGrant);
        }
        self.roster.controller().give(self.id);
        self.roster.set_wants_control(self.id, false);
        Ok(())
    }

    /// Remove this technician from the session at once (their keys are let go); the others stay.
    pub fn remove(&self) {
        self.removed.cancel();
    }

    /// Send a chat line to everyone in the session.
    pub fn chat(&self, text: &str) -> Result<(), HandleError> {
        if text.len() > MAX_CHAT_TEXT {
            return Err(HandleError::TooLong(text.len()));
        }
        if self.out.is_closed() {
            return Err(HandleError::Ended);
        }
        self.roster.send_to_others(None, &HostControl::Chat { text: text.to_owned() });
        let line = EventKind::Chat { from: Side::Host, text: text.to_owned() };
        self.roster.chain_to_others(Some(self.id), &line);
        self.record(line);
        Ok(())
    }
}
