//! A headless sway (software rendering) for the Wayland benchmarks, as `nobody` when we are root (sway
//! refuses root). Its runtime directory is private and belongs to sway's user, so files a program on
//! the desktop must read (a workload's text) are copied there with [`Sway::share_file`].

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// sway's user when we are root.
const NOBODY: u32 = 65534;

pub struct Sway {
    dir: tempfile::TempDir,
    child: Child,
}

impl Sway {
    /// One output of `width`×`height` with a `#336699` desktop; `extra_config`: more lines of sway's
    /// configuration (window rules, programs to start).
    pub fn start(width: u32, height: u32, extra_config: &str) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("config");
        std::fs::write(
            &config,
            format!(
                "output HEADLESS-1 resolution {width}x{height} background #336699 solid_color\n\
                 {extra_config}"
            ),
        )?;
        let root = rustix::process::getuid().is_root();
        let mut command = Command::new(if root { "setpriv" } else { "sway" });
        if root {
            for path in [dir.path().to_path_buf(), config.clone()] {
                std::os::unix::fs::chown(&path, Some(NOBODY), Some(NOBODY))?;
            }
            command.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "sway"]);
        }
        let child = command
            .arg("-c")
            .arg(&config)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("LANG", "C.UTF-8")
            .env("XDG_RUNTIME_DIR", dir.path())
            .env("WLR_BACKENDS", "headless")
            .env("WLR_LIBINPUT_NO_DEVICES", "1")
            .env("WLR_RENDERER", "pixman")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting sway (apt-get install sway)")?;
        let sway = Self { dir, child };
        let deadline = Instant::now() + Duration::from_secs(15);
        while sway.ipc_socket().is_none() || !sway.dir().join("wayland-1").exists() {
            if Instant::now() > deadline {
                bail!("sway did not start");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(sway)
    }

    /// Its `XDG_RUNTIME_DIR` (the display is `wayland-1` there).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A copy of `file` in the runtime directory, readable by sway's user; returns the copy's path.
    pub fn share_file(&self, file: &Path, name: &str) -> Result<PathBuf> {
        let copy = self.dir().join(name);
        std::fs::copy(file, &copy).with_context(|| format!("copying {}", file.display()))?;
        if rustix::process::getuid().is_root() {
            std::os::unix::fs::chown(&copy, Some(NOBODY), Some(NOBODY))?;
        }
        Ok(copy)
    }

    /// `swaymsg` with `args`, its output.
    pub fn msg(&self, args: &[&str]) -> Result<String> {
        let socket = self.ipc_socket().context("sway's IPC socket")?;
        let out = Command::new("swaymsg").arg("-s").arg(socket).args(args).output()?;
        if !out.status.success() {
            bail!("swaymsg {args:?} failed: {}", String::from_utf8_lossy(&out.stdout));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Wait until a window with Wayland `app_id` is on the desktop.
    pub fn wait_for_app(&self, app_id: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(15);
        let needle = format!("\"app_id\": \"{app_id}\"");
        while !self.msg(&["-t", "get_tree"])?.contains(&needle) {
            if Instant::now() > deadline {
                bail!("no window {app_id} appeared on sway");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Set the desktop's colour; returns once sway applied it.
    pub fn background(&self, rgb: [u8; 3]) -> Result<()> {
        let colour = format!("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2]);
        self.msg(&["output", "*", "background", &colour, "solid_color"]).map(drop)
    }

    fn ipc_socket(&self) -> Option<PathBuf> {
        std::fs::read_dir(self.dir())
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("sway-ipc")))
    }
}

impl Drop for Sway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
