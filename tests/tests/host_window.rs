//! The host window over a real relay and a real viewer: the window's own launcher runs `run_host`, the
//! test clicks through the window with egui_kittest (no display) while a `ViewerSession` plays the
//! technician — consent, sharing, chat, revoking control and Stop, end to end.

mod common;

use std::time::Duration;

use common::*;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use tether_host::capture::Source;
use tether_host::ui::clock::Clock;
use tether_host::ui::{HostApp, Launcher};
use tether_shared::code::Code;
use tether_shared::session_proto::Permissions;
use tether_viewer::session::{HostNotice, ViewerSession};

const VIEW_CONTROL: Permissions = Permissions { view: true, control: true, files: false };

fn shows(harness: &Harness<'_, HostApp>, label: &str) -> bool {
    harness.query_all_by_label_contains(label).next().is_some()
}

/// Step the window (the runtime works meanwhile) until `done` holds.
fn step_until(harness: &mut Harness<'_, HostApp>, what: &str, done: impl Fn(&Harness<'_, HostApp>) -> bool) {
    for _ in 0..1000 {
        harness.step();
        if done(harness) {
            harness.run_steps(3);
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{what} did not happen within 10 s");
}

#[test]
fn the_window_runs_a_session_with_a_real_viewer() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let relay = {
        let _inside = rt.enter();
        start_relay(|_| {})
    };
    let cfg = host_config(&relay, Permissions::ALL);
    let source = Source::TestPattern { width: W, height: H };
    let launcher = Launcher::new(rt.handle().clone(), cfg, source, egui::Context::default());
    let app = HostApp::new(Box::new(launcher), Clock::local(), "/nowhere");
    let mut harness = Harness::builder()
        .with_size(egui::vec2(800.0, 900.0))
        .build_ui_state(|ui, app: &mut HostApp| app.ui(ui), app);

    step_until(&mut harness, "a code", |h| h.state().code_text().is_some());
    let code = Code::parse(harness.state().code_text().expect("code")).expect("a code on screen parses");
    assert!(shows(&harness, &code.to_string()), "the code is on screen as NNN-SSS-SSSS");

    // The technician connects; the window asks the user.
    let vcfg = viewer_config(&relay);
    let viewer = rt.spawn(async move { ViewerSession::connect(&vcfg, &code).await });
    step_until(&mut harness, "the consent dialog", |h| shows(h, "Someone wants to connect"));
    assert!(shows(&harness, "Test Technician"));
    assert!(shows(&harness, "(name not verified)"));
    harness.get_by_label("Allow").click();
    harness.run_steps(2);
    let viewer = rt.block_on(viewer).expect("no panic").expect("session");
    assert_eq!(viewer.granted(), VIEW_CONTROL);
    step_until(&mut harness, "the sharing bar", |h| {
        shows(h, "Your screen is being shared with Test Technician")
    });

    // Chat both ways.
    let mut notices = viewer.notices();
    rt.block_on(viewer.chat("Hello from the technician")).expect("chat");
    step_until(&mut harness, "the technician's message", |h| shows(h, "Hello from the technician"));
    let input = harness.get_by_role(egui::accesskit::Role::TextInput);
    input.focus();
    input.type_text("Hello back");
    harness.run_steps(2);
    harness.get_by_label("Send").click();
    harness.run_steps(2);
    let heard = rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), notices.recv()).await });
    assert!(matches!(heard, Ok(Ok(HostNotice::Chat(ref t))) if t == "Hello back"), "viewer got {heard:?}");

    // The user takes control back: the viewer is told.
    harness.get_by_label("Use your mouse and keyboard").click();
    harness.run_steps(2);
    let mut grants = viewer.grants();
    let revoked = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), grants.wait_for(|g| *g == Permissions::VIEW_ONLY)).await
    });
    assert!(matches!(revoked, Ok(Ok(_))), "the viewer hears control was revoked");

    // Stop ends the session for both.
    harness.get_by_label("Stop sharing").click();
    harness.run_steps(2);
    let closed = rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), viewer.closed()).await });
    assert!(closed.is_ok(), "the viewer's session ends");
    step_until(&mut harness, "the end report", |h| shows(h, "Sharing has ended"));
    assert!(shows(&harness, "You stopped sharing"));
    let log: Vec<String> = harness.state().log().entries().iter().map(|e| e.text.clone()).collect();
    for expected in
        ["connected", "You allowed", "Hello from the technician", "You wrote: Hello back", "You took back"]
    {
        assert!(log.iter().any(|l| l.contains(expected)), "log has {expected:?}: {log:#?}");
    }
}
