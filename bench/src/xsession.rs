//! A private Xvfb server for recording, and guards that stop the processes started on it.
//!
//! The server runs on the first free display number from [`FIRST_DISPLAY`] with `-noreset` (without it the
//! server resets when its last client leaves and captures come back black). Everything is stopped by PID
//! when its guard drops: never by name, so other X servers and programs on the machine are left alone.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

const FIRST_DISPLAY: u32 = 90;
const LAST_DISPLAY: u32 = 199;
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A child process that is killed (by its PID) when the guard drops.
#[derive(Debug)]
pub struct Proc {
    name: String,
    child: Child,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command) -> Result<Self> {
        let child = cmd.spawn().with_context(|| format!("starting {name} ({cmd:?})"))?;
        Ok(Self { name: name.to_owned(), child })
    }

    /// Whether the process has exited already.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Wait for the process to end by itself; an error if it fails.
    pub fn wait_success(mut self) -> Result<()> {
        let status = self.child.wait().with_context(|| format!("waiting for {}", self.name))?;
        if !status.success() {
            bail!("{} failed: {status}", self.name);
        }
        Ok(())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if !self.exited() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// An Xvfb server of our own. Dropping it terminates the server (SIGTERM by PID, so it removes its lock).
#[derive(Debug)]
pub struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    /// Start a `width`×`height`×24 server on a free display and wait until it accepts clients.
    pub fn start(width: u32, height: u32) -> Result<Self> {
        for n in FIRST_DISPLAY..=LAST_DISPLAY {
            let in_use = Path::new(&format!("/tmp/.X{n}-lock")).exists()
                || Path::new(&format!("/tmp/.X11-unix/X{n}")).exists();
            if in_use {
                continue;
            }
            let display = format!(":{n}");
            let child = Command::new("Xvfb")
                .arg(&display)
                .args(["-screen", "0", &format!("{width}x{height}x24")])
                .args(["-noreset", "-nolisten", "tcp"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting Xvfb (apt-get install xvfb)")?;
            let mut server = Self { child, display };
            if server.wait_ready()? {
                return Ok(server);
            }
            // Lost a race for this display number (or the server failed): try the next one.
        }
        bail!("no free X display between :{FIRST_DISPLAY} and :{LAST_DISPLAY}")
    }

    /// Poll until a client can connect; `false` if the server exited.
    fn wait_ready(&mut self) -> Result<bool> {
        let start = Instant::now();
        while start.elapsed() < START_TIMEOUT {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return Ok(false);
            }
            let ok = self
                .command("xsetroot")
                .arg("-def")
                .stderr(Stdio::null())
                .status()
                .context("running xsetroot (apt-get install x11-xserver-utils)")?
                .success();
            if ok {
                return Ok(true);
            }
            sleep(Duration::from_millis(100));
        }
        bail!("Xvfb {} did not accept clients within {START_TIMEOUT:?}", self.display)
    }

    /// The `DISPLAY` value of this server, e.g. `:90`.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// A command that talks to this server (its `DISPLAY` set, output silenced unless re-enabled).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("DISPLAY", &self.display).env_remove("XAUTHORITY").stdin(Stdio::null()).stdout(Stdio::null());
        cmd
    }

    /// Run a short X client to completion; an error if it fails.
    pub fn run(&self, program: &str, args: &[&str]) -> Result<String> {
        let out = self
            .command(program)
            .args(args)
            .stdout(Stdio::piped())
            .output()
            .with_context(|| format!("running {program}"))?;
        if !out.status.success() {
            bail!("{program} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Wait until a window whose title is exactly `title` is mapped; returns its id.
    pub fn wait_for_window(&self, title: &str) -> Result<String> {
        let start = Instant::now();
        let pattern = format!("^{title}$");
        while start.elapsed() < START_TIMEOUT {
            let out = self
                .command("xdotool")
                .args(["search", "--onlyvisible", "--name", &pattern])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .output()
                .context("running xdotool (apt-get install xdotool)")?;
            if let Some(id) = String::from_utf8_lossy(&out.stdout).split_whitespace().next() {
                return Ok(id.to_owned());
            }
            sleep(Duration::from_millis(100));
        }
        bail!("no window titled {title:?} appeared within {START_TIMEOUT:?}")
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).stderr(Stdio::null()).status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
