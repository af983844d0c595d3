//! The real desktop under Xvfb: what the viewer shows equals the X server's own screenshot pixel for pixel
//! (after typing into an xterm and after it scrolls); input from the viewer types into the xterm, moves
//! and clicks where intended; keys held when the session ends are released; the cursor follows the mouse.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::procs::Proc;
use common::view::wait_for_view;
use common::xvfb::Xvfb;
use common::*;
use tether_shared::code::Code;
use tether_shared::input::{InputEvent, Key, MouseButton};
use tether_viewer::session::ViewerSession;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::ConnectionExt as _;

const XW: u32 = 1024;
const XH: u32 = 768;

/// A host process sharing the Xvfb screen, and a viewer session connected to it.
async fn share(relay: &TestRelay, x: &Xvfb, grant: &str) -> (Proc, ViewerSession) {
    share_monitor(relay, x, grant, 0).await
}

/// The same, sharing monitor `monitor` losslessly.
async fn share_monitor(relay: &TestRelay, x: &Xvfb, grant: &str, monitor: u32) -> (Proc, ViewerSession) {
    let (addr, fp) = (relay.handle.local_addr().to_string(), relay.handle.fingerprint().to_string());
    let monitor = monitor.to_string();
    let args = cli_args(
        &addr,
        &fp,
        &[
            "--headless",
            "--grant",
            grant,
            "--idle-timeout-secs",
            "3",
            "--quality",
            "lossless",
            "--monitor",
            &monitor,
        ],
    );
    let mut host = Proc::spawn_with_env("tether-host", &args, &[("DISPLAY", x.display.as_str())]);
    let code = Code::parse(&host.line("code").await).expect("code");
    let viewer = ViewerSession::connect(&viewer_config(relay), &code).await.expect("pairs");
    (host, viewer)
}

/// Wait until the viewer's picture equals the X server's screenshot; on failure save both for a look.
async fn assert_view_matches_screen(viewer: &ViewerSession, x: &Xvfb, what: &str) {
    assert_view_matches(viewer, x, None, what).await;
}

/// The same for the part of the screen `(x, y, w, h)` a monitor covers.
async fn assert_view_matches(
    viewer: &ViewerSession,
    x: &Xvfb,
    area: Option<(u32, u32, u32, u32)>,
    what: &str,
) {
    let what = format!("{what}: the viewer's picture differs from the X screen");
    wait_for_view(viewer, x, "tether-x11", &what, |shown, full| match area {
        Some((ax, ay, aw, ah)) => shown == &image::imageops::crop_imm(full, ax, ay, aw, ah).to_image(),
        None => shown == full,
    })
    .await;
}

fn file_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_viewer_sees_the_x_screen_exactly_and_types_and_clicks_into_it() {
    let mut x = Xvfb::start(XW, XH);
    let dir = tempfile::tempdir().expect("temp");
    let typed = dir.path().join("typed.txt");
    let script = format!("cat > '{}'", typed.display());
    x.spawn("xterm", &["-geometry", "80x24+40+40", "-e", "sh", "-c", &script]);
    eventually(|| x.try_run("xdotool", &["search", "--class", "xterm"]).is_some(), "the xterm window").await;

    let relay = start_relay(|_| {});
    let (mut host, viewer) = share(&relay, &x, "view,control").await;
    viewer.next_frame(None).await.expect("first frame");
    assert_view_matches_screen(&viewer, &x, "at the start").await;

    // Click into the xterm (focus), then type lines: the text reaches the program in the xterm.
    for event in tether_viewer::input::click(200, 150, MouseButton::Left) {
        viewer.send_input(event).await.expect("send");
    }
    eventually(|| x.mouse() == (200, 150), "the pointer to move").await;
    viewer.send_input(InputEvent::Text("hello from tether\n".into())).await.expect("send");
    eventually(|| file_text(&typed).contains("hello from tether\n"), "typed text").await;
    assert_view_matches_screen(&viewer, &x, "after typing").await;

    // Enough lines to make the xterm scroll.
    let lines: String = (1..=40).map(|i| format!("line {i} of a long text\n")).collect();
    viewer.send_input(InputEvent::Text(lines)).await.expect("send");
    eventually(|| file_text(&typed).contains("line 40 of a long text\n"), "all lines").await;
    assert_view_matches_screen(&viewer, &x, "after scrolling").await;

    // Keys by physical key work too.
    for (key, pressed) in
        [(Key::Char('z'), true), (Key::Char('z'), false), (Key::Enter, true), (Key::Enter, false)]
    {
        viewer.send_input(InputEvent::Key { key, pressed }).await.expect("send");
    }
    eventually(|| file_text(&typed).ends_with("z\n"), "a key press").await;

    viewer.close().await;
    assert_eq!(host.line("ended").await, "the technician left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_buttons_held_at_disconnect_are_released() {
    let x = Xvfb::start(XW, XH);
    let relay = start_relay(|_| {});
    let (mut host, viewer) = share(&relay, &x, "view,control").await;
    let (conn, screen) = x11rb::connect(Some(&x.display)).expect("X connection");
    let root = conn.setup().roots[screen].root;
    let keys_down =
        || conn.query_keymap().expect("query").reply().expect("reply").keys.iter().any(|b| *b != 0);
    let button1_down = || {
        let mask = conn.query_pointer(root).expect("query").reply().expect("reply").mask;
        u16::from(mask) & u16::from(x11rb::protocol::xproto::KeyButMask::BUTTON1) != 0
    };
    assert!(!keys_down() && !button1_down());

    viewer.send_input(InputEvent::Key { key: Key::Control, pressed: true }).await.expect("send");
    viewer.send_input(InputEvent::Key { key: Key::Shift, pressed: true }).await.expect("send");
    viewer
        .send_input(InputEvent::MouseButton { button: MouseButton::Left, pressed: true })
        .await
        .expect("send");
    eventually(|| keys_down() && button1_down(), "the keys to be down").await;

    drop(viewer); // the technician's side goes away without releasing anything
    assert!(!host.line("ended").await.is_empty());
    eventually(|| !keys_down() && !button1_down(), "everything released").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cursor_follows_the_mouse() {
    let x = Xvfb::start(XW, XH);
    let relay = start_relay(|_| {});
    let (_host, viewer) = share(&relay, &x, "view").await;
    let mut cursor = viewer.cursor();
    for (px, py) in [(100, 100), (700, 300), (5, 760)] {
        x.run("xdotool", &["mousemove", &px.to_string(), &py.to_string()]);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let state = cursor.borrow_and_update().clone();
            if state.position == Some((px, py)) && state.visible {
                let shape = state.shape.expect("a cursor shape");
                assert!(shape.width > 0 && shape.height > 0 && shape.is_valid());
                break;
            }
            assert!(Instant::now() < deadline, "cursor at {:?}, expected ({px}, {py})", state.position);
            let _ = tokio::time::timeout(Duration::from_millis(200), cursor.changed()).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_monitors_names_the_screen() {
    let x = Xvfb::start(XW, XH);
    let out = std::process::Command::new(bin("tether-host"))
        .arg("--list-monitors")
        .env("DISPLAY", &x.display)
        .output()
        .expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("monitor 0: ") && text.contains("1024x768+0+0"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chosen_monitor_is_what_is_shared_and_where_input_lands() {
    let mut x = Xvfb::start(1280, 800);
    x.run("xrandr", &["--setmonitor", "left", "640/160x800/200+0+0", "none"]);
    x.run("xrandr", &["--setmonitor", "right", "640/160x800/200+640+0", "none"]);
    x.spawn("xterm", &["-geometry", "40x10+700+100"]);
    eventually(|| x.try_run("xdotool", &["search", "--class", "xterm"]).is_some(), "the xterm window").await;
    let relay = start_relay(|_| {});
    let (_host, viewer) = share_monitor(&relay, &x, "view,control", 1).await;
    let first = viewer.next_frame(None).await.expect("frame");
    assert_eq!((first.frame.width(), first.frame.height()), (640, 800));
    assert_view_matches(&viewer, &x, Some((640, 0, 640, 800)), "the right monitor").await;
    viewer.send_input(InputEvent::MouseMove { x: 10, y: 20 }).await.expect("send");
    eventually(|| x.mouse() == (650, 20), "the pointer on the right monitor").await;
    viewer.send_input(InputEvent::MouseMove { x: -500, y: 5000 }).await.expect("send");
    eventually(|| x.mouse() == (640, 799), "the pointer clamped to the monitor").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitor_that_changes_size_mid_session_is_followed() {
    let x = Xvfb::start(1280, 800);
    x.run("xrandr", &["--setmonitor", "left", "640/160x800/200+0+0", "none"]);
    let relay = start_relay(|_| {});
    let (_host, viewer) = share_monitor(&relay, &x, "view", 0).await;
    let first = viewer.next_frame(None).await.expect("frame");
    assert_eq!((first.frame.width(), first.frame.height()), (640, 800));
    x.run("xrandr", &["--delmonitor", "left"]);
    x.run("xrandr", &["--setmonitor", "left", "800/200x600/150+0+0", "none"]);
    let mut last = Some(first.info.seq);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let shown = tokio::time::timeout(Duration::from_secs(10), viewer.next_frame(last))
            .await
            .expect("frames")
            .expect("session");
        if (shown.frame.width(), shown.frame.height()) == (800, 600) {
            break;
        }
        assert!(Instant::now() < deadline, "still {}x{}", shown.frame.width(), shown.frame.height());
        last = Some(shown.info.seq);
    }
    assert_view_matches(&viewer, &x, Some((0, 0, 800, 600)), "after the resize").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_technician_switches_monitors_mid_session() {
    let x = Xvfb::start(1280, 800);
    x.run("xrandr", &["--setmonitor", "left", "640/160x800/200+0+0", "none"]);
    x.run("xrandr", &["--setmonitor", "right", "640/160x800/200+640+0", "none"]);
    let relay = start_relay(|_| {});
    let (_host, viewer) = share_monitor(&relay, &x, "view,control", 0).await;
    let mut monitors = viewer.monitors();
    let listed = tokio::time::timeout(Duration::from_secs(10), monitors.wait_for(|m| !m.list.is_empty()))
        .await
        .expect("the host lists its monitors")
        .expect("alive")
        .clone();
    let names: Vec<&str> = listed.list.iter().map(|m| m.name.as_str()).collect();
    // Xvfb keeps its whole-screen monitor after the two we defined.
    assert_eq!((&names[..2], listed.current), (["left", "right"].as_slice(), 0), "{listed:?}");
    viewer.next_frame(None).await.expect("frame");
    viewer.select_monitor(1).await.expect("request");
    tokio::time::timeout(Duration::from_secs(10), monitors.wait_for(|m| m.current == 1))
        .await
        .expect("the host says it switched")
        .expect("alive");
    assert_view_matches(&viewer, &x, Some((640, 0, 640, 800)), "the right monitor after the switch").await;
    // Input now lands on the right monitor.
    viewer.send_input(InputEvent::MouseMove { x: 10, y: 20 }).await.expect("send");
    eventually(|| x.mouse() == (650, 20), "the pointer on the right monitor").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clipboard_text_goes_both_ways_only_with_control() {
    use tether_viewer::session::HostNotice;
    let x = Xvfb::start(800, 600);
    let relay = start_relay(|_| {});
    let (_host, viewer) = share(&relay, &x, "view,control").await;
    let mut notices = viewer.notices();

    // Technician → host: lands on the host's X clipboard.
    viewer.send_clipboard("from the technician: ünïcödé ✓").await.expect("send");
    let arrived = || {
        x.try_run("xclip", &["-o", "-selection", "clipboard"]).as_deref()
            == Some("from the technician: ünïcödé ✓")
    };
    eventually(arrived, "the host's clipboard").await;

    // Host → technician, once the viewer watches the clipboard.
    viewer.watch_clipboard(true).await.expect("watch");
    let copy = std::process::Command::new("sh")
        .args(["-c", "printf 'copied on the host' | xclip -selection clipboard"])
        .env("DISPLAY", &x.display)
        .status()
        .expect("xclip");
    assert!(copy.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, notices.recv()).await.expect("the host's clipboard in time") {
            Ok(HostNotice::Clipboard(text)) if text == "copied on the host" => break,
            Ok(_) => continue,
            Err(e) => panic!("notices: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_control_the_clipboard_is_left_alone() {
    use tether_viewer::session::HostNotice;
    let x = Xvfb::start(800, 600);
    let relay = start_relay(|_| {});
    let (_host, viewer) = share(&relay, &x, "view").await;
    let mut notices = viewer.notices();
    viewer.send_clipboard("should not arrive").await.expect("send");
    let notice =
        tokio::time::timeout(Duration::from_secs(10), notices.recv()).await.expect("a notice").expect("open");
    assert!(matches!(&notice, HostNotice::Notice(t) if t.contains("control")), "{notice:?}");
    assert_ne!(x.try_run("xclip", &["-o", "-selection", "clipboard"]).as_deref(), Some("should not arrive"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_captured_screen_is_in_no_shared_memory_others_can_open() {
    let x = Xvfb::start(800, 600);
    let relay = start_relay(|_| {});
    let (host, viewer) = share(&relay, &x, "view").await;
    viewer.next_frame(None).await.expect("capturing");
    let pid = host.child.id().expect("host pid").to_string();
    // SysV segments are what a capture library would leave open to other users (scrap used mode 0777).
    // Columns: key shmid perms size cpid lpid …
    let table = std::fs::read_to_string("/proc/sysvipc/shm").expect("/proc/sysvipc/shm");
    let ours: Vec<&str> =
        table.lines().skip(1).filter(|l| l.split_whitespace().nth(4) == Some(pid.as_str())).collect();
    assert!(ours.is_empty(), "the host made SysV shared memory segments: {ours:?}");
    // What the host does hold is a memory file with no name anywhere, shared only with the X server.
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("host fds");
    let memfds = fds
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("/memfd:tether-capture"))
        .count();
    assert_eq!(memfds, 1, "one private capture buffer");
}

/// An xterm full of text dragged across the desktop with xdotool, a step at a time: after every step
/// the viewer's picture equals the X screen, and the drag costs copies, not the window's pixels again
/// (the window's text alone is tens of kilobytes an update).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dragged_window_arrives_pixel_exact_as_copies() {
    let mut x = Xvfb::start(XW, XH);
    let script = "seq -f 'a line of text in a dragged window, number %g' 1 30; exec sleep 600";
    x.spawn("xterm", &["-geometry", "70x26+20+20", "-title", "dragged", "-e", "sh", "-c", script]);
    eventually(|| x.try_run("xdotool", &["search", "--name", "dragged"]).is_some(), "the xterm window").await;
    let id = x.run("xdotool", &["search", "--name", "dragged"]).trim().to_owned();

    let relay = start_relay(|_| {});
    let (_host, viewer) = share(&relay, &x, "view").await;
    viewer.next_frame(None).await.expect("first frame");
    assert_view_matches_screen(&viewer, &x, "before the drag").await;

    let before = viewer.link_stats().bytes_received;
    for step in 1..=12u32 {
        let (px, py) = ((20 + 17 * step).to_string(), (20 + 9 * step).to_string());
        x.run("xdotool", &["windowmove", "--sync", &id, &px, &py]);
        assert_view_matches_screen(&viewer, &x, &format!("after drag step {step}")).await;
    }
    // Measured: ~150 bytes a step as copies, ~12.5 KB a step when the window's text is sent again.
    let moved = viewer.link_stats().bytes_received - before;
    assert!(moved < 20_000, "{moved} bytes for twelve steps of the drag");
    viewer.close().await;
}
