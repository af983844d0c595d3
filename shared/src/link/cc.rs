//! A congestion controller that keeps the bottleneck's queue short: [`ShortQueue`].
//!
//! quinn's Cubic, NewReno and BBR all fill a 200 ms router buffer when a file moves (measured in
//! `docs/BENCHMARKS.md`, "quinn's congestion controllers on the emulated lines"), and then every screen
//! update and every key press waits behind that queue: stream priorities only order what is still in
//! the *sender*. This controller keeps the data that cannot go yet in the sender, where priorities act,
//! by watching the delay the queue adds (Vegas and LEDBAT's signal):
//!
//! - a **round** lasts from sending a packet to its acknowledgement (about one RTT). Per round it takes
//!   the smallest RTT sample (`ack time − send time` of each packet acknowledged), the bytes acknowledged
//!   and how long that took: the delivery rate.
//! - **queueing delay** = the round's smallest RTT − the smallest RTT ever seen (the path's own delay).
//!   The target is [`ShortQueueConfig::target_delay`], or four full packets' time on the line when that
//!   is longer (5.8 ms a packet at 2 Mbit/s: shorter queues cannot be told from pacing's jitter).
//! - **startup** doubles the window each round (slow start) until the queueing delay reaches half the
//!   target or a packet is lost; the window is then the measured rate × (min RTT + half the target).
//! - **steady**: when the queueing delay is at or above the target, the window is set to the delivery
//!   rate (the best of the last three rounds) × (min RTT + half the target): what the line drains in a
//!   round plus a small standing queue. When it is under half the target and the window was in use (not
//!   limited by the application), the window grows by an eighth (at most the target's worth of bytes at
//!   the measured rate), then waits two rounds: a growth shows in the round after the next. A loss while
//!   the queue is at least half the target cuts the window by an eighth, at most once per round;
//!   persistent congestion resets it to the minimum.
//!
//! **Random loss** (0.5 % on the cable line of the bench) with a short queue is not this flow's doing:
//! it is ignored, so a lossy line is not held to a fraction of its rate as with Cubic. Only when a
//! round loses more than 2 % of its packets without a queue (a shallow buffer that overflows before
//! any delay shows) does the window shrink by an eighth.
//!
//! **Bandwidth estimate.** The largest delivery rate of the last [`RATE_ROUNDS`] rounds; a round limited
//! by the application (nothing to send) counts only if it raises the estimate, since an idle screen says
//! nothing about the line. The host's screen sender reads it, with the queueing delay, through
//! `quinn::Connection::congestion_state` and [`ShortQueue::estimate`].
//!
//! **Limits, said plainly.** The path's delay is the smallest ever seen: if a route change makes it
//! longer, the controller takes the difference for a queue and holds the window at the rate × min RTT
//! (slower, never a standing queue). Like every delay-based controller it yields to loss-based flows
//! (a Cubic download on the same line) instead of fighting them: the user's own traffic wins, which is
//! right for a support session in the background of someone's work.
//!
//! The logic is pure ([`ShortQueue::sent`], [`ShortQueue::acked`], [`ShortQueue::end_acks`],
//! [`ShortQueue::lost`], all with `now` given) and tested with scripted lines in `cc_tests.rs`; the
//! `quinn::congestion::Controller` impl only forwards.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn::congestion::{Controller, ControllerFactory};

/// Rounds the bandwidth estimate is the largest delivery rate of.
pub const RATE_ROUNDS: usize = 10;
/// The queueing delay the controller aims under, by default.
pub const TARGET_DELAY: Duration = Duration::from_millis(10);
/// Fewest packets a round needs for its smallest RTT to count: with fewer, a peer's delayed
/// acknowledgement (up to 25 ms) would read as a queue.
const MIN_ROUND_PACKETS: u32 = 4;
/// Rounds whose best delivery rate sizes the window when the queue is too long.
const FIT_ROUNDS: usize = 3;
/// The target queueing delay is at least this many full packets' time on the line.
const TARGET_PACKETS: u64 = 4;
/// Losses per packets acknowledged in a round beyond which a loss without a queue still counts as
/// congestion: 2 %.
const MAX_RANDOM_LOSS: (u64, u64) = (2, 100);
/// The smallest window, in packets.
const MIN_WINDOW_PACKETS: u64 = 4;

/// Settings of [`ShortQueue`]; the factory quinn builds one controller per connection from.
#[derive(Debug, Clone)]
pub struct ShortQueueConfig {
    /// The queueing delay to stay under.
    pub target_delay: Duration,
    /// The window before anything is measured, bytes.
    pub initial_window: u64,
}

impl Default for ShortQueueConfig {
    fn default() -> Self {
        // quinn's (and RFC 9002's) initial window for our packet sizes: see `tls::E2E_MTU_UPPER_BOUND`.
        Self { target_delay: TARGET_DELAY, initial_window: crate::tls::QUINN_INITIAL_WINDOW as u64 }
    }
}

impl ControllerFactory for ShortQueueConfig {
    fn build(self: Arc<Self>, now: Instant, current_mtu: u16) -> Box<dyn Controller> {
        Box::new(ShortQueue::new((*self).clone(), now, current_mtu))
    }
}

/// What the controller has measured, for the sender and the viewer's Stats panel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineEstimate {
    /// The largest recent delivery rate, bytes per second; `None` before a round completed.
    pub bandwidth: Option<u64>,
    /// The path's own round trip (the smallest sample).
    pub min_rtt: Option<Duration>,
    /// The last full round's queueing delay.
    pub queue_delay: Duration,
    /// Bytes that may be in flight.
    pub window: u64,
    /// Still doubling: the line's rate is not found yet.
    pub startup: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Startup,
    Steady,
}

/// The round being measured.
#[derive(Debug, Clone, Copy)]
struct Round {
    /// The round ends once this packet (or a later one) is acknowledged.
    end_pn: u64,
    start: Instant,
    acked_bytes: u64,
    acked_packets: u32,
    min_rtt: Option<Duration>,
    app_limited: bool,
    lost_packets: u32,
}

/// The delay-based controller (module docs).
#[derive(Debug, Clone)]
pub struct ShortQueue {
    cfg: ShortQueueConfig,
    mtu: u64,
    window: u64,
    phase: Phase,
    /// The last packet number sent.
    last_sent_pn: Option<u64>,
    round: Option<Round>,
    /// Rounds to wait before growing again: a growth shows in the round after the next.
    hold_rounds: u8,
    min_rtt: Option<Duration>,
    queue_delay: Duration,
    /// Delivery rates of recent rounds, bytes per second.
    rates: VecDeque<u64>,
    /// Losses of packets sent before this are part of an event already answered.
    recovery_start: Option<Instant>,
}

impl ShortQueue {
    pub fn new(cfg: ShortQueueConfig, _now: Instant, mtu: u16) -> Self {
        let window = cfg.initial_window;
        Self {
            cfg,
            mtu: u64::from(mtu),
            window,
            phase: Phase::Startup,
            last_sent_pn: None,
            round: None,
            hold_rounds: 0,
            min_rtt: None,
            queue_delay: Duration::ZERO,
            rates: VecDeque::with_capacity(RATE_ROUNDS),
            recovery_start: None,
        }
    }

    /// What has been measured so far.
    pub fn estimate(&self) -> LineEstimate {
        LineEstimate {
            bandwidth: self.bandwidth(),
            min_rtt: self.min_rtt,
            queue_delay: self.queue_delay,
            window: self.window,
            startup: self.phase == Phase::Startup,
        }
    }

    fn bandwidth(&self) -> Option<u64> {
        self.rates.iter().copied().max()
    }

    /// The queueing delay to stay under at `rate`: the configured target, or the time
    /// [`TARGET_PACKETS`] full packets take on the line if that is longer (on a slow line one packet
    /// takes milliseconds: a queue shorter than a few packets cannot be told from pacing's jitter).
    fn target(&self, rate: u64) -> Duration {
        let packets = Duration::from_secs_f64((TARGET_PACKETS * self.mtu) as f64 / rate.max(1) as f64);
        self.cfg.target_delay.max(packets)
    }

    fn min_window(&self) -> u64 {
        MIN_WINDOW_PACKETS * self.mtu
    }

    /// Packets up to number `last_pn` were sent at `now`.
    pub fn sent(&mut self, now: Instant, last_pn: u64) {
        self.last_sent_pn = Some(last_pn);
        if self.round.is_none() {
            self.round = Some(Round::starting(now, last_pn));
        }
    }

    /// A packet of `bytes` sent at `sent` was acknowledged at `now`.
    pub fn acked(&mut self, now: Instant, sent: Instant, bytes: u64, app_limited: bool) {
        let rtt = now.saturating_duration_since(sent);
        self.min_rtt = Some(self.min_rtt.map_or(rtt, |m| m.min(rtt)));
        if let Some(round) = &mut self.round {
            round.acked_bytes = round.acked_bytes.saturating_add(bytes);
            round.acked_packets = round.acked_packets.saturating_add(1);
            round.min_rtt = Some(round.min_rtt.map_or(rtt, |m| m.min(rtt)));
            round.app_limited |= app_limited;
        }
        if self.phase == Phase::Startup && !app_limited {
            self.window = self.window.saturating_add(bytes);
        }
    }

    /// A batch of acknowledgements ended; `largest` is the largest packet number acknowledged.
    pub fn end_acks(&mut self, now: Instant, largest: Option<u64>) {
        let (Some(round), Some(largest)) = (self.round, largest) else { return };
        if largest < round.end_pn {
            return;
        }
        self.end_round(now, round);
        // The next round ends with the packet sent last; none sent since: it starts with the next send.
        self.round = match self.last_sent_pn {
            Some(pn) if pn > largest => Some(Round::starting(now, pn)),
            _ => None,
        };
    }

    fn end_round(&mut self, now: Instant, round: Round) {
        let elapsed = now.saturating_duration_since(round.start);
        let rate = (!elapsed.is_zero()).then(|| {
            let r = u128::from(round.acked_bytes) * 1_000_000_000 / elapsed.as_nanos();
            u64::try_from(r).unwrap_or(u64::MAX)
        });
        if let Some(rate) = rate {
            if !round.app_limited || self.bandwidth().is_none_or(|bw| rate > bw) {
                if self.rates.len() == RATE_ROUNDS {
                    self.rates.pop_front();
                }
                self.rates.push_back(rate);
            }
        }
        let (Some(path), Some(seen)) = (self.min_rtt, round.min_rtt) else { return };
        if round.acked_packets < MIN_ROUND_PACKETS {
            return;
        }
        self.queue_delay = seen.saturating_sub(path);
        let Some(rate) = rate else { return };
        // The last few rounds' best rate: one round's acknowledgements come in bursts and may understate it.
        let recent = self.rates.iter().rev().take(FIT_ROUNDS).copied().max().unwrap_or(rate).max(rate);
        let target = self.target(recent);
        // What the line drains in a round plus half the target as a standing queue.
        let fitted = bytes_in(recent, path + target / 2).max(self.min_window());
        self.hold_rounds = self.hold_rounds.saturating_sub(1);
        if u64::from(round.lost_packets) * MAX_RANDOM_LOSS.1
            > u64::from(round.acked_packets) * MAX_RANDOM_LOSS.0
        {
            // Losses beyond what a noisy line drops: a shallow buffer overflowing before any queueing
            // delay shows. An eighth less, as for a loss with a queue.
            self.window = (self.window - self.window / 8).max(self.min_window());
            self.hold_rounds = 2;
            return;
        }
        match self.phase {
            Phase::Startup if self.queue_delay >= target / 2 => {
                self.phase = Phase::Steady;
                self.window = fitted;
            }
            Phase::Startup => {}
            Phase::Steady if self.queue_delay >= target => {
                self.window = self.window.min(fitted);
                self.hold_rounds = 0;
            }
            Phase::Steady if self.queue_delay < target / 2 && !round.app_limited && self.hold_rounds == 0 => {
                // An eighth more, but at most what adds the target's worth of queue at the measured rate.
                let step = (self.window / 8).min(bytes_in(recent, target)).max(self.mtu);
                self.window = self.window.saturating_add(step);
                self.hold_rounds = 2;
            }
            Phase::Steady => {}
        }
        tracing::trace!(
            rate,
            queue_ms = self.queue_delay.as_secs_f64() * 1e3,
            window = self.window,
            packets = round.acked_packets,
            app_limited = round.app_limited,
            startup = self.phase == Phase::Startup,
            "round"
        );
    }

    /// Packets sent at `sent` were lost (or marked congested) at `now`.
    pub fn lost(&mut self, now: Instant, sent: Instant, persistent: bool) {
        if persistent {
            self.window = self.min_window();
            self.phase = Phase::Steady;
            self.recovery_start = Some(now);
            return;
        }
        if let Some(round) = &mut self.round {
            round.lost_packets = round.lost_packets.saturating_add(1);
        }
        if self.recovery_start.is_some_and(|start| sent <= start) {
            return;
        }
        // Steady and no queue to speak of: a random loss (radio, a busy Wi-Fi), not this flow's queue
        // overflowing. Answered only if losses pile up ([`MAX_RANDOM_LOSS`], at the round's end).
        let target = self.target(self.bandwidth().unwrap_or(0));
        if self.phase == Phase::Steady && self.queue_delay < target / 2 {
            return;
        }
        self.recovery_start = Some(now);
        self.window = match self.phase {
            Phase::Startup => self.window / 2,
            Phase::Steady => self.window - self.window / 8,
        }
        .max(self.min_window());
        self.phase = Phase::Steady;
        self.hold_rounds = 0;
    }

    /// The path's packet size changed.
    pub fn mtu_changed(&mut self, mtu: u16) {
        self.mtu = u64::from(mtu);
        self.window = self.window.max(self.min_window());
    }
}

impl Round {
    fn starting(now: Instant, end_pn: u64) -> Self {
        Self {
            end_pn,
            start: now,
            acked_bytes: 0,
            acked_packets: 0,
            min_rtt: None,
            app_limited: false,
            lost_packets: 0,
        }
    }
}

/// Bytes `rate` (bytes per second) carries in `time`.
pub fn bytes_in(rate: u64, time: Duration) -> u64 {
    u64::try_from(u128::from(rate) * time.as_nanos() / 1_000_000_000).unwrap_or(u64::MAX)
}

impl Controller for ShortQueue {
    fn on_sent(&mut self, now: Instant, _bytes: u64, last_packet_number: u64) {
        self.sent(now, last_packet_number);
    }

    fn on_ack(
        &mut self,
        now: Instant,
        sent: Instant,
        bytes: u64,
        app_limited: bool,
        _rtt: &quinn_proto::RttEstimator,
    ) {
        self.acked(now, sent, bytes, app_limited);
    }

    fn on_end_acks(&mut self, now: Instant, _in_flight: u64, _app_limited: bool, largest: Option<u64>) {
        self.end_acks(now, largest);
    }

    fn on_congestion_event(&mut self, now: Instant, sent: Instant, persistent: bool, _lost_bytes: u64) {
        self.lost(now, sent, persistent);
    }

    fn on_mtu_update(&mut self, new_mtu: u16) {
        self.mtu_changed(new_mtu);
    }

    fn window(&self) -> u64 {
        self.window
    }

    fn clone_box(&self) -> Box<dyn Controller> {
        Box::new(self.clone())
    }

    fn initial_window(&self) -> u64 {
        self.cfg.initial_window
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

/// The estimate of the controller of `conn`, if it is a [`ShortQueue`].
pub fn line_estimate(conn: &quinn::Connection) -> Option<LineEstimate> {
    conn.congestion_state().into_any().downcast::<ShortQueue>().ok().map(|cc| cc.estimate())
}

#[cfg(test)]
#[path = "cc_tests.rs"]
mod tests;
