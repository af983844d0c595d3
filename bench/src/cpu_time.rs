//! Time spent on a CPU by the calling thread (`CLOCK_THREAD_CPUTIME_ID`, through rustix's safe wrapper).
//! On a shared 2-core machine wall time also counts the moments another process had the core; on-CPU time
//! does not, and it is what ffmpeg's `-benchmark` reports for the reference codecs too.

use std::time::{Duration, Instant};

use rustix::time::{clock_gettime, ClockId};

/// This thread's CPU time so far.
pub fn thread_cpu() -> Duration {
    let t = clock_gettime(ClockId::ThreadCPUTime);
    Duration::new(u64::try_from(t.tv_sec).unwrap_or_default(), u32::try_from(t.tv_nsec).unwrap_or_default())
}

/// CPU time of the whole process so far (every thread, user and system).
pub fn process_cpu() -> Duration {
    let t = clock_gettime(ClockId::ProcessCPUTime);
    Duration::new(u64::try_from(t.tv_sec).unwrap_or_default(), u32::try_from(t.tv_nsec).unwrap_or_default())
}

/// Measures one interval both ways.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch {
    wall: Instant,
    cpu: Duration,
}

/// Wall time and on-CPU time of an interval.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lap {
    pub wall: Duration,
    pub cpu: Duration,
}

impl Stopwatch {
    pub fn start() -> Self {
        let cpu = thread_cpu();
        Self { wall: Instant::now(), cpu }
    }

    pub fn stop(&self) -> Lap {
        let wall = self.wall.elapsed();
        Lap { wall, cpu: thread_cpu().saturating_sub(self.cpu) }
    }
}
