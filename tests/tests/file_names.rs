//! Files and names against a hostile other side, through a real relay and real end-to-end QUIC:
//!
//! - a hostile host answers the technician's fetch with something else (`.xsessionrc` for `report.pdf`, a
//!   folder with a stray or renamed top level): refused before a byte is written, with a typed error, and
//!   the session goes on;
//! - a hostile viewer's technician name, chat and file names carry a right-to-left override: the host
//!   shows them escaped, and refuses to write the file;
//! - a link planted in a shared folder after the technician's fetch was offered: not followed.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use quinn::{RecvStream, SendStream};
use tether_host::files::UploadPolicy;
use tether_host::HostEvent;
use tether_shared::files::proto::{
    Entry, EntryKind, FileDigest, FileError, FileRequest, ReceiverMsg, SenderMsg, MAX_FILES_MSG,
};
use tether_shared::files::{send, tree};
use tether_shared::net::pairing::{connect_viewer, Session};
use tether_shared::record::EventKind;
use tether_shared::session_proto::{Hello, HelloReply, Permissions, Request, ViewerControl};
use tether_shared::wire::{self, MAX_CONTROL_MSG};
use tether_shared::PROTOCOL_VERSION;
use tether_viewer::session::ViewerSession;
use tokio_util::sync::CancellationToken;

const FILES: Permissions = Permissions { view: true, control: false, files: true };
const WAIT: Duration = Duration::from_secs(20);
/// What every file a hostile host sends holds.
const CONTENT: &[u8] = b"xterm -e evil &\n";

/// Everything under `root` (relative paths), sorted.
fn everything(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("dir") {
            let path = entry.expect("entry").path();
            out.push(path.strip_prefix(root).expect("inside").to_string_lossy().into_owned());
            if std::fs::symlink_metadata(&path).expect("meta").is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The hand-driven host ([`host_by_hand`]) grants files and then speaks the file protocol by hand.
impl HandHost {
    /// The viewer's next file request, on its own stream.
    async fn next_request(&self) -> (SendStream, RecvStream, FileRequest) {
        let (send, mut recv) = tokio::time::timeout(WAIT, self.session.conn.accept_bi())
            .await
            .expect("a request")
            .expect("stream");
        let request = wire::read_msg(&mut recv, MAX_FILES_MSG).await.expect("request").expect("one");
        (send, recv, request)
    }
}

/// A host that pairs through the real relay like any host and grants files.
async fn hostile_host(relay: &TestRelay) -> (HandHost, ViewerSession) {
    let mut host = host_by_hand(relay, FILES).await;
    let viewer = host.welcome(FILES).await;
    (host, viewer)
}

/// Offer `entries` (every file holding `CONTENT`) in reply to the request on this stream. If the viewer
/// accepts — as it did before it checked replies — send every file, as a host that means harm would.
/// Returns the viewer's answer to the offer.
async fn offer(
    send: &mut SendStream,
    recv: &mut RecvStream,
    id: [u8; 16],
    entries: Vec<Entry>,
) -> ReceiverMsg {
    let total = entries.iter().map(|e| if let EntryKind::File { size } = e.kind { size } else { 0 }).sum();
    let msg = SenderMsg::Offer { id, entries: entries.clone(), total };
    wire::write_msg(send, &msg, MAX_FILES_MSG).await.expect("offer");
    let answer: ReceiverMsg = wire::read_msg(recv, MAX_FILES_MSG).await.expect("answer").expect("one");
    if let ReceiverMsg::Accept { .. } = answer {
        for (i, entry) in entries.iter().enumerate() {
            if !matches!(entry.kind, EntryKind::File { .. }) {
                continue;
            }
            let file = i as u32;
            let hash = *blake3::hash(CONTENT).as_bytes();
            let chunk = SenderMsg::Chunk { file, offset: 0, len: CONTENT.len() as u32, hash };
            wire::write_msg(send, &chunk, MAX_FILES_MSG).await.expect("chunk");
            send.write_all(CONTENT).await.expect("bytes");
            let end = SenderMsg::FileEnd { file, hash: FileDigest::of(CONTENT) };
            wire::write_msg(send, &end, MAX_FILES_MSG).await.expect("end");
        }
        wire::write_msg(send, &SenderMsg::Done, MAX_FILES_MSG).await.expect("done");
        let _: Option<ReceiverMsg> = wire::read_msg(recv, MAX_FILES_MSG).await.unwrap_or(None);
    }
    answer
}

fn file(path: &[&str]) -> Entry {
    Entry {
        path: path.iter().map(|s| s.to_string()).collect(),
        kind: EntryKind::File { size: CONTENT.len() as u64 },
    }
}

fn dir(path: &[&str]) -> Entry {
    Entry { path: path.iter().map(|s| s.to_string()).collect(), kind: EntryKind::Dir }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_offering_other_files_than_fetched_writes_nothing_and_the_session_goes_on() {
    let relay = start_relay(|_| {});
    let (host, viewer) = hostile_host(&relay).await;
    // The technician saves fetched files in their home folder: the worst place for a stray dot-file.
    let home = tempfile::tempdir().expect("temp");
    let cases: Vec<(&[&str], Vec<Entry>, &str)> = vec![
        // A file fetch answered by a login script.
        (&["Documents", "report.pdf"], vec![file(&[".xsessionrc"])], ".xsessionrc"),
        // A folder fetch with a stray top-level file beside the folder.
        (
            &["Documents", "photos"],
            vec![dir(&["photos"]), file(&["photos", "a.jpg"]), file(&[".xsessionrc"])],
            "photos, .xsessionrc",
        ),
        // A folder fetch whose folder is renamed to something the desktop reads at login.
        (
            &["Documents", "photos"],
            vec![
                dir(&[".config"]),
                dir(&[".config", "autostart"]),
                file(&[".config", "autostart", "x.desktop"]),
            ],
            ".config",
        ),
        // A lie about its size too: still named for what it is, not "no room" (a petabyte).
        (
            &["Documents", "report.pdf"],
            vec![Entry { path: vec![".xsessionrc".into()], kind: EntryKind::File { size: 1 << 50 } }],
            ".xsessionrc",
        ),
        // The right name, and a second copy of it with something else.
        (
            &["Documents", "report.pdf"],
            vec![file(&["report.pdf"]), file(&[".profile"])],
            "report.pdf, .profile",
        ),
    ];
    for (path, entries, offered) in cases {
        let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        let fetch = viewer.files().fetch(path.clone(), home.path().to_path_buf());
        let (mut send, mut recv, request) = host.next_request().await;
        let FileRequest::Fetch { path: asked, id } = request else { panic!("{request:?}") };
        assert_eq!(asked, path);
        let answer = offer(&mut send, &mut recv, id, entries).await;
        let got = tokio::time::timeout(WAIT, fetch.result()).await.expect("the fetch ends");
        let expected = FileError::Unrequested { requested: path[1].clone(), offered: offered.to_owned() };
        assert_eq!(got, Err(expected.clone()), "the technician is told, typed");
        assert_eq!(answer, ReceiverMsg::Decline(expected.clone()), "the host is told why");
        assert!(everything(home.path()).is_empty(), "nothing written: {:?}", everything(home.path()));
        assert!(
            expected.to_string().starts_with(&format!("the host offered `{offered}` in reply to a fetch of")),
            "{expected}"
        );
        assert!(!viewer.is_closed(), "the session goes on");
    }

    // An offer whose entries climb out of the folder is refused as before (a bad name).
    let fetch = viewer.files().fetch(vec!["Documents".into(), "photos".into()], home.path().to_path_buf());
    let (mut send, mut recv, request) = host.next_request().await;
    let FileRequest::Fetch { id, .. } = request else { panic!("{request:?}") };
    let climbing = vec![dir(&["photos"]), file(&["photos", "..", "..", ".xsessionrc"])];
    let answer = offer(&mut send, &mut recv, id, climbing).await;
    assert!(matches!(answer, ReceiverMsg::Decline(FileError::BadName(_))), "{answer:?}");
    assert!(matches!(fetch.result().await, Err(FileError::BadName(_))));
    assert!(everything(home.path()).is_empty());

    // The same session still fetches what the host honestly sends.
    let source = tempfile::tempdir().expect("temp");
    std::fs::write(source.path().join("report.pdf"), b"%PDF-1.7 the report").expect("write");
    let fetch =
        viewer.files().fetch(vec!["Documents".into(), "report.pdf".into()], home.path().to_path_buf());
    let (mut send, mut recv, request) = host.next_request().await;
    let FileRequest::Fetch { id, .. } = request else { panic!("{request:?}") };
    let honest = tree::scan(&source.path().join("report.pdf")).expect("scan");
    let cancel = CancellationToken::new();
    let sent = send::send(&mut send, &mut recv, id, &honest, |_| {}, &cancel).await;
    assert_eq!(sent.expect("sent"), vec!["report.pdf"]);
    assert_eq!(fetch.result().await.expect("fetched"), vec!["report.pdf"]);
    assert_eq!(everything(home.path()), vec!["report.pdf"]);
    assert_eq!(std::fs::read(home.path().join("report.pdf")).expect("read"), b"%PDF-1.7 the report");
}

/// A host with a shared folder and an incoming folder, taking uploads without asking.
struct FileHost {
    host: TestHost,
    share: tempfile::TempDir,
    incoming: tempfile::TempDir,
}

fn files_host(relay: &TestRelay) -> FileHost {
    let (share, incoming) = (tempfile::tempdir().expect("temp"), tempfile::tempdir().expect("temp"));
    let mut cfg = host_config(relay, FILES);
    cfg.session.files.shared = vec![("Shared".into(), share.path().to_path_buf())];
    cfg.session.files.incoming = Some(incoming.path().to_path_buf());
    cfg.uploads = UploadPolicy::Allow;
    let host = start_host_with(cfg, || {
        tether_host::capture::open(tether_host::capture::Source::TestPattern { width: W, height: H })
    });
    FileHost { host, share, incoming }
}

/// A viewer that pairs through the real relay like any viewer, says hello as `technician`, and then
/// speaks by hand.
struct HandViewer {
    session: Session,
    control: SendStream,
    _control_recv: RecvStream,
}

async fn hand_viewer(relay: &TestRelay, host: &mut TestHost, technician: &str) -> HandViewer {
    let code = host.next_code().await;
    let session = connect_viewer(&relay.spec(), &code, fast_timeouts(), None).await.expect("pairs");
    let (mut control, mut control_recv) = session.conn.open_bi().await.expect("control stream");
    let hello = Hello { version: PROTOCOL_VERSION, technician: technician.into(), want: FILES };
    wire::write_msg(&mut control, &hello, MAX_CONTROL_MSG).await.expect("hello");
    match wire::read_msg(&mut control_recv, MAX_CONTROL_MSG).await.expect("welcome") {
        Some(HelloReply::Welcome { granted, .. }) => assert!(granted.files, "{granted:?}"),
        other => panic!("expected Welcome, got {other:?}"),
    }
    HandViewer { session, control, _control_recv: control_recv }
}

impl HandViewer {
    async fn request(&self, request: &FileRequest) -> (SendStream, RecvStream) {
        let (mut send, recv) = self.session.conn.open_bi().await.expect("stream");
        wire::write_msg(&mut send, request, MAX_FILES_MSG).await.expect("request");
        (send, recv)
    }
}

/// The host's next event that `wanted` picks out, skipping others.
async fn next_event<T>(host: &mut TestHost, wanted: impl Fn(HostEvent) -> Option<T>) -> T {
    loop {
        if let Some(found) = wanted(host.next_event().await) {
            return found;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_right_to_left_override_in_a_name_chat_or_file_name_is_shown_escaped_and_never_written() {
    let relay = start_relay(|_| {});
    let mut fh = files_host(&relay);
    let mut viewer = hand_viewer(&relay, &mut fh.host, "Microsoft Support \u{202E}gnp.exe").await;
    let technician = next_event(&mut fh.host, |e| match record_kind(&e) {
        Some(EventKind::Connected { technician, .. }) => Some(technician.clone()),
        _ => None,
    })
    .await;
    assert_eq!(technician, "Microsoft Support \\u{202E}gnp.exe", "the consent dialog shows what was typed");

    let text = "please open invoice\u{202E}fdp.exe\nthanks\u{200B}".into();
    let chat = ViewerControl::Request(Request::Chat { text });
    wire::write_msg(&mut viewer.control, &chat, MAX_CONTROL_MSG).await.expect("chat");
    let text = next_event(&mut fh.host, |e| match record_kind(&e) {
        Some(EventKind::Chat { text, .. }) => Some(text.clone()),
        _ => None,
    })
    .await;
    assert_eq!(text, "please open invoice\\u{202E}fdp.exe\nthanks\\u{200B}");

    // A file offered under such a name is refused before the user is asked or the disk is touched.
    let (mut send, mut recv) = viewer.request(&FileRequest::Upload).await;
    let entries = vec![Entry {
        path: vec!["invoice\u{202E}fdp.exe".into()],
        kind: EntryKind::File { size: CONTENT.len() as u64 },
    }];
    let offer = SenderMsg::Offer { id: [9; 16], entries, total: CONTENT.len() as u64 };
    wire::write_msg(&mut send, &offer, MAX_FILES_MSG).await.expect("offer");
    let answer: Option<ReceiverMsg> = wire::read_msg(&mut recv, MAX_FILES_MSG).await.expect("answer");
    let Some(ReceiverMsg::Decline(FileError::BadName(why))) = answer else { panic!("{answer:?}") };
    assert_eq!(why, "“invoice\\u{202E}fdp.exe” contains an invisible or text-reordering character");
    let error = next_event(&mut fh.host, |e| transfer_failure(&e).map(|(_, error)| error)).await;
    assert_eq!(error, FileError::BadName(why), "the user's log shows the name escaped");
    assert!(everything(fh.incoming.path()).is_empty(), "nothing written");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_planted_in_a_shared_folder_after_the_offer_does_not_hand_over_its_target() {
    let relay = start_relay(|_| {});
    let mut fh = files_host(&relay);
    let outside = tempfile::tempdir().expect("temp");
    std::fs::write(outside.path().join("shadow"), b"root:SECRET-HASH").expect("write");
    let docs = fh.share.path().join("docs");
    std::fs::create_dir(&docs).expect("mkdir");
    std::fs::write(docs.join("notes.txt"), b"ordinary notes!!").expect("write"); // as long as the secret
    let viewer = hand_viewer(&relay, &mut fh.host, "Test Technician").await;

    let (mut send, mut recv) =
        viewer.request(&FileRequest::Fetch { path: vec!["Shared".into(), "docs".into()], id: [3; 16] }).await;
    let offered: Option<SenderMsg> = wire::read_msg(&mut recv, MAX_FILES_MSG).await.expect("offer");
    let Some(SenderMsg::Offer { entries, .. }) = offered else { panic!("{offered:?}") };
    assert_eq!(entries.len(), 2, "the folder and its file: {entries:?}");
    // Between the host's scan and its reading the file, another local user swaps it for a link.
    std::fs::remove_file(docs.join("notes.txt")).expect("remove");
    std::os::unix::fs::symlink(outside.path().join("shadow"), docs.join("notes.txt")).expect("symlink");
    let accept = ReceiverMsg::Accept { resume: vec![0; entries.len()] };
    wire::write_msg(&mut send, &accept, MAX_FILES_MSG).await.expect("accept");
    let next: Option<SenderMsg> = wire::read_msg(&mut recv, MAX_FILES_MSG).await.expect("next");
    match next {
        Some(SenderMsg::Failed(FileError::BadName(why))) => assert!(why.contains("symbolic link"), "{why}"),
        Some(SenderMsg::Chunk { .. }) => {
            let mut bytes = vec![0u8; 16];
            recv.read_exact(&mut bytes).await.expect("bytes");
            panic!("the link was followed: {:?}", String::from_utf8_lossy(&bytes));
        }
        other => panic!("expected a clear refusal, got {other:?}"),
    }
    let error = next_event(&mut fh.host, |e| transfer_failure(&e).map(|(_, error)| error)).await;
    assert!(matches!(&error, FileError::BadName(why) if why.contains("symbolic link")), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_saves_in_downloads_tether_by_default_and_never_a_hidden_name() {
    use common::procs::Proc;
    let dir = tempfile::tempdir().expect("temp");
    let data = dir.path().join("relay");
    let mut relay = Proc::spawn(
        "tether-relay",
        &["--listen", "127.0.0.1:0", "--data-dir", data.to_str().expect("utf-8")],
    );
    let (addr, fingerprint) = (relay.line("listening").await, relay.line("fingerprint").await);
    let share = dir.path().join("Reports");
    std::fs::create_dir_all(&share).expect("mkdir");
    std::fs::write(share.join(".profile"), b"export EDITOR=vi\n").expect("write");
    let share_arg = share.to_str().expect("utf-8");
    let mut host = Proc::spawn(
        "tether-host",
        &cli_args(&addr, &fingerprint, &["--headless", "--grant", "view,files", "--share", share_arg]),
    );
    let code = host.line("code").await;
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("mkdir");
    let mut viewer = Proc::spawn_with_env(
        "tether-viewer",
        &cli_args(
            &addr,
            &fingerprint,
            &["--code", &code, "--want", "view,files", "--fetch", "Reports/.profile"],
        ),
        &[("HOME", home.to_str().expect("utf-8"))],
    );
    assert_eq!(viewer.line("fetched").await, "_profile", "a leading dot would hide it");
    assert!(viewer.wait().await.success());
    let saved = home.join("Downloads/Tether");
    assert_eq!(everything(&saved), vec!["_profile"], "in ~/Downloads/Tether, not in the working folder");
    assert_eq!(std::fs::read(saved.join("_profile")).expect("read"), b"export EDITOR=vi\n");
    assert!(!home.join(".profile").exists());
}
