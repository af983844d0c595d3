//! Who is in the session: the roster of participants the host window and every viewer see.
//!
//! A participant (one technician: one end-to-end connection, their identity, their grants, their
//! control channel) is listed from the moment their session starts until it ends ([`Presence`] takes
//! them off when dropped). The roster holds what the user decided about each (grants), who invited
//! whom, and who asked for control; who *has* control is the [`Controller`]'s word. Any change — a
//! join, a leave, a grant, control moving — is seen through one [`RosterWatch`], which each session's
//! participants task (to its viewer) and the window's feed ([`crate::HostEvent::Participants`]) follow.
//!
//! The shared chat goes through here too: a line from the user or from one technician reaches every
//! other participant.

use std::sync::{Arc, Mutex, MutexGuard};

use tether_shared::record::EventKind;
use tether_shared::relay_proto::VerifiedTechnician;
use tether_shared::session_proto::{self as proto, HostControl, Permissions};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::access::SessionHandle;
use crate::controller::{Controller, ParticipantId};
use crate::Recorder;

/// How a technician is named in short: the account the relay verified, or else the name they typed.
pub fn short_name<'a>(typed: &'a str, verified: Option<&'a VerifiedTechnician>) -> &'a str {
    verified.map_or(typed, |v| &v.account)
}

/// One participant as the roster keeps them.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub id: ParticipantId,
    /// The name they typed, made safe to show.
    pub technician: String,
    pub verified: Option<VerifiedTechnician>,
    /// Who invited them (the inviter's short name); `None` for the first technician.
    pub invited_by: Option<String>,
    pub grants: Arc<watch::Sender<Permissions>>,
    /// To their control writer.
    pub out: mpsc::Sender<HostControl>,
    /// Cancelled when the user removes them.
    pub removed: CancellationToken,
    pub recorder: Option<Recorder>,
    pub wants_control: bool,
}

impl Entry {
    /// How others see them: the verified account, or the typed name.
    pub fn short_name(&self) -> &str {
        short_name(&self.technician, self.verified.as_ref())
    }
}

/// A participant as the host window shows them, with the handle to act on them.
#[derive(Debug, Clone)]
pub struct Present {
    pub id: ParticipantId,
    /// The name they typed (escaped).
    pub technician: String,
    pub verified: Option<VerifiedTechnician>,
    pub invited_by: Option<String>,
    pub permissions: Permissions,
    pub in_control: bool,
    pub wants_control: bool,
    /// Change their permissions, give them control, remove them, chat with everyone.
    pub handle: SessionHandle,
}

impl Present {
    /// The verified account, or the typed name.
    pub fn short_name(&self) -> &str {
        short_name(&self.technician, self.verified.as_ref())
    }
}

struct Inner {
    members: Mutex<Vec<Entry>>,
    changed: watch::Sender<()>,
    controller: Controller,
}

/// The session's participants; clones share it.
#[derive(Clone)]
pub struct Roster {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Roster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Roster").field("members", &self.lock().len()).finish()
    }
}

impl Roster {
    pub fn new(controller: Controller) -> Self {
        let inner = Inner { members: Mutex::default(), changed: watch::channel(()).0, controller };
        Self { inner: Arc::new(inner) }
    }

    /// The list is plain data; a panic elsewhere while locked leaves it usable.
    fn lock(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.inner.members.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn controller(&self) -> &Controller {
        &self.inner.controller
    }

    /// List `entry` until the returned guard is dropped.
    pub(crate) fn join(&self, entry: Entry) -> Presence {
        let id = entry.id;
        self.lock().push(entry);
        self.touch();
        Presence { roster: self.clone(), id }
    }

    /// Something about a participant changed (their grants): tell the watchers.
    pub fn touch(&self) {
        self.inner.changed.send_modify(|()| {});
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    pub(crate) fn get(&self, id: ParticipantId) -> Option<Entry> {
        self.lock().iter().find(|e| e.id == id).cloned()
    }

    /// Mark whether `id` is asking for control.
    pub fn set_wants_control(&self, id: ParticipantId, wants: bool) {
        let changed = self.lock().iter_mut().find(|e| e.id == id).is_some_and(|e| {
            let before = e.wants_control;
            e.wants_control = wants;
            before != wants
        });
        if changed {
            self.touch();
        }
    }

    /// Wait for changes here and to who has control.
    pub fn watch(&self) -> RosterWatch {
        let mut members = self.inner.changed.subscribe();
        members.mark_changed();
        RosterWatch { members, holder: self.inner.controller.holder_watch() }
    }

    /// The roster as participant `you` is told it.
    pub fn for_viewer(&self, you: ParticipantId) -> proto::Roster {
        let holder = self.inner.controller.holder();
        let members = self
            .lock()
            .iter()
            .map(|e| proto::Member {
                id: e.id.0,
                name: e.short_name().to_owned(),
                verified: e.verified.is_some(),
                invited_by: e.invited_by.clone(),
                permissions: *e.grants.borrow(),
                wants_control: e.wants_control && holder != Some(e.id),
            })
            .collect();
        proto::Roster { you: you.0, members, control: holder.map(|h| h.0) }
    }

    /// The roster as the host window shows it.
    pub fn present(&self) -> Vec<Present> {
        let holder = self.inner.controller.holder();
        self.lock()
            .iter()
            .map(|e| Present {
                id: e.id,
                technician: e.technician.clone(),
                verified: e.verified.clone(),
                invited_by: e.invited_by.clone(),
                permissions: *e.grants.borrow(),
                in_control: holder == Some(e.id),
                wants_control: e.wants_control && holder != Some(e.id),
                handle: self.handle(e),
            })
            .collect()
    }

    /// The window's grip on participant `e`.
    pub(crate) fn handle(&self, e: &Entry) -> SessionHandle {
        SessionHandle::new(e.id, e.grants.clone(), e.out.clone(), self.clone(), e.removed.clone())
            .with_recorder(e.recorder.clone())
    }

    /// Send `msg` to every participant but `except`. A participant whose queue is full misses it (their
    /// session is stuck or ending; the chat of the others does not wait for them).
    pub(crate) fn send_to_others(&self, except: Option<ParticipantId>, msg: &HostControl) {
        for e in self.lock().iter().filter(|e| Some(e.id) != except) {
            let _ = e.out.try_send(msg.clone());
        }
    }
}

impl Roster {
    /// Put `kind` into the session record of every participant but `except` (a shared chat line:
    /// everyone's record holds what they read).
    pub(crate) fn chain_to_others(&self, except: Option<ParticipantId>, kind: &EventKind) {
        for e in self.lock().iter().filter(|e| Some(e.id) != except) {
            if let Some(recorder) = &e.recorder {
                recorder.chain_only(kind.clone());
            }
        }
    }
}

/// A participant's place on the roster; dropping it takes them off.
#[derive(Debug)]
pub(crate) struct Presence {
    roster: Roster,
    id: ParticipantId,
}

impl Drop for Presence {
    fn drop(&mut self) {
        self.roster.lock().retain(|e| e.id != self.id);
        self.roster.touch();
    }
}

/// Wakes at any change of the roster or of who has control.
#[derive(Debug)]
pub struct RosterWatch {
    members: watch::Receiver<()>,
    holder: watch::Receiver<Option<ParticipantId>>,
}

impl RosterWatch {
    /// Until something changed (at once the first time); `false` once nothing more can change.
    pub async fn changed(&mut self) -> bool {
        tokio::select! {
            r = self.members.changed() => r.is_ok(),
            r = self.holder.changed() => r.is_ok(),
        }
    }
}

/// Keep participant `you`'s viewer told of the roster, from its first state on.
pub(crate) async fn tell_viewer(
    roster: Roster,
    you: ParticipantId,
    out: mpsc::Sender<HostControl>,
    record: Option<Recorder>,
) {
    let mut watch = roster.watch();
    let mut told: Option<proto::Roster> = None;
    while watch.changed().await {
        let now = roster.for_viewer(you);
        // Into this participant's record: who came and went, where control went (the window shows the
        // list itself, so these go into the record only).
        if let Some(record) = &record {
            for kind in tether_shared::record::roster_changes(told.as_ref(), &now) {
                record.chain_only(kind);
            }
        }
        told = Some(now.clone());
        if out.send(HostControl::Participants(now)).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inject::record::RecordingSink;

    fn entry(id: u64, name: &str) -> (Entry, mpsc::Receiver<HostControl>) {
        let (out, rx) = mpsc::channel(8);
        let entry = Entry {
            id: ParticipantId(id),
            technician: name.into(),
            verified: None,
            invited_by: None,
            grants: Arc::new(watch::channel(Permissions::ALL).0),
            out,
            removed: CancellationToken::new(),
            recorder: None,
            wants_control: false,
        };
        (entry, rx)
    }

    #[tokio::test]
    async fn members_come_and_go_with_their_presence_and_control_shows() {
        let controller = Controller::new(Box::new(RecordingSink::new()));
        let roster = Roster::new(controller.clone());
        let (alice, _a) = entry(1, "Alice");
        let (bob, _b) = entry(2, "Bob");
        let mut watch = roster.watch();
        assert!(watch.changed().await, "the first state is a change");
        let alice = roster.join(alice);
        let bob_presence = roster.join(bob);
        assert!(watch.changed().await);
        let _ = controller.take(ParticipantId(1));
        roster.set_wants_control(ParticipantId(2), true);
        let seen = roster.for_viewer(ParticipantId(2));
        assert_eq!(seen.you, 2);
        assert_eq!(seen.control, Some(1));
        assert_eq!(seen.members.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["Alice", "Bob"]);
        assert!(seen.member(2).expect("bob").wants_control);
        drop(bob_presence);
        assert_eq!(roster.len(), 1);
        drop(alice);
        assert!(roster.is_empty());
    }

    #[tokio::test]
    async fn a_chat_line_reaches_everyone_but_its_writer() {
        let roster = Roster::new(Controller::new(Box::new(RecordingSink::new())));
        let (alice, mut to_alice) = entry(1, "Alice");
        let (bob, mut to_bob) = entry(2, "Bob");
        let _p = (roster.join(alice), roster.join(bob));
        let line = HostControl::ColleagueChat { from: "Alice".into(), text: "hi".into() };
        roster.send_to_others(Some(ParticipantId(1)), &line);
        assert_eq!(to_bob.try_recv().ok(), Some(line));
        assert!(to_alice.try_recv().is_err());
    }
}
