//! What the emulator did to the packets: counts, and the queueing delay they met at the bottleneck.

use std::time::Duration;

/// Queueing delays, in buckets of [`BUCKET`] up to [`BUCKETS`] × [`BUCKET`] (longer ones in the last):
/// constant memory however long a benchmark runs.
#[derive(Clone)]
pub(crate) struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: Duration,
}

const BUCKET: Duration = Duration::from_micros(100);
const BUCKETS: usize = 50_000; // 5 s

impl Default for Histogram {
    fn default() -> Self {
        Self { counts: vec![0; BUCKETS], total: 0, max: Duration::ZERO }
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram").field("samples", &self.total).field("max", &self.max).finish()
    }
}

impl Histogram {
    pub fn add(&mut self, d: Duration) {
        let i = (d.as_micros() / BUCKET.as_micros()).min(BUCKETS as u128 - 1) as usize;
        self.counts[i] += 1;
        self.total += 1;
        self.max = self.max.max(d);
    }

    /// The delay at or below which `q` (0..=1) of the samples lie (rounded up to a bucket's end).
    pub fn quantile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return (BUCKET * (i as u32 + 1)).min(self.max);
            }
        }
        self.max
    }
}

/// One direction's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DirectionStats {
    /// Packets and bytes offered to the link.
    pub packets: u64,
    pub bytes: u64,
    /// Packets and bytes that arrived (duplicates counted once per copy).
    pub delivered: u64,
    pub delivered_bytes: u64,
    /// Dropped by the full queue.
    pub overflowed: u64,
    /// Dropped for being larger than the link's MTU.
    pub too_big: u64,
    /// Lost at random.
    pub lost: u64,
    pub reordered: u64,
    pub duplicated: u64,
    /// Time packets waited in the bottleneck's queue, of those that were not dropped there.
    pub queue_p50: Duration,
    pub queue_p95: Duration,
    pub queue_max: Duration,
}

/// Both directions (`up`: client → server).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LinkStats {
    pub up: DirectionStats,
    pub down: DirectionStats,
}
