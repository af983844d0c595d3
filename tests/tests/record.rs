//! The session record on both sides of a real session (relay, QUIC on loopback): a permission request, a
//! chat line, an upload, a fetch and the end produce the same typed events on the host and the viewer —
//! files with their sizes and the same whole-file hashes — and no event carries file content or
//! clipboard text.

mod common;

use common::*;
use tether_host::files::UploadPolicy;
use tether_host::HostEvent;
use tether_shared::end::EndReason;
use tether_shared::files::proto::FileDigest;
use tether_shared::record::{
    Direction, EventKind, FileHash, FileRecord, Outcome, SessionEvent, Side, Transfer,
};
use tether_shared::session_proto::Permissions;
use tether_viewer::session::ViewerSession;
use tokio::sync::watch;

const UPLOADED: &[u8] = b"UPLOADED-CONTENT-never-in-the-record";
const FETCHED: &[u8] = b"FETCHED-CONTENT-never-in-the-record";
const CLIPBOARD: &str = "CLIPBOARD-TEXT-never-in-the-record";

/// Host events up to the first record event `want` accepts; the record events among them are kept.
async fn host_until(host: &mut TestHost, kept: &mut Vec<SessionEvent>, want: impl Fn(&EventKind) -> bool) {
    loop {
        let event = host.next_event().await;
        if let HostEvent::Session(_, event) = event {
            let done = want(&event.kind);
            kept.push(event);
            if done {
                return;
            }
        }
    }
}

/// Wait until the viewer's record holds an event `want` accepts.
async fn viewer_has(record: &mut watch::Receiver<Vec<SessionEvent>>, want: impl Fn(&EventKind) -> bool) {
    let wait = record.wait_for(|events| events.iter().any(|e| want(&e.kind)));
    tokio::time::timeout(EVENTUALLY, wait).await.expect("in time").expect("the session's record");
}

fn kinds(events: &[SessionEvent]) -> Vec<EventKind> {
    events.iter().map(|e| e.kind.clone()).collect()
}

fn file(path: &str, data: &[u8]) -> FileRecord {
    FileRecord { path: path.into(), size: data.len() as u64, hash: FileHash(FileDigest::of(data)) }
}

fn completed(direction: Direction, what: &str, name: &str, data: &[u8]) -> EventKind {
    let outcome = Outcome::Completed { names: vec![name.into()], files: vec![file(name, data)] };
    EventKind::Transfer(Transfer { direction, what: what.into(), outcome })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_sides_record_the_same_session_without_its_content() {
    let relay = start_relay(|_| {});
    let (incoming, share, local, fetched) =
        (tempfile::tempdir(), tempfile::tempdir(), tempfile::tempdir(), tempfile::tempdir());
    let (incoming, share, local, fetched) =
        (incoming.expect("temp"), share.expect("temp"), local.expect("temp"), fetched.expect("temp"));
    std::fs::write(share.path().join("report.txt"), FETCHED).expect("write");
    std::fs::write(local.path().join("notes.txt"), UPLOADED).expect("write");
    let mut cfg = host_config(&relay, Permissions::ALL);
    cfg.session.files.incoming = Some(incoming.path().to_path_buf());
    cfg.session.files.add_share("Shared", share.path().to_path_buf());
    cfg.uploads = UploadPolicy::Allow;
    let mut host = start_host_with(cfg, test_pattern);
    let code = host.next_code().await;
    let mut viewer_cfg = viewer_config(&relay);
    viewer_cfg.want = Permissions::VIEW_ONLY;
    let viewer = ViewerSession::connect(&viewer_cfg, &code).await.expect("pairs");
    let mut record = viewer.record();
    let mut on_host = Vec::new();
    host_until(&mut host, &mut on_host, |k| matches!(k, EventKind::Connected { .. })).await;

    // More permissions, asked for and (within what the host allows) granted.
    viewer.request_permissions(Permissions::ALL).await.expect("request");
    viewer_has(&mut record, |k| matches!(k, EventKind::PermissionsChanged { .. })).await;
    host_until(&mut host, &mut on_host, |k| matches!(k, EventKind::PermissionsChanged { .. })).await;

    viewer.chat("Hello, I will look at the printer.").await.expect("chat");
    host_until(&mut host, &mut on_host, |k| matches!(k, EventKind::Chat { .. })).await;

    let files = viewer.files();
    let uploaded = files.upload(&local.path().join("notes.txt")).result().await.expect("uploaded");
    assert_eq!(uploaded, ["notes.txt"]);
    host_until(&mut host, &mut on_host, |k| matches!(k, EventKind::Transfer(_))).await;
    let remote = vec!["Shared".to_owned(), "report.txt".to_owned()];
    let got = files.fetch(remote, fetched.path().to_path_buf()).result().await.expect("fetched");
    assert_eq!(got, ["report.txt"]);
    host_until(&mut host, &mut on_host, |k| matches!(k, EventKind::Transfer(_))).await;

    // Clipboard text to a host without a clipboard: the viewer records that it sent some, not what.
    viewer.send_clipboard(CLIPBOARD).await.expect("clipboard");
    viewer_has(&mut record, |k| matches!(k, EventKind::Clipboard { .. })).await;

    viewer.close().await;
    host_until(&mut host, &mut on_host, |k| matches!(k, EventKind::Ended { .. })).await;
    viewer_has(&mut record, |k| matches!(k, EventKind::Ended { .. })).await;
    let on_viewer = record.borrow().clone();

    let view_only = Permissions::VIEW_ONLY;
    let session = [
        EventKind::Connected {
            technician: "Test Technician".into(),
            verified: None,
            asked: view_only,
            granted: view_only,
        },
        EventKind::Requested { asked: Permissions::ALL },
        EventKind::PermissionsChanged { by: Side::Technician, before: view_only, now: Permissions::ALL },
        EventKind::Chat { from: Side::Technician, text: "Hello, I will look at the printer.".into() },
        completed(Direction::Upload, "notes.txt", "notes.txt", UPLOADED),
        completed(Direction::Fetch, "Shared/report.txt", "report.txt", FETCHED),
    ];
    let (host_kinds, viewer_kinds) = (kinds(&on_host), kinds(&on_viewer));
    let (host_end, viewer_end) = (host_kinds.last().cloned(), viewer_kinds.last().cloned());
    assert_eq!(host_kinds[..host_kinds.len() - 1], session, "the host's record");
    assert_eq!(
        viewer_kinds[..viewer_kinds.len() - 1],
        [&session[..], &[EventKind::Clipboard { by: Side::Technician, bytes: CLIPBOARD.len() as u64 }]]
            .concat(),
        "the viewer's record"
    );
    // The viewer left: both records say so, typed.
    assert_eq!(host_end, Some(EventKind::Ended { reason: EndReason::ViewerLeft }));
    assert_eq!(viewer_end, Some(EventKind::Ended { reason: EndReason::ViewerLeft }));

    // Content never: not in the events, not in their stored (JSON) form.
    for events in [&on_host, &on_viewer] {
        let stored = serde_json::to_string(events).expect("json");
        for content in [UPLOADED, FETCHED, CLIPBOARD.as_bytes()] {
            let content = std::str::from_utf8(content).expect("text");
            assert!(!stored.contains(content), "{content:?} in the record: {stored}");
        }
    }
}
