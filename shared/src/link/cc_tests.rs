//! [`ShortQueue`] on simulated lines: a bottleneck of a given rate with an unbounded drop-tail queue, a
//! fixed path delay, optional random loss, and a sender that always has data (or, where said, is idle).
//! Each test checks an outcome of the whole loop: the queue the line builds, the rate it reaches, the
//! estimate it reports.

use super::*;

const MTU: u64 = 1452;

/// A sender with endless data behind a bottleneck.
struct Line {
    cc: ShortQueue,
    now: Instant,
    /// Bytes per second the bottleneck drains.
    rate: u64,
    /// Round trip without a queue.
    path: Duration,
    /// Every n-th packet is lost (0: none).
    lose_every: u64,
    next_pn: u64,
    /// (packet number, sent at, acknowledged at; `None`: lost).
    in_flight: VecDeque<(u64, Instant, Option<Instant>)>,
    /// When the bottleneck has sent everything queued so far.
    free_at: Instant,
    /// Queueing delay of each packet sent, with when it was sent.
    queued: Vec<(Instant, Duration)>,
    delivered: u64,
    /// Send only this many bytes per round trip (an application-limited sender); `None`: endless data.
    app_bytes: Option<u64>,
}

impl Line {
    fn new(mbit: u64, rtt_ms: u64) -> Self {
        let now = Instant::now();
        Self {
            cc: ShortQueue::new(ShortQueueConfig::default(), now, MTU as u16),
            now,
            rate: mbit * 1_000_000 / 8,
            path: Duration::from_millis(rtt_ms),
            lose_every: 0,
            next_pn: 0,
            in_flight: VecDeque::new(),
            free_at: now,
            queued: Vec::new(),
            delivered: 0,
            app_bytes: None,
        }
        .with_a_tiny_packets_rtt()
    }

    /// The path's delay as the smallest RTT, as a tiny packet (an acknowledgement) measures it: a full
    /// packet then always takes its serialisation more, which must not read as a queue.
    fn with_a_tiny_packets_rtt(mut self) -> Self {
        self.cc.min_rtt = Some(self.path);
        self
    }

    fn serialisation(&self) -> Duration {
        Duration::from_nanos(MTU * 1_000_000_000 / self.rate)
    }

    /// Run the loop for `secs` seconds of line time.
    fn run(&mut self, secs: f64) {
        let end = self.now + Duration::from_secs_f64(secs);
        while self.now < end {
            let budget =
                self.app_bytes.map_or(u64::MAX, |b| b.saturating_sub(self.in_flight.len() as u64 * MTU));
            let mut sent = 0;
            while (self.in_flight.len() as u64 + 1) * MTU <= self.cc.window() && sent + MTU <= budget {
                let pn = self.next_pn;
                self.next_pn += 1;
                let start = self.free_at.max(self.now);
                self.queued.push((self.now, start - self.now));
                self.free_at = start + self.serialisation();
                let lost = self.lose_every > 0 && pn % self.lose_every == self.lose_every - 1;
                let acked = (!lost).then_some(self.free_at + self.path);
                self.in_flight.push_back((pn, self.now, acked));
                self.cc.sent(self.now, pn);
                sent += MTU;
            }
            // The next acknowledgement; an application-limited sender also wakes once per round trip.
            let next_ack = self.in_flight.iter().filter_map(|p| p.2).min();
            let wake = match (next_ack, self.app_bytes) {
                (Some(t), _) => t,
                (None, Some(_)) => self.now + self.path,
                (None, None) => unreachable!("a sender with endless data always has something in flight"),
            };
            self.now = wake;
            let app_limited = self.app_bytes.is_some();
            let mut largest = None;
            while let Some(&(pn, sent_at, acked)) = self.in_flight.front() {
                match acked {
                    Some(t) if t <= self.now => {
                        self.in_flight.pop_front();
                        self.cc.acked(self.now, sent_at, MTU, app_limited);
                        self.delivered += MTU;
                        largest = Some(pn);
                    }
                    // Lost: noticed once a later packet is acknowledged (simplified loss detection).
                    None if self.in_flight.iter().any(|p| p.2.is_some_and(|t| t <= self.now)) => {
                        self.in_flight.pop_front();
                        self.cc.lost(self.now, sent_at, false);
                    }
                    _ => break,
                }
            }
            self.cc.end_acks(self.now, largest);
        }
    }

    /// The largest queueing delay of packets sent in the last `secs` seconds.
    fn worst_queue_since(&self, secs: f64) -> Duration {
        let from = self.now - Duration::from_secs_f64(secs);
        self.queued.iter().filter(|(at, _)| *at >= from).map(|(_, q)| *q).max().unwrap_or_default()
    }

    /// Bytes per second delivered over `secs` seconds of running.
    fn throughput(&mut self, secs: f64) -> u64 {
        let before = self.delivered;
        self.run(secs);
        ((self.delivered - before) as f64 / secs) as u64
    }
}

fn mbit(bytes_per_sec: u64) -> f64 {
    bytes_per_sec as f64 * 8.0 / 1e6
}

#[test]
fn fills_the_line_with_a_short_queue() {
    for (rate, rtt) in [(2, 40), (10, 40), (50, 20), (10, 150)] {
        let mut line = Line::new(rate, rtt);
        line.run(10.0);
        let got = line.throughput(10.0);
        let queue = line.worst_queue_since(10.0);
        assert!(mbit(got) >= rate as f64 * 0.85, "{rate} Mbit/s, {rtt} ms: only {:.2} Mbit/s", mbit(got));
        let allowed = (TARGET_DELAY * 3).max(line.serialisation() * TARGET_PACKETS as u32 * 2);
        assert!(queue <= allowed, "{rate} Mbit/s, {rtt} ms: queue up to {queue:?}");
        let est = line.cc.estimate();
        assert!(!est.startup);
        let bw = est.bandwidth.expect("measured");
        assert!(
            (mbit(bw) - rate as f64).abs() <= rate as f64 * 0.1,
            "{rate} Mbit/s estimated {:.2}",
            mbit(bw)
        );
        // The path's delay plus one packet's time on the line.
        assert_eq!(est.min_rtt, Some(line.path));
    }
}

#[test]
fn cubic_would_fill_the_queue_this_does_not() {
    // The same line with the window held at four times the path's bandwidth-delay product (a loss-based
    // controller's behaviour on a deep buffer): the queue is three round trips long.
    let mut line = Line::new(10, 40);
    line.run(5.0);
    assert!(line.worst_queue_since(3.0) <= TARGET_DELAY * 3);
    let bdp = line.rate * 40 / 1000;
    line.cc.window = 4 * bdp;
    line.cc.phase = Phase::Startup;
    line.cc.acked(line.now, line.now, 0, true); // (no growth: application-limited)
    let saved = line.cc.clone();
    let mut held = Line { cc: saved, ..Line::new(10, 40) };
    held.cc.cfg.target_delay = Duration::from_secs(10); // never reacts
    held.run(5.0);
    assert!(held.worst_queue_since(3.0) >= Duration::from_millis(100), "{:?}", held.worst_queue_since(3.0));
}

#[test]
fn random_loss_costs_little() {
    let mut line = Line::new(10, 40);
    line.lose_every = 200; // 0.5 %
    line.run(10.0);
    let got = line.throughput(10.0);
    assert!(mbit(got) >= 8.0, "{:.2} Mbit/s under 0.5 % loss", mbit(got));
}

#[test]
fn the_estimate_follows_a_rate_cut() {
    let mut line = Line::new(20, 40);
    line.run(5.0);
    let before = line.cc.estimate().bandwidth.expect("measured");
    line.rate = 2_000_000 / 8;
    line.run(5.0);
    let after = line.cc.estimate().bandwidth.expect("measured");
    assert!(mbit(before) > 17.0, "{:.2}", mbit(before));
    assert!(mbit(after) < 2.5, "{:.2}", mbit(after));
    // And the queue the cut left drains: the window fits the new rate.
    line.run(3.0);
    assert!(line.worst_queue_since(2.0) <= TARGET_DELAY * 3, "{:?}", line.worst_queue_since(2.0));
}

#[test]
fn an_idle_sender_keeps_its_estimate_and_window() {
    let mut line = Line::new(10, 40);
    line.run(5.0);
    let busy = line.cc.estimate();
    line.app_bytes = Some(4 * MTU);
    line.run(5.0);
    let idle = line.cc.estimate();
    assert_eq!(idle.bandwidth, busy.bandwidth, "idle rounds say nothing about the line");
    // At least what fits the line: the window does not shrink while nothing is measured.
    let fits = bytes_in(busy.bandwidth.expect("measured"), busy.min_rtt.expect("measured"));
    assert!(idle.window >= fits, "{} → {} (the line holds {fits})", busy.window, idle.window);
}

#[test]
fn persistent_congestion_resets_to_the_minimum() {
    let mut line = Line::new(10, 40);
    line.run(3.0);
    line.cc.lost(line.now, line.now, true);
    assert_eq!(line.cc.window(), MIN_WINDOW_PACKETS * MTU);
    // It climbs back.
    line.run(5.0);
    assert!(line.cc.window() > 10 * MTU);
}

#[test]
fn one_loss_event_is_answered_once() {
    let mut line = Line::new(10, 40);
    line.run(3.0);
    let w = line.cc.window();
    let t = line.now;
    line.cc.queue_delay = TARGET_DELAY; // a queue: the loss is this flow's doing
    line.cc.lost(t, t - Duration::from_millis(5), false);
    line.cc.lost(t + Duration::from_millis(1), t - Duration::from_millis(4), false);
    assert_eq!(line.cc.window(), (w - w / 8).max(MIN_WINDOW_PACKETS * MTU));
}

#[test]
fn reaches_the_rate_within_seconds() {
    for (rate, rtt) in [(2, 40), (10, 40), (50, 20), (10, 150)] {
        let mut line = Line::new(rate, rtt);
        line.run(2.0);
        let got = line.throughput(8.0);
        eprintln!("{rate} Mbit/s {rtt} ms: {:.2} Mbit/s, queue {:?}", mbit(got), line.worst_queue_since(8.0));
        assert!(mbit(got) >= rate as f64 * 0.8, "{rate} Mbit/s, {rtt} ms: only {:.2} Mbit/s", mbit(got));
    }
}

#[test]
fn a_loss_without_a_queue_is_ignored_unless_losses_pile_up() {
    let mut line = Line::new(10, 40);
    line.run(3.0);
    let w = line.cc.window();
    line.cc.queue_delay = Duration::ZERO;
    line.cc.lost(line.now, line.now - Duration::from_millis(5), false);
    assert_eq!(line.cc.window(), w, "one random loss");
    // A line that loses one packet in ten: the window shrinks although no queue shows.
    let mut lossy = Line::new(10, 40);
    lossy.lose_every = 10;
    let got = lossy.throughput(10.0);
    assert!(mbit(got) < 9.0, "{:.2} Mbit/s through 10 % loss", mbit(got));
    assert!(lossy.cc.window() < w / 2, "window {} with 10 % loss", lossy.cc.window());
}
