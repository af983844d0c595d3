//! The relay under test, as a child process, and what `/proc` and its admin listener's `/metrics` say
//! about it. The child may be pinned to CPUs of its own ([`RelayProc::start`]), so that the load
//! generator does not compete with it for a core.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::pin;

#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the relay did not print {0:?}")]
    Missing(&'static str),
    #[error("could not read /proc: {0}")]
    Proc(String),
    #[error("the relay's /metrics: {0}")]
    Metrics(String),
}

pub struct RelayProc {
    child: Child,
    pub addr: String,
    pub fingerprint: String,
    /// The admin listener (`/metrics`).
    pub admin: String,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for RelayProc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RelayProc({})", self.addr)
    }
}

/// The `tether-relay` next to this program (same target directory).
pub fn relay_binary() -> Result<PathBuf, ProcError> {
    let exe = std::env::current_exe()?;
    Ok(exe.with_file_name("tether-relay"))
}

/// Limits generous enough that the benchmark measures forwarding, not the rate limiter.
const CONFIG: &str = "listen = \"127.0.0.1:0\"
[limits]
claims_per_minute = 1000000
claim_burst = 100000
registers_per_minute = 1000000
register_burst = 100000
retry_above = 100000
max_connections_per_address = 100000
[admin]
listen = \"127.0.0.1:0\"
";

impl RelayProc {
    /// Start the relay, on `cpus` only if given: it is spawned from a thread pinned to them, and a child
    /// inherits its parent thread's CPU affinity, its own threads too.
    pub fn start(binary: &Path, cpus: Option<&[usize]>) -> Result<Self, ProcError> {
        Self::start_with_workers(binary, cpus, None)
    }

    /// The same with `workers` forwarding workers (`None`: the relay's default, one per core it may use).
    pub fn start_with_workers(
        binary: &Path,
        cpus: Option<&[usize]>,
        workers: Option<usize>,
    ) -> Result<Self, ProcError> {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("relay.toml");
        std::fs::write(&config, CONFIG)?;
        let mut command = Command::new(binary);
        command
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(workers.map(|w| format!("--workers={w}")))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let cpus = cpus.map(<[usize]>::to_vec);
        let mut child = std::thread::scope(|s| {
            s.spawn(|| {
                if let Some(cpus) = &cpus {
                    pin::current_thread(cpus)?;
                }
                command.spawn()
            })
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("spawning thread panicked")))
        })?;
        let stdout = child.stdout.take().ok_or(ProcError::Missing("stdout"))?;
        let mut reader = BufReader::new(stdout);
        let mut next = |prefix: &'static str| -> Result<String, ProcError> {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            line.trim_end().strip_prefix(prefix).map(str::to_owned).ok_or(ProcError::Missing(prefix))
        };
        let addr = next("listening ")?;
        let fingerprint = next("fingerprint ")?;
        let admin = next("admin ")?;
        // Keep reading stdout so the relay never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        Ok(Self { child, addr, fingerprint, admin, _dir: dir })
    }

    /// The relay's dwell histogram now (cumulative since it started).
    pub fn dwell(&self) -> Result<Dwell, ProcError> {
        Dwell::parse(&self.metrics()?)
    }

    /// The admin listener's `/metrics` text.
    pub fn metrics(&self) -> Result<String, ProcError> {
        let mut stream = TcpStream::connect(&self.admin)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        Ok(text)
    }

    /// Bytes the relay forwarded so far, by worker (`tether_relay_worker_forwarded_bytes_total`).
    pub fn forwarded_by_worker(&self) -> Result<Vec<u64>, ProcError> {
        worker_bytes(&self.metrics()?)
    }

    /// User plus system CPU time of the relay so far, in seconds.
    pub fn cpu_seconds(&self) -> Result<f64, ProcError> {
        cpu_seconds_of(&self.child.id().to_string())
    }

    /// Resident memory of the relay, in KiB.
    pub fn rss_kib(&self) -> Result<u64, ProcError> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or(ProcError::Proc("no VmRSS".into()))
    }
}

/// The relay-side histogram `tether_relay_forward_dwell_seconds`: cumulative counts per upper bound.
/// `tether_relay_worker_forwarded_bytes_total{worker="i"}` of a `/metrics` text, by worker.
pub fn worker_bytes(text: &str) -> Result<Vec<u64>, ProcError> {
    const NAME: &str = "tether_relay_worker_forwarded_bytes_total{worker=\"";
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(NAME) {
            let (worker, bytes) = rest.split_once("\"} ").ok_or_else(|| ProcError::Metrics(line.into()))?;
            let worker: usize = worker.parse().map_err(|_| ProcError::Metrics(line.into()))?;
            let bytes = bytes.trim().parse().map_err(|_| ProcError::Metrics(line.into()))?;
            if out.len() <= worker {
                out.resize(worker + 1, 0);
            }
            out[worker] = bytes;
        }
    }
    if out.is_empty() {
        return Err(ProcError::Metrics("no per-worker counters (an older relay?)".into()));
    }
    Ok(out)
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dwell {
    /// (upper bound in microseconds, `u64::MAX` for `+Inf`; datagrams at or below it), ascending.
    pub buckets: Vec<(u64, u64)>,
    pub sum_seconds: f64,
}

const DWELL: &str = "tether_relay_forward_dwell_seconds";

impl Dwell {
    pub fn parse(text: &str) -> Result<Self, ProcError> {
        let mut dwell = Dwell::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix(DWELL).and_then(|r| r.strip_prefix("_bucket{le=\"")) {
                let (le, count) = rest.split_once("\"} ").ok_or_else(|| ProcError::Metrics(line.into()))?;
                let le = match le {
                    "+Inf" => u64::MAX,
                    secs => (secs.parse::<f64>().map_err(|_| ProcError::Metrics(line.into()))? * 1e6).round()
                        as u64,
                };
                let count = count.trim().parse().map_err(|_| ProcError::Metrics(line.into()))?;
                dwell.buckets.push((le, count));
            } else if let Some(sum) = line.strip_prefix(DWELL).and_then(|r| r.strip_prefix("_sum ")) {
                dwell.sum_seconds = sum.trim().parse().map_err(|_| ProcError::Metrics(line.into()))?;
            }
        }
        if dwell.buckets.is_empty() {
            return Err(ProcError::Metrics(format!("no {DWELL} histogram")));
        }
        Ok(dwell)
    }

    /// What was observed between `earlier` and `self`.
    pub fn since(&self, earlier: &Dwell) -> Dwell {
        let buckets = self
            .buckets
            .iter()
            .map(|&(le, n)| {
                let before = earlier.buckets.iter().find(|(l, _)| *l == le).map_or(0, |(_, n)| *n);
                (le, n.saturating_sub(before))
            })
            .collect();
        Dwell { buckets, sum_seconds: self.sum_seconds - earlier.sum_seconds }
    }

    pub fn count(&self) -> u64 {
        self.buckets.last().map_or(0, |(_, n)| *n)
    }

    /// The upper bound (µs) of the bucket holding quantile `q`: the quantile is at most this
    /// (`u64::MAX`: beyond the last finite bound).
    pub fn quantile_bound(&self, q: f64) -> u64 {
        let rank = (self.count() as f64 * q).ceil() as u64;
        self.buckets.iter().find(|(_, n)| *n >= rank.max(1)).map_or(u64::MAX, |(le, _)| *le)
    }

    pub fn mean_micros(&self) -> f64 {
        self.sum_seconds * 1e6 / self.count().max(1) as f64
    }
}

/// `sysconf(_SC_CLK_TCK)` without libc: 100 on every Linux this runs on (USER_HZ is fixed by the ABI).
fn clock_ticks_per_second() -> f64 {
    100.0
}

/// User plus system CPU time of this process (the load generator) so far, in seconds.
pub fn own_cpu_seconds() -> Result<f64, ProcError> {
    cpu_seconds_of("self")
}

fn cpu_seconds_of(pid: &str) -> Result<f64, ProcError> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or_else(|| ProcError::Proc(stat.clone()))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
    // utime and stime are fields 14 and 15 of stat; `rest` starts at field 3.
    let (Some(user), Some(system)) = (ticks(11), ticks(12)) else {
        return Err(ProcError::Proc(stat));
    };
    Ok((user + system) as f64 / clock_ticks_per_second())
}

impl Drop for RelayProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_worker_bytes_parse() {
        let text = "# TYPE x counter\ntether_relay_worker_forwarded_bytes_total{worker=\"1\"} 7\n\
                    tether_relay_worker_forwarded_bytes_total{worker=\"0\"} 5\n";
        assert_eq!(worker_bytes(text).expect("parse"), [5, 7]);
        assert!(worker_bytes("nothing").is_err());
    }

    #[test]
    fn dwell_histogram_parses_and_subtracts() {
        let at = |n: [u64; 3], sum: f64| {
            format!(
                "# TYPE {DWELL} histogram\n{DWELL}_bucket{{le=\"0.00001\"}} {}\n\
                 {DWELL}_bucket{{le=\"0.001\"}} {}\n{DWELL}_bucket{{le=\"+Inf\"}} {}\n{DWELL}_sum {sum}\n\
                 {DWELL}_count {}\n",
                n[0], n[1], n[2], n[2]
            )
        };
        let before = Dwell::parse(&at([5, 5, 5], 0.001)).expect("parse");
        let after = Dwell::parse(&at([95, 104, 105], 0.003)).expect("parse");
        let d = after.since(&before);
        assert_eq!(d.buckets, [(10, 90), (1000, 99), (u64::MAX, 100)]);
        assert_eq!(d.quantile_bound(0.5), 10);
        assert_eq!(d.quantile_bound(0.99), 1000);
        assert_eq!(d.quantile_bound(1.0), u64::MAX);
        assert!((d.mean_micros() - 20.0).abs() < 1e-6);
    }
}
