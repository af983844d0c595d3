//! A private headless sway (a wlroots Wayland compositor): no GPU (`WLR_RENDERER=pixman`), no input
//! devices, one output of the size asked for, in a runtime directory of its own; killed when dropped.
//! sway refuses to run as root, so as root it runs as `nobody` (its directory is handed over); a root
//! caller may still use its socket. `grim` takes the compositor's own screenshot.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

/// sway's user when we are root.
const NOBODY: u32 = 65534;

pub struct Sway {
    /// The runtime directory (`XDG_RUNTIME_DIR`) with the compositor's socket.
    pub dir: tempfile::TempDir,
    /// The socket's name (`WAYLAND_DISPLAY`).
    pub display: String,
    child: Child,
}

impl Sway {
    /// A compositor with one `width`×`height` output (a `#336699` desktop, windows without borders), the
    /// config's other lines being `extra` (window rules, an `exec` of a terminal…).
    pub fn start(width: u32, height: u32, extra: &str) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("config");
        std::fs::write(
            &config,
            format!(
                "output HEADLESS-1 resolution {width}x{height} position 0 0 background #336699 solid_color\n\
                 default_border none\nfocus_follows_mouse no\n{extra}\n"
            ),
        )?;
        let root = rustix::process::getuid().is_root();
        if root {
            for path in [dir.path(), &config] {
                std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY))
                    .context("handing sway its directory")?;
            }
        }
        let mut command = if root {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "sway"]);
            c
        } else {
            Command::new("sway")
        };
        let child = command
            .arg("-c")
            .arg(&config)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", dir.path())
            .env("LANG", "C.UTF-8")
            .env("XDG_RUNTIME_DIR", dir.path())
            .env("WLR_BACKENDS", "headless")
            .env("WLR_LIBINPUT_NO_DEVICES", "1")
            .env("WLR_RENDERER", "pixman")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting sway (apt-get install sway; scripts/packages.sh lists it)")?;
        let sway = Self { dir, display: "wayland-1".into(), child };
        let deadline = Instant::now() + Duration::from_secs(15);
        while !sway.dir.path().join(&sway.display).exists() || sway.grim(&[]).is_none() {
            ensure!(Instant::now() < deadline, "sway did not come up in {}", sway.dir.path().display());
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(sway)
    }

    /// What a Wayland client of this compositor needs in its environment.
    pub fn env(&self) -> [(&str, &str); 2] {
        [
            ("XDG_RUNTIME_DIR", self.dir.path().to_str().unwrap_or_default()),
            ("WAYLAND_DISPLAY", self.display.as_str()),
        ]
    }

    /// A file the compositor's clients (running as it does) may write: in its directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A copy of `file` in the compositor's directory that its clients may read; returns the copy.
    pub fn share_file(&self, file: &Path, name: &str) -> Result<PathBuf> {
        let copy = self.file(name);
        std::fs::copy(file, &copy).with_context(|| format!("copying {}", file.display()))?;
        if rustix::process::getuid().is_root() {
            std::os::unix::fs::chown(&copy, Some(NOBODY), Some(NOBODY))?;
        }
        Ok(copy)
    }

    /// A screenshot by `grim` with extra arguments (`-o NAME`: one output; `-c`: with the cursor drawn).
    pub fn grim(&self, args: &[&str]) -> Option<image::RgbImage> {
        let out = Command::new("grim").args(args).args(["-t", "png", "-"]).envs(self.env()).output().ok()?;
        out.status.success().then(|| image::load_from_memory(&out.stdout).ok().map(|i| i.to_rgb8()))?
    }

    /// Run a sway IPC command (`swaymsg` with `args`); its output.
    pub fn msg(&self, args: &[&str]) -> Result<String> {
        let socket = std::fs::read_dir(self.dir.path())?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("sway-ipc")))
            .context("sway's IPC socket")?;
        let out = Command::new("swaymsg").arg("-s").arg(socket).args(args).output().context("swaymsg")?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!("swaymsg {args:?}: {text}");
        }
        Ok(text)
    }

    /// Wait until a window with Wayland `app_id` is on the desktop.
    pub fn wait_for_app(&self, app_id: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(15);
        let needle = format!("\"app_id\": \"{app_id}\"");
        while !self.msg(&["-t", "get_tree"])?.contains(&needle) {
            ensure!(Instant::now() < deadline, "no window {app_id} appeared on sway");
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Paint the desktop `rgb`; returns once sway applied it.
    pub fn background(&self, rgb: [u8; 3]) -> Result<()> {
        let colour = format!("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2]);
        self.msg(&["output", "*", "background", &colour, "solid_color"]).map(drop)
    }
}

impl Drop for Sway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
