//! The desktop portal beside a headless sway, for tests and benches: a private D-Bus session bus (the portal
//! frontend `xdg-desktop-portal` starts on it by D-Bus activation, as on a desktop), PipeWire,
//! WirePlumber and the wlroots backend `xdg-desktop-portal-wlr` (started here rather than activated, to
//! log at debug level: a failing test prints what each process said). The backend's "dialog" is a
//! chooser script that picks the output without a person and notes each time it is asked
//! (`times_asked`).
//!
//! The backend reaches sway through [`crate::wlproxy`] (see there why). Everything runs in sway's
//! runtime directory and is stopped when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use crate::sway::Sway;

pub struct Portal {
    bus: String,
    runtime: PathBuf,
    /// Home, settings and state of the processes (and the host's remembered choice).
    pub home: tempfile::TempDir,
    children: Vec<Child>,
}

impl Portal {
    /// Start the portal's processes for `sway`, the chooser picking `output`.
    pub fn start(sway: &Sway, output: &str) -> Result<Self> {
        Self::with_chooser(sway, &format!("echo {output}"))
    }

    /// Start them with a chooser that runs `answer` (a shell command: what it prints is the output
    /// chosen; nothing means the user declined).
    pub fn with_chooser(sway: &Sway, answer: &str) -> Result<Self> {
        let runtime = sway.dir.path().to_path_buf();
        let proxied = "wayland-portal";
        crate::wlproxy::spawn(&runtime.join(proxied), &runtime.join(&sway.display))
            .context("the proxy's Wayland socket")?;
        let home = tempfile::tempdir()?;
        let chooser = home.path().join("chooser");
        let asked = home.path().join("asked");
        std::fs::write(&chooser, format!("#!/bin/sh\necho asked >> '{}'\n{answer}\n", asked.display()))?;
        std::fs::set_permissions(&chooser, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        let config = home.path().join("config/xdg-desktop-portal-wlr");
        std::fs::create_dir_all(&config)?;
        std::fs::write(
            config.join("config"),
            format!("[screencast]\nchooser_type=simple\nchooser_cmd={}\n", chooser.display()),
        )?;
        // Only the wlroots backend, whatever else is installed (a GNOME backend would answer for
        // RemoteDesktop and fail without GNOME's compositor).
        let portals = home.path().join("portals");
        std::fs::create_dir_all(&portals)?;
        std::fs::copy("/usr/share/xdg-desktop-portal/portals/wlr.portal", portals.join("wlr.portal"))
            .context("xdg-desktop-portal-wlr is not installed (scripts/packages.sh)")?;
        let bus_path = runtime.join("portal-bus");
        let bus = format!("unix:path={}", bus_path.display());
        let mut portal = Self { bus, runtime, home, children: Vec::new() };
        let daemon = portal
            .command("dbus-daemon")?
            .args(["--session", "--nofork", "--nopidfile", "--address", &portal.bus])
            .env("WAYLAND_DISPLAY", proxied)
            .env("XDG_DESKTOP_PORTAL_DIR", portal.home.path().join("portals"))
            .spawn()
            .context("starting dbus-daemon (scripts/packages.sh)")?;
        portal.children.push(daemon);
        wait_for(&bus_path, "the session bus")?;
        for program in ["pipewire", "wireplumber", "/usr/libexec/xdg-desktop-portal-wlr"] {
            let mut command = portal.command(program)?;
            if program.ends_with("wlr") {
                command.env("WAYLAND_DISPLAY", proxied).args(["-l", "DEBUG"]);
            }
            let child =
                command.spawn().with_context(|| format!("starting {program} (scripts/packages.sh)"))?;
            portal.children.push(child);
            if program == "pipewire" {
                wait_for(&portal.runtime.join("pipewire-0"), "PipeWire")?;
            }
        }
        Ok(portal)
    }

    fn command(&self, program: &str) -> Result<Command> {
        let mut command = Command::new(program);
        command.env_clear().envs(self.env()).env("PATH", "/usr/bin:/bin").stdin(Stdio::null());
        // What each says (and, for the bus, what the portals it starts say) is kept for a failure.
        for (name, log) in [("stdout", "out"), ("stderr", "err")] {
            let short = program.rsplit('/').next().unwrap_or(program);
            let path = self.home.path().join(format!("{short}.{log}"));
            let file = std::fs::File::create(&path)?;
            if name == "stdout" {
                command.stdout(file);
            } else {
                command.stderr(file);
            }
        }
        Ok(command)
    }

    /// What the host needs in its environment to reach the portal.
    pub fn env(&self) -> Vec<(String, String)> {
        let home = self.home.path();
        vec![
            ("DBUS_SESSION_BUS_ADDRESS".into(), self.bus.clone()),
            ("XDG_RUNTIME_DIR".into(), self.runtime.display().to_string()),
            ("XDG_CURRENT_DESKTOP".into(), "sway".into()),
            ("HOME".into(), home.display().to_string()),
            ("XDG_CONFIG_HOME".into(), home.join("config").display().to_string()),
            ("XDG_STATE_HOME".into(), home.join("state").display().to_string()),
        ]
    }

    /// How many times the portal asked which screen to share.
    pub fn times_asked(&self) -> usize {
        std::fs::read_to_string(self.home.path().join("asked")).map(|s| s.lines().count()).unwrap_or(0)
    }
}

fn wait_for(path: &std::path::Path, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        ensure!(Instant::now() < deadline, "{what} did not come up ({})", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

impl Drop for Portal {
    fn drop(&mut self) {
        // A failing test shows what the portal's processes said.
        if std::thread::panicking() {
            for entry in std::fs::read_dir(self.home.path()).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "err" || e == "out") {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(15).collect();
                    eprintln!("--- {}:", path.display());
                    tail.iter().rev().for_each(|line| eprintln!("{line}"));
                }
            }
        }
        // The bus last: the portal processes it started end with it.
        for child in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
