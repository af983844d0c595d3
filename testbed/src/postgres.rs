//! A private PostgreSQL server for tests: a fresh cluster in a temporary directory (Debian's
//! `postgresql` package: `initdb`, `pg_ctl`), listening only on a Unix socket in that directory, trust
//! authentication for the `tether` user. As root it runs as the `postgres` user (PostgreSQL refuses
//! root). Stopped (immediately) and removed when dropped; [`Postgres::stop`] and [`Postgres::start`]
//! take it away and bring it back for tests of a database outage.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// The port only names the socket file in the cluster's own directory (no TCP), so every cluster may
/// use the default.
const PORT: u16 = 5432;

pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    root: bool,
}

/// Where Debian puts the server's programs (`/usr/lib/postgresql/<version>/bin`), newest first.
fn server_bin() -> Result<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .context("PostgreSQL is not installed (apt-get install postgresql; scripts/packages.sh lists it)")?
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().context("no initdb under /usr/lib/postgresql/*/bin")
}

impl Postgres {
    /// Create and start a cluster.
    pub fn start_new() -> Result<Self> {
        let bin = server_bin()?;
        let dir = tempfile::tempdir()?;
        let root = rustix::process::getuid().is_root();
        if root {
            let status = Command::new("chown").arg("postgres:postgres").arg(dir.path()).status()?;
            if !status.success() {
                bail!("chown postgres {}: {status}", dir.path().display());
            }
        }
        let pg = Self { dir, bin, root };
        pg.run("initdb", &["-D", &pg.data(), "-A", "trust", "-U", "tether", "--no-sync", "-E", "UTF8"])?;
        pg.start()?;
        Ok(pg)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Run one of the server's programs, as `postgres` when we are root.
    fn run(&self, program: &str, args: &[&str]) -> Result<()> {
        let path = self.bin.join(program);
        let mut command = if self.root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let out =
            command.args(args).stdin(Stdio::null()).output().with_context(|| format!("running {program}"))?;
        if !out.status.success() {
            bail!(
                "{program} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Start the server (again) and wait until it accepts connections.
    pub fn start(&self) -> Result<()> {
        let options = format!(
            "-k {} -p {} -c listen_addresses='' -c fsync=off -c max_connections=200",
            self.socket_dir().display(),
            PORT
        );
        let log = self.dir.path().join("server.log").display().to_string();
        self.run("pg_ctl", &["-D", &self.data(), "-o", &options, "-l", &log, "-w", "-t", "30", "start"])
    }

    /// Stop the server at once (connections are cut, as when a database server goes away).
    pub fn stop(&self) -> Result<()> {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "immediate", "-w", "stop"])
    }

    /// The connection string for the relay's `database_url`.
    pub fn url(&self) -> String {
        format!("host={} port={PORT} user=tether dbname=postgres", self.socket_dir().display())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
