//! The relay under test, as a child process, and what `/proc` says about it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the relay did not print {0:?}")]
    Missing(&'static str),
    #[error("could not read /proc: {0}")]
    Proc(String),
}

pub struct RelayProc {
    child: Child,
    pub addr: String,
    pub fingerprint: String,
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
";

impl RelayProc {
    pub fn start(binary: &Path) -> Result<Self, ProcError> {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("relay.toml");
        std::fs::write(&config, CONFIG)?;
        let mut child = Command::new(binary)
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().ok_or(ProcError::Missing("stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let mut next = |prefix: &'static str| -> Result<String, ProcError> {
            let line = lines.next().ok_or(ProcError::Missing(prefix))??;
            line.strip_prefix(prefix).map(str::to_owned).ok_or(ProcError::Missing(prefix))
        };
        let addr = next("listening ")?;
        let fingerprint = next("fingerprint ")?;
        Ok(Self { child, addr, fingerprint, _dir: dir })
    }

    /// User plus system CPU time of the relay so far, in seconds.
    pub fn cpu_seconds(&self) -> Result<f64, ProcError> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
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

/// `sysconf(_SC_CLK_TCK)` without libc: 100 on every Linux this runs on (USER_HZ is fixed by the ABI).
fn clock_ticks_per_second() -> f64 {
    100.0
}

impl Drop for RelayProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
