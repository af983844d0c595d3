//! The input of one participant: the viewer's unidirectional stream, each event handed to the host's
//! [`Controller`] — only while this participant is granted control and holds it; otherwise dropped and
//! counted, never injected. Revoking control lets go of every key the participant holds. When the desktop
//! refuses an event (a portal without remote control, say) the technician is told why, once per reason,
//! rather than clicking into a screen that ignores them.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use quinn::Connection;
use tether_shared::input::InputEvent;
use tether_shared::session_proto::{HostControl, Permissions};
use tether_shared::wire::{self, MAX_CONTROL_MSG};
use tokio::sync::{mpsc, watch};

use super::{read_error, Counters, Step, Stop};
use crate::controller::{Controller, ParticipantId, Refused};

pub(super) async fn input_loop(
    conn: Connection,
    controller: Controller,
    who: ParticipantId,
    mut grants: watch::Receiver<Permissions>,
    counters: Arc<Counters>,
    out: mpsc::Sender<HostControl>,
) -> Step {
    let mut told: Option<String> = None;
    let mut recv = conn.accept_uni().await.map_err(|_| Stop::Done)?;
    // `read_msg` must never be cancelled mid-message, so the stream is read on its own and the events
    // come through a channel, which can be raced against a permission change safely. The reader takes
    // the next message only once the previous one was handled (a one-slot channel, reserved before
    // reading; both run in this task, and handling does not yield): reading the stream to its end then
    // means every event was injected, so a viewer that waits for that before closing loses nothing.
    let (events_tx, mut events) = mpsc::channel(1);
    let reader = async move {
        loop {
            let Ok(permit) = events_tx.reserve().await else { break };
            let msg = wire::read_msg::<_, InputEvent>(&mut recv, MAX_CONTROL_MSG).await;
            let more = matches!(msg, Ok(Some(_)));
            permit.send(msg);
            if !more {
                break;
            }
        }
        std::future::pending::<()>().await
    };
    let handle = async {
        loop {
            let msg = tokio::select! {
                // Control revoked: let go of everything the technician holds, at once.
                changed = grants.changed() => {
                    if changed.is_ok() && !grants.borrow_and_update().control {
                        controller.release(who);
                    }
                    continue;
                }
                msg = events.recv() => msg.unwrap_or(Ok(None)),
            };
            match msg.map_err(read_error)? {
                // The viewer finished its input: everything it sent is injected. Its Bye says why.
                None => return Err(Stop::Done),
                Some(event) => {
                    if grants.borrow().control {
                        // Granted control takes the controls when nobody else holds them.
                        let _ = controller.take(who);
                        match controller.inject(who, &event) {
                            Ok(()) => counters.injected.fetch_add(1, Ordering::Relaxed),
                            Err(Refused::NotInControl) => counters.dropped.fetch_add(1, Ordering::Relaxed),
                            Err(Refused::Inject(e)) => {
                                let why = e.to_string();
                                if told.as_ref() != Some(&why) {
                                    tracing::warn!("{why}");
                                    let _ = out.try_send(HostControl::Notice { text: why.clone() });
                                    told = Some(why);
                                }
                                counters.dropped.fetch_add(1, Ordering::Relaxed)
                            }
                        };
                    } else {
                        counters.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    };
    tokio::select! {
        end = handle => end,
        () = reader => Ok(()),
    }
}
