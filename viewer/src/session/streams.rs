//! The viewer's stream tasks: the control writer, the control reader (the host's state and notices into
//! `watch` channels and a broadcast) and the video task (frame updates into the decoder). Each reports
//! its end to the session's arbiter ([`super::end::EndTask`]) and decides nothing itself.

use std::sync::Arc;

use quinn::{Connection, SendStream};
use tether_shared::code::Code;
use tether_shared::end::{EndEvent, Violation};
use tether_shared::inventory::pack::Assembler;
use tether_shared::link::LinkReport;
use tether_shared::record::{EventKind, Side};
use tether_shared::session_proto::{
    FrameUpdate, HostControl, InviteNews, Permissions, Roster, SystemInfo, ViewerControl, MAX_HISTORY_LINES,
    MAX_PARTICIPANTS,
};
use tether_shared::text::{visible, visible_lines};
use tether_shared::wire::{self, WireError, MAX_CONTROL_MSG, MAX_VIDEO_MSG};
use tokio::sync::{broadcast, mpsc, watch};

use super::end::violation;
use super::snapshots::Snapshots;
use super::{CursorState, HostNotice, Ledger, Monitors, Shown};
use crate::decode::Decoder;
use crate::record::Recorder;

/// Everything the control reader updates.
pub(super) struct HostState {
    pub(super) cursor: watch::Sender<CursorState>,
    pub(super) grants: watch::Sender<Permissions>,
    pub(super) monitors: watch::Sender<Monitors>,
    pub(super) system: watch::Sender<Option<SystemInfo>>,
    pub(super) line: watch::Sender<Option<LinkReport>>,
    /// The latest news of the invite this technician asked for.
    pub(super) invite: watch::Sender<Option<InviteNews>>,
    pub(super) participants: watch::Sender<Roster>,
    /// Our copy of the session record (the host sequences it), and what confirms it to the host.
    pub(super) ledger: Ledger,
    pub(super) notices: broadcast::Sender<HostNotice>,
    pub(super) end_events: mpsc::UnboundedSender<EndEvent>,
    pub(super) record: Recorder,
}

/// Writes frame acks and requests on the control stream, in the order they were made; our `Bye` last.
pub(super) async fn control_task(
    conn: Connection,
    mut send: SendStream,
    mut out: mpsc::Receiver<ViewerControl>,
) {
    while let Some(msg) = out.recv().await {
        let bye = matches!(msg, ViewerControl::Bye { .. });
        if wire::write_msg(&mut send, &msg, MAX_CONTROL_MSG).await.is_err() || bye {
            break;
        }
    }
    let _ = send.finish();
    drop(conn);
}

/// Messages from the host on the control stream after `Welcome`: cursor, permissions, notices, goodbye.
pub(super) async fn control_reader(mut recv: quinn::RecvStream, state: HostState) {
    let HostState {
        cursor,
        grants,
        monitors,
        system,
        line,
        invite,
        participants,
        ledger,
        notices,
        end_events,
        record,
    } = state;
    let mut inventory = Assembler::default();
    loop {
        let msg = match wire::read_msg::<_, HostControl>(&mut recv, MAX_CONTROL_MSG).await {
            Ok(Some(msg)) => msg,
            Ok(None) | Err(WireError::Io(_)) => return,
            Err(e) => return violation(&end_events, Violation::Malformed(e.to_string())),
        };
        match msg {
            HostControl::Link(report) => {
                line.send_replace(Some(report));
            }
            HostControl::CursorShape(shape) if !shape.is_valid() => {
                let why = format!("{shape:?} whose pixels do not match its size");
                return violation(&end_events, Violation::Malformed(why));
            }
            HostControl::CursorShape(shape) => {
                cursor.send_modify(|c| c.shape = Some(Arc::new(shape)));
            }
            HostControl::CursorPosition { x, y, visible } => cursor.send_modify(|c| {
                c.position = Some((x, y));
                c.visible = visible;
            }),
            HostControl::PermissionsChanged(now) => {
                // Recorded first: whoever waits for the new grants finds the change in the record.
                let before = *grants.borrow();
                record.permissions_changed(before, now);
                grants.send_replace(now);
            }
            // Shown to the technician: invisible and text-reordering characters escaped (the clipboard
            // stays as it is: it is data, pasted, not read).
            HostControl::Chat { text } => {
                let text = tether_shared::text::visible_lines(&text).into_owned();
                record.record(EventKind::Chat { from: Side::Host, text: text.clone() });
                let _ = notices.send(HostNotice::Chat(text));
            }
            HostControl::Clipboard { text } => {
                record.record(EventKind::Clipboard { by: Side::Host, bytes: text.len() as u64 });
                let _ = notices.send(HostNotice::Clipboard(text));
            }
            HostControl::RequestDeclined { asked } => {
                record.declined(asked);
                let _ = notices.send(HostNotice::Declined(asked));
            }
            HostControl::Notice { text } => {
                let text = tether_shared::text::visible_lines(&text).into_owned();
                let _ = notices.send(HostNotice::Notice(text));
            }
            HostControl::Monitors { monitors: list, current } => {
                let before = monitors.send_replace(Monitors { list, current });
                if !before.list.is_empty() && before.current != current {
                    record.record(EventKind::MonitorSwitched { index: current });
                }
            }
            HostControl::Inventory(part) => match inventory.push(part) {
                Ok(None) => {}
                Ok(Some(info)) => {
                    ledger.seen_inventory(&info);
                    system.send_replace(Some(info));
                }
                // The host's mistake, not the session's end: the panel stays as it was and says why.
                Err(e) => {
                    let _ = notices.send(HostNotice::Notice(format!("The host's system information: {e}")));
                }
            },
            // A code is shown only if it is one (digits and dashes the way codes are written): a host
            // cannot put other text where the technician reads a code aloud.
            HostControl::Invite(InviteNews::Code { code, .. }) if Code::parse(&code).is_err() => {
                return violation(
                    &end_events,
                    Violation::Malformed("an invite code that is not a code".into()),
                );
            }
            HostControl::Invite(InviteNews::Unavailable { why }) => {
                invite.send_replace(Some(InviteNews::Unavailable { why: visible(&why).into_owned() }));
            }
            HostControl::Invite(news) => {
                invite.send_replace(Some(news));
            }
            HostControl::Participants(roster) if roster.members.len() > MAX_PARTICIPANTS => {
                let why = format!("a list of {} participants", roster.members.len());
                return violation(&end_events, Violation::Malformed(why));
            }
            HostControl::Participants(mut roster) => {
                for member in &mut roster.members {
                    member.name = visible(&member.name).into_owned();
                    member.invited_by = member.invited_by.as_deref().map(|by| visible(by).into_owned());
                }
                participants.send_replace(roster);
            }
            HostControl::ColleagueChat { from, text } => {
                let from = visible(&from).into_owned();
                let text = visible_lines(&text).into_owned();
                record.record(EventKind::ColleagueChat { from: from.clone(), text: text.clone() });
                let _ = notices.send(HostNotice::ColleagueChat { from, text });
            }
            HostControl::History(history)
                if history.chat.len() > MAX_HISTORY_LINES || history.log.len() > MAX_HISTORY_LINES =>
            {
                let why = format!("a history of {} + {} lines", history.chat.len(), history.log.len());
                return violation(&end_events, Violation::Malformed(why));
            }
            HostControl::History(mut history) => {
                for line in &mut history.chat {
                    line.from = visible(&line.from).into_owned();
                    line.text = visible_lines(&line.text).into_owned();
                }
                for line in &mut history.log {
                    *line = visible_lines(line).into_owned();
                }
                let _ = notices.send(HostNotice::History(history));
            }
            // The next entry of the record both ends keep: it must extend ours exactly, under the MAC
            // only the host could make; we confirm the head we then hold.
            HostControl::Record { entry, mac } => {
                if let Err(why) = ledger.accept(entry, &mac) {
                    return violation(&end_events, Violation::Record(why));
                }
            }
            HostControl::Bye { reason } => {
                let _ = end_events.send(EndEvent::Bye(reason));
                return;
            }
        }
    }
}

/// Frame updates from the host → the decoder → `frames`, acknowledging each complete frame. The stream's
/// end decides nothing (the host's `Bye` or close that follows does); a bad update is a violation.
pub(super) async fn video_task(
    conn: Connection,
    frames: watch::Sender<Option<Shown>>,
    acks: mpsc::Sender<ViewerControl>,
    end_events: mpsc::UnboundedSender<EndEvent>,
) {
    let Ok(mut recv) = conn.accept_uni().await else { return };
    let mut decoder = Decoder::new();
    let mut snapshots = Snapshots::default();
    loop {
        let update = match wire::read_msg::<_, FrameUpdate>(&mut recv, MAX_VIDEO_MSG).await {
            Ok(Some(update)) => update,
            Ok(None) | Err(WireError::Io(_)) => return,
            Err(e) => return violation(&end_events, Violation::Malformed(e.to_string())),
        };
        match decoder.apply(&update) {
            Ok(Some(info)) => {
                if let Some(frame) = decoder.frame() {
                    let snapshot = snapshots.take(frame, info.dirty);
                    let old = frames.send_replace(Some(Shown { info, frame: snapshot }));
                    snapshots.recycle(old.map(|shown| shown.frame));
                }
                if acks.send(ViewerControl::FrameAck { seq: info.seq }).await.is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(e) => return violation(&end_events, Violation::BadFrame(e.to_string())),
        }
    }
}
