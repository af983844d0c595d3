//! A token bucket per direction of a session: the per-session bandwidth cap, as pure state (time is a
//! parameter). The forwarding path drops a packet the bucket cannot pay for; QUIC's congestion control at
//! the ends sees the loss and slows down. No queue: the relay never buffers.

use std::time::Instant;

#[derive(Debug)]
pub struct Bucket {
    rate: u64,
    capacity: u64,
    tokens: u64,
    last: Instant,
}

impl Bucket {
    /// `rate` bytes per second, with a burst of one second (at least 16 full-size packets). A shorter burst
    /// (a quarter second was tried) dropped whole screen updates of a large monitor at once and made the
    /// end-to-end connection time out; a second's worth lets a full frame through and caps the average.
    pub fn new(rate: u64, now: Instant) -> Self {
        let capacity = rate.max(16 * 1500);
        Self { rate, capacity, tokens: capacity, last: now }
    }

    /// Take `n` bytes' worth if there are enough tokens.
    pub fn take(&mut self, now: Instant, n: u64) -> bool {
        let elapsed = now.saturating_duration_since(self.last);
        let refill = (elapsed.as_nanos() * u128::from(self.rate) / 1_000_000_000) as u64;
        if refill > 0 {
            self.tokens = (self.tokens + refill).min(self.capacity);
            self.last = now;
        }
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn holds_the_rate_after_the_burst() {
        let t0 = Instant::now();
        let mut b = Bucket::new(100_000, t0);
        let mut sent = 0;
        // One second of 1000-byte packets every millisecond: 1 MB offered; the burst plus a second's rate.
        for ms in 0..1000 {
            if b.take(t0 + Duration::from_millis(ms), 1000) {
                sent += 1000;
            }
        }
        assert!((190_000..=210_000).contains(&sent), "{sent}");
    }
}
