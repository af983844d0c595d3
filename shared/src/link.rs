//! The host's model of the link to one viewer: may a screen update go now, how large may it be, and what
//! the link has shown so far (round-trip time, bytes in flight, delivery rate). Pure state, no I/O and no
//! clock of its own: every call takes `now`.
//!
//! Pull flow control (ARCHITECTURE §3): the viewer acknowledges each frame once it has applied it, and
//! the host may have at most [`LinkConfig::max_frames`] frames sent but not acknowledged. When the link
//! is slow, acknowledgements come back slowly, the host captures less often, and every frame it does send
//! is the *current* screen: fewer, fresher frames instead of a backlog.
//!
//! ```text
//!  shell (host/src/video.rs)                 Link
//!  ─────────────────────────                 ────
//!  ack from the viewer ───────────────────►  handle_ack(now, seq)      bogus ack: UnexpectedAck
//!  before capturing  ─────────────────────►  poll_send_at(now)         Now / At(t) / OnAck
//!  encoding          ─────────────────────►  budget(), target_quality()
//!  after the frame's last part was written ► handle_sent(now, bytes) -> seq (== next_seq())
//! ```
//!
//! Measured and exposed in [`Estimate`], not yet acted upon: bytes in flight, RTT samples (latest,
//! minimum, smoothed as in RFC 6298) and delivery-rate samples computed as in BBR's delivery-rate
//! estimation (bytes acknowledged over the longer of the send and the ack interval), with the largest
//! recent sample as the bandwidth estimate. An acknowledgement is sent once the viewer *applied* the
//! frame, so the RTT includes the viewer's decode time. Samples are not yet marked application-limited
//! (the screen is idle most of the time, so most rate samples understate the link): the next step, when
//! the estimate starts to drive [`Link::target_quality`], the byte window and the pacing rate.
//!
//! With [`LinkConfig::default`] the decisions are today's: two frames in flight, no byte window, no
//! pacing, an unlimited budget, the configured quality. The byte window ([`LinkConfig::max_bytes`]) and
//! the pacing rate ([`LinkConfig::pace_rate`]) are the knobs a bandwidth-aware sender sets from the
//! estimate (the in-flight limit from the bandwidth-delay product, ARCHITECTURE §3b).
//!
//! **Files.** File sending is meant to consult the same model, not one of its own: the participant's
//! `Link` would be shared by its video and file senders, and a file chunk would go only while
//! [`Link::budget`] leaves room after the screen (files as a background class), yielding when the queueing
//! delay this model measures (smoothed minus minimum RTT) rises. File bytes have no per-chunk
//! acknowledgement, so they would enter the model as background bytes in flight released by the
//! transport's progress, not as frames. Not wired yet.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::codec::Quality;

#[cfg(test)]
mod tests;

/// Frames in flight at most (today's window).
pub const MAX_IN_FLIGHT: usize = 2;

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
    /// Frames sent and not yet acknowledged, at most.
    pub max_frames: usize,
    /// Bytes sent and not yet acknowledged, at most; `None`: no byte window.
    pub max_bytes: Option<u64>,
    /// Bytes per second to pace frames at; `None`: send as soon as the windows allow.
    pub pace_rate: Option<u64>,
    /// The screen quality the user chose; the most [`Link::target_quality`] gives.
    pub quality: Quality,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self { max_frames: MAX_IN_FLIGHT, max_bytes: None, pace_rate: None, quality: Quality::default() }
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
    /// The bandwidth estimate: the largest of the last few delivery-rate samples, bytes per second.
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
        }
    }

    /// May a frame go at `now`, and if not, when to ask again.
    pub fn poll_send_at(&self, now: Instant) -> SendAt {
        let bytes_full = self.cfg.max_bytes.is_some_and(|cap| self.bytes_in_flight >= cap);
        if self.in_flight.len() >= self.cfg.max_frames || bytes_full {
            return SendAt::OnAck;
        }
        match self.next_send {
            Some(at) if at > now => SendAt::At(at),
            _ => SendAt::Now,
        }
    }

    /// Bytes the next frame may carry: what the byte window leaves, or `usize::MAX` without one.
    pub fn budget(&self) -> usize {
        match self.cfg.max_bytes {
            Some(cap) => usize::try_from(cap.saturating_sub(self.bytes_in_flight)).unwrap_or(usize::MAX),
            None => usize::MAX,
        }
    }

    /// The screen quality the link supports. For now the configured one; later the estimate lowers it.
    pub fn target_quality(&self) -> Quality {
        self.cfg.quality
    }

    /// The user (or the technician's request) chose another quality.
    pub fn set_quality(&mut self, quality: Quality) {
        self.cfg.quality = quality;
    }

    /// The sequence number the next [`Self::handle_sent`] gives, for the frame's messages.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// A frame of `bytes` went out at `now` (all its parts written). Returns its sequence number, the one
    /// [`Self::next_seq`] gave before.
    pub fn handle_sent(&mut self, now: Instant, bytes: u64) -> u64 {
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
