//! The host's model of the link to one viewer: may a screen update go now, how large may it be, at what
//! quality, and what the link has shown so far. Pure state, no I/O and no clock of its own: every call
//! takes `now`.
//!
//! Pull flow control (ARCHITECTURE §3): the viewer acknowledges each frame once it has applied it, and
//! the host has a bounded number of frames, and of bytes, sent but not acknowledged. When the link is
//! slow, acknowledgements come back slowly, the host captures less often, and every frame it does send is
//! the *current* screen: fewer, fresher frames instead of a backlog.
//!
//! ```text
//!  shell (host/src/video.rs)                 Link
//!  ─────────────────────────                 ────
//!  the connection's line estimate ────────►  handle_line(now, LineEstimate)   (cc::ShortQueue)
//!  ack from the viewer ───────────────────►  handle_ack(now, seq)      bogus ack: UnexpectedAck
//!  before capturing  ─────────────────────►  poll_send_at(now)         Now / At(t) / OnAck
//!  encoding          ─────────────────────►  budget(), target_quality()
//!  after the frame's last part was written ► handle_sent(now, bytes, behind) -> seq (== next_seq())
//!  about once a second ───────────────────►  report(rtt) -> LinkReport (to the viewer's Stats panel)
//! ```
//!
//! **Sized to the line.** The end-to-end connection's congestion controller ([`cc::ShortQueue`]) keeps
//! the line's queue short and estimates its bandwidth. Once it has (it left its startup), the frame
//! window follows the bandwidth-delay product: bytes in flight at most the bandwidth × (the frame round
//! trip + [`FRAME_SPAN`]), each update at most [`FRAME_SPAN`] of the line, up to [`LINE_MAX_FRAMES`]
//! frames. What does not fit waits in the encoder (`behind`), never in a queue: a key press that changes
//! the screen waits for at most one update's worth of line time. Before the controller has an estimate,
//! the window is [`LinkConfig::max_frames`] frames and the budget unlimited, as on a LAN.
//!
//! **Fewer updates first, then a lower quality.** When most updates of the last second stopped at their
//! budget, the screen changes faster than the line carries: the action is [`SenderAction::ReducedRate`].
//! With [`ScreenQuality::Auto`], if that lasts [`STEP_AFTER`], photographic regions go at the next lower
//! JPEG quality of [`JPEG_LADDER`], one step per [`STEP_AFTER`] while it lasts. Once no update has been
//! held back for [`RECOVER_AFTER`], it steps back up one level per [`RECOVER_AFTER`]; after
//! `2 × RECOVER_AFTER` without any, straight to full rate and quality. Text and UI stay lossless at every
//! step (the codec sends only photographic tiles as JPEG).
//!
//! Also measured, from the frames themselves: RTT samples (latest, minimum, smoothed as in RFC 6298;
//! they include the viewer's decode time, since a frame is acknowledged once applied) and delivery-rate
//! samples as in BBR's delivery-rate estimation, in [`Estimate`]. The byte window uses the frame round
//! trip, since that is how long a frame's bytes count as in flight.
//!
//! **Files** do not consult this model: they are the lowest-priority streams of the same connection,
//! and the connection's controller keeps the line's queue short, so a transfer takes what the screen
//! and input leave in the sender and yields the moment they have something (`docs/ARCHITECTURE.md`, "On a slow line").

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::codec::Quality;

pub mod cc;
pub mod report;

pub use report::{LinkReport, ScreenQuality, SenderAction};

use cc::LineEstimate;

#[cfg(test)]
mod tests;

/// Frames in flight at most before the line is measured (a LAN's window).
pub const MAX_IN_FLIGHT: usize = 2;
/// Frames in flight at most once the byte window follows the line.
pub const LINE_MAX_FRAMES: usize = 6;
/// The share of the line (numerator, denominator) a video region's stream may aim at.
pub const VIDEO_SHARE: (u64, u64) = (6, 10);
/// The line time one update may take: its budget is the bandwidth × this.
pub const FRAME_SPAN: Duration = Duration::from_millis(20);
/// The smallest byte window: a few tiles of text per round trip, whatever the estimate says.
pub const MIN_WINDOW_BYTES: u64 = 16 * 1024;
/// How long the screen must outrun the line before the next lower JPEG quality.
pub const STEP_AFTER: Duration = Duration::from_secs(2);
/// How long without an update held back before stepping back up.
pub const RECOVER_AFTER: Duration = Duration::from_secs(3);
/// The JPEG qualities of [`ScreenQuality::Auto`], from full to the lowest.
pub const JPEG_LADDER: [u8; 4] = [80, 60, 45, 30];
/// The updates the behind share is judged over.
const ADAPT_WINDOW: Duration = Duration::from_secs(1);
/// Fewest updates in [`ADAPT_WINDOW`] to judge by.
const ADAPT_MIN_FRAMES: usize = 3;

/// How many recent delivery-rate samples the bandwidth estimate is the largest of.
const RATE_SAMPLES: usize = 10;

/// An acknowledgement that does not match a frame in flight: a protocol error of the viewer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("acknowledgement for frame {seq}, which is not in flight")]
pub struct UnexpectedAck {
    pub seq: u64,
}

/// What the link may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkConfig {
    /// Frames sent and not yet acknowledged, at most, until the line is measured.
    pub max_frames: usize,
    /// Bytes sent and not yet acknowledged, at most; `None`: from the line estimate, once there is one.
    pub max_bytes: Option<u64>,
    /// Bytes per second to pace frames at; `None`: send as soon as the windows allow.
    pub pace_rate: Option<u64>,
    /// The technician's choice; [`Link::target_quality`] follows it.
    pub quality: ScreenQuality,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            max_frames: MAX_IN_FLIGHT,
            max_bytes: None,
            pace_rate: None,
            quality: ScreenQuality::default(),
        }
    }
}

/// When the next frame may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendAt {
    /// Now.
    Now,
    /// Not before this instant (pacing); or earlier, after an acknowledgement, poll again.
    At(Instant),
    /// A window is full: wait for an acknowledgement, then poll again.
    OnAck,
}

/// What the link has shown so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Estimate {
    pub frames_in_flight: usize,
    pub bytes_in_flight: u64,
    /// The last round trip measured: a frame sent until its acknowledgement arrived.
    pub latest_rtt: Option<Duration>,
    pub min_rtt: Option<Duration>,
    /// RFC 6298's smoothed RTT (7/8 of the old value, 1/8 of the new sample).
    pub smoothed_rtt: Option<Duration>,
    /// The last delivery-rate sample, bytes per second.
    pub latest_rate: Option<u64>,
    /// The largest of the last few delivery-rate samples, bytes per second.
    pub delivery_rate: Option<u64>,
}

/// A frame sent and not yet acknowledged, with the delivery state at the time it was sent.
#[derive(Debug, Clone, Copy)]
struct Sent {
    seq: u64,
    bytes: u64,
    at: Instant,
    /// [`Link::delivered`] when it was sent.
    delivered: u64,
    /// [`Link::delivered_at`] when it was sent.
    delivered_at: Instant,
    /// [`Link::first_sent_at`] when it was sent.
    first_sent_at: Instant,
}

/// The host's model of the link to one viewer.
#[derive(Debug)]
pub struct Link {
    cfg: LinkConfig,
    in_flight: VecDeque<Sent>,
    bytes_in_flight: u64,
    next_seq: u64,
    /// Pacing: the next frame not before this.
    next_send: Option<Instant>,
    /// Bytes acknowledged so far, and when the last of them was.
    delivered: u64,
    delivered_at: Option<Instant>,
    /// When the frame acknowledged last was sent: the start of the current send interval.
    first_sent_at: Option<Instant>,
    latest_rtt: Option<Duration>,
    min_rtt: Option<Duration>,
    smoothed_rtt: Option<Duration>,
    rates: VecDeque<u64>,
    /// The connection's latest estimate of the line, startup or not: the round trip and queue it reports
    /// are valid from the start; the windows follow it once it has left its startup ([`Self::line`]).
    latest: Option<LineEstimate>,
    /// Updates of the last [`ADAPT_WINDOW`]: when, and whether each stopped at its budget.
    recent: VecDeque<(Instant, bool)>,
    /// The last update that stopped at its budget.
    last_behind: Option<Instant>,
    action: SenderAction,
    /// When [`Self::action`] last changed.
    action_since: Option<Instant>,
}

impl Link {
    pub fn new(cfg: LinkConfig) -> Self {
        Self {
            cfg,
            in_flight: VecDeque::new(),
            bytes_in_flight: 0,
            next_seq: 0,
            next_send: None,
            delivered: 0,
            delivered_at: None,
            first_sent_at: None,
            latest_rtt: None,
            min_rtt: None,
            smoothed_rtt: None,
            rates: VecDeque::with_capacity(RATE_SAMPLES),
            latest: None,
            recent: VecDeque::new(),
            last_behind: None,
            action: SenderAction::FullRate,
            action_since: None,
        }
    }

    /// The connection's congestion controller measured the line: the windows follow it (once it has left
    /// its startup, whose estimate is still climbing).
    pub fn handle_line(&mut self, line: LineEstimate) {
        self.latest = Some(line);
    }

    /// The estimate the windows follow: the latest, once out of startup with a bandwidth (the controller
    /// never goes back to its startup, and a bandwidth once measured stays measured).
    fn line(&self) -> Option<LineEstimate> {
        self.latest.filter(|l| !l.startup && l.bandwidth.is_some())
    }

    /// The line's bandwidth, bytes per second, if measured.
    fn line_rate(&self) -> Option<u64> {
        self.line().and_then(|l| l.bandwidth).filter(|&b| b > 0)
    }

    /// What a video stream may spend, kbit/s: [`VIDEO_SHARE`] of the line's measured bandwidth (the
    /// rest stays for text, input and files); `None` until measured.
    pub fn video_cap_kbps(&self) -> Option<u32> {
        let kbps = self.line_rate()?.saturating_mul(8) / 1000 * VIDEO_SHARE.0 / VIDEO_SHARE.1;
        Some(u32::try_from(kbps).unwrap_or(u32::MAX))
    }

    /// Frames in flight at most.
    fn max_frames(&self) -> usize {
        if self.line_rate().is_some() {
            self.cfg.max_frames.max(LINE_MAX_FRAMES)
        } else {
            self.cfg.max_frames
        }
    }

    /// Bytes in flight at most: the configured window, or the line's bandwidth × (frame round trip +
    /// [`FRAME_SPAN`]).
    fn max_bytes(&self) -> Option<u64> {
        if let Some(cap) = self.cfg.max_bytes {
            return Some(cap);
        }
        let rate = self.line_rate()?;
        let path = self.line().and_then(|l| l.min_rtt).unwrap_or_default();
        let rtt = self.min_rtt.unwrap_or_default().max(path);
        Some(cc::bytes_in(rate, rtt + FRAME_SPAN).max(MIN_WINDOW_BYTES))
    }

    /// May a frame go at `now`, and if not, when to ask again.
    pub fn poll_send_at(&self, now: Instant) -> SendAt {
        let bytes_full = self.max_bytes().is_some_and(|cap| self.bytes_in_flight >= cap);
        if self.in_flight.len() >= self.max_frames() || bytes_full {
            return SendAt::OnAck;
        }
        match self.next_send {
            Some(at) if at > now => SendAt::At(at),
            _ => SendAt::Now,
        }
    }

    /// Bytes the next frame may carry: what the byte window leaves, and at most [`FRAME_SPAN`] of the
    /// line; `usize::MAX` without either.
    pub fn budget(&self) -> usize {
        let window = self.max_bytes().map(|cap| cap.saturating_sub(self.bytes_in_flight));
        let span = self.line_rate().map(|rate| cc::bytes_in(rate, FRAME_SPAN));
        let cap = match (window, span) {
            (Some(w), Some(s)) => w.min(s),
            (Some(x), None) | (None, Some(x)) => x,
            (None, None) => return usize::MAX,
        };
        usize::try_from(cap).unwrap_or(usize::MAX)
    }

    /// The quality of the next update: the technician's fixed choice, or with
    /// [`ScreenQuality::Auto`] the current step of [`JPEG_LADDER`].
    pub fn target_quality(&self) -> Quality {
        match (self.cfg.quality, self.action) {
            (ScreenQuality::Fixed(q), _) => q,
            (ScreenQuality::Auto, SenderAction::ReducedQuality { jpeg_quality }) => {
                Quality::Balanced { jpeg_quality }
            }
            (ScreenQuality::Auto, _) => Quality::Balanced { jpeg_quality: JPEG_LADDER[0] },
        }
    }

    /// The technician chose another quality.
    pub fn set_quality(&mut self, quality: ScreenQuality) {
        self.cfg.quality = quality;
        if let (ScreenQuality::Fixed(_), SenderAction::ReducedQuality { .. }) = (quality, self.action) {
            self.action = SenderAction::ReducedRate;
        }
    }

    /// What the sender does about the line.
    pub fn action(&self) -> SenderAction {
        self.action
    }

    /// The report for the viewer's Stats panel; `rtt` is the transport's smoothed round trip.
    pub fn report(&self, rtt: Duration) -> LinkReport {
        let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        LinkReport {
            rtt_ms: ms(rtt),
            path_rtt_ms: self.latest.and_then(|l| l.min_rtt).map(ms),
            queue_ms: self.latest.map_or(0, |l| ms(l.queue_delay)),
            bandwidth_bps: self.line_rate().map(|b| b.saturating_mul(8)),
            action: self.action,
        }
    }

    /// Judge the last second of updates: does the screen outrun the line? (Module docs.)
    fn adapt(&mut self, now: Instant, behind: bool) {
        if behind {
            self.last_behind = Some(now);
        }
        self.recent.push_back((now, behind));
        while self.recent.front().is_some_and(|&(at, _)| now.saturating_duration_since(at) > ADAPT_WINDOW) {
            self.recent.pop_front();
        }
        let held = self.recent.iter().filter(|&&(_, b)| b).count();
        let outrun = self.recent.len() >= ADAPT_MIN_FRAMES && held * 2 >= self.recent.len();
        let since = self.action_since.map_or(Duration::MAX, |t| now.saturating_duration_since(t));
        let calm = self.last_behind.map_or(Duration::MAX, |t| now.saturating_duration_since(t));
        let auto = self.cfg.quality == ScreenQuality::Auto;
        let next = match self.action {
            _ if calm >= RECOVER_AFTER * 2 => SenderAction::FullRate,
            SenderAction::FullRate if outrun => SenderAction::ReducedRate,
            SenderAction::ReducedRate if outrun && auto && since >= STEP_AFTER => {
                SenderAction::ReducedQuality { jpeg_quality: JPEG_LADDER[1] }
            }
            SenderAction::ReducedQuality { jpeg_quality } if outrun && since >= STEP_AFTER => {
                SenderAction::ReducedQuality { jpeg_quality: step(jpeg_quality, 1) }
            }
            SenderAction::ReducedRate if calm >= RECOVER_AFTER && since >= RECOVER_AFTER => {
                SenderAction::FullRate
            }
            SenderAction::ReducedQuality { jpeg_quality }
                if calm >= RECOVER_AFTER && since >= RECOVER_AFTER =>
            {
                match step(jpeg_quality, -1) {
                    q if q == JPEG_LADDER[0] => SenderAction::ReducedRate,
                    q => SenderAction::ReducedQuality { jpeg_quality: q },
                }
            }
            same => same,
        };
        if next != self.action {
            self.action = next;
            self.action_since = Some(now);
        }
    }

    /// The sequence number the next [`Self::handle_sent`] gives, for the frame's messages.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// A frame of `bytes` went out at `now` (all its parts written); `behind`: it stopped at its budget
    /// with changes still to send. Returns its sequence number, the one [`Self::next_seq`] gave before.
    pub fn handle_sent(&mut self, now: Instant, bytes: u64, behind: bool) -> u64 {
        self.adapt(now, behind);
        if self.in_flight.is_empty() {
            // Nothing in flight: a new send interval starts here (an idle gap is no delivery time).
            self.first_sent_at = Some(now);
            self.delivered_at = Some(now);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.in_flight.push_back(Sent {
            seq,
            bytes,
            at: now,
            delivered: self.delivered,
            delivered_at: self.delivered_at.unwrap_or(now),
            first_sent_at: self.first_sent_at.unwrap_or(now),
        });
        self.bytes_in_flight = self.bytes_in_flight.saturating_add(bytes);
        if let Some(rate) = self.cfg.pace_rate.filter(|&r| r > 0) {
            let nanos = u128::from(bytes) * 1_000_000_000 / u128::from(rate);
            let gap = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
            self.next_send = now.checked_add(gap);
        }
        seq
    }

    /// The viewer applied frame `seq` (acknowledgements arrive in order because frames do). Any other
    /// acknowledgement is the viewer's protocol error and changes nothing.
    pub fn handle_ack(&mut self, now: Instant, seq: u64) -> Result<(), UnexpectedAck> {
        match self.in_flight.front() {
            Some(front) if front.seq == seq => {}
            _ => return Err(UnexpectedAck { seq }),
        }
        let Some(sent) = self.in_flight.pop_front() else { return Err(UnexpectedAck { seq }) };
        self.bytes_in_flight = self.bytes_in_flight.saturating_sub(sent.bytes);
        self.delivered = self.delivered.saturating_add(sent.bytes);
        self.delivered_at = Some(now);
        self.first_sent_at = Some(sent.at);
        self.sample_rtt(now.saturating_duration_since(sent.at));
        // Delivery rate: bytes acknowledged since this frame was sent, over the longer of the interval
        // they were sent in and the interval they were acknowledged in (neither can overstate the link).
        let send_interval = sent.at.saturating_duration_since(sent.first_sent_at);
        let ack_interval = now.saturating_duration_since(sent.delivered_at);
        let interval = send_interval.max(ack_interval);
        if !interval.is_zero() {
            let bytes = u128::from(self.delivered.saturating_sub(sent.delivered));
            let rate = bytes * 1_000_000_000 / interval.as_nanos();
            if self.rates.len() == RATE_SAMPLES {
                self.rates.pop_front();
            }
            self.rates.push_back(u64::try_from(rate).unwrap_or(u64::MAX));
        }
        Ok(())
    }

    fn sample_rtt(&mut self, rtt: Duration) {
        self.latest_rtt = Some(rtt);
        self.min_rtt = Some(self.min_rtt.map_or(rtt, |m| m.min(rtt)));
        self.smoothed_rtt = Some(match self.smoothed_rtt {
            None => rtt,
            Some(s) => s.checked_mul(7).and_then(|s7| s7.checked_add(rtt)).map_or(rtt, |sum| sum / 8),
        });
    }

    /// What the link has shown so far.
    pub fn estimate(&self) -> Estimate {
        Estimate {
            frames_in_flight: self.in_flight.len(),
            bytes_in_flight: self.bytes_in_flight,
            latest_rtt: self.latest_rtt,
            min_rtt: self.min_rtt,
            smoothed_rtt: self.smoothed_rtt,
            latest_rate: self.rates.back().copied(),
            delivery_rate: self.rates.iter().copied().max(),
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

/// The JPEG quality `by` steps down (positive) or up (negative) [`JPEG_LADDER`] from `q`.
fn step(q: u8, by: isize) -> u8 {
    let at = JPEG_LADDER.iter().position(|&l| l <= q).unwrap_or(JPEG_LADDER.len() - 1);
    let to = at.saturating_add_signed(by).min(JPEG_LADDER.len() - 1);
    JPEG_LADDER[to]
}
