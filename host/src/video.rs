//! The video stream of a session: capture → damage encode → send. A thin shell around the pure
//! [`Link`] model, which owns the pacing, sizing and quality decisions.
//!
//! Each turn of the loop: give the link the connection's line estimate (`handle_line`, from the
//! [`tether_shared::link::cc::ShortQueue`] controller) and, about once a second, send the viewer a
//! [`HostControl::Link`] report; take the viewer's frame acknowledgements (`handle_ack`; a bogus one is
//! a protocol error), ask [`Link::poll_send_at`] whether a frame may go (else wait for an acknowledgement
//! or the instant it names), wait for the capture trigger (X Damage, a slow safety tick, at most
//! `max_fps`; without Damage every frame tick), capture, encode within [`Link::budget`] at
//! [`Link::target_quality`], write the frame's parts and report its bytes and whether the encoder is
//! behind (`handle_sent`). A monitor switch (a new [`Screen`] on the display) brings a new capture
//! between frames.
//!
//! The encoder's video path ([`crate::encode::video`]) runs unless the quality is lossless, at the
//! quality's rate capped by [`Link::video_cap_kbps`]; the loop also wakes when the encoder asks
//! ([`DamageEncoder::poll_at`]: a video region that stopped changing is refined then).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use quinn::{Connection, SendStream};
use tether_shared::end::{EndReason, Side, Violation};
use tether_shared::link::{cc, Link, LinkConfig, ScreenQuality, SendAt};
use tether_shared::session_proto::{FrameUpdate, HostControl, Permissions};
use tether_shared::wire::{self, MAX_VIDEO_MSG};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::capture::damage::Drawn;
use crate::capture::Captured;
use crate::display::{Damage, Screen};
use crate::encode::{DamageEncoder, VideoRate};
use crate::session::{lost, violation, Counters, SessionConfig, Step, Stop};
use tether_shared::codec::Quality;
use tether_shared::codec::Tile;

/// With X Damage, how often to look anyway (drawing Damage does not report, e.g. some overlays).
const SAFETY_TICK: Duration = Duration::from_millis(500);
/// How often the viewer hears about the line.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// What the video loop captures from, and what may change under it.
pub(crate) struct VideoFeeds {
    /// The display's current screen: a new capture after a monitor switch.
    pub(crate) screen: watch::Receiver<Screen>,
    /// Something was drawn (X Damage), if the display can tell.
    pub(crate) changed: Option<Damage>,
    pub(crate) quality: watch::Receiver<ScreenQuality>,
    /// The end-to-end connection: its congestion controller's line estimate and round trip.
    pub(crate) line: Connection,
    /// The control writer's queue, for the line reports.
    pub(crate) reports: mpsc::Sender<HostControl>,
}

/// Send the screen on `send` until the session ends: `acks` are the viewer's frame acknowledgements (from
/// the control stream), `grants` whether viewing is allowed right now.
pub(crate) async fn run(
    mut send: SendStream,
    feeds: VideoFeeds,
    mut acks: mpsc::Receiver<u64>,
    grants: watch::Receiver<Permissions>,
    cfg: SessionConfig,
    counters: Arc<Counters>,
) -> Step {
    let VideoFeeds { mut screen, mut changed, mut quality, line, reports } = feeds;
    let (mut capture, mut origin) = {
        let now = screen.borrow_and_update();
        (now.capture.clone(), now.origin)
    };
    let mut last_full_scan = Instant::now();
    let mut link = Link::new(LinkConfig { quality: cfg.quality, ..LinkConfig::default() });
    let mut encoder = DamageEncoder::with_quality(link.target_quality());
    encoder.set_video_apart(true);
    let interval = Duration::from_secs(1) / cfg.max_fps.max(1);
    let mut pace = tokio::time::interval(interval);
    let mut last_capture = Instant::now();
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_report = Instant::now();
    // The encoder's clock: time since the stream started.
    let epoch = Instant::now();
    loop {
        if let Some(estimate) = cc::line_estimate(&line) {
            link.handle_line(estimate);
        }
        if Instant::now() >= next_report {
            next_report = Instant::now() + REPORT_EVERY;
            // Never waits: a report the writer has no room for is replaced by the next one.
            let report = link.report(line.rtt());
            tracing::debug!(?report, budget = link.budget(), behind = encoder.is_behind(), "line");
            let _ = reports.try_send(HostControl::Link(report));
        }
        // Take every acknowledgement that has arrived; then the link says whether a frame may go.
        take_acks(&mut acks, &mut link)?;
        match link.poll_send_at(now()) {
            SendAt::Now => {}
            SendAt::OnAck => {
                let seq = acks.recv().await.ok_or(Stop::Done)?;
                ack(&mut link, seq)?;
                continue;
            }
            SendAt::At(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at.into()) => {}
                    seq = acks.recv() => ack(&mut link, seq.ok_or(Stop::Done)?)?,
                }
                continue;
            }
        }
        // With X Damage: capture when something was drawn (at most max_fps times a second; a slow safety
        // tick covers anything Damage does not report). Without it: capture at every frame tick.
        match &mut changed {
            Some(changed) => {
                // The last update stopped at its budget: the rest goes at the next tick, drawn or not.
                if !encoder.is_behind() {
                    let wake = encoder.poll_at().map_or(Instant::now() + SAFETY_TICK, |at| epoch + at);
                    tokio::select! {
                        _ = changed.notified() => {}
                        _ = tokio::time::sleep(SAFETY_TICK) => {}
                        _ = tokio::time::sleep_until(wake) => {}
                    }
                }
                tokio::time::sleep_until(last_capture + interval).await;
            }
            None => {
                pace.tick().await;
            }
        }
        last_capture = Instant::now();
        if !grants.borrow().view {
            continue;
        }
        if screen.has_changed().unwrap_or(false) {
            let now = screen.borrow_and_update();
            (capture, origin) = (now.capture.clone(), now.origin);
            encoder.reset();
        }
        // Where X Damage saw drawing since the last capture (read before this capture, so nothing drawn
        // in between is missed); at least every SAFETY_TICK the whole screen is compared instead.
        let drawn = changed.as_mut().and_then(|d| d.take_drawn());
        let drawn = if last_full_scan.elapsed() >= SAFETY_TICK {
            last_full_scan = Instant::now();
            None
        } else {
            drawn.map(|rects| on_screen(&rects, origin))
        };
        tracing::trace!(drawn = ?drawn.as_ref().map(Vec::len), "capture");
        if quality.has_changed().unwrap_or(false) {
            link.set_quality(*quality.borrow_and_update());
        }
        let quality = link.target_quality();
        encoder.set_quality(quality);
        encoder.set_video_rate(match quality {
            Quality::Lossless => None,
            Quality::Balanced { jpeg_quality } => {
                Some(VideoRate::for_quality(jpeg_quality, link.video_cap_kbps()))
            }
        });
        let captured = capture.grab().await.map_err(|e| {
            Stop::Local(EndReason::Failed {
                side: Side::Host,
                why: format!("the screen capture failed: {e}"),
            })
        })?;
        let parts = encoder.encode_drawn(&captured.frame, link.budget(), epoch.elapsed(), drawn.as_deref());
        if !parts.is_empty() {
            send_update(&mut send, &mut link, &captured, parts, encoder.is_behind()).await?;
            counters.frames.fetch_add(1, Ordering::Relaxed);
        }
        // The video frame after the update's tiles, as an update of its own: a key press beside a video
        // does not wait for the milliseconds its frame takes to encode. Only when the link would send a
        // frame now; else the stream skips this picture (the line is full: a later one goes).
        if encoder.has_video_frame() {
            take_acks(&mut acks, &mut link)?;
            if matches!(link.poll_send_at(now()), SendAt::Now) {
                if let Some(tile) = encoder.take_video_frame() {
                    send_update(&mut send, &mut link, &captured, vec![vec![tile]], encoder.is_behind())
                        .await?;
                }
            } else {
                encoder.drop_video_frame();
            }
        }
    }
}

/// Write one update (its parts as `FrameUpdate` messages) and tell the link.
async fn send_update(
    send: &mut SendStream,
    link: &mut Link,
    captured: &Captured,
    parts: Vec<Vec<Tile>>,
    behind: bool,
) -> Step {
    let (seq, started) = (link.next_seq(), now());
    let count = parts.len();
    let mut bytes = 0;
    for (i, tiles) in parts.into_iter().enumerate() {
        let update = FrameUpdate {
            seq,
            capture_id: captured.id,
            width: captured.frame.width(),
            height: captured.frame.height(),
            tiles,
            last: i + 1 == count,
        };
        let framed = wire::encode(&update, MAX_VIDEO_MSG).map_err(lost)?;
        AsyncWriteExt::write_all(send, &framed).await.map_err(|e| lost(e.into()))?;
        bytes += framed.len() as u64;
    }
    link.handle_sent(started, bytes, behind);
    Ok(())
}

/// Rectangles drawn on the display, as rectangles of the monitor whose top-left pixel is at `origin`
/// (clipped at its top and left; the encoder clips the rest).
fn on_screen(drawn: &[Drawn], (ox, oy): (i32, i32)) -> Vec<(u32, u32, u32, u32)> {
    drawn
        .iter()
        .filter_map(|&(x, y, w, h)| {
            let (x0, y0) = (i64::from(x) - i64::from(ox), i64::from(y) - i64::from(oy));
            let (x1, y1) = (x0 + i64::from(w), y0 + i64::from(h));
            let (cx, cy) = (x0.max(0), y0.max(0));
            (x1 > cx && y1 > cy).then(|| {
                let fit = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
                (fit(cx), fit(cy), fit(x1 - cx), fit(y1 - cy))
            })
        })
        .collect()
}

/// Hand the link every acknowledgement that has arrived, without waiting.
fn take_acks(acks: &mut mpsc::Receiver<u64>, link: &mut Link) -> Step {
    while let Ok(seq) = acks.try_recv() {
        ack(link, seq)?;
    }
    Ok(())
}

/// The viewer applied frame `seq`; an acknowledgement of a frame not in flight is a protocol error.
fn ack(link: &mut Link, seq: u64) -> Step {
    link.handle_ack(now(), seq).map_err(|e| violation(Violation::BadAck(e.to_string())))
}

/// The link model's clock: tokio's, so a paused test clock pauses it too.
fn now() -> std::time::Instant {
    Instant::now().into_std()
}
