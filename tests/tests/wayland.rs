//! The host on a Wayland desktop: a real wlroots compositor (headless sway, software rendering) with a
//! terminal (foot) on it. What the viewer shows equals the compositor's own screenshot (grim) pixel for
//! pixel, at the start, after typing, after the terminal scrolls and after the wheel scrolls it back; text
//! and keys typed through the viewer reach the program in the terminal (through the virtual keyboard, with
//! the keymap the host uploads); a key held when the session ends is let go; `--list-monitors` lists the
//! outputs, `--monitor` shares the one chosen and the pointer lands where the technician points on it.

mod common;

use std::time::Duration;

use common::procs::Proc;
use common::view::wait_for_view;
use common::*;
use tether_shared::code::Code;
use tether_shared::input::{InputEvent, Key};
use tether_testbed::portal::Portal;
use tether_testbed::sway::Sway;
use tether_viewer::session::{HostNotice, ViewerSession};

/// One test of this file at a time. Each runs a compositor and hosts of its own, so they should not
/// meet; yet with all of them at once, text typed through enigo's virtual keyboard was sometimes lost
/// after about a thousand characters (Return keys still arrived), which neither CPU load nor any two
/// of them together reproduced. They take seconds each: serial costs little and keeps CI honest.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const SW: u32 = 1024;
const SH: u32 = 768;

/// A compositor with a terminal whose shell copies what is typed, key by key, into `typed.txt`.
fn sway_with_terminal() -> Sway {
    // Non-canonical: every key reaches the file at once; the terminal echoes it (and scrolls).
    let script = "stty -icanon; exec cat > \"$XDG_RUNTIME_DIR/typed.txt\"";
    let sway = Sway::start(SW, SH, &format!("exec foot --override=cursor.blink=no sh -c '{script}'"))
        .expect("headless sway");
    // The terminal is up once the background is no longer the whole picture.
    let start = std::time::Instant::now();
    while sway_screen(&sway).pixels().all(|p| p.0 == [0x33, 0x66, 0x99]) {
        assert!(start.elapsed() < Duration::from_secs(15), "the terminal never showed");
        std::thread::sleep(Duration::from_millis(100));
    }
    sway
}

fn sway_screen(sway: &Sway) -> image::RgbImage {
    use common::view::Screen;
    sway.screenshot()
}

/// A host process sharing output `monitor` of the compositor losslessly, and a viewer connected to it.
async fn share(relay: &TestRelay, sway: &Sway, monitor: u32) -> (Proc, ViewerSession) {
    let (addr, fp) = (relay.handle.local_addr().to_string(), relay.handle.fingerprint().to_string());
    let monitor = monitor.to_string();
    let args = cli_args(
        &addr,
        &fp,
        &["--headless", "--grant", "view,control", "--quality", "lossless", "--monitor", &monitor],
    );
    let mut host = Proc::spawn_with_env("tether-host", &args, &sway.env());
    let code = Code::parse(&host.line("code").await).expect("code");
    let viewer = ViewerSession::connect(&viewer_config(relay), &code).await.expect("pairs");
    (host, viewer)
}

/// Wait until the viewer's picture equals the compositor's own screenshot (`when`: for the failure).
async fn shows_what_grim_shows(viewer: &ViewerSession, sway: &Sway, when: &str) {
    let what = format!("{when}: the viewer's picture differs from grim's");
    wait_for_view(viewer, sway, "tether-sway", &what, |shown, screen| shown == screen).await;
}

fn typed(sway: &Sway) -> String {
    std::fs::read_to_string(sway.file("typed.txt")).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_viewer_sees_the_compositor_exactly_and_types_into_a_terminal() {
    let _one = ONE_AT_A_TIME.lock().await;
    let sway = sway_with_terminal();
    let relay = start_relay(|_| {});
    let (mut host, viewer) = share(&relay, &sway, 0).await;
    let first = viewer.next_frame(None).await.expect("first frame");
    assert_eq!((first.frame.width(), first.frame.height()), (SW, SH));
    shows_what_grim_shows(&viewer, &sway, "at the start").await;

    viewer.send_input(InputEvent::Text("hello from tether\n".into())).await.expect("send");
    eventually(|| typed(&sway).contains("hello from tether\n"), "typed text").await;
    shows_what_grim_shows(&viewer, &sway, "after typing").await;
    // Enough lines to make the terminal scroll (54 rows of 14 pixels).
    let lines: String = (1..=70).map(|i| format!("line {i} of a long text\n")).collect();
    viewer.send_input(InputEvent::Text(lines)).await.expect("send");
    let start = std::time::Instant::now();
    while !typed(&sway).contains("line 70 of a long text\n") {
        let so_far = typed(&sway);
        assert!(start.elapsed() < Duration::from_secs(30), "all lines typed; the terminal got {so_far:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (key, pressed) in
        [(Key::Char('z'), true), (Key::Char('z'), false), (Key::Enter, true), (Key::Enter, false)]
    {
        viewer.send_input(InputEvent::Key { key, pressed }).await.expect("send");
    }
    eventually(|| typed(&sway).ends_with("z\n"), "a key press").await;
    shows_what_grim_shows(&viewer, &sway, "after scrolling").await;

    // The wheel scrolls the terminal back through what scrolled away, a notch as far as a real wheel's.
    viewer.send_input(InputEvent::MouseMove { x: 500, y: 400 }).await.expect("send");
    shows_what_grim_shows(&viewer, &sway, "after moving the pointer").await;
    let bottom = sway_screen(&sway);
    viewer.send_input(InputEvent::Wheel { dx: 0, dy: -5 }).await.expect("send");
    eventually(|| sway_screen(&sway) != bottom, "the terminal scrolled back by the wheel").await;
    shows_what_grim_shows(&viewer, &sway, "after the wheel").await;
    viewer.send_input(InputEvent::Wheel { dx: 0, dy: 5 }).await.expect("send");
    eventually(|| sway_screen(&sway) == bottom, "the wheel scrolls the terminal forward again").await;

    // What the technician saw, for a person to look at (next to the other windows' screenshots).
    let shots = bin("tether-viewer").parent().expect("target dir").join("screenshots");
    std::fs::create_dir_all(&shots).expect("dir");
    let seen = viewer.frames().borrow().clone().expect("a frame");
    common::view::rgb(&seen.frame).save(shots.join("wayland-sway.png")).expect("save");

    // A key held by a technician who leaves is let go while the host goes on (a colleague stays, so
    // the host's virtual keyboard lives on): the terminal's key repeat stops.
    viewer.invite().await.expect("asked");
    let mut news = viewer.invite_news();
    let invite = loop {
        if let Some(tether_shared::session_proto::InviteNews::Code { code, .. }) =
            news.borrow_and_update().clone()
        {
            break Code::parse(&code).expect("a code");
        }
        tokio::time::timeout(Duration::from_secs(10), news.changed()).await.expect("news").expect("up");
    };
    let colleague =
        ViewerSession::connect(&viewer_config(&relay), &invite).await.expect("the colleague joins");
    viewer.send_input(InputEvent::Key { key: Key::Char('x'), pressed: true }).await.expect("send");
    // Held past the repeat delay: the terminal repeats it.
    eventually(|| typed(&sway).matches('x').count() > 3, "the held key repeating").await;
    viewer.close().await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let after = typed(&sway);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(typed(&sway), after, "the key still repeats: it was not released");
    assert!(!colleague.is_closed(), "the session goes on with the colleague");
    colleague.close().await;
    assert!(host.line("ended").await.contains("left"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outputs_are_listed_and_the_chosen_one_is_shared() {
    let _one = ONE_AT_A_TIME.lock().await;
    let sway = Sway::start(SW, SH, "").expect("headless sway");
    sway.msg(&["create_output"]).expect("swaymsg");
    sway.msg(&["output HEADLESS-2 resolution 640x480 position 1024 0 background #993366 solid_color"])
        .expect("swaymsg");
    let out = std::process::Command::new(bin("tether-host"))
        .args(["--list-monitors"])
        .envs(sway.env())
        .output()
        .expect("runs");
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(listed.contains("monitor 0: HEADLESS-1 1024x768+0+0 (primary)"), "{listed}");
    assert!(listed.contains("monitor 1: HEADLESS-2 640x480+1024+0"), "{listed}");

    let relay = start_relay(|_| {});
    let (_host, viewer) = share(&relay, &sway, 1).await;
    let shown = viewer.next_frame(None).await.expect("a frame");
    assert_eq!((shown.frame.width(), shown.frame.height()), (640, 480));
    let rgb = common::view::rgb(&shown.frame);
    assert!(rgb.pixels().all(|p| p.0 == [0x99, 0x33, 0x66]), "the second output's background");

    // The technician's pointer lands where they pointed on that output, not on the first one: the
    // compositor draws its cursor there. The arrow's image
    // starts a little above and left of its tip (its outline), the same for both places: so it moved
    // exactly as far as the technician's pointer did.
    let mut drawn = Vec::new();
    for (x, y) in [(100, 200), (600, 50)] {
        viewer.send_input(InputEvent::MouseMove { x, y }).await.expect("send");
        let near = |at: Option<(u32, u32)>| {
            at.is_some_and(|(cx, cy)| {
                (x - 4..=x).contains(&(cx as i32)) && (y - 4..=y).contains(&(cy as i32))
            })
        };
        eventually(
            || near(cursor_box(&sway, "HEADLESS-2", [0x99, 0x33, 0x66])),
            "the cursor where the technician points",
        )
        .await;
        drawn.push(cursor_box(&sway, "HEADLESS-2", [0x99, 0x33, 0x66]).expect("a cursor"));
    }
    assert_eq!((drawn[1].0 - drawn[0].0, drawn[0].1 - drawn[1].1), (500, 150), "{drawn:?}");
    viewer.close().await;
}

/// Where the compositor draws its cursor on `output`, a solid `background` otherwise: the top-left
/// corner of what is not background. (Headless sway draws the cursor into the output itself, having no
/// cursor plane: grim shows it with or without `-c`.)
fn cursor_box(sway: &Sway, output: &str, background: [u8; 3]) -> Option<(u32, u32)> {
    let shot = sway.grim(&["-o", output])?;
    let drawn = shot.enumerate_pixels().filter(|(_, _, p)| p.0 != background);
    drawn.fold(None, |at: Option<(u32, u32)>, (x, y, _)| {
        Some(at.map_or((x, y), |(ax, ay)| (ax.min(x), ay.min(y))))
    })
}

/// A host sharing through the desktop portal (`--source portal`), and a viewer connected to it; terminals
/// from number `n` on open meanwhile, for the stream's first picture (see [`open_terminal`]).
async fn share_through_portal(
    relay: &TestRelay,
    sway: &Sway,
    portal: &Portal,
    extra: &[&str],
    n: usize,
) -> (Proc, ViewerSession) {
    let (addr, fp) = (relay.handle.local_addr().to_string(), relay.handle.fingerprint().to_string());
    let mut flags =
        vec!["--headless", "--grant", "view,control", "--quality", "lossless", "--source", "portal"];
    flags.extend_from_slice(extra);
    let args = cli_args(&addr, &fp, &flags);
    let env = portal.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut host = Proc::spawn_with_env("tether-host", &args, &env);
    let code = Code::parse(&host.line("code").await).expect("code");
    // Something drawn once the portal's stream runs (when that is, the host does not say): a terminal
    // more every second until the viewer has its first picture.
    let config = viewer_config(relay);
    let connect = tokio::spawn(async move { ViewerSession::connect(&config, &code).await });
    let mut n = n;
    while !connect.is_finished() {
        open_terminal(sway, n).await;
        n += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let viewer = connect.await.expect("joined").expect("pairs");
    (host, viewer)
}

/// Open terminal number `n` on the compositor and wait until it shows. (xdg-desktop-portal-wlr sends a
/// stream's first picture only once something is drawn, so each portal session starts with one.)
async fn open_terminal(sway: &Sway, n: usize) {
    let before = sway_screen(sway);
    // A shell of its own: the compositor's user, nobody, has no login shell.
    sway.msg(&[&format!("exec foot --override=cursor.blink=no sh -c 'echo terminal {n}; exec cat'")])
        .expect("swaymsg");
    eventually(|| sway_screen(sway) != before, "another terminal on the screen").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_desktop_portal_streams_the_screen_exactly_and_remembers_the_choice_when_asked() {
    let _one = ONE_AT_A_TIME.lock().await;
    let sway = sway_with_terminal();
    let portal = Portal::start(&sway, "HEADLESS-1").expect("the desktop portal");
    let relay = start_relay(|_| {});

    // The portal asks which screen (the chooser answers for the user); the viewer sees it exactly, at
    // the start and after the desktop changed.
    let (mut host, viewer) =
        share_through_portal(&relay, &sway, &portal, &["--remember-screen-choice"], 2).await;
    let first = viewer.next_frame(None).await.expect("first frame");
    assert_eq!((first.frame.width(), first.frame.height()), (SW, SH));
    shows_what_grim_shows(&viewer, &sway, "through the portal, at the start").await;
    open_terminal(&sway, 9).await;
    shows_what_grim_shows(&viewer, &sway, "through the portal, after another terminal opened").await;
    assert_eq!(portal.times_asked(), 1, "the portal asked once");
    // xdg-desktop-portal-wlr offers no remote control: the technician who types is told so, once.
    let mut notices = viewer.notices();
    for pressed in [true, false] {
        viewer.send_input(InputEvent::Key { key: Key::Char('a'), pressed }).await.expect("sent");
    }
    let told = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(HostNotice::Notice(text)) = notices.recv().await {
                return text;
            }
        }
    })
    .await
    .expect("the technician is told why the keys do nothing");
    assert!(told.contains("not its mouse and keyboard"), "{told}");
    viewer.close().await;
    assert!(host.line("ended").await.contains("left"));
    drop(host);
    let token = portal.home.path().join("state/tether/portal-restore-token");
    assert!(token.exists(), "the portal's restore token is kept");

    // The next session with the remembered choice starts without asking; without it, the portal asks.
    let (_host, viewer) =
        share_through_portal(&relay, &sway, &portal, &["--remember-screen-choice"], 10).await;
    shows_what_grim_shows(&viewer, &sway, "through the portal, with the remembered choice").await;
    assert_eq!(portal.times_asked(), 1, "a remembered choice is not asked for again");
    viewer.close().await;
    let (_host, viewer) = share_through_portal(&relay, &sway, &portal, &[], 20).await;
    shows_what_grim_shows(&viewer, &sway, "through the portal, asked again").await;
    assert_eq!(portal.times_asked(), 2, "without --remember-screen-choice the user is asked");
    viewer.close().await;
}

/// Run a headless host sharing through the portal of `env`, expecting it to fail: its error line.
async fn host_fails(env: &[(String, String)], extra: &[&str]) -> String {
    let fingerprint = "0".repeat(64);
    let mut args = vec!["--headless", "--source", "portal", "--relay", "127.0.0.1:9"];
    args.extend(["--relay-fingerprint", &fingerprint]);
    args.extend_from_slice(extra);
    let run = tokio::process::Command::new(bin("tether-host")).args(&args).envs(env.iter().cloned()).output();
    let out =
        tokio::time::timeout(Duration::from_secs(60), run).await.expect("the host gives up").expect("runs");
    assert!(!out.status.success(), "the host shared nothing, so it must fail");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    stderr.lines().filter(|l| l.starts_with("Error:")).collect::<Vec<_>>().join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_unanswered_or_missing_portal_is_said_plainly_and_nothing_hangs() {
    let _one = ONE_AT_A_TIME.lock().await;
    // The user declines in the desktop's dialog.
    let sway = Sway::start(SW, SH, "").expect("headless sway");
    let portal = Portal::with_chooser(&sway, "true").expect("the desktop portal");
    let error = host_fails(&portal.env(), &[]).await;
    assert!(error.contains("the screen was not shared: it was declined in the desktop's dialog"), "{error}");
    drop(portal);

    // Nobody answers the dialog: the host gives up when it said it would, and says why.
    let sway = Sway::start(SW, SH, "").expect("headless sway");
    let portal = Portal::with_chooser(&sway, "sleep 20").expect("the desktop portal");
    let started = std::time::Instant::now();
    let error = host_fails(&portal.env(), &["--portal-answer-within", "2"]).await;
    assert!(error.contains("the screen was not shared: nobody answered the desktop's dialog"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(15), "it gave up after {:?}", started.elapsed());
    drop(portal);

    // A session bus without any portal on it.
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("bus.conf");
    let socket = dir.path().join("bus");
    std::fs::write(
        &config,
        format!(
            "<busconfig><type>session</type><listen>unix:path={}</listen><auth>EXTERNAL</auth>\
             <policy context=\"default\">\
             <allow send_destination=\"*\"/><allow receive_sender=\"*\"/><allow own=\"*\"/></policy></busconfig>",
            socket.display()
        ),
    )
    .expect("config");
    let mut bus = std::process::Command::new("dbus-daemon")
        .args(["--nofork", "--nopidfile", "--config-file"])
        .arg(&config)
        .spawn()
        .expect("dbus-daemon");
    eventually(|| socket.exists(), "the bare bus").await;
    let env = [("DBUS_SESSION_BUS_ADDRESS".to_string(), format!("unix:path={}", socket.display()))];
    let error = host_fails(&env, &[]).await;
    let _ = bus.kill();
    let _ = bus.wait();
    assert!(error.contains("no desktop portal runs in this session"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clipboard_goes_both_ways_on_wayland() {
    use tether_viewer::session::HostNotice;
    let _one = ONE_AT_A_TIME.lock().await;
    let sway = Sway::start(SW, SH, "").expect("headless sway");
    let relay = start_relay(|_| {});
    let (_host, viewer) = share(&relay, &sway, 0).await;
    let mut notices = viewer.notices();

    // Technician → host: lands on the compositor's clipboard (wl-paste reads it).
    viewer.send_clipboard("from the technician: ünïcödé ✓").await.expect("send");
    let pasted = || {
        let out = std::process::Command::new("wl-paste").arg("--no-newline").envs(sway.env()).output();
        out.ok().filter(|o| o.status.success()).map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    eventually(|| pasted().as_deref() == Some("from the technician: ünïcödé ✓"), "the host's clipboard")
        .await;

    // Host → technician, once the viewer watches the clipboard.
    viewer.watch_clipboard(true).await.expect("watch");
    let mut copy = std::process::Command::new("wl-copy")
        .args(["--foreground", "copied on the host"])
        .envs(sway.env())
        .spawn()
        .expect("wl-copy");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match tokio::time::timeout(left, notices.recv()).await.expect("the host's clipboard in time") {
            Ok(HostNotice::Clipboard(text)) if text == "copied on the host" => break,
            Ok(_) => continue,
            Err(e) => panic!("notices: {e}"),
        }
    }
    let _ = copy.kill();
    let _ = copy.wait();
    viewer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_window_opens_on_wayland_without_xwayland() {
    let _one = ONE_AT_A_TIME.lock().await;
    // No X server anywhere: the window must be a Wayland client of its own.
    let sway = Sway::start(SW, SH, "xwayland disable").expect("headless sway");
    let relay = start_relay(|_| {});
    let (addr, fp) = (relay.handle.local_addr().to_string(), relay.handle.fingerprint().to_string());
    let args = cli_args(&addr, &fp, &["--source", "test-pattern"]);
    let mut env = sway.env().to_vec();
    env.push(("DISPLAY", ""));
    let mut host = Proc::spawn_with_env("tether-host", &args, &env);
    let code = host.line("code").await;
    assert!(Code::parse(code.trim_start_matches("code ")).is_ok(), "{code}");
    // The window covers the output (sway tiles it): the background is gone.
    let background = |shot: &image::RgbImage| shot.pixels().filter(|p| p.0 == [0x33, 0x66, 0x99]).count();
    eventually(|| background(&sway_screen(&sway)) < (SW * SH / 10) as usize, "the host window on the screen")
        .await;
    let shots = bin("tether-viewer").parent().expect("target dir").join("screenshots");
    std::fs::create_dir_all(&shots).expect("dir");
    sway_screen(&sway).save(shots.join("host-window-wayland.png")).expect("save");
}
