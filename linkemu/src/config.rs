//! What a link does, per direction.

use std::time::Duration;

/// How much the bottleneck's queue holds before it drops (drop-tail).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Queue {
    /// At most this many bytes waiting.
    Bytes(u64),
    /// At most this long a wait for a packet arriving now (a "200 ms buffer": `tc tbf latency 200ms`).
    Time(Duration),
}

/// One direction of a link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Direction {
    /// Bottleneck rate in bits per second; `None`: as fast as packets come (no queue forms).
    pub rate_bps: Option<u64>,
    pub queue: Queue,
    /// One-way propagation delay, added after the bottleneck.
    pub delay: Duration,
    /// Each packet's delay varies uniformly within `delay ± jitter` (never below zero). Packets stay in
    /// order unless [`Self::reorder`] says otherwise, as on most real paths.
    pub jitter: Duration,
    /// Probability that a packet is lost after the bottleneck (it used the link's capacity, then vanished).
    pub loss: f64,
    /// Probability that a packet is held back by [`Self::reorder_by`], so the ones behind it overtake it.
    pub reorder: f64,
    pub reorder_by: Duration,
    /// Probability that a packet arrives twice.
    pub duplicate: f64,
    /// The largest UDP payload the link carries; bigger datagrams are dropped (as a real link drops an
    /// IP packet over its MTU with don't-fragment set). `None`: any size. Internet paths carry 1472
    /// bytes of UDP payload ([`ETHERNET_UDP_PAYLOAD`]); loopback carries 65 507, which a protocol
    /// discovering the path MTU would otherwise find and use.
    pub mtu: Option<usize>,
}

/// The UDP payload of an Ethernet-sized (1500-byte) IPv4 packet: 1500 less 20 for IP and 8 for UDP.
pub const ETHERNET_UDP_PAYLOAD: usize = 1472;

impl Default for Direction {
    /// A perfect link: no limit, no delay, nothing lost.
    fn default() -> Self {
        Self {
            rate_bps: None,
            queue: Queue::Time(Duration::from_millis(200)),
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 0.0,
            reorder: 0.0,
            reorder_by: Duration::from_millis(10),
            duplicate: 0.0,
            mtu: None,
        }
    }
}

impl Direction {
    /// A bottleneck of `mbit` Mbit/s.
    pub fn mbit(mbit: f64) -> Self {
        Self { rate_bps: Some((mbit * 1e6) as u64), ..Self::default() }
    }

    pub fn delay(self, delay: Duration) -> Self {
        Self { delay, ..self }
    }

    pub fn jitter(self, jitter: Duration) -> Self {
        Self { jitter, ..self }
    }

    pub fn queue(self, queue: Queue) -> Self {
        Self { queue, ..self }
    }

    pub fn loss(self, loss: f64) -> Self {
        Self { loss, ..self }
    }

    pub fn reorder(self, reorder: f64, by: Duration) -> Self {
        Self { reorder, reorder_by: by, ..self }
    }

    pub fn duplicate(self, duplicate: f64) -> Self {
        Self { duplicate, ..self }
    }

    /// Drop UDP payloads over `bytes` ([`Self::mtu`]).
    pub fn mtu(self, bytes: usize) -> Self {
        Self { mtu: Some(bytes), ..self }
    }
}

/// Both directions of a link, seen from the client: `up` is client → server, `down` server → client.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LinkConfig {
    pub up: Direction,
    pub down: Direction,
    /// Seeds the random choices (loss, jitter, reordering, duplication): the same seed and the same
    /// packets at the same times give the same outcome.
    pub seed: u64,
}

impl LinkConfig {
    /// The same in both directions.
    pub fn symmetric(direction: Direction) -> Self {
        Self { up: direction, down: direction, seed: 0 }
    }

    /// Different up (client → server) and down.
    pub fn asymmetric(up: Direction, down: Direction) -> Self {
        Self { up, down, seed: 0 }
    }

    pub fn seed(self, seed: u64) -> Self {
        Self { seed, ..self }
    }
}
