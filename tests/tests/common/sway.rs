//! A private headless sway (a wlroots Wayland compositor) for tests: no GPU (`WLR_RENDERER=pixman`), no
//! input devices, one output of the size asked for, in a runtime directory of its own; killed when
//! dropped. sway refuses to run as root, so as root it runs as `nobody` (its directory is handed over);
//! the tests, as root, may still use its socket. `grim` takes the compositor's own screenshot.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::view::Screen;

pub struct Sway {
    /// The runtime directory (`XDG_RUNTIME_DIR`) with the compositor's socket.
    pub dir: tempfile::TempDir,
    /// The socket's name (`WAYLAND_DISPLAY`).
    pub display: String,
    child: Child,
}

impl Sway {
    /// A compositor with one `width`×`height` output, the config's other lines being `extra` (e.g. an
    /// `exec` of a terminal).
    pub fn start(width: u32, height: u32, extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("config");
        std::fs::write(
            &config,
            format!(
                "output HEADLESS-1 resolution {width}x{height} position 0 0 background #336699 solid_color\n\
                 default_border none\nfocus_follows_mouse no\n{extra}\n"
            ),
        )
        .expect("config");
        let root = rustix::process::getuid().is_root();
        if root {
            for path in [dir.path().to_path_buf(), config.clone()] {
                std::os::unix::fs::chown(&path, Some(65534), Some(65534)).expect("hand the directory over");
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
            .args(["-c", config.to_str().expect("utf-8")])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", dir.path())
            .env("XDG_RUNTIME_DIR", dir.path())
            .env("WLR_BACKENDS", "headless")
            .env("WLR_LIBINPUT_NO_DEVICES", "1")
            .env("WLR_RENDERER", "pixman")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sway is installed (scripts/test.sh installs it)");
        let sway = Self { dir, display: "wayland-1".into(), child };
        let deadline = Instant::now() + Duration::from_secs(15);
        while !sway.socket().exists() || sway.try_grim().is_none() {
            assert!(Instant::now() < deadline, "sway did not come up in {}", sway.dir.path().display());
            std::thread::sleep(Duration::from_millis(50));
        }
        sway
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join(&self.display)
    }

    /// What a Wayland client of this compositor needs in its environment.
    pub fn env(&self) -> [(&str, &str); 2] {
        [
            ("XDG_RUNTIME_DIR", self.dir.path().to_str().expect("utf-8")),
            ("WAYLAND_DISPLAY", self.display.as_str()),
        ]
    }

    /// A file the compositor's clients (running as it does) may write: in its directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn try_grim(&self) -> Option<image::RgbImage> {
        self.grim(&[])
    }

    /// A screenshot by `grim` with extra arguments (`-o NAME`: one output; `-c`: with the cursor drawn).
    pub fn grim(&self, args: &[&str]) -> Option<image::RgbImage> {
        let out = Command::new("grim").args(args).args(["-t", "png", "-"]).envs(self.env()).output().ok()?;
        out.status.success().then(|| image::load_from_memory(&out.stdout).ok().map(|i| i.to_rgb8()))?
    }

    /// Run a sway IPC command (`swaymsg`).
    pub fn msg(&self, command: &str) {
        let socket = std::fs::read_dir(self.dir.path())
            .expect("dir")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("sway-ipc")))
            .expect("sway's IPC socket");
        let out = Command::new("swaymsg").args(["-s", path(&socket), command]).output().expect("swaymsg");
        assert!(out.status.success(), "swaymsg {command}: {}", String::from_utf8_lossy(&out.stdout));
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8")
}

impl Screen for Sway {
    /// The compositor's own screenshot (grim).
    fn screenshot(&self) -> image::RgbImage {
        self.try_grim().expect("grim takes a screenshot")
    }
}

impl Drop for Sway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
