//! The session record both ends keep (issue 20), over the real relay and real QUIC: a session with chat
//! both ways, a permission change, an upload and a fetch leaves the host and the viewer holding the same
//! hash chain, which verifies, and which the viewer confirmed to the host head by head. A viewer that
//! confirms a head the host did not make, and a host that sends an entry that does not extend the record
//! or carries the wrong MAC, end the session as a protocol violation.

mod common;

use std::time::Duration;

use common::*;
use tether_host::files::UploadPolicy;
use tether_host::HostEvent;
use tether_shared::end::{EndReason, Side, Violation};
use tether_shared::net::pairing::connect_viewer;
use tether_shared::record::chain::{self, Entry};
use tether_shared::record::{Direction, EventKind, Outcome, SessionEvent};
use tether_shared::relay_proto::resume_commitment;
use tether_shared::session_proto::{Hello, HelloReply, HostControl, Notes, Permissions, ViewerControl};
use tether_shared::wire::{self, MAX_CONTROL_MSG};
use tether_shared::PROTOCOL_VERSION;
use tether_viewer::session::{ViewerError, ViewerSession};

fn transfers(record: &[Entry], direction: Direction) -> usize {
    record
        .iter()
        .filter(|e| {
            matches!(&e.event.kind, EventKind::Transfer(t)
                if t.direction == direction && matches!(t.outcome, Outcome::Completed { .. }))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_and_viewer_hold_the_same_verified_record() {
    let shared = tempfile::tempdir().expect("temp dir");
    std::fs::write(shared.path().join("report.txt"), b"spooler log\n").expect("write");
    let incoming = tempfile::tempdir().expect("temp dir");
    let relay = start_relay(|_| {});
    let mut cfg = host_config(&relay, Permissions::ALL);
    cfg.session.files.shared.push(("Shared".into(), shared.path().to_path_buf()));
    cfg.session.files.incoming = Some(incoming.path().to_path_buf());
    cfg.uploads = UploadPolicy::Allow;
    let mut host = start_host_with(cfg, test_pattern);
    let code = host.next_code().await;
    let viewer_cfg = tether_viewer::session::ViewerConfig { want: Permissions::ALL, ..viewer_config(&relay) };
    let viewer = ViewerSession::connect(&viewer_cfg, &code).await.expect("pairs");
    let handle = loop {
        if let HostEvent::Live(handle) = host.next_event().await {
            break handle;
        }
    };

    viewer.chat("Restarting the spooler").await.expect("sent");
    handle.chat("Thanks").expect("sent");
    let local = tempfile::tempdir().expect("temp dir");
    let upload = local.path().join("fix.sh");
    std::fs::write(&upload, b"#!/bin/sh\necho fixed\n").expect("write");
    viewer.files().upload(&upload).result().await.expect("uploaded");
    let fetched = tempfile::tempdir().expect("temp dir");
    let fetch =
        viewer.files().fetch(vec!["Shared".into(), "report.txt".into()], fetched.path().to_path_buf());
    fetch.result().await.expect("fetched");
    // The technician gives up files: a permission change; then writes the notes.
    viewer.request_permissions(Permissions { files: false, ..Permissions::ALL }).await.expect("asked");
    let notes = Notes {
        problem: "Printing failed with \"spooler not running\".".into(),
        steps: "Restarted the print spooler; sent fix.sh; fetched the spooler log.".into(),
        resolution: "Prints again.".into(),
        ticket: "HD-4711".into(),
    };
    viewer.save_notes(notes).await.expect("saved");
    eventually(
        || {
            let record = viewer.session_record();
            transfers(&record, Direction::Upload) == 1
                && transfers(&record, Direction::Fetch) == 1
                && record.iter().any(|e| matches!(e.event.kind, EventKind::PermissionsChanged { .. }))
                && record.iter().filter(|e| matches!(e.event.kind, EventKind::Chat { .. })).count() == 2
                && record.iter().any(|e| matches!(e.event.kind, EventKind::Notes(_)))
        },
        "the viewer's record holds the chat, both transfers and the change",
    )
    .await;
    let session = viewer.record_session();
    // Left first: the record the viewer then holds has the end the host sent as the session closed.
    viewer.leave().await;
    let ours = viewer.session_record();
    let report = host.report().await.expect("a report");

    assert_eq!(report.record, ours, "host and viewer hold the same record, the end included");
    let head = chain::verify(&session, &ours).expect("the record verifies");
    assert_eq!(head, ours.last().expect("entries").hash);
    // Every head but the end's: the viewer had gone when that arrived.
    assert_eq!(report.record_confirmed, ours.len() as u64 - 1, "the viewer confirmed every head");
    assert!(
        matches!(&ours[0].event.kind, EventKind::CodeIssued { relay, invited_by: None } if relay == "localhost")
    );
    assert!(ours[0].event.at <= ours[1].event.at, "the code came before the technician");
    assert!(matches!(ours[1].event.kind, EventKind::Connected { .. }), "{:?}", ours[1].event);
    let last = &ours.last().expect("entries").event.kind;
    assert!(matches!(last, EventKind::Ended { reason: EndReason::ViewerLeft }), "{last:?}");
    drop(viewer);
    // The record holds what happened, never content: the upload by name, size and hash, not its bytes.
    let json = serde_json::to_string(&ours).expect("json");
    assert!(json.contains("fix.sh") && !json.contains("echo fixed"), "{json}");
    // A report for a person to look at, next to the windows' screenshots.
    let shots = bin("tether-viewer").parent().expect("target dir").join("screenshots");
    std::fs::create_dir_all(&shots).expect("dir");
    let file = tether_shared::record::file::RecordFile::new(session, ours);
    let html = file.save(&shots.join("report-sample.json"), "The technician's copy").expect("saved");
    assert!(std::fs::read_to_string(html).expect("read").contains("HD-4711"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_confirming_a_head_the_host_did_not_make_ends_the_session() {
    let relay = start_relay(|_| {});
    let mut host = start_host(&relay, Permissions::VIEW_ONLY);
    let code = host.next_code().await;
    let session = connect_viewer(&relay.spec(), &code, fast_timeouts(), None).await.expect("pairs");
    let (mut send, mut recv) = session.conn.open_bi().await.expect("stream");
    let hello = Hello { version: PROTOCOL_VERSION, technician: "x".into(), want: Permissions::VIEW_ONLY };
    wire::write_msg(&mut send, &hello, MAX_CONTROL_MSG).await.expect("hello");
    let welcome: Option<HelloReply> = wire::read_msg(&mut recv, MAX_CONTROL_MSG).await.expect("welcome");
    assert!(matches!(welcome, Some(HelloReply::Welcome { .. })));
    // A head for one entry, under the right key, but of a record the host never made.
    let key = chain::mac_key(&session.resume_id);
    let forged = ViewerControl::RecordHead { len: 1, mac: chain::head_mac(&key, 1, &[9; 32]) };
    wire::write_msg(&mut send, &forged, MAX_CONTROL_MSG).await.expect("sent");
    match host.report().await.expect("a report").end {
        EndReason::ProtocolViolation { by: Side::Viewer, detail: Violation::Record(_) } => {}
        other => panic!("expected a record violation, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_sending_an_entry_that_does_not_fit_is_disconnected_by_the_viewer() {
    let relay = start_relay(|_| {});
    for case in ["skips an entry", "wrong mac"] {
        let mut host = host_by_hand(&relay, viewer_config(&relay).want).await;
        let viewer = host.welcome(Permissions::VIEW_ONLY).await;
        let (session, ctl_send) = (&host.session, &mut host.control.0);
        let key = chain::mac_key(&session.resume_id);
        let genesis = chain::genesis(&resume_commitment(&session.resume_id));
        let event = SessionEvent::new(std::time::SystemTime::now(), EventKind::MonitorSwitched { index: 0 });
        let record = match case {
            "skips an entry" => {
                let entry = Entry::new(1, event, genesis);
                let mac = chain::head_mac(&key, 2, &entry.hash);
                HostControl::Record { entry, mac }
            }
            _ => HostControl::Record { entry: Entry::new(0, event, genesis), mac: [0; 32] },
        };
        wire::write_msg(ctl_send, &record, MAX_CONTROL_MSG).await.expect("sent");
        let why =
            tokio::time::timeout(Duration::from_secs(5), viewer.closed()).await.expect("the viewer reacts");
        assert!(
            matches!(
                &why,
                ViewerError::Ended(EndReason::ProtocolViolation {
                    by: Side::Host,
                    detail: Violation::Record(_)
                })
            ),
            "{case}: {why:?}"
        );
        assert!(viewer.session_record().is_empty(), "{case}: nothing taken");
    }
}

/// `tether-viewer report verify FILE`: its stdout and whether it succeeded.
async fn verify_file(path: &std::path::Path) -> (bool, String, String) {
    let out = tokio::process::Command::new(bin("tether-viewer"))
        .args(["report", "verify", path.to_str().expect("utf-8")])
        .output()
        .await
        .expect("runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_ends_save_the_record_and_verify_finds_any_edit() {
    use common::procs::{Proc, RelayProc};
    let dir = tempfile::tempdir().expect("temp");
    let relay = RelayProc::start(dir.path()).await;
    let (host_file, viewer_file) = (dir.path().join("host.json"), dir.path().join("viewer.json"));
    let host_args = cli_args(
        &relay.addr,
        &relay.fingerprint,
        &["--headless", "--grant", "view,control", "--save-record", host_file.to_str().expect("utf-8")],
    );
    let mut host = Proc::spawn("tether-host", &host_args);
    let code = host.line("code").await;
    let viewer_args = cli_args(
        &relay.addr,
        &relay.fingerprint,
        &["--code", &code, "--stay-secs", "1", "--save-record", viewer_file.to_str().expect("utf-8")],
    );
    let mut viewer = Proc::spawn("tether-viewer", &viewer_args);
    let viewer_says = viewer.line("record").await;
    assert!(viewer.wait().await.success());
    let host_says = host.line("record").await;
    assert!(host.wait().await.success());
    assert_eq!(viewer_says, host_says, "the same number of entries and the same head");

    let (ok, out, _) = verify_file(&viewer_file).await;
    assert!(ok, "{out}");
    let (ok, host_out, _) = verify_file(&host_file).await;
    assert!(ok && host_out == out, "{host_out} vs {out}");

    // Edit the user's answer in the viewer's copy: verify names the entry.
    let saved = std::fs::read_to_string(&viewer_file).expect("read");
    let edited = saved.replacen("\"control\": true", "\"control\": false", 1);
    assert_ne!(edited, saved, "the record says control was granted");
    let bad = dir.path().join("edited.json");
    std::fs::write(&bad, edited).expect("write");
    let (ok, _, err) = verify_file(&bad).await;
    assert!(!ok && err.contains("entry 1 of the session record is bad"), "{err}");

    // The relay's audit row holds the record's head (a count and 32 bytes): verify finds it there.
    let data_dir = dir.path().to_str().expect("utf-8").to_owned();
    let export_path = dir.path().join("audit.json");
    let start = std::time::Instant::now();
    loop {
        let out = tokio::process::Command::new(bin("tether-relay"))
            .args(["--data-dir", &data_dir, "audit", "export", "--format", "json"])
            .output()
            .await
            .expect("runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains("record_head\": \"") {
            std::fs::write(&export_path, text).expect("write");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no audit row with a record head: {text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let audited = |file: &std::path::Path| {
        let args = [
            "report",
            "verify",
            file.to_str().expect("utf-8"),
            "--audit",
            export_path.to_str().expect("utf-8"),
        ];
        tokio::process::Command::new(bin("tether-viewer")).args(args).output()
    };
    let out = audited(&viewer_file).await.expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(said.contains("audited "), "{out:?}");
    // The relay heard of every entry, the end included: its row holds the final head.
    let entries = viewer_says.split(' ').next().expect("a count").to_owned();
    let audited_line = said.lines().find(|l| l.starts_with("audited ")).expect("the audit line");
    assert!(audited_line.ends_with(&format!(" {entries}")), "{said} vs {entries} entries");
    // A copy rebuilt into a valid chain with other content: it holds together, but the relay never saw it.
    let saved = tether_shared::record::file::RecordFile::from_json(
        &std::fs::read_to_string(&viewer_file).expect("read"),
    )
    .expect("parses");
    let mut rebuilt = tether_shared::record::chain::Chain::new(&saved.session);
    for entry in &saved.entries {
        let mut event = entry.event.clone();
        if let EventKind::Connected { granted, .. } = &mut event.kind {
            granted.control = false;
        }
        rebuilt.append(event);
    }
    let forged = dir.path().join("rebuilt.json");
    std::fs::write(
        &forged,
        tether_shared::record::file::RecordFile::new(saved.session, rebuilt.entries().to_vec()).to_json(),
    )
    .expect("write");
    assert!(verify_file(&forged).await.0, "a rebuilt chain holds together on its own");
    let out = audited(&forged).await.expect("runs");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("audit holds no head of this record"), "{said}");
    drop(relay.proc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_stopping_puts_the_end_into_both_copies() {
    let relay = start_relay(|_| {});
    let mut host = start_host_with(host_config(&relay, Permissions::VIEW_ONLY), test_pattern);
    let code = host.next_code().await;
    let viewer = ViewerSession::connect(&viewer_config(&relay), &code).await.expect("pairs");
    viewer.chat("Looking now").await.expect("sent");
    eventually(|| viewer.session_record().len() == 3, "code, connect and chat in the viewer's record").await;
    host.stop.cancel();
    let why = viewer.closed().await;
    assert!(matches!(why, ViewerError::Ended(EndReason::HostStopped)), "{why:?}");
    let ours = viewer.session_record();
    let report = host.report().await.expect("a report");
    assert_eq!(report.record, ours, "the end the host decided reached the viewer before its goodbye");
    let last = &ours.last().expect("entries").event.kind;
    assert!(matches!(last, EventKind::Ended { reason: EndReason::HostStopped }), "{last:?}");
    chain::verify(&viewer.record_session(), &ours).expect("verifies");
}
