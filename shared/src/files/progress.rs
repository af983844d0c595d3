//! Progress of a transfer as a person wants it: bytes, files, rate, time left. Pure: time is a parameter.

use std::time::{Duration, Instant};

use crate::human;

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
    /// Bytes per second, smoothed.
    pub rate: f64,
    pub eta: Option<Duration>,
    /// Files finished (verified and under their final name) in this attempt, of the files offered.
    pub files_done: u32,
    pub files_total: u32,
}

impl Progress {
    /// "328.2 MB of 838.9 MB · 146.2 MB/s · 3 s left", as both windows and the command line show it; with
    /// "· 12 of 120 files" after the amounts when there is more than one file. Before the first rate is
    /// known it says "starting" rather than "0 bytes/s · time left unknown".
    pub fn describe(&self) -> String {
        let mut amounts = format!("{} of {}", human::bytes(self.done), human::bytes(self.total));
        if self.files_total > 1 {
            amounts += &format!(" · {} of {} files", self.files_done, self.files_total);
        }
        if self.rate <= 0.0 {
            return if self.done < self.total { format!("{amounts} · starting") } else { amounts };
        }
        let left = match self.eta {
            Some(eta) => format!("{} left", human::duration(eta)),
            None => "time left unknown".to_owned(),
        };
        format!("{amounts} · {}/s · {left}", human::bytes(self.rate as u64))
    }

    /// What the whole transfer is: "838.9 MB", or "120 files, 838.9 MB" — for a finished one.
    pub fn summary(&self) -> String {
        human::files_and_bytes(self.files_total, self.total)
    }
}

/// Turns byte counts into [`Progress`] with an exponentially smoothed rate.
#[derive(Debug, Clone)]
pub struct Tracker {
    total: u64,
    done: u64,
    rate: f64,
    last: Instant,
    since_last: u64,
    files_done: u32,
    files_total: u32,
}

const WINDOW: Duration = Duration::from_millis(250);

impl Tracker {
    /// `total` bytes in `files` files, of which `already` bytes are there (a resumed transfer).
    pub fn new(now: Instant, total: u64, already: u64, files: u32) -> Self {
        let (files_done, files_total) = (0, files);
        Self { total, done: already, rate: 0.0, last: now, since_last: 0, files_done, files_total }
    }

    /// One more file finished; shown with the next progress.
    pub fn file_done(&mut self) {
        self.files_done = (self.files_done + 1).min(self.files_total);
    }

    /// Count `bytes` more at `now`; returns fresh progress about four times a second.
    pub fn add(&mut self, now: Instant, bytes: u64) -> Option<Progress> {
        self.done += bytes;
        self.since_last += bytes;
        let elapsed = now.saturating_duration_since(self.last);
        if elapsed < WINDOW && self.done < self.total {
            return None;
        }
        let instant = self.since_last as f64 / elapsed.as_secs_f64().max(1e-6);
        self.rate = if self.rate == 0.0 { instant } else { 0.7 * self.rate + 0.3 * instant };
        self.last = now;
        self.since_last = 0;
        Some(self.progress())
    }

    pub fn progress(&self) -> Progress {
        let left = self.total.saturating_sub(self.done);
        let eta = (self.rate > 0.0).then(|| Duration::from_secs_f64(left as f64 / self.rate));
        let (files_done, files_total) = (self.files_done, self.files_total);
        Progress { done: self.done, total: self.total, rate: self.rate, eta, files_done, files_total }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_reads_as_one_line() {
        let p = Progress {
            done: 328_200_000,
            total: 838_860_800,
            rate: 146_200_000.0,
            files_total: 1,
            ..Default::default()
        };
        assert_eq!(p.describe(), "328.2 MB of 838.9 MB · 146.2 MB/s · time left unknown");
        let p = Progress { eta: Some(Duration::from_secs(125)), ..p };
        assert_eq!(p.describe(), "328.2 MB of 838.9 MB · 146.2 MB/s · 2 min 05 s left");
        let starting = Progress { done: 0, total: 838_860_800, ..Default::default() };
        assert_eq!(starting.describe(), "0 bytes of 838.9 MB · starting");
        let resumed_whole = Progress { done: 17, total: 17, ..Default::default() };
        assert_eq!(resumed_whole.describe(), "17 bytes of 17 bytes");
        let folder = Progress { files_done: 12, files_total: 120, ..p };
        assert_eq!(
            folder.describe(),
            "328.2 MB of 838.9 MB · 12 of 120 files · 146.2 MB/s · 2 min 05 s left"
        );
        assert_eq!((p.summary(), folder.summary()), ("838.9 MB".into(), "120 files, 838.9 MB".into()));
    }

    #[test]
    fn rate_and_eta_follow_the_bytes() {
        let t0 = Instant::now();
        let mut t = Tracker::new(t0, 1000, 0, 2);
        assert_eq!(t.add(t0 + Duration::from_millis(100), 50), None, "not yet");
        let p = t.add(t0 + Duration::from_millis(500), 50).expect("progress");
        assert_eq!(p.done, 100);
        assert!((p.rate - 200.0).abs() < 1e-6, "{}", p.rate);
        assert_eq!(p.eta, Some(Duration::from_millis(4500)));
        assert_eq!((p.files_done, p.files_total), (0, 2));
        t.file_done();
        let end = t.add(t0 + Duration::from_millis(600), 900).expect("the last bytes always report");
        assert_eq!((end.done, end.eta, end.files_done), (1000, Some(Duration::ZERO), 1));
        t.file_done();
        t.file_done();
        assert_eq!(t.progress().files_done, 2, "never more files than offered");
    }
}
