//! The control stream of one participant: the reader (frame acknowledgements to the video task,
//! requests to [`crate::requests`]), the one writer of our side (queued messages and permission changes),
//! and what it forwards from the [`crate::display::Display`]: the cursor, and the monitor list after a
//! switch (whichever participant asked for it).

use quinn::{RecvStream, SendStream};
use std::sync::Arc;

use tether_shared::end::{EndReason, Violation};
use tether_shared::session_proto::{HostControl, Permissions, Request, ViewerControl};
use tether_shared::wire::{self, MAX_CONTROL_MSG};
use tokio::sync::{mpsc, oneshot, watch};

use super::{lost, read_error, violation, Step, Stop};
use crate::capture::cursor::CursorEvent;
use crate::display::{CursorSent, CursorState, Screen};
use crate::ledger::Ledger;

/// Reads the viewer's control stream: acks go to the video loop, requests to [`crate::requests`].
pub(super) async fn control_loop(
    mut recv: RecvStream,
    acks: mpsc::Sender<u64>,
    requests: mpsc::Sender<Request>,
    ledger: Option<Arc<Ledger>>,
) -> Step {
    loop {
        match wire::read_msg::<_, ViewerControl>(&mut recv, MAX_CONTROL_MSG).await.map_err(read_error)? {
            None => return Err(Stop::Done),
            Some(ViewerControl::Bye { reason }) => return Err(Stop::Bye(reason)),
            // A head that is not ours: the two ends do not hold the same record. Fail closed.
            Some(ViewerControl::RecordHead { len, mac }) => {
                if let Some(ledger) = &ledger {
                    ledger.check_head(len, &mac).map_err(|why| violation(Violation::Record(why)))?;
                }
            }
            Some(ViewerControl::FrameAck { seq }) => {
                if acks.send(seq).await.is_err() {
                    return Ok(());
                }
            }
            Some(ViewerControl::Request(request)) => {
                // A viewer that floods requests faster than they are answered waits here (backpressure).
                if requests.send(request).await.is_err() {
                    return Ok(());
                }
            }
        }
    }
}

/// The one writer of our side of the control stream: queued messages, and permission changes as they
/// happen (the window's toggles, answered requests); last, our `Bye`, after which it finishes the stream
/// and returns once the viewer has acknowledged all of it (or the connection is gone).
pub(super) async fn control_writer(
    mut send: SendStream,
    mut out: mpsc::Receiver<HostControl>,
    records: Option<mpsc::UnboundedReceiver<HostControl>>,
    mut farewell: oneshot::Receiver<Farewell>,
    mut grants: watch::Receiver<Permissions>,
) -> Step {
    let send = &mut send;
    grants.mark_unchanged();
    let mut records = records;
    loop {
        let msg = tokio::select! {
            biased;
            farewell = &mut farewell => {
                let Ok(Farewell { bye }) = farewell else { return Ok(()) };
                // The record's last entries (the end among them) before the goodbye, in order.
                while let Some(Ok(msg)) = records.as_mut().map(mpsc::UnboundedReceiver::try_recv) {
                    wire::write_msg(send, &msg, MAX_CONTROL_MSG).await.map_err(lost)?;
                }
                if let Some(reason) = bye {
                    wire::write_msg(send, &HostControl::Bye { reason }, MAX_CONTROL_MSG).await.map_err(lost)?;
                }
                let _ = send.finish();
                // Until the viewer has it all; bounded, for a viewer that stops reading.
                let _ = tokio::time::timeout(FAREWELL_WAIT, send.stopped()).await;
                return Ok(());
            }
            changed = grants.changed() => match changed {
                Ok(()) => HostControl::PermissionsChanged(*grants.borrow_and_update()),
                Err(_) => return Ok(()),
            },
            Some(msg) = async { records.as_mut()?.recv().await }, if records.is_some() => msg,
            msg = out.recv() => match msg {
                Some(msg) => msg,
                None => return Ok(()),
            },
        };
        wire::write_msg(send, &msg, MAX_CONTROL_MSG).await.map_err(lost)?;
    }
}

/// What the writer sends last, once the end is decided: the record so far, then `bye` (our reason, when
/// we ended the session).
#[derive(Debug)]
pub(super) struct Farewell {
    pub bye: Option<EndReason>,
}

/// How long the writer waits for the viewer to have read the last of the control stream.
const FAREWELL_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Forward the display's cursor to the control writer: what changed since this participant last sent
/// it, the shape first. Without a cursor source (test pattern) nothing ever changes.
pub(super) async fn cursor_loop(out: mpsc::Sender<HostControl>, mut cursor: watch::Receiver<CursorState>) {
    let mut sent = CursorSent::default();
    loop {
        let news = cursor.borrow_and_update().news(&mut sent);
        for event in news {
            let msg = match event {
                CursorEvent::Shape(shape) => HostControl::CursorShape(shape),
                CursorEvent::Position { x, y, visible } => HostControl::CursorPosition { x, y, visible },
            };
            if out.send(msg).await.is_err() {
                return;
            }
        }
        if cursor.changed().await.is_err() {
            // The display is gone: the host is ending, and so will the session; no cursor meanwhile.
            return std::future::pending().await;
        }
    }
}

/// Tell the viewer about every monitor switch after generation `told` (the one the session started
/// on, whose list went out with the welcome).
pub(super) async fn monitors_loop(
    out: mpsc::Sender<HostControl>,
    mut screen: watch::Receiver<Screen>,
    mut told: u64,
) {
    while screen.changed().await.is_ok() {
        let msg = {
            let now = screen.borrow_and_update();
            if now.generation == told {
                continue;
            }
            told = now.generation;
            HostControl::Monitors { monitors: now.monitors.clone(), current: now.current }
        };
        if out.send(msg).await.is_err() {
            return;
        }
    }
    std::future::pending().await // the display is gone: the host is ending
}
