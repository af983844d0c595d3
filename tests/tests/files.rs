//! File transfer through a real relay: exact (BLAKE3) both ways at 1 GiB, folder trees, a relay killed and
//! restarted mid-transfer, tampering on the path, too little room and disk full, consent, permissions and
//! path escapes.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::procs::Proc;
use common::*;
use tether_host::capture::{self, Source};
use tether_host::files::{ConsentRequest, Decision, UploadPolicy};
use tether_host::transfers::{Direction, Transfers};
use tether_host::HostEvent;
use tether_relay::Tap;
use tether_shared::files::proto::{FileDigest, FileError};
use tether_shared::record::{
    Direction as RecordDirection, EventKind, FileHash, FileRecord, Outcome, Transfer,
};
use tether_shared::relay_proto::Role;
use tether_shared::session_proto::Permissions;
use tether_shared::tls::RelayTrust;
use tether_viewer::session::ViewerSession;
use tokio::sync::mpsc;

/// A file of `len` pseudo-random bytes (xorshift; every megabyte differs).
fn make_file(path: &Path, len: u64) {
    use std::io::Write;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).expect("create"));
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ len;
    let mut block = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(block.len() as u64) as usize;
        out.write_all(&block[..n]).expect("write");
        left -= n as u64;
    }
    out.flush().expect("flush");
}

/// The tests here that write hundreds of megabytes take turns, so this binary's peak disk use stays near
/// 2 GiB however its test threads interleave. (CI once ran out of disk when three of them overlapped.)
static BIG_FILES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Wait for a turn at writing big files, then check the temporary folder has room for `bytes` more, so a
/// machine short of disk fails here with the numbers rather than with a `DiskFull` mid-transfer.
async fn big_files_turn(bytes: u64) -> tokio::sync::MutexGuard<'static, ()> {
    let turn = BIG_FILES.lock().await;
    let tmp = std::env::temp_dir();
    let fs = rustix::fs::statvfs(&tmp).expect("statvfs of the temporary folder");
    let free = fs.f_bavail.saturating_mul(fs.f_frsize);
    assert!(
        free > bytes + (256 << 20),
        "this test writes {} MiB under {} and leaves 256 MiB spare, but only {} MiB is free",
        bytes >> 20,
        tmp.display(),
        free >> 20
    );
    turn
}

fn b3(path: &Path) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update_mmap(path).expect("hash");
    hasher.finalize()
}

/// Everything under `root` (relative paths; `None` for folders), sorted.
fn tree(root: &Path) -> Vec<(String, Option<blake3::Hash>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("dir") {
            let path = entry.expect("entry").path();
            let rel = path.strip_prefix(root).expect("inside").to_string_lossy().into_owned();
            if path.is_dir() {
                out.push((rel, None));
                stack.push(path);
            } else {
                out.push((rel, Some(b3(&path))));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Answer the next consent question after checking what it asks.
async fn answer(questions: &mut mpsc::Receiver<ConsentRequest>, decision: Decision) {
    let q =
        tokio::time::timeout(Duration::from_secs(10), questions.recv()).await.expect("asked").expect("open");
    assert_eq!(
        (q.names.clone(), q.files, q.bytes, q.technician.as_str()),
        (vec!["note.txt".into()], 1, 5, "Test Technician")
    );
    q.reply.send(decision).expect("reply");
}

struct FileHost {
    host: TestHost,
    share: tempfile::TempDir,
    incoming: tempfile::TempDir,
}

fn files_host(
    relay: &TestRelay,
    uploads: UploadPolicy,
    grant: Permissions,
    tweak: impl FnOnce(&mut tether_host::HostConfig),
) -> FileHost {
    let (share, incoming) = (tempfile::tempdir().expect("temp"), tempfile::tempdir().expect("temp"));
    let mut cfg = host_config(relay, grant);
    cfg.session.files.shared = vec![("Shared".into(), share.path().to_path_buf())];
    cfg.session.files.incoming = Some(incoming.path().to_path_buf());
    cfg.uploads = uploads;
    tweak(&mut cfg);
    let host = start_host_with(cfg, || capture::open(Source::TestPattern { width: W, height: H }));
    FileHost { host, share, incoming }
}

const FILES: Permissions = Permissions { view: true, control: false, files: true };

fn files_viewer_config(relay: &TestRelay) -> tether_viewer::session::ViewerConfig {
    let mut cfg = viewer_config(relay);
    cfg.want = FILES;
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gibibyte_each_way_arrives_with_matching_blake3() {
    // One way at a time, each leg's files removed after it: 2 GiB on disk at most.
    let _turn = big_files_turn(2 << 30).await;
    let relay = start_relay(|_| {});
    let mut fh = files_host(&relay, UploadPolicy::Allow, FILES, |_| {});
    let code = fh.host.next_code().await;
    let viewer = ViewerSession::connect(&files_viewer_config(&relay), &code).await.expect("pairs");
    let local = tempfile::tempdir().expect("temp");
    let up = local.path().join("upload.bin");
    make_file(&up, 1 << 30);

    let upload = viewer.files().upload(&up);
    let mut progress = upload.progress();
    assert_eq!(upload.result().await.expect("uploaded"), vec!["upload.bin"]);
    let last = (*progress.borrow_and_update()).expect("progress was reported");
    assert_eq!((last.done, last.total), (1 << 30, 1 << 30));
    let uploaded = fh.incoming.path().join("upload.bin");
    assert_eq!(b3(&uploaded), b3(&up));
    std::fs::remove_file(&up).expect("remove");
    std::fs::remove_file(&uploaded).expect("remove");

    let shared = fh.share.path().join("download.bin");
    make_file(&shared, (1 << 30) + 12345);
    let fetched = tempfile::tempdir().expect("temp");
    let fetch =
        viewer.files().fetch(vec!["Shared".into(), "download.bin".into()], fetched.path().to_path_buf());
    assert_eq!(fetch.result().await.expect("fetched"), vec!["download.bin"]);
    assert_eq!(b3(&fetched.path().join("download.bin")), b3(&shared));
    assert_eq!(tree(fetched.path()).len(), 1, "no temporary files left");

    match record_kind(&fh.host.next_event().await) {
        Some(EventKind::Connected { .. }) => {}
        other => panic!("{other:?}"),
    }
    match fh.host.next_event().await {
        HostEvent::Live(_) => {}
        other => panic!("{other:?}"),
    }
    match record_kind(&fh.host.next_event().await) {
        Some(EventKind::Transfer(Transfer {
            direction: RecordDirection::Upload,
            outcome: Outcome::Completed { names, files },
            ..
        })) => {
            assert_eq!(names, &["upload.bin"]);
            let files: Vec<_> = files.iter().map(|f| (f.path.as_str(), f.size)).collect();
            assert_eq!(files, [("upload.bin", 1 << 30)]);
        }
        other => panic!("the user's log shows the upload, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folder_trees_with_empty_folders_and_unicode_names_go_both_ways() {
    let relay = start_relay(|_| {});
    let mut fh = files_host(&relay, UploadPolicy::Allow, FILES, |_| {});
    let code = fh.host.next_code().await;
    let viewer = ViewerSession::connect(&files_viewer_config(&relay), &code).await.expect("pairs");
    let local = tempfile::tempdir().expect("temp");
    let root = local.path().join("Ünïcödé 文件夹");
    std::fs::create_dir_all(root.join("leer/auch leer")).expect("mkdir");
    std::fs::create_dir_all(root.join("données")).expect("mkdir");
    make_file(&root.join("données/été.bin"), 3_000_001);
    make_file(&root.join("emoji 🎉.txt"), 17);
    std::fs::write(root.join("zero"), b"").expect("write");
    assert_eq!(viewer.files().upload(&root).result().await.expect("uploaded"), vec!["Ünïcödé 文件夹"]);
    assert_eq!(tree(&fh.incoming.path().join("Ünïcödé 文件夹")), tree(&root));

    // The same tree fetched back from a shared folder, into a folder where the name is taken.
    std::fs::rename(fh.incoming.path().join("Ünïcödé 文件夹"), fh.share.path().join("Ünïcödé 文件夹"))
        .expect("move");
    let back = tempfile::tempdir().expect("temp");
    std::fs::create_dir(back.path().join("Ünïcödé 文件夹")).expect("mkdir");
    let listed = viewer.files().list(&["Shared".into()]).await.expect("list");
    assert_eq!(
        listed.iter().map(|l| (l.name.as_str(), l.is_dir)).collect::<Vec<_>>(),
        vec![("Ünïcödé 文件夹", true)]
    );
    let names = viewer
        .files()
        .fetch(vec!["Shared".into(), "Ünïcödé 文件夹".into()], back.path().to_path_buf())
        .result()
        .await
        .expect("fetched");
    assert_eq!(names, vec!["Ünïcödé 文件夹 (1)"]);
    // The user's log names what left their machine as they know it, not the technician's new name.
    next_event_like(&mut fh.host, |e| {
        matches!(record_kind(e), Some(EventKind::Transfer(Transfer {
            direction: RecordDirection::Fetch,
            what,
            outcome: Outcome::Completed { .. },
        })) if what == "Shared/Ünïcödé 文件夹")
    })
    .await;
    assert_eq!(tree(&back.path().join("Ünïcödé 文件夹 (1)")), tree(&root));
    assert!(tree(&back.path().join("Ünïcödé 文件夹")).is_empty(), "the existing folder is untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetching_into_a_folder_that_does_not_exist_yet_creates_it() {
    let relay = start_relay(|_| {});
    let mut fh = files_host(&relay, UploadPolicy::Allow, FILES, |_| {});
    make_file(&fh.share.path().join("report.pdf"), 70_000);
    let code = fh.host.next_code().await;
    let viewer = ViewerSession::connect(&files_viewer_config(&relay), &code).await.expect("pairs");
    // A fresh account has no ~/Downloads; the viewer's default is to save there.
    let home = tempfile::tempdir().expect("temp");
    let to = home.path().join("Downloads/Tether");
    let names = viewer.files().fetch(vec!["Shared".into(), "report.pdf".into()], to.clone()).result().await;
    assert_eq!(names.expect("fetched"), vec!["report.pdf"]);
    assert_eq!(b3(&to.join("report.pdf")), b3(&fh.share.path().join("report.pdf")));

    // A destination that is a file, not a folder, is a clear error and changes nothing.
    let not_a_folder = home.path().join("notes.txt");
    std::fs::write(&not_a_folder, b"mine").expect("write");
    let got =
        viewer.files().fetch(vec!["Shared".into(), "report.pdf".into()], not_a_folder.clone()).result().await;
    let err = got.expect_err("a file is no folder to save into");
    assert_eq!(err.to_string(), format!("{} is not a folder", not_a_folder.display()));
    assert_eq!(std::fs::read(&not_a_folder).expect("read"), b"mine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_shared_folder_is_fetched_under_the_name_it_is_shared_by() {
    let relay = start_relay(|_| {});
    let mut fh = files_host(&relay, UploadPolicy::Allow, FILES, |_| {});
    let share = fh.share.path();
    std::fs::create_dir_all(share.join("logs/old")).expect("mkdir");
    std::fs::create_dir_all(share.join("empty")).expect("mkdir");
    make_file(&share.join("logs/app.log"), 300_000);
    make_file(&share.join("notes ü.txt"), 1_000);
    let code = fh.host.next_code().await;
    let viewer = ViewerSession::connect(&files_viewer_config(&relay), &code).await.expect("pairs");
    let to = tempfile::tempdir().expect("temp");
    // On disk the share is a temporary folder with a random name; the technician browsed it as "Shared".
    let names = viewer.files().fetch(vec!["Shared".into()], to.path().to_path_buf()).result().await;
    assert_eq!(names.expect("fetched"), vec!["Shared"]);
    assert_eq!(tree(&to.path().join("Shared")), tree(share));
    assert_eq!(tree(share).len(), 5, "two folders with files, an empty one and two files");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_killed_mid_transfer_and_restarted_resumes_the_transfer() {
    let _turn = big_files_turn(800 << 20).await;
    let data = tempfile::tempdir().expect("temp");
    let dir = data.path().to_str().expect("utf-8");
    // The restarted relay needs this port back: take one outside the kernel's ephemeral range (32768 and
    // up), so no test binding port 0 meanwhile can be given it.
    let first = std::process::id() % 12_000;
    let port = (0..12_000u32)
        .map(|i| 20_000 + ((first + i) % 12_000) as u16)
        .find(|p| std::net::UdpSocket::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port");
    let listen = format!("127.0.0.1:{port}");
    let mut relay = Proc::spawn("tether-relay", &["--listen", &listen, "--data-dir", dir]);
    let addr = relay.line("listening").await;
    let fingerprint: tether_shared::tls::Fingerprint = relay.line("fingerprint").await.parse().expect("fp");
    let spec = tether_shared::net::RelaySpec {
        addr: addr.parse().expect("addr"),
        server_name: "localhost".into(),
        trust: RelayTrust::Pinned(fingerprint),
        local_addr: None,
    };
    let timeouts = tether_shared::net::Timeouts {
        relay_idle: Duration::from_secs(2),
        e2e_idle: Duration::from_secs(20),
        keep_alive: Duration::from_millis(500),
        pairing: Duration::from_secs(10),
    };
    let (share, _incoming) = (tempfile::tempdir().expect("temp"), tempfile::tempdir().expect("temp"));
    make_file(&share.path().join("big.bin"), 400 << 20);
    let mut cfg = tether_host::HostConfig::new(spec.clone(), FILES);
    cfg.timeouts = timeouts;
    cfg.session.files.shared = vec![("Shared".into(), share.path().to_path_buf())];
    let mut host = start_host_with(cfg, || capture::open(Source::TestPattern { width: W, height: H }));
    let code = host.next_code().await;
    let vcfg = tether_viewer::session::ViewerConfig {
        relay: spec,
        timeouts,
        technician: "T".into(),
        want: FILES,
        token: None,
    };
    let viewer = ViewerSession::connect(&vcfg, &code).await.expect("pairs");
    let into = tempfile::tempdir().expect("temp");
    let fetch = viewer.files().fetch(vec!["Shared".into(), "big.bin".into()], into.path().to_path_buf());

    let mut progress = fetch.progress();
    while progress.borrow_and_update().is_none_or(|p| p.done == 0) {
        progress.changed().await.expect("progress");
    }
    relay.kill().await;
    let at_kill = progress.borrow().map_or(0, |p| p.done);
    assert!(at_kill < 400 << 20, "the transfer was still running when the relay died");
    // Both people are told, and the session waits.
    let mut reconnecting = viewer.reconnecting();
    tokio::time::timeout(Duration::from_secs(20), reconnecting.wait_for(|r| *r))
        .await
        .expect("viewer told")
        .ok();
    next_event_like(&mut host, |e| matches!(e, HostEvent::Reconnecting)).await;
    // Down for a while: quinn's probe timer backs off meanwhile, to several seconds.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(!viewer.is_closed(), "the session waits for the relay");
    let restarted = Proc::spawn("tether-relay", &["--listen", &addr, "--data-dir", dir]);
    let mut restarted = restarted;
    assert_eq!(restarted.line("fingerprint").await, fingerprint.to_string(), "same certificate");
    let back = std::time::Instant::now();
    next_event_like(&mut host, |e| matches!(e, HostEvent::Reconnected)).await;
    tokio::time::timeout(Duration::from_secs(20), reconnecting.wait_for(|r| !*r))
        .await
        .expect("viewer told")
        .ok();
    let stalled = progress.borrow().map_or(0, |p| p.done);
    while progress.borrow_and_update().is_none_or(|p| p.done == stalled) {
        progress.changed().await.expect("progress");
    }
    eprintln!("bytes flowed again {:?} after the relay was back", back.elapsed());

    let names = tokio::time::timeout(Duration::from_secs(120), fetch.result())
        .await
        .expect("finishes")
        .expect("resumed");
    assert_eq!(names, vec!["big.bin"]);
    assert_eq!(b3(&into.path().join("big.bin")), b3(&share.path().join("big.bin")));
    assert_eq!(tree(into.path()).len(), 1, "no temporary file left");
    // The interruption is in the record both ends hold: lost, then back, before the fetch completed.
    let kinds = |record: &[tether_shared::record::chain::Entry]| -> Vec<&'static str> {
        record
            .iter()
            .filter_map(|e| match &e.event.kind {
                EventKind::Interrupted => Some("interrupted"),
                EventKind::Resumed => Some("resumed"),
                EventKind::Transfer(_) => Some("transfer"),
                _ => None,
            })
            .collect()
    };
    eventually(|| kinds(&viewer.session_record()).len() == 3, "the interruption in the viewer's record")
        .await;
    assert_eq!(kinds(&viewer.session_record()), ["interrupted", "resumed", "transfer"]);
    viewer.leave().await;
    let report = host.report().await.expect("a report");
    assert_eq!(report.record, viewer.session_record(), "the same record at both ends");
}

/// Wait for the host's next event that `wanted` accepts (others pass by).
async fn next_event_like(host: &mut TestHost, wanted: impl Fn(&HostEvent) -> bool) {
    let wait = async { while !wanted(&host.next_event().await) {} };
    tokio::time::timeout(Duration::from_secs(30), wait).await.expect("the host reported it");
}

/// Flips a bit in one forwarded packet out of fifty.
#[derive(Default)]
struct Flipper(AtomicU64);

impl Tap for Flipper {
    fn forwarded(&self, _from: Role, inner: &mut [u8]) {
        if self.0.fetch_add(1, Ordering::Relaxed) % 50 == 49 {
            if let Some(b) = inner.last_mut() {
                *b ^= 0x10;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_flipped_on_the_path_never_reach_the_file() {
    let flipper = Arc::new(Flipper::default());
    let tap: Arc<dyn Tap> = flipper.clone();
    let relay = start_relay(|cfg| cfg.tap = Some(tap));
    let mut fh =
        files_host(&relay, UploadPolicy::Allow, FILES, |cfg| cfg.timeouts.e2e_idle = Duration::from_secs(20));
    let code = fh.host.next_code().await;
    let viewer = ViewerSession::connect(&files_viewer_config(&relay), &code).await.expect("pairs");
    let local = tempfile::tempdir().expect("temp");
    let up = local.path().join("data.bin");
    make_file(&up, 30 << 20);
    viewer.files().upload(&up).result().await.expect("uploaded despite the tampering");
    assert!(flipper.0.load(Ordering::Relaxed) > 1000, "the data crossed the tampering relay");
    assert_eq!(
        b3(&fh.incoming.path().join("data.bin")),
        b3(&up),
        "exact: altered packets were refused by QUIC"
    );
}

/// A small tmpfs of `size` (`"4m"`), unmounted when the guard goes.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(mounted.success(), "mounting a small tmpfs needs root (CI runs as root)");
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(self.dir.path()).status();
    }
}

/// A session whose host takes uploads (without asking) into `disk`.
async fn uploads_into(disk: &SmallDisk, relay: &TestRelay) -> (FileHost, ViewerSession) {
    let incoming = disk.path().to_path_buf();
    let mut fh =
        files_host(relay, UploadPolicy::Allow, FILES, |cfg| cfg.session.files.incoming = Some(incoming));
    let code = fh.host.next_code().await;
    let viewer = ViewerSession::connect(&files_viewer_config(relay), &code).await.expect("pairs");
    (fh, viewer)
}

/// The host's next file failure (the session's `Connected` passes by).
async fn host_file_failure(host: &mut TestHost) -> FileError {
    loop {
        let event = host.next_event().await;
        match (transfer_failure(&event), &event) {
            (Some((_, error)), _) => return error,
            (None, HostEvent::Live(_)) => continue,
            (None, e) if matches!(record_kind(e), Some(EventKind::Connected { .. })) => continue,
            (None, other) => panic!("the user is told, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_larger_than_the_free_space_is_refused_before_a_byte_moves() {
    let disk = SmallDisk::mount("4m");
    let relay = start_relay(|_| {});
    let (mut fh, viewer) = uploads_into(&disk, &relay).await;
    let local = tempfile::tempdir().expect("temp");
    let up = local.path().join("too big.bin");
    make_file(&up, 16 << 20);
    let upload = viewer.files().upload(&up);
    let progress = upload.progress();
    let refused = upload.result().await;
    assert!(
        matches!(refused, Err(FileError::NoRoom { needed, free }) if needed == 16 << 20 && free <= 4 << 20),
        "the technician is told how much is needed and free: {refused:?}"
    );
    let shown = refused.expect_err("refused").to_string();
    assert!(shown.contains("16.8 MB needed"), "{shown}");
    assert!(progress.borrow().is_none(), "nothing moved: {:?}", *progress.borrow());
    assert!(tree(disk.path()).is_empty(), "nothing written: {:?}", tree(disk.path()));
    assert!(matches!(host_file_failure(&mut fh.host).await, FileError::NoRoom { .. }), "the user is told");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_that_fills_up_mid_transfer_fails_clearly_on_both_sides_and_leaves_no_partial_file() {
    // 12 MiB fits on the 16 MiB disk when offered; then something else takes 8 MiB of it. The relay holds
    // the session to 2 MB/s, so the upload is still under way when that happens.
    let disk = SmallDisk::mount("16m");
    let relay = start_relay(|cfg| cfg.session_bytes_per_sec = 2_000_000);
    let (mut fh, viewer) = uploads_into(&disk, &relay).await;
    let local = tempfile::tempdir().expect("temp");
    let up = local.path().join("report.bin");
    make_file(&up, 12 << 20);
    let upload = viewer.files().upload(&up);
    let mut progress = upload.progress();
    tokio::time::timeout(Duration::from_secs(20), progress.wait_for(|p| p.is_some_and(|p| p.done > 0)))
        .await
        .expect("bytes flow")
        .expect("progress");
    let filler = disk.path().join("someone else's file");
    make_file(&filler, 8 << 20);

    assert_eq!(upload.result().await, Err(FileError::DiskFull), "the technician is told");
    assert_eq!(
        tree(disk.path()),
        vec![("someone else's file".to_owned(), Some(b3(&filler)))],
        "no partial data"
    );
    assert_eq!(host_file_failure(&mut fh.host).await, FileError::DiskFull, "the user is told");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_need_the_users_consent_once_or_for_the_session() {
    let relay = start_relay(|_| {});
    let (ask, mut questions) = mpsc::channel::<ConsentRequest>(4);
    let mut fh = files_host(&relay, UploadPolicy::Ask(ask), FILES, |_| {});
    let code = fh.host.next_code().await;
    let viewer = ViewerSession::connect(&files_viewer_config(&relay), &code).await.expect("pairs");
    let local = tempfile::tempdir().expect("temp");
    let up = local.path().join("note.txt");
    std::fs::write(&up, b"hello").expect("write");

    // The technician gives up while the user is still reading the question: the question is withdrawn.
    let waiting = viewer.files().upload(&up);
    let mut q =
        tokio::time::timeout(Duration::from_secs(10), questions.recv()).await.expect("asked").expect("open");
    waiting.cancel();
    assert_eq!(waiting.result().await, Err(FileError::Cancelled));
    tokio::time::timeout(Duration::from_secs(10), q.reply.closed()).await.expect("the question is withdrawn");
    assert!(tree(fh.incoming.path()).is_empty());

    let (denied, ()) =
        tokio::join!(viewer.files().upload(&up).result(), answer(&mut questions, Decision::Deny));
    assert_eq!(denied, Err(FileError::Declined));
    assert!(tree(fh.incoming.path()).is_empty());
    let (once, ()) =
        tokio::join!(viewer.files().upload(&up).result(), answer(&mut questions, Decision::AllowForSession));
    assert_eq!(once.expect("allowed"), vec!["note.txt"]);
    // Allowed for the session: no more questions.
    assert_eq!(viewer.files().upload(&up).result().await.expect("allowed"), vec!["note (1).txt"]);
    assert!(questions.try_recv().is_err());

    // The user's log: the refusal and the two files. The withdrawn question is no failed transfer (the
    // window already said the technician stopped sending).
    let mut logged = Vec::new();
    while logged.len() < 3 {
        let event = fh.host.next_event().await;
        match record_kind(&event) {
            Some(EventKind::Connected { .. }) => {}
            Some(EventKind::Transfer(transfer)) => logged.push(transfer.clone()),
            _ if matches!(event, HostEvent::Live(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    let upload =
        |what: &str, outcome| Transfer { direction: RecordDirection::Upload, what: what.into(), outcome };
    let declined = upload("", Outcome::Refused(FileError::Declined));
    // The host records each file as offered, with the hash it verified: the same five bytes each time,
    // stored under a new name the second time.
    let hash = FileHash(FileDigest::of(&std::fs::read(&up).expect("sent")));
    let stored = |name: &str| {
        let files = vec![FileRecord { path: "note.txt".into(), size: 5, hash }];
        upload(name, Outcome::Completed { names: vec![name.into()], files })
    };
    for expected in [declined, stored("note.txt"), stored("note (1).txt")] {
        assert!(logged.contains(&expected), "{expected:?} in {logged:?}");
    }
    drop(fh.host.stop);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_sees_transfers_under_way_and_can_stop_one_or_all() {
    // The relay holds each session to 10 MB/s, so 250 MB files are still on their way when the user acts,
    // however slow the machine running the test.
    let _turn = big_files_turn(1000 << 20).await;
    let relay = start_relay(|cfg| cfg.session_bytes_per_sec = 10_000_000);
    let registry = Transfers::default();
    let listed = registry.clone();
    let mut fh = files_host(&relay, UploadPolicy::Allow, FILES, |cfg| cfg.transfers = listed);
    make_file(&fh.share.path().join("big.bin"), 250_000_000);
    let local = tempfile::tempdir().expect("temp");
    make_file(&local.path().join("up.bin"), 250_000_000);
    let code = fh.host.next_code().await;
    let viewer = ViewerSession::connect(&files_viewer_config(&relay), &code).await.expect("pairs");
    let handle = loop {
        match fh.host.next_event().await {
            HostEvent::Live(session) => break session,
            e if matches!(record_kind(&e), Some(EventKind::Connected { .. })) => {}
            other => panic!("{other:?}"),
        }
    };
    let to = tempfile::tempdir().expect("temp");
    let fetch = viewer.files().fetch(vec!["Shared".into(), "big.bin".into()], to.path().to_path_buf());
    let upload = viewer.files().upload(&local.path().join("up.bin"));
    for transfer in [&fetch, &upload] {
        let mut progress = transfer.progress();
        tokio::time::timeout(Duration::from_secs(20), progress.wait_for(|p| p.is_some_and(|p| p.done > 0)))
            .await
            .expect("bytes flow")
            .expect("progress");
    }

    // The user's window lists both, as the user knows them, with the host's own progress.
    let running = registry.running();
    let mut shown: Vec<_> = running.iter().map(|t| (t.direction, t.what.as_str())).collect();
    shown.sort_by_key(|(d, _)| *d == Direction::FromTechnician);
    assert_eq!(shown, [(Direction::ToTechnician, "Shared/big.bin"), (Direction::FromTechnician, "up.bin")]);
    assert!(running.iter().all(|t| t.progress.is_some_and(|p| p.total == 250_000_000)), "{running:?}");

    // Stop on the fetch: it ends, with nothing left behind; the upload goes on.
    let fetch_id = running.iter().find(|t| t.direction == Direction::ToTechnician).expect("fetch").id;
    registry.stop(fetch_id);
    let within = Duration::from_secs(20);
    let fetched = tokio::time::timeout(within, fetch.result()).await.expect("the fetch stops");
    assert_eq!(fetched, Err(FileError::Cancelled));
    assert!(tree(to.path()).is_empty(), "nothing of the fetch is left: {:?}", tree(to.path()));
    // (The host takes the fetch off its list just after telling the viewer.)
    eventually(|| registry.running().len() == 1, "the fetch leaves the list").await;
    assert_eq!(registry.running()[0].what, "up.bin", "the upload still runs");

    // The user unticks "Send and receive files": the upload stops at once, with what was written removed.
    handle.set_permissions(Permissions { files: false, ..FILES });
    let uploaded = tokio::time::timeout(within, upload.result()).await.expect("the upload stops");
    assert_eq!(uploaded, Err(FileError::Cancelled));
    assert!(tree(fh.incoming.path()).is_empty(), "nothing of the upload is left");
    assert!(!viewer.is_closed(), "the session goes on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_drops_what_is_still_queued_instead_of_delivering_it_first() {
    // At 1 MB/s, the sender has megabytes queued in its stream window (8 MiB). A stop that only sent word
    // after them would deliver all of that first: seconds of a transfer that seems not to stop.
    const QUEUED: u64 = 8 << 20;
    let relay = start_relay(|cfg| cfg.session_bytes_per_sec = 1_000_000);
    let registry = Transfers::default();
    let listed = registry.clone();
    let mut fh = files_host(&relay, UploadPolicy::Allow, FILES, |cfg| cfg.transfers = listed);
    make_file(&fh.share.path().join("big.bin"), 40 << 20);
    let local = tempfile::tempdir().expect("temp");
    make_file(&local.path().join("up.bin"), 40 << 20);
    let code = fh.host.next_code().await;
    let viewer = ViewerSession::connect(&files_viewer_config(&relay), &code).await.expect("pairs");

    // The user stops a fetch: the technician's side takes in at most a little of what was on its way.
    let to = tempfile::tempdir().expect("temp");
    let fetch = viewer.files().fetch(vec!["Shared".into(), "big.bin".into()], to.path().to_path_buf());
    let mut progress = fetch.progress();
    tokio::time::timeout(Duration::from_secs(30), progress.wait_for(|p| p.is_some_and(|p| p.done > 2 << 20)))
        .await
        .expect("bytes flow")
        .expect("progress");
    let at_stop = progress.borrow().map_or(0, |p| p.done);
    registry.stop(registry.running()[0].id);
    let within = Duration::from_secs(30);
    assert_eq!(tokio::time::timeout(within, fetch.result()).await.expect("stops"), Err(FileError::Cancelled));
    let after = progress.borrow().map_or(0, |p| p.done) - at_stop;
    assert!(after < QUEUED / 2, "{after} bytes arrived after the stop");
    assert!(tree(to.path()).is_empty(), "nothing of the fetch is left: {:?}", tree(to.path()));
    eventually(|| registry.running().is_empty(), "the fetch leaves the user's list").await;

    // The technician cancels an upload: the user's side, too, stops taking bytes in at once.
    let upload = viewer.files().upload(&local.path().join("up.bin"));
    let mut sent = upload.progress();
    tokio::time::timeout(Duration::from_secs(30), sent.wait_for(|p| p.is_some_and(|p| p.done > 2 << 20)))
        .await
        .expect("bytes flow")
        .expect("progress");
    let received = |r: &Transfers| r.running().first().and_then(|t| t.progress).map_or(0, |p| p.done);
    let at_cancel = received(&registry);
    upload.cancel();
    assert_eq!(
        tokio::time::timeout(within, upload.result()).await.expect("stops"),
        Err(FileError::Cancelled)
    );
    let mut last = at_cancel;
    let gone = || {
        last = last.max(received(&registry));
        registry.running().is_empty()
    };
    eventually(gone, "the upload leaves the user's list").await;
    assert!(last - at_cancel < QUEUED / 2, "{} bytes taken in after the cancel", last - at_cancel);
    let mut told = Vec::new();
    while told.len() < 2 {
        let event = fh.host.next_event().await;
        match (transfer_failure(&event), &event) {
            (Some(failure), _) => told.push(failure),
            (None, HostEvent::Live(_)) => {}
            (None, e) if matches!(record_kind(e), Some(EventKind::Connected { .. })) => {}
            (None, other) => panic!("the user is told, got {other:?}"),
        }
    }
    let cancelled = |what: &str| (what.to_owned(), FileError::Cancelled);
    assert_eq!(told, [cancelled("fetch Shared/big.bin"), cancelled("upload")], "the user's log");
    assert!(tree(fh.incoming.path()).is_empty(), "nothing of the upload is left");
    assert!(!viewer.is_closed(), "the session goes on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_files_permission_or_outside_shared_folders_nothing_moves() {
    let relay = start_relay(|_| {});
    let mut fh = files_host(&relay, UploadPolicy::Allow, Permissions::VIEW_ONLY, |_| {});
    let code = fh.host.next_code().await;
    let viewer = ViewerSession::connect(&files_viewer_config(&relay), &code).await.expect("pairs");
    assert_eq!(viewer.files().list(&[]).await, Err(FileError::NotGranted));
    let local = tempfile::tempdir().expect("temp");
    std::fs::write(local.path().join("x"), b"x").expect("write");
    assert_eq!(viewer.files().upload(&local.path().join("x")).result().await, Err(FileError::NotGranted));
    assert!(tree(fh.incoming.path()).is_empty());

    let relay = start_relay(|_| {});
    let mut fh = files_host(&relay, UploadPolicy::Allow, FILES, |_| {});
    let outside = tempfile::tempdir().expect("temp");
    std::fs::write(outside.path().join("secret.txt"), b"secret").expect("write");
    #[cfg(unix)]
    std::os::unix::fs::symlink(outside.path(), fh.share.path().join("escape")).expect("symlink");
    let code = fh.host.next_code().await;
    let viewer = ViewerSession::connect(&files_viewer_config(&relay), &code).await.expect("pairs");
    let to = tempfile::tempdir().expect("temp");
    for path in [
        vec!["Shared", "..", "etc"],
        vec!["Shared", "escape", "secret.txt"],
        vec!["Other"],
        vec!["Shared", "/etc/passwd"],
    ] {
        let path: Vec<String> = path.into_iter().map(String::from).collect();
        let got = viewer.files().fetch(path.clone(), to.path().to_path_buf()).result().await;
        assert!(matches!(got, Err(FileError::BadName(_) | FileError::NotShared(_))), "{path:?}: {got:?}");
    }
    assert!(viewer.files().list(&["Shared".into()]).await.expect("list").is_empty(), "links are not listed");
    assert!(tree(to.path()).is_empty());
}
