//! One direction of a link as a pure model: given a packet's size and the time it arrives, when (and
//! whether, and how often) it comes out at the other end.
//!
//! The bottleneck serialises packets at its rate: a packet starts when the one before it has left, and
//! takes `size × 8 / rate` to leave. The wait before it starts is its queueing delay; a packet whose wait
//! (or the bytes ahead of it) would exceed the queue's limit is dropped on arrival, as a drop-tail router
//! does. After the bottleneck, the packet may be lost at random; otherwise it travels the one-way delay
//! (± jitter, never overtaking the packet before it unless chosen for reordering, which holds it back)
//! and may be duplicated.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::{Direction, Queue};
use crate::stats::{DirectionStats, Histogram};

/// What becomes of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The bottleneck's queue was full.
    Overflow,
    /// Larger than the link's MTU.
    TooBig,
    /// Lost on the way.
    Lost,
    /// Arrives at `at` (twice when `copies` is 2).
    Deliver { at: Instant, copies: u8 },
}

/// One direction of the link.
#[derive(Debug)]
pub struct Pipe {
    cfg: Direction,
    rng: StdRng,
    /// When the bottleneck is free again (the last accepted packet has left it).
    free_at: Option<Instant>,
    /// When the last in-order packet arrives: later ones never arrive before it (unless reordered).
    last_arrival: Option<Instant>,
    stats: DirectionStats,
    queue_delays: Histogram,
}

impl Pipe {
    pub fn new(cfg: Direction, seed: u64) -> Self {
        Self {
            cfg,
            rng: StdRng::seed_from_u64(seed),
            free_at: None,
            last_arrival: None,
            stats: DirectionStats::default(),
            queue_delays: Histogram::default(),
        }
    }

    /// Change the link from now on; packets already accepted keep their times, counters go on.
    pub fn set(&mut self, cfg: Direction) {
        self.cfg = cfg;
    }

    pub fn config(&self) -> Direction {
        self.cfg
    }

    /// A packet of `len` bytes arrives at the bottleneck at `now` (calls come in time order).
    pub fn handle_packet(&mut self, now: Instant, len: usize) -> Verdict {
        self.stats.packets += 1;
        self.stats.bytes += len as u64;
        if self.cfg.mtu.is_some_and(|mtu| len > mtu) {
            self.stats.too_big += 1;
            return Verdict::TooBig;
        }
        let start = self.free_at.map_or(now, |free| free.max(now));
        let wait = start - now;
        let leaves = match self.cfg.rate_bps {
            Some(rate) => {
                let tx = Duration::from_secs_f64(len as f64 * 8.0 / rate.max(1) as f64);
                let full = match self.cfg.queue {
                    Queue::Time(limit) => wait > limit,
                    Queue::Bytes(limit) => {
                        let ahead = wait.as_secs_f64() * rate as f64 / 8.0;
                        ahead + len as f64 > limit as f64
                    }
                };
                if full {
                    self.stats.overflowed += 1;
                    return Verdict::Overflow;
                }
                start + tx
            }
            None => now,
        };
        self.free_at = Some(leaves);
        self.queue_delays.add(wait);
        if self.chance(self.cfg.loss) {
            self.stats.lost += 1;
            return Verdict::Lost;
        }
        let mut at = leaves + self.delay();
        if self.chance(self.cfg.reorder) {
            self.stats.reordered += 1;
            at += self.cfg.reorder_by;
        } else {
            at = self.last_arrival.map_or(at, |last| at.max(last));
            self.last_arrival = Some(at);
        }
        let copies = if self.chance(self.cfg.duplicate) { 2 } else { 1 };
        self.stats.duplicated += u64::from(copies - 1);
        self.stats.delivered += u64::from(copies);
        self.stats.delivered_bytes += len as u64 * u64::from(copies);
        Verdict::Deliver { at, copies }
    }

    /// Start counting afresh (a benchmark's measuring phase after its warm-up); the link's state — the
    /// queue, the random sequence — goes on.
    pub fn reset_stats(&mut self) {
        self.stats = DirectionStats::default();
        self.queue_delays = Histogram::default();
    }

    /// The counters so far.
    pub fn stats(&self) -> DirectionStats {
        DirectionStats {
            queue_p50: self.queue_delays.quantile(0.50),
            queue_p95: self.queue_delays.quantile(0.95),
            queue_max: self.queue_delays.quantile(1.0),
            ..self.stats
        }
    }

    fn delay(&mut self) -> Duration {
        let (delay, jitter) = (self.cfg.delay, self.cfg.jitter);
        if jitter.is_zero() {
            return delay;
        }
        let offset = self.rng.random_range(-jitter.as_secs_f64()..=jitter.as_secs_f64());
        Duration::from_secs_f64((delay.as_secs_f64() + offset).max(0.0))
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.random_bool(p.min(1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn at(v: Verdict) -> Instant {
        match v {
            Verdict::Deliver { at, .. } => at,
            other => panic!("expected a delivery, got {other:?}"),
        }
    }

    #[test]
    fn an_unlimited_link_only_delays() {
        let t0 = Instant::now();
        let mut p = Pipe::new(Direction::default().delay(20 * MS), 1);
        assert_eq!(p.handle_packet(t0, 1200), Verdict::Deliver { at: t0 + 20 * MS, copies: 1 });
        assert_eq!(p.handle_packet(t0, 1200), Verdict::Deliver { at: t0 + 20 * MS, copies: 1 });
        assert_eq!(p.stats().queue_max, Duration::ZERO);
    }

    #[test]
    fn the_bottleneck_serialises_at_its_rate() {
        let t0 = Instant::now();
        // 1 Mbit/s: 1250 bytes take 10 ms.
        let mut p = Pipe::new(Direction::mbit(1.0), 1);
        let arrivals: Vec<Instant> = (0..4).map(|_| at(p.handle_packet(t0, 1250))).collect();
        assert_eq!(arrivals, vec![t0 + 10 * MS, t0 + 20 * MS, t0 + 30 * MS, t0 + 40 * MS]);
        // The 4th waited 30 ms in the queue.
        assert_eq!(p.stats().queue_max, 30 * MS);
        // Once the queue has drained, a packet goes straight through.
        assert_eq!(at(p.handle_packet(t0 + 100 * MS, 1250)), t0 + 110 * MS);
    }

    #[test]
    fn a_full_queue_drops_at_its_limit_in_time_or_bytes() {
        let t0 = Instant::now();
        let mut p = Pipe::new(Direction::mbit(1.0).queue(Queue::Time(25 * MS)), 1);
        let verdicts: Vec<Verdict> = (0..5).map(|_| p.handle_packet(t0, 1250)).collect();
        // Waits 0, 10, 20 ms are within 25 ms; the 4th would wait 30.
        assert!(matches!(verdicts[2], Verdict::Deliver { .. }));
        assert_eq!(verdicts[3], Verdict::Overflow);
        assert_eq!(verdicts[4], Verdict::Overflow);
        assert_eq!(p.stats().overflowed, 2);

        let mut p = Pipe::new(Direction::mbit(1.0).queue(Queue::Bytes(3000)), 1);
        let verdicts: Vec<Verdict> = (0..3).map(|_| p.handle_packet(t0, 1250)).collect();
        // 0 and 1250 bytes ahead fit with the packet's own 1250; 2500 + 1250 does not.
        assert!(matches!(verdicts[1], Verdict::Deliver { .. }));
        assert_eq!(verdicts[2], Verdict::Overflow);
    }

    #[test]
    fn a_datagram_over_the_mtu_is_dropped_and_takes_no_time() {
        let t0 = Instant::now();
        let mut p = Pipe::new(Direction::mbit(1.0).mtu(1472), 1);
        assert_eq!(p.handle_packet(t0, 1473), Verdict::TooBig);
        // It used none of the line: the next one goes at once.
        assert_eq!(at(p.handle_packet(t0, 1250)), t0 + 10 * MS);
        assert_eq!((p.stats().too_big, p.stats().delivered), (1, 1));
    }

    #[test]
    fn loss_is_about_the_configured_share_and_the_seed_decides() {
        let t0 = Instant::now();
        let run = |seed| {
            let mut p = Pipe::new(Direction::default().loss(0.1), seed);
            (0..10_000).map(|_| p.handle_packet(t0, 100)).collect::<Vec<_>>()
        };
        let lost = run(7).iter().filter(|v| **v == Verdict::Lost).count();
        assert!((800..1200).contains(&lost), "{lost} of 10000 lost at 10 %");
        assert_eq!(run(7), run(7), "the same seed gives the same losses");
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn jitter_keeps_order_and_reordering_holds_back() {
        let t0 = Instant::now();
        let mut p = Pipe::new(Direction::default().delay(20 * MS).jitter(10 * MS), 3);
        let mut last = t0;
        for i in 0..1000 {
            let a = at(p.handle_packet(t0 + i * MS / 10, 100));
            assert!(a >= last, "packet {i} overtook the one before");
            assert!(a >= t0 + i * MS / 10 + 10 * MS && a <= t0 + i * MS / 10 + 30 * MS + 30 * MS);
            last = a;
        }

        let mut p = Pipe::new(Direction::default().delay(5 * MS).reorder(1.0, 10 * MS), 3);
        let first = at(p.handle_packet(t0, 100));
        assert_eq!(first, t0 + 15 * MS, "held back by 10 ms");
        let mut p = Pipe::new(Direction::default().delay(5 * MS).reorder(0.5, 10 * MS), 3);
        let arrivals: Vec<Instant> = (0..100).map(|i| at(p.handle_packet(t0 + i * MS, 100))).collect();
        assert!(arrivals.windows(2).any(|w| w[1] < w[0]), "some packet overtook a held-back one");
        assert!(p.stats().reordered > 0);
    }

    #[test]
    fn duplicates_arrive_twice() {
        let t0 = Instant::now();
        let mut p = Pipe::new(Direction::default().duplicate(1.0), 1);
        assert_eq!(p.handle_packet(t0, 10), Verdict::Deliver { at: t0, copies: 2 });
        assert_eq!(p.stats().duplicated, 1);
        assert_eq!(p.stats().delivered, 2);
        p.reset_stats();
        assert_eq!(p.stats(), DirectionStats::default());
    }

    #[test]
    fn a_rate_cut_applies_to_the_next_packet() {
        let t0 = Instant::now();
        let mut p = Pipe::new(Direction::mbit(10.0), 1);
        assert_eq!(at(p.handle_packet(t0, 1250)), t0 + MS);
        p.set(Direction::mbit(1.0));
        assert_eq!(at(p.handle_packet(t0 + 10 * MS, 1250)), t0 + 20 * MS);
    }
}
