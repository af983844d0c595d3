//! Answers the technician's requests during a session: chat, clipboard, more or less permission,
//! quality, monitor, system info. One task, so requests are handled in order; a question to the user
//! (more permission) waits on the side, so chat keeps flowing while the dialog is open.
//!
//! Every request is checked against what is granted *now*: clipboard needs `control`, system info needs
//! `view`; refused requests get a `Notice` back, never silence.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tether_shared::inventory::{self, pack, SystemInfo};
use tether_shared::link::ScreenQuality;
use tether_shared::record::{EventKind, Side};
use tether_shared::relay_proto::VerifiedTechnician;
use tether_shared::session_proto::{HostControl, InviteNews, Permissions, Request, MAX_CHAT_TEXT};
use tokio::sync::{mpsc, watch};

use crate::access::{self, AccessPolicy, Asker};
use crate::clipboard::ClipboardHandle;
use crate::controller::{ParticipantId, Take};
use crate::display::Display;
use crate::invites::{InviteCommand, InviteSender};
use crate::participants::Roster;
use crate::Recorder;

/// How often a watched clipboard is looked at.
const CLIPBOARD_POLL: Duration = Duration::from_millis(300);

type Answer = Pin<Box<dyn Future<Output = (Permissions, Option<Permissions>)> + Send>>;

pub(crate) struct Requests {
    pub me: ParticipantId,
    /// The name they typed (escaped).
    pub technician: String,
    /// As the others see them: the verified account, or the typed name.
    pub short_name: String,
    /// The account the relay verified, if any (the user's card for a later request says so too).
    pub verified: Option<VerifiedTechnician>,
    pub grants: Arc<watch::Sender<Permissions>>,
    pub out: mpsc::Sender<HostControl>,
    pub access: AccessPolicy,
    pub allowed: Permissions,
    pub record: Option<Recorder>,
    /// Who else is here: the shared chat, control hand-over.
    pub roster: Roster,
    pub clipboard: Option<ClipboardHandle>,
    /// The host's screen: a monitor switch is one call on it, for every participant.
    pub display: Display,
    pub quality: watch::Sender<ScreenQuality>,
    /// Where invite requests go, with this session's resume commitment (`None`: this host takes none).
    pub invites: Option<(InviteSender, [u8; 32])>,
    /// The inventory last sent to this technician: the one they may keep in the record.
    pub sent_inventory: Option<SystemInfo>,
}

impl Requests {
    /// Serve until the control reader stops.
    pub(crate) async fn serve(mut self, mut requests: mpsc::Receiver<Request>) {
        let mut watching_clipboard = false;
        // The last clipboard text seen or set, so a change is sent once and the viewer's own is not echoed.
        let mut clipboard_seen: Option<String> = None;
        let mut pending: Option<Answer> = None;
        let mut poll = tokio::time::interval(CLIPBOARD_POLL);
        loop {
            tokio::select! {
                request = requests.recv() => {
                    let Some(request) = request else { return };
                    match request {
                        Request::WatchClipboard(on) => {
                            watching_clipboard = on;
                            clipboard_seen = None;
                        }
                        Request::Clipboard { text } => {
                            if self.set_clipboard(&text).await {
                                self.event(EventKind::Clipboard { by: Side::Technician, bytes: text.len() as u64 });
                                clipboard_seen = Some(text);
                            }
                        }
                        Request::RequestPermissions(want) if pending.is_some() => {
                            self.notice(format!("a request is already waiting for the user; {want} not asked"));
                        }
                        Request::RequestPermissions(want) => {
                            self.event(EventKind::Requested { asked: want });
                            pending = self.permissions(want);
                        }
                        other => self.handle(other).await,
                    }
                }
                (want, answer) = async { pending.as_mut().expect("guarded").await }, if pending.is_some() => {
                    pending = None;
                    self.settle(want, answer);
                }
                _ = poll.tick(), if watching_clipboard && self.grants.borrow().control => {
                    if let Some(clipboard) = &self.clipboard {
                        if let Ok(Some(text)) = clipboard.get().await {
                            if clipboard_seen.as_ref() != Some(&text) && text.len() <= MAX_CLIPBOARD {
                                clipboard_seen = Some(text.clone());
                                let bytes = text.len() as u64;
                                if self.out.send(HostControl::Clipboard { text }).await.is_err() {
                                    return;
                                }
                                self.event(EventKind::Clipboard { by: Side::Host, bytes });
                            }
                        }
                    }
                }
            }
        }
    }

    async fn handle(&mut self, request: Request) {
        match request {
            Request::Chat { text } => {
                if !text.trim().is_empty() && text.len() <= MAX_CHAT_TEXT {
                    // Shown as sent: a right-to-left override or a control character is escaped, not obeyed.
                    let text = tether_shared::text::visible_lines(&text).into_owned();
                    // The chat is shared: every other technician reads it too, signed.
                    let line =
                        HostControl::ColleagueChat { from: self.short_name.clone(), text: text.clone() };
                    self.roster.send_to_others(Some(self.me), &line);
                    let read = EventKind::ColleagueChat { from: self.short_name.clone(), text: text.clone() };
                    self.roster.chain_to_others(Some(self.me), &read);
                    self.event(EventKind::Chat { from: Side::Technician, text });
                }
            }
            Request::RequestControl => self.request_control(),
            Request::SaveNotes(notes) if !notes.fits() => {
                self.notice(format!("notes not saved: each field holds at most {MAX_CHAT_TEXT} bytes"))
            }
            Request::SaveNotes(notes) => {
                // Shown to the user as written: control and reordering characters escaped, not obeyed.
                let shown = notes.map(|text| tether_shared::text::visible_lines(text).into_owned());
                self.event(EventKind::Notes(shown));
            }
            Request::HandOverControl { to } => self.hand_over(ParticipantId(to)),
            Request::SetQuality(quality) if !quality.is_valid() => {
                self.notice("quality must be auto, lossless or 1-100".into())
            }
            Request::SetQuality(quality) => {
                self.quality.send_replace(quality);
            }
            Request::SelectMonitor { index } => self.select_monitor(index).await,
            Request::SystemInfoRequest => {
                if !self.grants.borrow().view {
                    return self.notice("system information needs the view permission".into());
                }
                self.send_inventory().await;
            }
            Request::IncludeInventory { digest } => self.include_inventory(digest),
            Request::Invite if !self.grants.borrow().view => self
                .invite_news(InviteNews::Unavailable { why: "an invite needs the view permission".into() }),
            Request::Invite | Request::WithdrawInvite => {
                let news = self.out.clone();
                let taken = self.invites.as_ref().is_some_and(|(to, session)| {
                    let command = match request {
                        Request::Invite => {
                            InviteCommand::Open { news, session: *session, by: self.short_name.clone() }
                        }
                        _ => InviteCommand::Withdraw { news },
                    };
                    to.send(command).is_ok()
                });
                if !taken {
                    self.invite_news(InviteNews::Unavailable {
                        why: "this host does not take invites".into(),
                    });
                }
            }
            // The control reader only passes requests; anything else is a bug there, not the viewer's.
            other => tracing::warn!("not a request: {other:?}"),
        }
    }

    /// Less than granted now: at once. More: ask the user (or grant within `allowed` when headless).
    fn permissions(&mut self, want: Permissions) -> Option<Answer> {
        let current = *self.grants.borrow();
        if want.intersect(current) == want {
            self.settle(want, Some(want));
            return None;
        }
        match &self.access {
            AccessPolicy::Auto => {
                let allowed = self.allowed;
                Some(Box::pin(async move { (want, Some(want.intersect(allowed))) }))
            }
            AccessPolicy::Ask(to) => {
                let to = to.clone();
                let asker = Asker {
                    technician: self.technician.clone(),
                    verified: self.verified.clone(),
                    invited_by: None,
                    offers_history: false,
                };
                let allowed = self.allowed;
                Some(Box::pin(async move {
                    let answer = access::ask(&to, asker, want, current).await;
                    (want, answer.map(|c| c.granted.intersect(allowed)))
                }))
            }
        }
    }

    fn settle(&mut self, want: Permissions, answer: Option<Permissions>) {
        let current = *self.grants.borrow();
        let now = answer.unwrap_or(current);
        if now == current && want != current {
            let _ = self.out.try_send(HostControl::RequestDeclined { asked: want });
            self.event(EventKind::RequestDeclined { asked: want });
            return;
        }
        self.grants.send_replace(now);
        self.roster.touch();
        self.event(EventKind::PermissionsChanged { by: Side::Technician, before: current, now });
    }

    /// Take control when nobody has it; otherwise show the wish to the holder and the user.
    fn request_control(&mut self) {
        if !self.grants.borrow().control {
            return self
                .notice("control needs the mouse-and-keyboard permission; ask the user for it first".into());
        }
        match self.roster.controller().take(self.me) {
            Take::Taken | Take::Held => self.roster.set_wants_control(self.me, false),
            Take::Busy(_) => self.roster.set_wants_control(self.me, true),
        }
    }

    /// The holder gives control to `to`, who must be here and allowed to use mouse and keyboard.
    fn hand_over(&mut self, to: ParticipantId) {
        let Some(target) = self.roster.get(to) else {
            return self.notice("that technician is no longer in the session".into());
        };
        if !target.grants.borrow().control {
            return self.notice(format!(
                "{} may not use mouse and keyboard; the user can allow it",
                target.short_name()
            ));
        }
        if self.roster.controller().hand_over(self.me, to) {
            self.roster.set_wants_control(to, false);
        } else {
            self.notice("only the technician in control can hand it over".into());
        }
    }

    async fn set_clipboard(&mut self, text: &str) -> bool {
        if !self.grants.borrow().control {
            self.notice("clipboard text ignored: it needs the control permission".into());
            return false;
        }
        let Some(clipboard) = &self.clipboard else {
            self.notice("this host has no clipboard".into());
            return false;
        };
        match clipboard.set(text.to_owned()).await {
            Ok(()) => true,
            Err(e) => {
                self.notice(format!("could not set the clipboard: {e}"));
                false
            }
        }
    }

    async fn select_monitor(&mut self, index: u32) {
        match self.display.switch_monitor(index).await {
            Ok(None) => {}
            // Every participant's control side tells its viewer the new list.
            Ok(Some(_)) => self.event(EventKind::MonitorSwitched { index }),
            Err(e) => self.notice(e.to_string()),
        }
    }

    /// Read the inventory and send it in parts.
    async fn send_inventory(&mut self) {
        let info = crate::inventory::collect().await;
        match pack::pack(&info) {
            Ok(parts) => {
                for part in parts {
                    if self.out.send(HostControl::Inventory(part)).await.is_err() {
                        return;
                    }
                }
                self.sent_inventory = Some(info);
            }
            Err(e) => self.notice(format!("could not send the system information: {e}")),
        }
    }

    /// Keep the inventory last sent (named by `digest`) in the session record, with the user's leave: only
    /// while the technician may still see the screen.
    fn include_inventory(&mut self, digest: [u8; 32]) {
        if !self.grants.borrow().view {
            return self
                .notice("the inventory goes into the record only while you may see the screen".into());
        }
        match (&self.sent_inventory, &self.record) {
            (Some(info), Some(record)) if inventory::digest(info) == digest => record.keep_inventory(info),
            (Some(_), _) | (None, _) => self.notice(
                "that is not the inventory the host sent last: refresh the System panel and try again".into(),
            ),
        }
    }

    fn invite_news(&self, news: InviteNews) {
        let _ = self.out.try_send(HostControl::Invite(news));
    }

    fn notice(&self, text: String) {
        let _ = self.out.try_send(HostControl::Notice { text });
    }

    /// Into the session record.
    fn event(&self, kind: EventKind) {
        if let Some(record) = &self.record {
            record.record(kind);
        }
    }
}

const MAX_CLIPBOARD: usize = tether_shared::session_proto::MAX_CLIPBOARD_TEXT;
