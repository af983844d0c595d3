//! The record's wire form (serde, both postcard and JSON) and the host user's lines.

use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::files::proto::FileDigest;

const VIEW_CONTROL: Permissions = Permissions { view: true, control: true, files: false };

fn at(ms: u64) -> SessionEvent {
    SessionEvent::new(UNIX_EPOCH + Duration::from_millis(ms), EventKind::MonitorSwitched { index: 0 })
}

fn event(kind: EventKind) -> SessionEvent {
    SessionEvent { at: UnixMs(1_764_000_000_000), kind }
}

fn sample() -> Vec<SessionEvent> {
    let file = FileRecord { path: "logs/a.txt".into(), size: 5, hash: FileHash(FileDigest::of(b"alpha")) };
    vec![
        event(EventKind::Connected {
            technician: "Sam".into(),
            verified: Some(Verified {
                account: "sam@helpdesk".into(),
                organization: "Example Ltd".into(),
                relay: "relay.example.org".into(),
            }),
            asked: VIEW_CONTROL,
            granted: Permissions::VIEW_ONLY,
        }),
        event(EventKind::Requested { asked: Permissions::ALL }),
        event(EventKind::PermissionsChanged {
            by: Side::Technician,
            before: Permissions::VIEW_ONLY,
            now: Permissions::ALL,
        }),
        event(EventKind::RequestDeclined { asked: Permissions::ALL }),
        event(EventKind::Chat { from: Side::Technician, text: "hello".into() }),
        event(EventKind::Transfer(Transfer {
            direction: Direction::Upload,
            what: "logs".into(),
            outcome: Outcome::Completed { names: vec!["logs".into()], files: vec![file] },
        })),
        event(EventKind::Transfer(Transfer {
            direction: Direction::Fetch,
            what: "Shared/x".into(),
            outcome: Outcome::Refused(FileError::NotGranted),
        })),
        event(EventKind::Clipboard { by: Side::Host, bytes: 12 }),
        event(EventKind::MonitorSwitched { index: 1 }),
        event(EventKind::Ended { reason: crate::end::EndReason::ViewerLeft }),
    ]
}

#[test]
fn events_survive_postcard_and_json() {
    let events = sample();
    let bytes = postcard::to_allocvec(&events).expect("postcard");
    assert_eq!(postcard::from_bytes::<Vec<SessionEvent>>(&bytes).expect("back"), events);
    let json = serde_json::to_string(&events).expect("json");
    assert_eq!(serde_json::from_str::<Vec<SessionEvent>>(&json).expect("back"), events);
}

#[test]
fn a_file_hash_is_hex_in_json_and_nothing_else_parses() {
    let hash = FileHash(FileDigest::of(b"alpha"));
    let json = serde_json::to_string(&hash).expect("json");
    assert_eq!(json, format!("\"{hash}\""));
    assert_eq!(json.len(), 66);
    assert_eq!(serde_json::from_str::<FileHash>(&json).expect("back"), hash);
    for bad in ["\"\"", "\"zz\"", &format!("\"{}\"", "é".repeat(32)), &format!("\"{}0\"", hash)] {
        assert!(serde_json::from_str::<FileHash>(bad).is_err(), "{bad}");
    }
}

#[test]
fn time_is_what_the_caller_passed() {
    assert_eq!(at(1234).at, UnixMs(1234));
    assert_eq!(UnixMs::from_system(UNIX_EPOCH - Duration::from_secs(1)), UnixMs(0), "a clock before 1970");
}

#[test]
fn refusals_are_the_hosts_decisions_and_everything_else_failed() {
    assert_eq!(Outcome::from_error(FileError::Declined), Outcome::Refused(FileError::Declined));
    assert_eq!(Outcome::from_error(FileError::NotGranted), Outcome::Refused(FileError::NotGranted));
    assert_eq!(Outcome::from_error(FileError::Cancelled), Outcome::Failed(FileError::Cancelled));
}

#[test]
fn the_host_users_lines() {
    let mut narrator = Narrator::with_incoming("/home/ana/Downloads/Tether");
    let lines: Vec<String> = sample().iter().map(|e| narrator.line(e)).collect();
    assert_eq!(
        lines,
        [
            "sam@helpdesk (verified by relay.example.org) connected. They asked to: see the screen, use mouse \
             and keyboard. You allowed: see the screen.",
            "sam@helpdesk asks to: see the screen, use mouse and keyboard, files.",
            "sam@helpdesk may now: see the screen, use mouse and keyboard, files.",
            "sam@helpdesk was not given: see the screen, use mouse and keyboard, files.",
            "Sam wrote: hello",
            "You received logs (5 bytes) in /home/ana/Downloads/Tether.",
            "A file transfer did not complete (fetch Shared/x): file access was not granted.",
            "This computer's clipboard text was sent to sam@helpdesk.",
            "The technician switched to screen 2.",
            "Session over: the technician left",
        ]
    );
}

#[test]
fn the_host_users_own_changes_say_what_changed() {
    let mut narrator = Narrator::default();
    narrator.line(&event(EventKind::Connected {
        technician: "Sam".into(),
        verified: None,
        asked: VIEW_CONTROL,
        granted: VIEW_CONTROL,
    }));
    let took = event(EventKind::PermissionsChanged {
        by: Side::Host,
        before: VIEW_CONTROL,
        now: Permissions::VIEW_ONLY,
    });
    assert_eq!(narrator.line(&took), "You took back: use mouse and keyboard. Sam may now: see the screen.");
    let gave = event(EventKind::PermissionsChanged {
        by: Side::Host,
        before: Permissions::VIEW_ONLY,
        now: VIEW_CONTROL,
    });
    assert_eq!(
        narrator.line(&gave),
        "You gave back: use mouse and keyboard. Sam may now: see the screen, use mouse and keyboard."
    );
    assert_eq!(
        narrator.line(&event(EventKind::Chat { from: Side::Host, text: "ok".into() })),
        "You wrote: ok"
    );
}

#[test]
fn before_anyone_connected_lines_say_the_technician() {
    let mut narrator = Narrator::default();
    let line = narrator.line(&event(EventKind::PermissionsChanged {
        by: Side::Technician,
        before: Permissions::default(),
        now: Permissions::VIEW_ONLY,
    }));
    assert_eq!(line, "The technician may now: see the screen.");
}

#[test]
fn names_from_the_technician_cannot_reorder_the_line() {
    let mut narrator = Narrator::default();
    let transfer = Transfer {
        direction: Direction::Upload,
        what: String::new(),
        outcome: Outcome::Completed {
            names: vec!["invoice\u{202E}fdp.exe".into()],
            files: vec![FileRecord { path: "x".into(), size: 1, hash: FileHash([0; 32]) }],
        },
    };
    let line = narrator.line(&event(EventKind::Transfer(transfer)));
    assert!(!line.contains('\u{202E}'), "{line}");
    assert!(line.starts_with("You received invoice"), "{line}");
}

/// Both ends of a real transfer (in memory, a temporary folder each) record the same files: each path as
/// offered, its size, and the whole-file hash sent and verified — with nothing read twice.
#[tokio::test]
async fn sender_and_receiver_record_the_same_files() {
    use crate::files::{receive, send, tree};
    use tokio_util::sync::CancellationToken;

    let (from, to) = (tempfile::tempdir().expect("temp"), tempfile::tempdir().expect("temp"));
    let root = from.path().join("logs");
    std::fs::create_dir_all(root.join("old")).expect("mkdir");
    let big: Vec<u8> = (0..crate::files::proto::CHUNK + 5).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.join("big.bin"), &big).expect("write");
    std::fs::write(root.join("old").join("empty"), b"").expect("write");
    // The receiver has a `logs` already: it stores the folder as `logs (1)`, the record keeps the offer's.
    std::fs::create_dir(to.path().join("logs")).expect("mkdir");
    let scanned = tree::scan(&root).expect("scan");
    let (a, b) = tokio::io::duplex(1 << 20);
    let ((mut ar, mut aw), (mut br, mut bw)) = (tokio::io::split(a), tokio::io::split(b));
    let (cancel, partials) = (CancellationToken::new(), receive::Partials::default());
    let allow = |_, _| async { Ok(()) };
    let (sent, received) = tokio::join!(
        send::send_recorded(&mut aw, &mut ar, [1; 16], &scanned, |_| {}, &cancel),
        receive::receive_recorded(&mut bw, &mut br, to.path(), &partials, allow, |_| {}, &cancel),
    );
    let (sent, received) = (sent.expect("sent"), received.expect("received"));
    assert_eq!(sent.0, ["logs (1)"]);
    assert_eq!(received.0, ["logs (1)"]);
    let mut expected = vec![
        FileRecord {
            path: "logs/big.bin".into(),
            size: big.len() as u64,
            hash: FileHash(FileDigest::of(&big)),
        },
        FileRecord { path: "logs/old/empty".into(), size: 0, hash: FileHash(FileDigest::of(&[])) },
    ];
    expected.sort_by(|a, b| a.path.cmp(&b.path));
    for mut files in [sent.1, received.1] {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(files, expected);
    }
}

#[test]
fn roster_changes_name_who_came_who_left_and_where_control_went() {
    use crate::session_proto::{Member, Permissions, Roster};
    let member = |id: u64, name: &str, invited_by: Option<&str>| Member {
        id,
        name: name.into(),
        verified: false,
        invited_by: invited_by.map(Into::into),
        permissions: Permissions::VIEW_ONLY,
        wants_control: false,
    };
    let alice = member(1, "Alice", None);
    let bob = member(2, "Bob", Some("Alice"));
    // Bob's first list: Alice was there, Alice has control.
    let first = Roster { you: 2, members: vec![alice.clone(), bob.clone()], control: Some(1) };
    assert_eq!(
        super::roster_changes(None, &first),
        [
            EventKind::ColleagueJoined { name: "Alice".into(), invited_by: None },
            EventKind::ControlMoved { to: Some("Alice".into()) },
        ]
    );
    // Alice hands control to Bob, then leaves.
    let handed = Roster { control: Some(2), ..first.clone() };
    assert_eq!(
        super::roster_changes(Some(&first), &handed),
        [EventKind::ControlMoved { to: Some("Bob".into()) }]
    );
    let left = Roster { you: 2, members: vec![bob], control: Some(2) };
    assert_eq!(
        super::roster_changes(Some(&handed), &left),
        [EventKind::ColleagueLeft { name: "Alice".into() }]
    );
    assert!(super::roster_changes(Some(&left), &left).is_empty(), "no change, nothing recorded");
}
