//! The text workloads on a wlroots Wayland desktop: a headless sway with a foot terminal, recorded
//! through the host's wlroots capturer.
//!
//! There is no xdotool on Wayland, so the terminal's own program makes the change at the X scene's pace,
//! and the pixels are what the same keys would show: **typing** prints the prose one character every
//! 50 ms (20 keys/s) and, at each line's end, the line again (as `cat` echoes it on the X desktop);
//! **scrolling** prints the log one line per frame at the bottom of a full terminal (the screen moves
//! as `less` moves on a line down, without its prompt line). Each starts when [`SwayStage::start_action`]
//! says so, as the X scene's xdotool does. The terminal floats borderless at (100, 100), 160×50
//! characters of monospace at size 11 (22 on the 4K screen). Other workloads drag X windows or play a
//! video and are recorded on X only.

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::assets::Assets;
use crate::workloads::Workload;
use tether_testbed::sway::Sway;

/// Seconds between typed characters (20 keys/s, as on X).
const KEY_SECONDS: &str = "0.05";
/// Seconds between scrolled lines (one per frame at 30 fps, as on X).
const LINE_SECONDS: &str = "0.033";
/// What `--desktop sway` records when no workload is named.
pub const WORKLOADS: [Workload; 4] =
    [Workload::Typing, Workload::Scrolling, Workload::Typing4k, Workload::Scrolling4k];
/// The terminal's Wayland app id (its window rule matches it).
const APP_ID: &str = "tether-bench";

/// The typing program: the log's first lines, then the prose typed out.
const TYPING: &str = r#"head -n 20 "$1"
while [ ! -e "$2" ]; do sleep 0.01; done
text=$(cat "$3")
line=
while :; do
  for ((i = 0; i < ${#text}; i++)); do
    c=${text:i:1}
    if [ "$c" = $'\n' ]; then printf '\n%s\n' "$line"; line=; else printf '%s' "$c"; line+=$c; fi
    sleep "$4"
  done
done
"#;

/// The scrolling program: a full terminal of the log, then a line more per frame.
const SCROLLING: &str = r#"cut -c1-160 "$1" | head -n 49
while [ ! -e "$2" ]; do sleep 0.01; done
cut -c1-160 "$1" | tail -n +50 | while IFS= read -r l; do printf '%s\n' "$l"; sleep "$4"; done
sleep 3600
"#;

/// What a clip recorded on sway shows.
pub fn describe(workload: Workload) -> &'static str {
    match workload {
        Workload::Typing => "headless sway, foot 160x50 (monospace 11), prose printed at 20 chars/s",
        Workload::Scrolling => {
            "headless sway, foot 160x50 (monospace 11), the log printed one line per frame"
        }
        Workload::Typing4k => "as typing on sway, on 3840x2160 (monospace 22)",
        Workload::Scrolling4k => "as scrolling on sway, on 3840x2160 (monospace 22)",
        _ => "recorded on sway",
    }
}

/// A workload running on its own sway; everything stops when it drops.
pub struct SwayStage {
    sway: Sway,
    go: PathBuf,
}

impl SwayStage {
    /// Let the terminal's program start changing the screen.
    pub fn start_action(&self) -> Result<()> {
        Ok(std::fs::write(&self.go, b"")?)
    }

    /// The environment a Wayland client needs to reach this desktop.
    pub fn env(&self) -> [(&'static str, PathBuf); 2] {
        [("XDG_RUNTIME_DIR", self.sway.dir.path().to_path_buf()), ("WAYLAND_DISPLAY", "wayland-1".into())]
    }
}

/// Start a sway of the workload's screen size with the workload's terminal on it.
pub fn stage(workload: Workload, assets: &Assets) -> Result<SwayStage> {
    let (program, font, pace) = match workload {
        Workload::Typing => (TYPING, 11, KEY_SECONDS),
        Workload::Typing4k => (TYPING, 22, KEY_SECONDS),
        Workload::Scrolling => (SCROLLING, 11, LINE_SECONDS),
        Workload::Scrolling4k => (SCROLLING, 22, LINE_SECONDS),
        other => bail!("the {} workload is recorded on X only (--desktop x11)", other.name()),
    };
    let (width, height) = workload.screen();
    // The programs' files live in sway's runtime directory, which only sway's user may read; the
    // terminal is started from the configuration so it runs as that user, in that environment.
    let dir = tempfile::tempdir()?;
    let script = dir.path().join("program.sh");
    std::fs::write(&script, program)?;
    let prose = dir.path().join("prose.txt");
    std::fs::write(&prose, crate::workloads::typed_text(2000.0))?;
    let rule =
        format!("for_window [app_id=\"{APP_ID}\"] floating enable, border none, move position 100 100\n");
    let sway = Sway::start(width, height, &rule)?;
    let script = sway.share_file(&script, "program.sh")?;
    let text = sway.share_file(&assets.text, "session.log")?;
    let prose = sway.share_file(&prose, "prose.txt")?;
    let go = sway.dir.path().join("go");
    sway.msg(&[
        "exec",
        &format!(
            "foot -a {APP_ID} -o font=monospace:size={font} --window-size-chars=160x50 \
             bash {} {} {} {} {pace}",
            script.display(),
            text.display(),
            go.display(),
            prose.display()
        ),
    ])?;
    sway.wait_for_app(APP_ID)?;
    // Let the terminal draw its first screen before the capture starts.
    std::thread::sleep(std::time::Duration::from_millis(800));
    Ok(SwayStage { sway, go })
}
