//! The video stream of a session: capture → damage encode → send, paced by the viewer's frame
//! acknowledgements (credit) and `max_fps`.
//!
//! With X Damage the capture waits for drawing (a slow safety tick covers what Damage misses); without it,
//! for every frame tick. A monitor switch brings a new capture between frames.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use quinn::SendStream;
use tether_shared::codec::Quality;
use tether_shared::flow::Credit;
use tether_shared::session_proto::{FrameUpdate, HostToViewer, Permissions};
use tether_shared::wire::{self, MAX_VIDEO_MSG};
use tokio::sync::{mpsc, watch};

use crate::capture::CaptureHandle;
use crate::encode::DamageEncoder;
use crate::session::{lost, Counters, SessionConfig, SessionEnd, Step};

/// With X Damage, how often to look anyway (drawing Damage does not report, e.g. some overlays).
const SAFETY_TICK: Duration = Duration::from_millis(500);

/// What the video loop captures from, and what may change under it.
pub(crate) struct VideoFeeds {
    pub(crate) capture: CaptureHandle,
    pub(crate) changed: Option<Arc<tokio::sync::Notify>>,
    /// A new capture after a monitor switch.
    pub(crate) swaps: mpsc::Receiver<CaptureHandle>,
    pub(crate) quality: watch::Receiver<Quality>,
}

pub(crate) async fn run(
    mut send: SendStream,
    feeds: VideoFeeds,
    mut acks: mpsc::Receiver<u64>,
    grants: watch::Receiver<Permissions>,
    cfg: &SessionConfig,
    counters: &Counters,
) -> Step {
    let VideoFeeds { mut capture, changed, mut swaps, mut quality } = feeds;
    let mut credit = Credit::new();
    let mut encoder = DamageEncoder::with_quality(cfg.quality);
    let interval = Duration::from_secs(1) / cfg.max_fps.max(1);
    let mut pace = tokio::time::interval(interval);
    let mut last_capture = tokio::time::Instant::now();
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Take every acknowledgement that has arrived; wait for one if out of credit.
        while let Ok(seq) = acks.try_recv() {
            credit.on_ack(seq).map_err(|e| SessionEnd::ProtocolError(e.to_string()))?;
        }
        if !credit.can_send() {
            let seq = acks.recv().await.ok_or(SessionEnd::ViewerLeft)?;
            credit.on_ack(seq).map_err(|e| SessionEnd::ProtocolError(e.to_string()))?;
            continue;
        }
        // With X Damage: capture when something was drawn (at most max_fps times a second; a slow safety
        // tick covers anything Damage does not report). Without it: capture at every frame tick.
        match &changed {
            Some(changed) => {
                tokio::select! {
                    _ = changed.notified() => {}
                    _ = tokio::time::sleep(SAFETY_TICK) => {}
                }
                tokio::time::sleep_until(last_capture + interval).await;
            }
            None => {
                pace.tick().await;
            }
        }
        last_capture = tokio::time::Instant::now();
        if !grants.borrow().view {
            continue;
        }
        if let Ok(new) = swaps.try_recv() {
            capture = new;
            encoder.reset();
        }
        if quality.has_changed().unwrap_or(false) {
            encoder.set_quality(*quality.borrow_and_update());
        }
        let captured = capture.grab().await.map_err(|e| SessionEnd::ConnectionLost(e.to_string()))?;
        let parts = encoder.encode(&captured.frame);
        if parts.is_empty() {
            continue;
        }
        let seq = credit.on_send();
        let count = parts.len();
        for (i, tiles) in parts.into_iter().enumerate() {
            let update = HostToViewer::Frame(FrameUpdate {
                seq,
                capture_id: captured.id,
                width: captured.frame.width(),
                height: captured.frame.height(),
                tiles,
                last: i + 1 == count,
            });
            wire::write_msg(&mut send, &update, MAX_VIDEO_MSG).await.map_err(lost)?;
        }
        counters.frames.fetch_add(1, Ordering::Relaxed);
    }
}
