//! The scripted desktop workloads: what each puts on the screen and what it does while recording.
//!
//! Every scene is a solid `#336699` desktop with xterm windows (DejaVu Sans Mono 11 via `-fa Monospace`),
//! driven with xdotool at frame pace; the video scene adds an ffplay window. There is no window manager:
//! windows sit where their geometry says, and keyboard focus is set with `xdotool windowfocus`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::assets::{Assets, VIDEO_SIZE};
use crate::clip;
use crate::xsession::{Proc, Xvfb};

/// Keys typed per second.
const TYPING_RATE: f64 = 20.0;
/// xdotool's `type --delay` that gives [`TYPING_RATE`]: xdotool 3.20160805 waits half the delay per key
/// (`--delay 50` types ~37 keys/s), so 100 ms gives the 20 keys/s wanted.
const TYPE_DELAY_MS: &str = "100";
/// Seconds of one frame at 30 fps, as xdotool's `sleep` takes it.
const FRAME_SLEEP: &str = "0.033";
/// Steps the scripted actions run beyond the clip, so they never stop before the capture does.
const SPARE_STEPS: usize = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// Text typed into a terminal at 20 keys/s.
    Typing,
    /// A log scrolled one line per frame in `less`.
    Scrolling,
    /// A terminal window moved across the desktop in steps of 6×2 pixels per frame.
    Dragging,
    /// A 960×540 video playing in ffplay beside a terminal.
    Video,
    /// A terminal moved diagonally over a busy background (a screen-filling terminal of text).
    DragBusy,
    /// Two terminals side by side: one scrolled a line per frame, the other still.
    TwoWindows,
    /// Typing, on a 3840×2160 screen.
    #[value(name = "typing-4k")]
    Typing4k,
    /// Scrolling, on a 3840×2160 screen.
    #[value(name = "scrolling-4k")]
    Scrolling4k,
}

impl Workload {
    pub const ALL: [Workload; 8] = [
        Workload::Typing,
        Workload::Scrolling,
        Workload::Dragging,
        Workload::Video,
        Workload::DragBusy,
        Workload::TwoWindows,
        Workload::Typing4k,
        Workload::Scrolling4k,
    ];

    /// The screen it is recorded on.
    pub fn screen(self) -> (u32, u32) {
        match self {
            Workload::Typing4k | Workload::Scrolling4k => (3840, 2160),
            _ => (1920, 1080),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Workload::Typing => "typing",
            Workload::Scrolling => "scrolling",
            Workload::Dragging => "dragging",
            Workload::Video => "video",
            Workload::DragBusy => "drag-busy",
            Workload::TwoWindows => "two-windows",
            Workload::Typing4k => "typing-4k",
            Workload::Scrolling4k => "scrolling-4k",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Workload::Typing => "xterm 160x50, `cat`, text typed with xdotool at 20 keys/s",
            Workload::Scrolling => "xterm 160x50, `less` on a log, one line down per frame",
            Workload::Dragging => "xterm 100x32 moved 6 px right, 2 px down per frame",
            Workload::Video => "ffplay 960x540 Mandelbrot zoom with grain, beside an xterm",
            Workload::DragBusy => {
                "xterm 100x32 moved 6 px right, 2 px down per frame over a full-screen xterm of text"
            }
            Workload::TwoWindows => {
                "two xterms 100x50: `less` scrolled one line per frame beside a still one"
            }
            Workload::Typing4k => "as typing, on 3840x2160 (xterm 160x50 at 2x font size)",
            Workload::Scrolling4k => "as scrolling, on 3840x2160 (xterm 160x50 at 2x font size)",
        }
    }

    /// Where this workload's clip lives in a recording directory.
    pub fn clip_path(self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.{}", self.name(), clip::EXTENSION))
    }

    fn title(self) -> String {
        format!("tether-bench-{}", self.name())
    }
}

/// A workload's windows, running; they close when the stage drops.
#[derive(Debug)]
pub struct Stage {
    _apps: Vec<Proc>,
    action: Option<Command>,
}

impl Stage {
    /// Start the scripted input (if the workload has any); it runs until the returned guard drops.
    pub fn start_action(&mut self) -> Result<Option<Proc>> {
        self.action.as_mut().map(|cmd| Proc::spawn("xdotool", cmd)).transpose()
    }
}

/// Open the workload's windows and prepare its action for a clip of `frames` frames.
pub fn stage(workload: Workload, x: &Xvfb, assets: &Assets, frames: usize) -> Result<Stage> {
    let title = workload.title();
    let text = assets.text.to_string_lossy().into_owned();
    let steps = frames + SPARE_STEPS;
    match workload {
        Workload::Typing | Workload::Typing4k => {
            let size = if workload == Workload::Typing4k { "22" } else { "11" };
            let term = xterm_sized(
                x,
                &title,
                "160x50+100+100",
                size,
                &["sh", "-c", "head -n 20 \"$1\"; exec cat", "sh", &text],
            )?;
            let id = x.wait_for_window(&title)?;
            x.run("xdotool", &["windowfocus", &id])?;
            let mut action = x.command("xdotool");
            action
                .args(["type", "--delay", TYPE_DELAY_MS])
                .arg(typed_text(steps as f64 / 30.0 * TYPING_RATE));
            settle();
            Ok(Stage { _apps: vec![term], action: Some(action) })
        }
        Workload::Scrolling | Workload::Scrolling4k => {
            let size = if workload == Workload::Scrolling4k { "22" } else { "11" };
            let term = xterm_sized(x, &title, "160x50+100+100", size, &pager(&text))?;
            let id = x.wait_for_window(&title)?;
            x.run("xdotool", &["windowfocus", &id])?;
            let action = scroll_lines(x, steps);
            settle();
            Ok(Stage { _apps: vec![term], action: Some(action) })
        }
        Workload::TwoWindows => {
            let still = xterm(x, &format!("{title}-still"), "100x50+1000+60", &pager(&text))?;
            let term = xterm(x, &title, "100x50+60+60", &pager(&text))?;
            x.wait_for_window(&format!("{title}-still"))?;
            let id = x.wait_for_window(&title)?;
            x.run("xdotool", &["windowfocus", &id])?;
            let action = scroll_lines(x, steps);
            settle();
            Ok(Stage { _apps: vec![still, term], action: Some(action) })
        }
        Workload::DragBusy => {
            let busy = xterm(x, &format!("{title}-background"), "240x70+0+0", &pager(&text))?;
            x.wait_for_window(&format!("{title}-background"))?;
            let (x0, y0) = (60, 60);
            let term = xterm(x, &title, &format!("100x32+{x0}+{y0}"), &pager(&text))?;
            let id = x.wait_for_window(&title)?;
            let action = drag(x, &id, (x0, y0), steps);
            settle();
            Ok(Stage { _apps: vec![busy, term], action: Some(action) })
        }
        Workload::Dragging => {
            let (x0, y0) = (60, 60);
            let term = xterm(x, &title, &format!("100x32+{x0}+{y0}"), &pager(&text))?;
            let id = x.wait_for_window(&title)?;
            let action = drag(x, &id, (x0, y0), steps);
            settle();
            Ok(Stage { _apps: vec![term], action: Some(action) })
        }
        Workload::Video => {
            let term = xterm(x, &format!("{title}-term"), "90x45+40+40", &pager(&text))?;
            let video = assets.video.as_ref().context("the video asset was not rendered")?;
            let (w, h) = VIDEO_SIZE;
            let player = Proc::spawn(
                "ffplay",
                x.command("ffplay")
                    .env("SDL_AUDIODRIVER", "dummy")
                    .args(["-hide_banner", "-loglevel", "error", "-an", "-noborder"])
                    .args(["-x", &w.to_string(), "-y", &h.to_string()])
                    .args(["-left", "900", "-top", "300", "-loop", "0"])
                    .args(["-window_title", &title])
                    .arg(video),
            )?;
            x.wait_for_window(&format!("{title}-term"))?;
            x.wait_for_window(&title)?;
            settle();
            Ok(Stage { _apps: vec![term, player], action: None })
        }
    }
}

/// An xterm with a title, a geometry and a program to run.
fn xterm(x: &Xvfb, title: &str, geometry: &str, program: &[&str]) -> Result<Proc> {
    xterm_sized(x, title, geometry, "11", program)
}

/// The same at font size `size` (points).
fn xterm_sized(x: &Xvfb, title: &str, geometry: &str, size: &str, program: &[&str]) -> Result<Proc> {
    Proc::spawn(
        "xterm",
        x.command("xterm")
            .args(["-T", title, "-n", title, "-geometry", geometry])
            .args(["-fa", "Monospace", "-fs", size, "+sb", "-e"])
            .args(program),
    )
}

/// Down one line per frame in the focused window, `steps` times.
fn scroll_lines(x: &Xvfb, steps: usize) -> Command {
    let mut action = x.command("xdotool");
    for _ in 0..steps {
        action.args(["key", "--delay", "0", "Down", "sleep", FRAME_SLEEP]);
    }
    action
}

/// Window `id` moved 6 px right and 2 px down per frame from `(x0, y0)`, `steps` times.
fn drag(x: &Xvfb, id: &str, (x0, y0): (usize, usize), steps: usize) -> Command {
    let mut action = x.command("xdotool");
    for step in 1..=steps {
        // --sync flushes each request (without it xdotool sends all moves at the end); the first step
        // already moves, so --sync never waits on a move to where the window is.
        let (px, py) = (x0 + 6 * step, y0 + 2 * step);
        action.args(["windowmove", "--sync", id, &px.to_string(), &py.to_string()]);
        action.args(["sleep", FRAME_SLEEP]);
    }
    action
}

/// `less` on the text, without line wrapping, its prompt a fixed name rather than the temporary path.
fn pager(text: &str) -> [&str; 4] {
    ["less", "-S", "-Pssession.log", text]
}

/// Let windows finish drawing (and the video start playing) before the capture begins.
fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(800));
}

/// At least `chars` characters of plain prose with a line break every sentence or two.
pub fn typed_text(chars: f64) -> String {
    const PROSE: &str = "Thanks for calling. I can see your screen now. \
        Let me open the settings and check the network configuration.\n\
        Could you read me the error message from the dialog, please?\n\
        The printer queue is stuck; I will restart the spooler service.\n";
    let mut out = String::new();
    while (out.len() as f64) < chars {
        out.push_str(PROSE);
    }
    out
}
