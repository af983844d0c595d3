//! The viewer's end of a session, decided in one place: [`EndTask`] owns the session's
//! [`EndArbiter`], hears every task's report ([`EndEvent`]) and publishes the one [`EndReason`].

use std::time::Instant;

use quinn::Connection;
use tether_shared::end::{EndArbiter, EndEvent, EndReason, Side, Violation};
use tether_shared::net::pairing::CLOSE_PROTOCOL;
use tether_shared::session_proto::ViewerControl;
use tokio::sync::{mpsc, watch};

/// The host broke the protocol: the arbiter hears it, and closes the session.
pub(super) fn violation(events: &mpsc::UnboundedSender<EndEvent>, detail: Violation) {
    let _ = events.send(EndEvent::Local(EndReason::ProtocolViolation { by: Side::Host, detail }));
}

/// The one place the viewer's session end is decided: the control reader, the video task, the relay
/// watch, [`super::ViewerSession::leave`] and the connection's close all report here (`events`); what the
/// arbiter decides is published in `ended`. Then: a protocol violation closes at once; our leaving sends
/// `Bye` (the leaving caller closes after the host did); anything else closes with the reason's code.
/// The relay watch is stopped once the connection has closed.
pub(super) struct EndTask {
    pub(super) conn: Connection,
    pub(super) events: mpsc::UnboundedReceiver<EndEvent>,
    pub(super) ended: watch::Sender<Option<EndReason>>,
    pub(super) control: mpsc::Sender<ViewerControl>,
    pub(super) watch: tokio::task::JoinHandle<()>,
}

impl EndTask {
    pub(super) async fn run(mut self) {
        let conn = self.conn.clone();
        let mut arbiter = EndArbiter::new(Side::Viewer);
        let end = loop {
            if let Some(end) = arbiter.poll_end(Instant::now()) {
                break end;
            }
            let deadline = arbiter.poll_timeout();
            // Biased: a report (the host's Bye, already read) before the connection's close.
            let event = tokio::select! {
                biased;
                event = self.events.recv() => match event {
                    Some(event) => event,
                    // Every sender is gone: the session was dropped, and its Drop closes the connection.
                    None => EndEvent::Closed(conn.closed().await),
                },
                closed = conn.closed() => EndEvent::Closed(closed),
                () = async {
                    match deadline {
                        Some(at) => tokio::time::sleep_until(at.into()).await,
                        None => std::future::pending().await,
                    }
                } => continue,
            };
            arbiter.handle(Instant::now(), event);
        };
        self.ended.send_replace(Some(end.clone()));
        match &end {
            EndReason::ProtocolViolation { .. } => conn.close(CLOSE_PROTOCOL.into(), &end.close_reason()),
            _ if arbiter.decided_here() => {
                let _ = self.control.send(ViewerControl::Bye { reason: end }).await;
            }
            _ => conn.close(end.close_code().into(), &end.close_reason()),
        }
        conn.closed().await;
        self.watch.abort();
    }
}
