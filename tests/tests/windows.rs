//! The real windows under Xvfb during a live session: the technician's window shows the host's X screen,
//! and typing through it runs a command in a terminal on the host. Screenshots are saved next to the
//! binaries (`target/debug/screenshots/`) for a person to look at; the README shows copies.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::procs::Proc;
use common::xvfb::Xvfb;
use common::*;

/// The host's desktop colour: easy to find in the viewer's screenshot.
const HOST_BACKGROUND: [u8; 3] = [0xcc, 0x33, 0x66];

fn screenshot_dir() -> PathBuf {
    let dir = bin("tether-viewer").parent().expect("target dir").join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// The X window whose title contains `name`, once it exists.
async fn find_window(x: &Xvfb, name: &str) -> String {
    let start = Instant::now();
    loop {
        if let Some(ids) = x.try_run("xdotool", &["search", "--name", name]) {
            if let Some(id) = ids.lines().next() {
                return id.to_owned();
            }
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no window named {name:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A screenshot of just that window (the README shows these).
fn window_shot(x: &Xvfb, window: &str) -> image::RgbImage {
    let geometry = x.run("xdotool", &["getwindowgeometry", "--shell", window]);
    let get = |key: &str| -> u32 {
        geometry.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.parse().ok()).expect("geometry")
    };
    let shot = x.screenshot();
    let (wx, wy) = (get("X=").min(shot.width() - 1), get("Y=").min(shot.height() - 1));
    let (w, h) = (get("WIDTH=").min(shot.width() - wx), get("HEIGHT=").min(shot.height() - wy));
    image::imageops::crop_imm(&shot, wx, wy, w, h).to_image()
}

/// A headless host sharing `x` losslessly, granting `grant`.
fn headless_host(x: &Xvfb, relay: &TestRelay, grant: &str) -> Proc {
    let (addr, fp) = (relay.handle.local_addr().to_string(), relay.handle.fingerprint().to_string());
    let args = cli_args(&addr, &fp, &["--headless", "--grant", grant, "--quality", "lossless"]);
    Proc::spawn_with_env("tether-host", &args, &[("DISPLAY", x.display.as_str())])
}

/// A program with a window on `x`, its home, settings and runtime directory in `home`.
fn windowed(program: &str, x: &Xvfb, home: &std::path::Path, args: &[&str]) -> Proc {
    let home = home.to_str().expect("utf-8");
    let config = format!("{home}/viewer.json");
    let env = [
        ("DISPLAY", x.display.as_str()),
        ("HOME", home),
        ("TETHER_VIEWER_CONFIG", config.as_str()),
        ("XDG_RUNTIME_DIR", home),
    ];
    Proc::spawn_with_env(program, args, &env)
}

/// Share of pixels that have the host's background colour.
fn host_share(shot: &image::RgbImage) -> f64 {
    let hits = shot.pixels().filter(|p| p.0 == HOST_BACKGROUND).count();
    hits as f64 / (shot.width() * shot.height()) as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_viewer_window_shows_the_host_screen_and_types_into_it() {
    let mut host_x = Xvfb::start(1280, 800);
    host_x.run("xsetroot", &["-solid", "#cc3366"]);
    host_x.spawn("xterm", &["-geometry", "100x30+40+40", "-fa", "Monospace", "-fs", "12"]);
    find_window(&host_x, "xterm").await; // keys typed before it is mapped would go to the bare root
    let viewer_x = Xvfb::start(1600, 1000);
    let relay = start_relay(|_| {});
    let (addr, fp) = (relay.handle.local_addr().to_string(), relay.handle.fingerprint().to_string());
    let mut host = headless_host(&host_x, &relay, "view,control");
    let code = host.line("code").await;
    let home = tempfile::tempdir().expect("temp dir");
    let viewer_args = cli_args(&addr, &fp, &["--code", &code, "--name", "Erin"]);
    let _viewer = windowed("tether-viewer", &viewer_x, home.path(), &viewer_args);
    assert_eq!(host.line("connected").await, "Erin");

    // The host's screen appears in the window: a good part of the viewer's display is the host's desktop.
    let start = Instant::now();
    let shot = loop {
        let shot = viewer_x.screenshot();
        if host_share(&shot) > 0.2 {
            break shot;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the window never showed the host's screen");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    shot.save(screenshot_dir().join("viewer-live.png")).expect("save");

    // Through the window: click into the host's terminal and type a command that leaves a mark.
    let marker = home.path().join("typed-through-the-window");
    let window = find_window(&viewer_x, "Tether Viewer").await;
    viewer_x.run("xdotool", &["windowfocus", &window]);
    // The window's middle is on the host's terminal (it fills most of the shared screen's top left).
    viewer_x.run("xdotool", &["mousemove", "350", "250", "click", "1"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let command = format!("touch {}", marker.display());
    viewer_x.run("xdotool", &["type", "--delay", "20", &command]);
    viewer_x.run("xdotool", &["key", "Return"]);
    let start = Instant::now();
    while !marker.exists() {
        assert!(start.elapsed() < Duration::from_secs(20), "the typed command did not run on the host");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    window_shot(&viewer_x, &window).save(screenshot_dir().join("viewer-typed.png")).expect("save");

    // The host user stops sharing: the window says so by itself, with nobody touching it (a window that
    // waits for a mouse move to notice would go on showing a screen that is no longer shared).
    host.interrupt();
    let start = Instant::now();
    while host_share(&viewer_x.screenshot()) > 0.01 {
        assert!(start.elapsed() < Duration::from_secs(20), "the window still shows the host's screen");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    window_shot(&viewer_x, &window).save(screenshot_dir().join("viewer-ended.png")).expect("save");
}

/// Where the host window's Allow button is for a technician with an unverified name (the window sits at
/// the top left of a bare X server; see docs/screenshots/host-consent.png).
const ALLOW_BUTTON: (&str, &str) = ("102", "445");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_windows_in_a_live_session() {
    let mut host_x = Xvfb::start(1280, 800);
    host_x.run("xsetroot", &["-solid", "#cc3366"]);
    host_x.spawn("xterm", &["-geometry", "60x20+800+100", "-fa", "Monospace", "-fs", "11"]);
    find_window(&host_x, "xterm").await;
    let viewer_x = Xvfb::start(1600, 1000);
    let relay = start_relay(|_| {});
    let (addr, fp) = (relay.handle.local_addr().to_string(), relay.handle.fingerprint().to_string());
    let home = tempfile::tempdir().expect("temp dir");
    let host_args = cli_args(&addr, &fp, &["--quality", "lossless"]);
    let mut host = windowed("tether-host", &host_x, home.path(), &host_args);
    let code = host.line("code").await;
    let host_window = find_window(&host_x, "share your screen").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    window_shot(&host_x, &host_window).save(screenshot_dir().join("host-code.png")).expect("save");

    let viewer_args = cli_args(&addr, &fp, &["--code", &code, "--name", "Sam Tech"]);
    let _viewer = windowed("tether-viewer", &viewer_x, home.path(), &viewer_args);

    // The user is asked; nothing is shared until they allow it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    window_shot(&host_x, &host_window).save(screenshot_dir().join("host-consent.png")).expect("save");
    let shot = viewer_x.screenshot();
    assert!(host_share(&shot) < 0.01, "the viewer shows the host's screen before the user allowed it");
    // The card's buttons take clicks only once it has been readable for a moment (consent::ARM_DELAY);
    // on a slow machine it may have only just appeared, so click again until one takes.
    let deadline = Instant::now() + Duration::from_secs(60);
    let connected = loop {
        host_x.run("xdotool", &["mousemove", ALLOW_BUTTON.0, ALLOW_BUTTON.1, "click", "1"]);
        if let Ok(name) = tokio::time::timeout(Duration::from_secs(3), host.line("connected")).await {
            break name;
        }
        let shot = window_shot(&host_x, &host_window);
        assert!(Instant::now() < deadline, "clicking Allow never connected the session (did the card move?)");
        shot.save(screenshot_dir().join("failed-host-consent.png")).expect("save");
    };
    assert_eq!(connected, "Sam Tech");

    // The technician sees the user's screen — with the host window and its red "shared" bar on it.
    let start = Instant::now();
    let viewer_window = find_window(&viewer_x, "Tether Viewer").await;
    loop {
        // The host window and the terminal cover much of the user's desktop: less of its colour shows.
        let shot = viewer_x.screenshot();
        if host_share(&shot) > 0.1 {
            break;
        }
        if start.elapsed() > Duration::from_secs(30) {
            shot.save(screenshot_dir().join("failed-viewer.png")).expect("save");
            panic!("the viewer window never showed the host's screen (see failed-viewer.png)");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Type into the user's terminal through the viewer window (the terminal is on the right of the
    // shared screen; fit-to-window keeps its place within the picture).
    let marker = home.path().join("typed-through-both-windows");
    viewer_x.run("xdotool", &["windowfocus", &viewer_window]);
    viewer_x.run("xdotool", &["mousemove", "1010", "300", "click", "1"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    viewer_x.run("xdotool", &["type", "--delay", "20", &format!("touch {}", marker.display())]);
    viewer_x.run("xdotool", &["key", "Return"]);
    let start = Instant::now();
    while !marker.exists() {
        assert!(start.elapsed() < Duration::from_secs(20), "the typed command did not run on the host");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let host_shot = window_shot(&host_x, &host_window);
    // The always-visible indicator: the top of the host window is the red "being shared" bar.
    let red = host_shot.get_pixel(4, 4).0;
    assert!(red[0] > 150 && red[1] < 80 && red[2] < 80, "no red 'shared' bar at the top: {red:?}");
    host_shot.save(screenshot_dir().join("host-sharing.png")).expect("save");
    window_shot(&viewer_x, &viewer_window).save(screenshot_dir().join("viewer-live.png")).expect("save");
}

/// The bounding box of the pixels of `colour` in `shot`: x, y, width, height.
fn bounding_box(shot: &image::RgbImage, colour: [u8; 3]) -> Option<(u32, u32, u32, u32)> {
    let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
    for (x, y, p) in shot.enumerate_pixels() {
        if p.0 == colour {
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
    }
    (x0 <= x1).then(|| (x0, y0, x1 - x0 + 1, y1 - y0 + 1))
}

/// At 1:1 the window's picture is the host's screen pixel for pixel — colours, text, and every partial
/// texture update after typing — except where the host's cursor is drawn over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_one_to_one_the_window_shows_the_host_screen_pixel_for_pixel() {
    let (hw, hh) = (640u32, 400u32);
    let mut host_x = Xvfb::start(hw, hh);
    host_x.run("xsetroot", &["-solid", "#cc3366"]);
    host_x.spawn("xterm", &["-geometry", "50x12+40+40", "-fa", "Monospace", "-fs", "11", "-bg", "#fdf6e3"]);
    find_window(&host_x, "xterm").await;
    // The host's pointer in the bottom-right corner: its drawn cursor is left out of the comparison.
    host_x.run("xdotool", &["mousemove", "630", "390"]);
    let viewer_x = Xvfb::start(1600, 1000);
    let relay = start_relay(|_| {});
    let (addr, fp) = (relay.handle.local_addr().to_string(), relay.handle.fingerprint().to_string());
    let mut host = headless_host(&host_x, &relay, "view");
    let code = host.line("code").await;
    let home = tempfile::tempdir().expect("temp dir");
    let viewer_args = cli_args(&addr, &fp, &["--code", &code, "--scale", "1:1"]);
    let _viewer = windowed("tether-viewer", &viewer_x, home.path(), &viewer_args);
    host.line("connected").await;
    let window = find_window(&viewer_x, "Tether Viewer").await;

    // Change the host's screen several times (each a partial update of the texture), then compare.
    // (The keyboard follows the pointer on a bare X server; xterm ignores synthetic `--window` events.)
    host_x.run("xdotool", &["mousemove", "200", "150"]);
    for line in ["echo partial updates", "ls /", "echo the quick brown fox"] {
        host_x.run("xdotool", &["type", "--delay", "5", line]);
        host_x.run("xdotool", &["key", "Return"]);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    host_x.run("xdotool", &["mousemove", "630", "390"]);
    let start = Instant::now();
    while !host_x.screenshot().pixels().any(|p| p.0 == [0, 0, 0]) || start.elapsed() < Duration::from_secs(1)
    {
        assert!(start.elapsed() < Duration::from_secs(30), "the typing never showed on the host");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let start = Instant::now();
    let mut last_diff;
    loop {
        let want = host_x.screenshot();
        let shot = window_shot(&viewer_x, &window);
        if let Some((x0, y0, w, h)) = bounding_box(&shot, HOST_BACKGROUND) {
            if (w, h) == (hw, hh) {
                let mut wrong = 0;
                for (x, y, p) in want.enumerate_pixels() {
                    let near_cursor = x >= 600 && y >= 360;
                    if !near_cursor && shot.get_pixel(x0 + x, y0 + y) != p {
                        wrong += 1;
                    }
                }
                if wrong == 0 {
                    shot.save(screenshot_dir().join("viewer-one-to-one.png")).expect("save");
                    break;
                }
                last_diff = format!("{wrong} pixels differ");
            } else {
                last_diff = format!("the picture is {w}x{h} at {x0},{y0}, not {hw}x{hh}");
            }
        } else {
            last_diff = "the host's screen is not in the window".into();
        }
        if start.elapsed() > Duration::from_secs(30) {
            shot.save(screenshot_dir().join("failed-one-to-one.png")).expect("save");
            want.save(screenshot_dir().join("failed-one-to-one-want.png")).expect("save");
            panic!("the window never showed the host's screen exactly: {last_diff}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Click at `at` on `x` until `host` prints `what` (a card's buttons take clicks only once it has been
/// readable for a moment); the host's line.
async fn click_until(x: &Xvfb, at: &[(&str, &str)], host: &mut Proc, what: &str, shot: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for (px, py) in at {
            x.run("xdotool", &["mousemove", px, py, "click", "1"]);
            if let Ok(line) = tokio::time::timeout(Duration::from_millis(1500), host.line(what)).await {
                return line;
            }
        }
        if Instant::now() > deadline {
            x.screenshot().save(screenshot_dir().join(shot)).expect("save");
            panic!("clicking never brought {what:?} (see {shot})");
        }
    }
}

/// Where things are in the viewer windows below (a 1280×800 window at the top left of a bare X server,
/// toolbar on top, People panel on the right; see docs/screenshots/viewer-people.png).
const PEOPLE_TAB: (&str, &str) = ("729", "12");
const INVITE_BUTTON: (&str, &str) = ("1006", "197");
const ASK_FOR_CONTROL: (&str, &str) = ("999", "227");
const HAND_OVER_BUTTON: (&str, &str) = ("1044", "218");
/// The Allow button of the card for an invited colleague (lower than the first card's: it says who
/// invited them and offers the session so far).
const ALLOW_INVITED: [(&str, &str); 3] = [("102", "596"), ("102", "606"), ("102", "618")];

/// Escalation in the real windows: Alice invites from her viewer window, the user's window asks about
/// Bob ("invited by Alice"), lists both on the red bar, and control moves from Alice to Bob through the
/// People panels. Screenshots of each step for the README.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_in_the_windows() {
    let host_x = Xvfb::start(1280, 800);
    host_x.run("xsetroot", &["-solid", "#cc3366"]);
    let alice_x = Xvfb::start(1600, 1000);
    let bob_x = Xvfb::start(1600, 1000);
    let relay = start_relay(|_| {});
    let (addr, fp) = (relay.handle.local_addr().to_string(), relay.handle.fingerprint().to_string());
    let home = tempfile::tempdir().expect("temp dir");
    let mut host =
        windowed("tether-host", &host_x, home.path(), &cli_args(&addr, &fp, &["--quality", "lossless"]));
    let code = host.line("code").await;
    let host_window = find_window(&host_x, "share your screen").await;
    let alice_args = cli_args(&addr, &fp, &["--code", &code, "--name", "Alice Level1"]);
    let _alice = windowed("tether-viewer", &alice_x, home.path(), &alice_args);
    let first = [ALLOW_BUTTON];
    assert_eq!(
        click_until(&host_x, &first, &mut host, "connected", "failed-escalation-1.png").await,
        "Alice Level1"
    );
    let alice_window = find_window(&alice_x, "Tether Viewer").await;

    // Alice: People → Invite a colleague. The code shows in her panel.
    tokio::time::sleep(Duration::from_secs(1)).await;
    alice_x.run("xdotool", &["mousemove", PEOPLE_TAB.0, PEOPLE_TAB.1, "click", "1"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    alice_x.run("xdotool", &["mousemove", INVITE_BUTTON.0, INVITE_BUTTON.1, "click", "1"]);
    // The code is read off the relay's side of things: the panel shows it; the test takes it from
    // the host's record of the invite instead of reading pixels.
    let invite = host.line("invite").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    window_shot(&alice_x, &alice_window).save(screenshot_dir().join("viewer-invite.png")).expect("save");

    // Bob joins by it; the user is asked, with who invited him.
    let bob_args = cli_args(&addr, &fp, &["--code", &invite, "--name", "Bob Level2"]);
    let _bob = windowed("tether-viewer", &bob_x, home.path(), &bob_args);
    tokio::time::sleep(Duration::from_secs(2)).await;
    window_shot(&host_x, &host_window).save(screenshot_dir().join("host-consent-invited.png")).expect("save");
    let joined =
        click_until(&host_x, &ALLOW_INVITED, &mut host, "connected", "failed-escalation-2.png").await;
    assert_eq!(joined, "Bob Level2");
    let bob_window = find_window(&bob_x, "Tether Viewer").await;

    // Alice drives (a click on the screen); Bob asks for control in his People panel; Alice hands over.
    alice_x.run("xdotool", &["mousemove", "700", "640", "click", "1"]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    bob_x.run("xdotool", &["mousemove", PEOPLE_TAB.0, PEOPLE_TAB.1, "click", "1"]);
    tokio::time::sleep(Duration::from_millis(800)).await;
    bob_x.run("xdotool", &["mousemove", ASK_FOR_CONTROL.0, ASK_FOR_CONTROL.1, "click", "1"]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    window_shot(&alice_x, &alice_window).save(screenshot_dir().join("viewer-people.png")).expect("save");
    window_shot(&host_x, &host_window).save(screenshot_dir().join("host-participants.png")).expect("save");
    alice_x.run("xdotool", &["mousemove", HAND_OVER_BUTTON.0, HAND_OVER_BUTTON.1, "click", "1"]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    window_shot(&bob_x, &bob_window).save(screenshot_dir().join("viewer-handed-over.png")).expect("save");
    let red = window_shot(&host_x, &host_window).get_pixel(4, 4).0;
    assert!(red[0] > 150 && red[1] < 80 && red[2] < 80, "no red 'shared' bar at the top: {red:?}");
}

/// Where the Notes and System tabs and their controls are (same window layout as above, view only; see
/// docs/screenshots/viewer-notes.png and viewer-system.png).
const NOTES_TAB: (&str, &str) = ("936", "12");
const SYSTEM_TAB: (&str, &str) = ("1047", "12");
const NOTES_FIELDS: [(&str, &str); 4] = [("1110", "125"), ("1110", "210"), ("1110", "295"), ("1110", "351")];
const SAVE_NOTES: (&str, &str) = ("987", "374");
const KEEP_IN_RECORD: (&str, &str) = ("792", "61");
const SEARCH: (&str, &str) = ("1000", "398");
const END_SESSION: (&str, &str) = ("1193", "12");

/// The technician's Notes and System panels in the real window, and the report the user's host saves at
/// the end opened in a browser (headless Chromium): the screenshots the README shows for issue 20.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_inventory_and_the_report_in_a_browser() {
    let host_x = Xvfb::start(1280, 800);
    host_x.run("xsetroot", &["-solid", "#cc3366"]);
    let viewer_x = Xvfb::start(1600, 1000);
    let relay = start_relay(|_| {});
    let (addr, fp) = (relay.handle.local_addr().to_string(), relay.handle.fingerprint().to_string());
    let home = tempfile::tempdir().expect("temp dir");
    let record = home.path().join("user.json");
    let record_arg = record.to_str().expect("utf-8");
    let host_args = cli_args(
        &addr,
        &fp,
        &["--headless", "--grant", "view", "--quality", "lossless", "--save-record", record_arg],
    );
    let mut host = Proc::spawn_with_env("tether-host", &host_args, &[("DISPLAY", host_x.display.as_str())]);
    let code = host.line("code").await;
    let viewer_args = cli_args(&addr, &fp, &["--code", &code, "--name", "Alice Level1"]);
    let _viewer = windowed("tether-viewer", &viewer_x, home.path(), &viewer_args);
    host.line("connected").await;
    let window = find_window(&viewer_x, "Tether Viewer").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Typing goes to the focused window (a bare X server has no window manager to focus it).
    viewer_x.run("xdotool", &["windowfocus", &window]);
    let click = |at: (&str, &str)| viewer_x.run("xdotool", &["mousemove", at.0, at.1, "click", "1"]);

    // Notes: typed into the panel and saved; the user's side records them.
    click(NOTES_TAB);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let notes = [
        "Printing fails: spooler not running",
        "Restarted cups; cleared the queue",
        "Prints again",
        "HD-4711",
    ];
    for (at, text) in NOTES_FIELDS.iter().zip(notes) {
        click(*at);
        tokio::time::sleep(Duration::from_millis(200)).await;
        viewer_x.run("xdotool", &["type", "--delay", "5", text]);
        // The last key is in before the next click moves the focus (both could land in one frame).
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    window_shot(&viewer_x, &window).save(screenshot_dir().join("viewer-notes.png")).expect("save");
    click(SAVE_NOTES);
    assert!(host.line("notes").await.contains("HD-4711"), "the host recorded the notes");
    let saved = record.with_extension("html");

    // System: the inventory, kept in the record, and searched.
    click(SYSTEM_TAB);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    click(KEEP_IN_RECORD);
    assert!(host.line("inventory").await.contains("packages"), "the host recorded the inventory");
    click(SEARCH);
    tokio::time::sleep(Duration::from_millis(200)).await;
    viewer_x.run("xdotool", &["type", "--delay", "5", "libc"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    window_shot(&viewer_x, &window).save(screenshot_dir().join("viewer-system.png")).expect("save");

    // The end: the user's host saves its copy; the report, in a browser.
    click(END_SESSION);
    host.line("record").await;
    let html = saved;
    let report = std::fs::read_to_string(&html).expect("the user's report");
    assert!(report.contains("HD-4711") && report.contains("installed packages"), "notes and inventory");
    assert!(report.contains(notes[0]), "every key typed reached the field");
    let shot = screenshot_dir().join("report.png");
    let status = std::process::Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1000,1400"])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", html.display()))
        .env("HOME", home.path())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("chromium (package chromium) runs");
    assert!(status.success() && shot.exists(), "chromium took the screenshot");
}
