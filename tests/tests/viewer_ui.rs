//! The technician's window, driven like a person would (egui_kittest: clicks and typing, no display),
//! against a real relay and a real host on loopback: connect by code, wrong code, the screen arriving,
//! chat both ways, control revoked by the user mid-session, a file dropped on the window reaching the host.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use egui::accesskit::Role;
use egui_kittest::kittest::{NodeT, Queryable};
use egui_kittest::Harness;
use tether_host::files::UploadPolicy;
use tether_host::HostEvent;
use tether_shared::files::proto::FileDigest;
use tether_shared::record::{Direction, EventKind, Outcome, Side, Transfer};
use tether_shared::session_proto::Permissions;
use tether_viewer::ui::{ConnectForm, ViewerApp};

/// A viewer window with a settings file of its own (tests run in parallel; the viewer remembers the
/// relay there).
fn app(dir: &Path, prefill: ConnectForm) -> ViewerApp {
    ViewerApp::with_settings_file(prefill, Some(dir.join("viewer.json"))).expect("app")
}

fn harness(app: ViewerApp) -> Harness<'static, ViewerApp> {
    Harness::builder().with_size([1280.0, 800.0]).build_ui_state(|ui, app: &mut ViewerApp| app.show(ui), app)
}

/// Step the UI (with real time passing) until `done` holds.
fn step_until(harness: &mut Harness<'_, ViewerApp>, what: &str, done: impl Fn(&mut ViewerApp) -> bool) {
    let start = Instant::now();
    while !done(harness.state_mut()) {
        assert!(start.elapsed() < Duration::from_secs(15), "timed out waiting for: {what}");
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    harness.run_steps(2);
}

/// Step the UI until a widget whose label contains `label` shows (listings arrive over the network).
fn wait_for_label(harness: &mut Harness<'_, ViewerApp>, label: &str) {
    let start = Instant::now();
    while harness.query_by_label_contains(label).is_none() {
        assert!(start.elapsed() < Duration::from_secs(10), "{label:?} never showed");
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Fill in the connect form by typing into it, as the technician would.
fn fill_form(harness: &mut Harness<'_, ViewerApp>, relay: &TestRelay, code_digits: &str) {
    let fields = [
        ("Code", code_digits.to_string()),
        ("Your name", "Erin".to_string()),
        ("Relay", relay.handle.local_addr().to_string()),
        ("Relay fingerprint", relay.handle.fingerprint().to_string()),
    ];
    for (label, text) in fields {
        harness.get_by_role_and_label(Role::TextInput, label).focus();
        harness.step();
        harness.get_by_role_and_label(Role::TextInput, label).type_text(&text);
        harness.run_steps(2);
    }
}

struct Rig {
    /// The viewer's settings live here.
    home: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    relay: TestRelay,
    host: TestHost,
    incoming: tempfile::TempDir,
    /// A folder the host shares, with `reports/summary.txt` in it.
    shared: tempfile::TempDir,
}

fn rig() -> Rig {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let incoming = tempfile::tempdir().expect("temp dir");
    let shared = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(shared.path().join("reports")).expect("mkdir");
    std::fs::write(shared.path().join("reports").join("summary.txt"), SUMMARY).expect("write");
    let (relay, host) = rt.block_on(async {
        let relay = start_relay(|_| {});
        let mut cfg = host_config(&relay, Permissions::ALL);
        cfg.session.files.shared.push(("Documents".into(), shared.path().to_path_buf()));
        cfg.session.files.incoming = Some(incoming.path().to_path_buf());
        cfg.uploads = UploadPolicy::Allow;
        let host = start_host_with(cfg, || {
            tether_host::capture::open(tether_host::capture::Source::TestPattern { width: W, height: H })
        });
        (relay, host)
    });
    Rig { home: tempfile::tempdir().expect("temp dir"), rt, relay, host, incoming, shared }
}

const SUMMARY: &[u8] = b"Printer spooler restarted at 10:42. Queue cleared.\n";

impl Rig {
    fn code(&mut self) -> String {
        self.rt.block_on(self.host.next_code()).to_string()
    }

    fn event(&mut self, want: impl Fn(&HostEvent) -> bool) -> HostEvent {
        self.rt.block_on(async {
            loop {
                let event = self.host.next_event().await;
                if want(&event) {
                    return event;
                }
            }
        })
    }
}

/// The rig, and a window that connected to its host by typing the code into the form.
fn connected() -> (Rig, Harness<'static, ViewerApp>) {
    let mut rig = rig();
    let code = rig.code();
    let mut ui = harness(app(rig.home.path(), ConnectForm::default()));
    fill_form(&mut ui, &rig.relay, &code.replace('-', ""));
    ui.get_by_label("Connect").click();
    step_until(&mut ui, "the session", |app| app.is_live());
    (rig, ui)
}

/// A file dropped on the window, as the windowing layer (egui-winit) hands it over.
#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

#[test]
fn connect_watch_chat_revoke_and_drop_a_file() {
    let mut rig = rig();
    let code = rig.code();
    let mut ui = harness(app(rig.home.path(), ConnectForm::default()));

    // The code formats as it is typed.
    fill_form(&mut ui, &rig.relay, &code.replace('-', ""));
    assert_eq!(ui.state().form.code, code);
    ui.get_by_label("Connect").click();
    step_until(&mut ui, "the session", |app| app.is_live());
    match rig.event(|e| matches!(record_kind(e), Some(EventKind::Connected { .. }))).record().map(|e| &e.kind)
    {
        Some(EventKind::Connected { technician, granted, .. }) => {
            assert_eq!(technician, "Erin");
            assert_eq!(*granted, Permissions::ALL);
        }
        _ => unreachable!(),
    }
    let HostEvent::Live(handle) = rig.event(|e| matches!(e, HostEvent::Live(_))) else { unreachable!() };
    step_until(&mut ui, "the host's screen", |app| {
        app.live().is_some_and(|l| l.screen.size() == [W as usize, H as usize])
    });
    ui.get_by_label_contains("Host screen 320×240");
    ui.get_by_label("View only"); // control was granted

    // Chat: the technician writes, the user reads; the user answers, the technician reads.
    ui.get_by_label("Chat").click();
    ui.run_steps(2);
    ui.get_by_role(Role::TextInput).focus();
    ui.step();
    ui.get_by_role(Role::TextInput).type_text("Restarting the print spooler now");
    ui.run_steps(2);
    ui.get_by_label("Send").click();
    ui.run_steps(2);
    match rig.event(|e| matches!(record_kind(e), Some(EventKind::Chat { .. }))).record().map(|e| &e.kind) {
        Some(EventKind::Chat { from, text }) => {
            assert_eq!((*from, text.as_str()), (Side::Technician, "Restarting the print spooler now"))
        }
        _ => unreachable!(),
    }
    ui.get_by_label("You: Restarting the print spooler now");
    handle.chat("Thanks, go ahead").expect("chat");
    step_until(&mut ui, "the user's chat line", |app| {
        app.live().is_some_and(|l| {
            l.chat.contains(&tether_viewer::ui::live::ChatLine::Host("Thanks, go ahead".into()))
        })
    });
    ui.get_by_label("User: Thanks, go ahead");

    // The user revokes control: the toolbar offers to ask for it again.
    handle.set_permissions(Permissions { view: true, control: false, files: true });
    step_until(&mut ui, "control revoked", |app| app.live().is_some_and(|l| !l.grants().control));
    ui.get_by_label("Request control");
    ui.get_by_label_contains("Allowed: view, files");

    // A file dropped on the window goes to the host, whole.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("diagnostics.log");
    let body: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
    std::fs::write(&file, &body).expect("write");
    ui.input_mut().dropped_files.push(Arc::new(Dropped(file)));
    ui.step();
    let transfer = rig.event(|e| matches!(record_kind(e), Some(EventKind::Transfer(_))));
    match record_kind(&transfer) {
        Some(EventKind::Transfer(Transfer {
            direction: Direction::Upload,
            outcome: Outcome::Completed { names, files },
            ..
        })) => {
            assert_eq!(names, &["diagnostics.log"]);
            assert_eq!(files.len(), 1);
            assert_eq!((files[0].size, files[0].hash.0), (body.len() as u64, FileDigest::of(&body)));
        }
        other => panic!("expected the file, got {other:?}"),
    }
    assert_eq!(std::fs::read(rig.incoming.path().join("diagnostics.log")).expect("arrived"), body);
    step_until(&mut ui, "the transfer shown as done", |app| {
        app.live().is_some_and(|l| l.files.active() == 0)
    });
    // The files panel opened by itself when the file was dropped, and shows the result.
    ui.get_by_label_contains("Done: diagnostics.log (1.2 MB)");

    // End session: back at the connect screen, which says so.
    ui.get_by_label("End session").click();
    step_until(&mut ui, "the connect screen", |app| !app.is_live());
    ui.get_by_label_contains("You ended the session");
    let report = rig.rt.block_on(rig.host.report()).expect("session ran");
    assert_eq!(report.technician, "Erin");
    // The next start remembers the relay, its fingerprint and the name — never the code.
    let again = app(rig.home.path(), ConnectForm::default());
    assert_eq!(again.form.relay, rig.relay.handle.local_addr().to_string());
    assert_eq!(again.form.fingerprint, rig.relay.handle.fingerprint().to_string());
    assert_eq!((again.form.name.as_str(), again.form.code.as_str()), ("Erin", ""));
    let remembered = std::fs::read_to_string(rig.home.path().join("viewer.json")).expect("settings");
    assert!(!remembered.contains(&code[4..]), "the code's secret was written down: {remembered}");
}

#[test]
fn a_wrong_code_says_so() {
    let mut rig = rig();
    let code = rig.code();
    // Same nameplate, different secret.
    let digits: String = code.chars().filter(char::is_ascii_digit).collect();
    let last = digits.chars().last().expect("digit");
    let wrong = format!("{}{}", &digits[..digits.len() - 1], if last == '0' { '1' } else { '0' });
    let mut ui = harness(app(rig.home.path(), ConnectForm::default()));
    fill_form(&mut ui, &rig.relay, &wrong);
    ui.get_by_label("Connect").click();
    step_until(&mut ui, "an error", |app| app.error().is_some());
    assert_eq!(ui.state().error().expect("error").0, "Wrong code");
    ui.get_by_label("Wrong code");
    assert!(!ui.state().is_live());
    // The form stays filled, so the technician can correct the code.
    assert_eq!(ui.state().form.relay, rig.relay.handle.local_addr().to_string());
}

#[test]
fn browse_the_hosts_shared_folder_and_fetch_a_file() {
    let mut rig = rig();
    let code = rig.code();
    let mut ui = harness(app(rig.home.path(), ConnectForm::default()));
    fill_form(&mut ui, &rig.relay, &code);
    ui.get_by_label("Connect").click();
    step_until(&mut ui, "the session", |app| app.is_live());
    let downloads = tempfile::tempdir().expect("temp dir");
    if let Some(live) = ui.state_mut().live() {
        live.downloads = downloads.path().display().to_string();
    }
    ui.get_by_label("Files").click();
    ui.run_steps(2);
    // The shared folders, then into one, then fetch the file.
    wait_for_label(&mut ui, "Documents/");
    ui.get_by_label("Documents/").click();
    wait_for_label(&mut ui, "reports/");
    ui.get_by_label("reports/").click();
    wait_for_label(&mut ui, "summary.txt");
    ui.run_steps(2); // a new grid lays itself out in its first frame, without taking clicks
    ui.get_by_label("Fetch").click();
    let fetched = downloads.path().join("summary.txt");
    step_until(&mut ui, "the file fetched", |_| fetched.exists());
    step_until(&mut ui, "the transfer done", |app| app.live().is_some_and(|l| l.files.active() == 0));
    ui.get_by_label_contains("Done: summary.txt");
    assert_eq!(std::fs::read(&fetched).expect("fetched"), SUMMARY);
    // Finished transfers stay listed until the technician clears them.
    ui.get_by_label("Clear finished").click();
    ui.run_steps(2);
    assert!(ui.query_by_label_contains("Done: summary.txt").is_none(), "cleared");
    ui.get_by_label("None yet.");
    drop(rig.shared);
}

#[test]
fn an_unreachable_relay_and_a_wrong_fingerprint_say_so() {
    let home = tempfile::tempdir().expect("temp dir");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let relay = rt.block_on(async { start_relay(|_| {}) });
    // A wrong fingerprint: the relay's certificate does not match.
    let mut app = app(
        home.path(),
        ConnectForm {
            relay: relay.handle.local_addr().to_string(),
            fingerprint: "00".repeat(32),
            code: "123-456-7890".into(),
            ..ConnectForm::default()
        },
    );
    app.timeouts.pairing = Duration::from_secs(3);
    let mut ui = harness(app);
    ui.get_by_label("Connect").click();
    step_until(&mut ui, "an error", |app| app.error().is_some());
    let (headline, detail) = ui.state().error().cloned().expect("error");
    assert!(headline.contains("certificate") || headline.contains("Fingerprint"), "{headline}: {detail}");
    // Nobody listening: unreachable (quickly, not after minutes).
    // (The socket stays bound and silent for the whole test, so no relay started meanwhile can take it.)
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr");
    let mut app = self::app(
        home.path(),
        ConnectForm {
            relay: port.to_string(),
            fingerprint: relay.handle.fingerprint().to_string(),
            code: "123-456-7890".into(),
            ..ConnectForm::default()
        },
    );
    app.timeouts = fast_timeouts();
    let mut ui = harness(app);
    ui.get_by_label("Connect").click();
    step_until(&mut ui, "an error", |app| app.error().is_some());
    let (headline, detail) = ui.state().error().cloned().expect("error");
    assert!(headline.contains("unreachable") || headline.contains("Timed out"), "{headline}: {detail}");
    ui.get_by_label(&headline);
}

#[test]
fn the_people_panel_invites_a_colleague_who_joins_and_gets_control_handed_over() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let home = tempfile::tempdir().expect("temp dir");
    let (relay, mut host) = rt.block_on(async {
        let relay = start_relay(|_| {});
        let mut cfg = host_config(&relay, Permissions { view: true, control: true, files: false });
        cfg.invites = true;
        let host = start_host_with(cfg, test_pattern);
        (relay, host)
    });
    let code = rt.block_on(host.next_code()).to_string();
    let mut ui = harness(app(home.path(), ConnectForm::default()));
    fill_form(&mut ui, &relay, &code.replace('-', ""));
    ui.get_by_label("Connect").click();
    step_until(&mut ui, "the session", |app| app.is_live());

    // People → Invite a colleague: the code to read out shows.
    ui.get_by_label("People (1)").click();
    ui.run_steps(2);
    ui.get_by_label("Invite a colleague").click();
    wait_for_label(&mut ui, "Read this code to your colleague");
    let session = ui.state_mut().live().expect("live").session.clone();
    let invite = match session.invite_news().borrow().clone() {
        Some(tether_shared::session_proto::InviteNews::Code { code, .. }) => code,
        other => panic!("no code: {other:?}"),
    };
    ui.get_by_label(&invite);

    // Bob joins by it; Erin's panel lists him, invited by Erin.
    let bob_cfg = tether_viewer::session::ViewerConfig { technician: "Bob".into(), ..viewer_config(&relay) };
    let invite = tether_shared::code::Code::parse(&invite).expect("code");
    let bob =
        rt.block_on(tether_viewer::session::ViewerSession::connect(&bob_cfg, &invite)).expect("Bob joins");
    wait_for_label(&mut ui, "Invited by Erin");
    ui.get_by_label_contains("People (2)");

    // Erin takes control; her panel offers to hand it to Bob; a click does.
    rt.block_on(session.request_control()).expect("asked");
    wait_for_label(&mut ui, "Hand control to Bob");
    ui.get_by_label("Hand control to Bob").click();
    ui.run_steps(2);
    let mut roster = bob.participants();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), roster.wait_for(|r| r.you_control())).await
    })
    .expect("in time")
    .expect("Bob has control");
    wait_for_label(&mut ui, "Bob has control");

    // Bob's chat line shows in Erin's chat, signed.
    rt.block_on(bob.chat("I see the driver error")).expect("sent");
    ui.get_by_label_contains("Chat").click();
    wait_for_label(&mut ui, "Bob: I see the driver error");
    ui.get_by_label("Bob joined the session, invited by Erin.");
    // Bob leaves: Erin's chat says so, and she carries on.
    rt.block_on(bob.close());
    wait_for_label(&mut ui, "Bob left the session; you continue.");
    wait_for_label(&mut ui, "People (1)");
}

#[test]
fn notes_typed_in_the_panel_go_into_both_copies_of_the_session_record() {
    let (mut rig, mut ui) = connected();
    ui.get_by_label("Notes").click();
    ui.run_steps(2);
    for (field, text) in [(0, "Printer offline"), (2, "Restarted the spooler"), (3, "HD-4711")] {
        ui.get_all_by_role(Role::MultilineTextInput)
            .chain(ui.get_all_by_role(Role::TextInput))
            .nth(field)
            .expect("a notes field")
            .focus();
        ui.step();
        ui.get_all_by_role(Role::MultilineTextInput)
            .chain(ui.get_all_by_role(Role::TextInput))
            .nth(field)
            .expect("a notes field")
            .type_text(text);
        ui.run_steps(2);
    }
    ui.get_by_label("Save notes").click();
    ui.run_steps(2);
    let saved = rig.event(|e| matches!(record_kind(e), Some(EventKind::Notes(_))));
    match record_kind(&saved) {
        Some(EventKind::Notes(notes)) => {
            assert_eq!(notes.problem, "Printer offline");
            assert_eq!(notes.steps, "");
            assert_eq!(notes.resolution, "Restarted the spooler");
            assert_eq!(notes.ticket, "HD-4711");
        }
        _ => unreachable!(),
    }
    step_until(&mut ui, "the notes in the viewer's copy of the record", |app| {
        app.live().is_some_and(|l| {
            l.session
                .session_record()
                .iter()
                .any(|e| matches!(&e.event.kind, EventKind::Notes(n) if n.ticket == "HD-4711"))
        })
    });
    ui.get_by_label("Saved.");

    // End session → Save report: the HTML and the JSON in the downloads folder; the JSON verifies.
    let downloads = tempfile::tempdir().expect("temp dir");
    ui.state_mut().live().expect("live").downloads = downloads.path().display().to_string();
    ui.get_by_label("End session").click();
    wait_for_label(&mut ui, "Save report");
    ui.get_by_label("Save report").click();
    wait_for_label(&mut ui, "Report saved:");
    let saved: Vec<_> =
        std::fs::read_dir(downloads.path()).expect("list").map(|e| e.expect("entry").path()).collect();
    let json = saved.iter().find(|p| p.extension().is_some_and(|e| e == "json")).expect("the JSON record");
    let html = std::fs::read_to_string(json.with_extension("html")).expect("the HTML report beside it");
    let record =
        tether_shared::record::file::RecordFile::from_json(&std::fs::read_to_string(json).expect("read"))
            .expect("parses");
    record.verify().expect("the saved record verifies");
    assert!(html.contains("Ticket: HD-4711") && html.contains("The technician&#39;s copy"), "{html}");
}

#[test]
fn the_system_panel_searches_the_package_list_and_keeps_the_inventory_in_the_record() {
    let (mut rig, mut ui) = connected();
    ui.get_by_label("System").click();
    wait_for_label(&mut ui, "installed packages");
    let all = ui.get_by_label_contains("installed packages").accesskit_node().label().unwrap_or_default();
    // libc6 is on every Debian system, bash too.
    ui.get_by_role(Role::TextInput).focus();
    ui.step();
    ui.get_by_role(Role::TextInput).type_text("libc6");
    ui.run_steps(3);
    let count =
        ui.get_by_label_contains("installed packages match").accesskit_node().label().unwrap_or_default();
    let total: usize = all.split(' ').next().and_then(|n| n.parse().ok()).expect("a count");
    let shown: usize = count.split(' ').next().and_then(|n| n.parse().ok()).expect("a count");
    assert!(shown >= 1 && shown < total, "{count} (of {total})");
    assert!(ui.query_by_label_contains("libc6 ").is_some(), "libc6 listed");
    assert!(ui.query_by_label_contains("bash ").is_none(), "bash filtered out");

    ui.get_by_label("Keep in record").click();
    ui.run_steps(2);
    let kept = rig.event(|e| matches!(record_kind(e), Some(EventKind::Inventory { .. })));
    assert!(
        matches!(record_kind(&kept), Some(EventKind::Inventory { summary, .. }) if summary.contains("packages"))
    );
    wait_for_label(&mut ui, "Kept in the session record");
}
