//! A private X server for tests: Xvfb on a display number it picks itself, started with `-noreset` (so captures do
//! not go black when the last client leaves), killed by its PID when dropped. Helpers run X clients
//! (xterm, xdotool, import) against it with `DISPLAY` set for that child only.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Xvfb {
    pub display: String,
    child: Child,
    clients: Vec<Child>,
}

impl Xvfb {
    pub fn start(width: u32, height: u32) -> Self {
        // -displayfd: Xvfb picks a free display number itself and writes it to its stdout when ready,
        // so tests running in parallel never race for a number.
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                &format!("{width}x{height}x24"),
                "-noreset",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb is installed (scripts/test.sh installs it)");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped");
        BufReader::new(stdout).read_line(&mut line).expect("Xvfb reports its display");
        let number: u32 = line.trim().parse().unwrap_or_else(|_| panic!("Xvfb said {line:?}"));
        let xvfb = Self { display: format!(":{number}"), child, clients: Vec::new() };
        let deadline = Instant::now() + Duration::from_secs(10);
        while x11rb::connect(Some(&xvfb.display)).is_err() {
            assert!(Instant::now() < deadline, "Xvfb {} does not accept connections", xvfb.display);
            std::thread::sleep(Duration::from_millis(20));
        }
        xvfb.run("xsetroot", &["-solid", "#336699"]);
        xvfb
    }

    /// Run an X client to completion; its stdout.
    pub fn run(&self, program: &str, args: &[&str]) -> String {
        let out = Command::new(program).args(args).env("DISPLAY", &self.display).output().expect(program);
        assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run an X client; its stdout, or `None` if it failed (e.g. `xdotool search` finding nothing yet).
    pub fn try_run(&self, program: &str, args: &[&str]) -> Option<String> {
        let out = Command::new(program).args(args).env("DISPLAY", &self.display).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Start an X client that runs until the server goes away.
    pub fn spawn(&mut self, program: &str, args: &[&str]) {
        let child = Command::new(program)
            .args(args)
            .env("DISPLAY", &self.display)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(program);
        self.clients.push(child);
    }

    /// The X server's own screenshot of the root window.
    pub fn screenshot(&self) -> image::RgbImage {
        let out = Command::new("import")
            .args(["-window", "root", "png:-"])
            .env("DISPLAY", &self.display)
            .output()
            .expect("imagemagick's import");
        assert!(out.status.success(), "import: {}", String::from_utf8_lossy(&out.stderr));
        image::load_from_memory(&out.stdout).expect("PNG").to_rgb8()
    }

    /// The pointer position, from `xdotool getmouselocation`.
    pub fn mouse(&self) -> (i32, i32) {
        let out = self.run("xdotool", &["getmouselocation", "--shell"]);
        let get = |key: &str| {
            out.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.parse().ok()).expect("coordinate")
        };
        (get("X="), get("Y="))
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        for client in &mut self.clients {
            let _ = client.kill();
            let _ = client.wait();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
