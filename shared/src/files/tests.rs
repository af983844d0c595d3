use std::path::Path;

use tokio::io::{duplex, split, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::progress::Progress;
use super::proto::*;
use super::receive::{receive, Partials};
use super::send::send;
use super::tree::{scan, LocalTree};
use crate::wire;

fn write_file(path: &Path, len: usize, seed: u8) {
    let data: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
    std::fs::write(path, data).expect("write");
}

fn listing(root: &Path) -> Vec<(String, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Option<Vec<u8>>)>) {
        let mut entries: Vec<_> =
            std::fs::read_dir(dir).expect("dir").map(|e| e.expect("entry").path()).collect();
        entries.sort();
        for p in entries {
            let rel = p.strip_prefix(root).expect("inside").to_string_lossy().into_owned();
            if p.is_dir() {
                out.push((rel, None));
                walk(root, &p, out);
            } else {
                out.push((rel, Some(std::fs::read(&p).expect("read"))));
            }
        }
    }
    walk(root, root, &mut out);
    out
}

/// Write one sound chunk of file `file` at `offset`, as a well-behaved sender would: its message, then its
/// bytes.
async fn write_chunk<W: AsyncWrite + Unpin>(w: &mut W, file: u32, offset: u64, data: &[u8]) {
    let hash = *blake3::hash(data).as_bytes();
    let chunk = SenderMsg::Chunk { file, offset, len: data.len() as u32, hash };
    wire::write_msg(w, &chunk, MAX_FILES_MSG).await.expect("chunk");
    w.write_all(data).await.expect("data");
}

async fn allow(_: Vec<Entry>, _: u64) -> Result<(), FileError> {
    Ok(())
}

type Outcome = Result<Vec<String>, FileError>;

/// Send `src` into `dest` over an in-memory stream pair.
async fn transfer(src: &Path, dest: &Path, partials: &Partials) -> (Outcome, Outcome) {
    let (sent, received, _) = transfer_watched(src, dest, partials).await;
    (sent, received)
}

/// [`transfer`], with the last progress each side reported.
async fn transfer_watched(
    src: &Path,
    dest: &Path,
    partials: &Partials,
) -> (Outcome, Outcome, [Option<Progress>; 2]) {
    let tree = scan(src).expect("scan");
    let (a, b) = duplex(1 << 20);
    let ((mut ar, mut aw), (mut br, mut bw)) = (split(a), split(b));
    let cancel = CancellationToken::new();
    let id = super::new_transfer_id();
    let (mut sender_saw, mut receiver_saw) = (None, None);
    let (sent, received) = tokio::join!(
        send(&mut aw, &mut ar, id, &tree, |p| sender_saw = Some(p), &cancel),
        receive(&mut bw, &mut br, dest, partials, allow, |p| receiver_saw = Some(p), &cancel)
    );
    (sent, received, [sender_saw, receiver_saw])
}

#[tokio::test]
async fn a_tree_with_empty_folders_unicode_names_and_big_files_arrives_exactly() {
    let src = tempfile::tempdir().expect("temp");
    let root = src.path().join("Projekt Größe 日本");
    std::fs::create_dir_all(root.join("empty folder")).expect("mkdir");
    std::fs::create_dir_all(root.join("sub/deeper")).expect("mkdir");
    write_file(&root.join("sub/deeper/big.bin"), 3 * CHUNK + 12345, 1);
    write_file(&root.join("exact-chunk.bin"), CHUNK, 2);
    write_file(&root.join("empty.txt"), 0, 3);
    write_file(&root.join("ünïcödé ✓.txt"), 10, 4);
    #[cfg(unix)]
    std::os::unix::fs::symlink("/etc/passwd", root.join("link-to-passwd")).expect("symlink");
    let dest = tempfile::tempdir().expect("temp");
    let (sent, received, last) = transfer_watched(&root, dest.path(), &Partials::default()).await;
    assert_eq!(sent.expect("sent"), vec!["Projekt Größe 日本".to_string()]);
    assert_eq!(received.expect("received"), vec!["Projekt Größe 日本".to_string()]);
    let mut expected = listing(src.path());
    expected.retain(|(name, _)| !name.ends_with("link-to-passwd"));
    assert_eq!(listing(dest.path()), expected, "same tree, same bytes, no link, no temporary files");
    for side in last {
        let side = side.expect("progress");
        assert_eq!((side.files_done, side.files_total), (4, 4), "both sides end at 4 of 4 files: {side:?}");
        assert_eq!(side.done, side.total);
    }
}

#[tokio::test]
async fn existing_names_are_never_overwritten() {
    let src = tempfile::tempdir().expect("temp");
    let file = src.path().join("report.pdf");
    write_file(&file, 100, 9);
    let folder = src.path().join("photos");
    std::fs::create_dir(&folder).expect("mkdir");
    write_file(&folder.join("a.jpg"), 10, 1);
    let dest = tempfile::tempdir().expect("temp");
    std::fs::write(dest.path().join("report.pdf"), b"the user's own report").expect("write");
    std::fs::create_dir(dest.path().join("photos")).expect("mkdir");
    std::fs::write(dest.path().join("photos/a.jpg"), b"the user's own photo").expect("write");
    let partials = Partials::default();
    assert_eq!(transfer(&file, dest.path(), &partials).await.1.expect("ok"), vec!["report (1).pdf"]);
    assert_eq!(transfer(&file, dest.path(), &partials).await.1.expect("ok"), vec!["report (2).pdf"]);
    assert_eq!(transfer(&folder, dest.path(), &partials).await.1.expect("ok"), vec!["photos (1)"]);
    assert_eq!(std::fs::read(dest.path().join("report.pdf")).expect("read"), b"the user's own report");
    assert_eq!(std::fs::read(dest.path().join("photos/a.jpg")).expect("read"), b"the user's own photo");
    assert_eq!(
        std::fs::read(dest.path().join("report (2).pdf")).expect("read"),
        std::fs::read(&file).expect("read")
    );
    assert_eq!(std::fs::read(dest.path().join("photos (1)/a.jpg")).expect("read").len(), 10);
}

/// A sender that speaks the protocol by hand, to send what an honest sender never would.
async fn rogue(
    dest: &Path,
    entries: Vec<Entry>,
    total: u64,
    script: Vec<(SenderMsg, Vec<u8>)>,
) -> Result<Vec<String>, FileError> {
    let (a, b) = duplex(1 << 22);
    let ((_ar, mut aw), (mut br, mut bw)) = (split(a), split(b));
    let sender = async move {
        wire::write_msg(&mut aw, &SenderMsg::Offer { id: [7; 16], entries, total }, MAX_FILES_MSG).await.ok();
        for (msg, raw) in script {
            wire::write_msg(&mut aw, &msg, MAX_FILES_MSG).await.ok();
            aw.write_all(&raw).await.ok();
        }
        aw
    };
    let (cancel, partials) = (CancellationToken::new(), Partials::default());
    let (_aw, got) = tokio::join!(sender, receive(&mut bw, &mut br, dest, &partials, allow, |_| {}, &cancel));
    got
}

#[tokio::test]
async fn a_flipped_byte_is_detected_and_nothing_is_kept() {
    let dest = tempfile::tempdir().expect("temp");
    let data = vec![5u8; 1000];
    let entries = vec![Entry { path: vec!["a.bin".into()], kind: EntryKind::File { size: 1000 } }];
    let mut flipped = data.clone();
    flipped[500] ^= 1;
    let hash = *blake3::hash(&data).as_bytes();
    let chunk = SenderMsg::Chunk { file: 0, offset: 0, len: 1000, hash };
    let got = rogue(dest.path(), entries.clone(), 1000, vec![(chunk, flipped.clone())]).await;
    assert_eq!(got, Err(FileError::Corrupted { file: 0 }));
    assert!(listing(dest.path()).is_empty(), "no partial file: {:?}", listing(dest.path()));

    // Chunk hashes right, whole-file hash wrong: also refused at the end, before the final name.
    let chunk = SenderMsg::Chunk { file: 0, offset: 0, len: 1000, hash: *blake3::hash(&flipped).as_bytes() };
    let end = SenderMsg::FileEnd { file: 0, hash: FileDigest::of(&data) };
    let got =
        rogue(dest.path(), entries.clone(), 1000, vec![(chunk.clone(), flipped.clone()), (end, vec![])])
            .await;
    assert_eq!(got, Err(FileError::Corrupted { file: 0 }));
    assert!(listing(dest.path()).is_empty());

    // The same chunk with its own file hash is accepted: the refusals above are about the bytes.
    let end = SenderMsg::FileEnd { file: 0, hash: FileDigest::of(&flipped) };
    let got =
        rogue(dest.path(), entries, 1000, vec![(chunk, flipped), (end, vec![]), (SenderMsg::Done, vec![])]);
    assert_eq!(got.await, Ok(vec!["a.bin".to_string()]));
}

#[tokio::test]
async fn the_file_hash_binds_chunk_order_count_and_size() {
    let a = vec![1u8; CHUNK];
    let b = vec![2u8; CHUNK];
    let ab = [a.clone(), b.clone()].concat();
    let ba = [b.clone(), a.clone()].concat();
    assert_ne!(FileDigest::of(&ab), FileDigest::of(&ba), "order");
    assert_ne!(FileDigest::of(&ab), FileDigest::of(&a), "count");
    assert_ne!(FileDigest::of(&[]), FileDigest::of(&[0]), "size");
    assert_ne!(FileDigest::of(&a), *blake3::hash(&a).as_bytes(), "not the plain hash of one chunk");

    // Chunks that each match their hash, sent in another order than the file hash was made for: refused.
    let dest = tempfile::tempdir().expect("temp");
    let size = 2 * CHUNK as u64;
    let entries = vec![Entry { path: vec!["ab.bin".into()], kind: EntryKind::File { size } }];
    let chunk = |offset: u64, data: &[u8]| SenderMsg::Chunk {
        file: 0,
        offset,
        len: data.len() as u32,
        hash: *blake3::hash(data).as_bytes(),
    };
    let script = vec![
        (chunk(0, &b), b.clone()),
        (chunk(CHUNK as u64, &a), a.clone()),
        (SenderMsg::FileEnd { file: 0, hash: FileDigest::of(&ab) }, vec![]),
    ];
    assert_eq!(rogue(dest.path(), entries, size, script).await, Err(FileError::Corrupted { file: 0 }));
    assert!(listing(dest.path()).is_empty());
}

#[tokio::test]
async fn chunks_out_of_place_or_oversized_are_refused_without_panicking() {
    let dest = tempfile::tempdir().expect("temp");
    let entries = vec![Entry { path: vec!["x.bin".into()], kind: EntryKind::File { size: 10 } }];
    let data = vec![3u8; 10];
    let hash = *blake3::hash(&data).as_bytes();
    let scripts = vec![
        vec![(SenderMsg::Chunk { file: 0, offset: 5, len: 10, hash }, data.clone())],
        vec![(SenderMsg::Chunk { file: 1, offset: 0, len: 10, hash }, data.clone())],
        vec![(SenderMsg::Chunk { file: 0, offset: 0, len: 0, hash }, vec![])],
        vec![(SenderMsg::Chunk { file: 0, offset: 0, len: u32::MAX, hash }, data.clone())],
        vec![(SenderMsg::Chunk { file: 0, offset: u64::MAX, len: 10, hash }, data.clone())],
        vec![(SenderMsg::FileEnd { file: 0, hash }, vec![])],
        vec![(SenderMsg::Done, vec![])],
    ];
    for script in scripts {
        let got = rogue(dest.path(), entries.clone(), 10, script.clone()).await;
        assert!(matches!(got, Err(FileError::Protocol(_))), "{script:?}: {got:?}");
        assert!(listing(dest.path()).is_empty());
    }
}

#[tokio::test]
async fn hostile_offers_are_declined_before_touching_the_disk() {
    let dest = tempfile::tempdir().expect("temp");
    let file = |path: &[&str]| Entry {
        path: path.iter().map(|s| s.to_string()).collect(),
        kind: EntryKind::File { size: 1 },
    };
    let dir =
        |path: &[&str]| Entry { path: path.iter().map(|s| s.to_string()).collect(), kind: EntryKind::Dir };
    let offers = vec![
        vec![file(&[".."])],
        vec![dir(&["ok"]), file(&["ok", "..", "..", "etc", "passwd"])],
        vec![file(&["/etc/passwd"])],
        vec![file(&["C:\\Windows"])],
        vec![file(&["CON"])],
        vec![file(&["a\0b"])],
        vec![file(&["orphan", "child"])],
        vec![file(&["twice"]), file(&["twice"])],
    ];
    for entries in offers {
        let total = entries.len() as u64;
        let got = rogue(dest.path(), entries.clone(), total, vec![]).await;
        assert!(matches!(got, Err(FileError::BadName(_) | FileError::Protocol(_))), "{entries:?}: {got:?}");
    }
    assert!(listing(dest.path()).is_empty());
}

/// A first attempt of transfer `id` whose link drops after two chunks; the receiver keeps them.
async fn drop_after_two_chunks(
    file: &Path,
    tree: &LocalTree,
    dest: &Path,
    partials: &Partials,
    id: TransferId,
) {
    let cancel = CancellationToken::new();
    let (a, b) = duplex(4 << 20);
    let ((mut ar, mut aw), (mut br, mut bw)) = (split(a), split(b));
    let bytes = std::fs::read(file).expect("read");
    let bytes_ref = &bytes;
    let first_sender = async move {
        let offer = SenderMsg::Offer { id, entries: tree.entries.clone(), total: tree.total_bytes() };
        wire::write_msg(&mut aw, &offer, MAX_FILES_MSG).await.expect("offer");
        let accept: Option<ReceiverMsg> = wire::read_msg(&mut ar, MAX_FILES_MSG).await.expect("accept");
        assert_eq!(accept, Some(ReceiverMsg::Accept { resume: vec![0] }));
        for k in 0..2 {
            write_chunk(&mut aw, 0, (k * CHUNK) as u64, &bytes_ref[k * CHUNK..(k + 1) * CHUNK]).await;
        }
        drop((ar, aw)); // the link drops
    };
    let (_, first) =
        tokio::join!(first_sender, receive(&mut bw, &mut br, dest, partials, allow, |_| {}, &cancel));
    assert!(matches!(first, Err(FileError::Io(_))), "{first:?}");
    assert_eq!(partials.len(), 1, "the verified part is kept");
}

#[tokio::test]
async fn a_partial_nobody_resumes_is_removed_when_the_session_ends() {
    let src = tempfile::tempdir().expect("temp");
    let file = src.path().join("big.bin");
    write_file(&file, 3 * CHUNK, 7);
    let tree = scan(&file).expect("scan");
    let dest = tempfile::tempdir().expect("temp");
    let partials = Partials::default();
    drop_after_two_chunks(&file, &tree, dest.path(), &partials, super::new_transfer_id()).await;
    let kept = listing(dest.path());
    assert_eq!(kept.len(), 1, "the hidden partial file is there while it can be resumed: {kept:?}");
    let other_handle = partials.clone();
    drop(partials);
    assert_eq!(listing(dest.path()), kept, "still there while the session holds a handle");
    drop(other_handle);
    assert!(listing(dest.path()).is_empty(), "removed with the session");
}

/// A new attempt of transfer `id` with the real sender: both outcomes, the sender's first progress (where
/// it resumed) and the receiver's last.
async fn resume(
    tree: &LocalTree,
    id: TransferId,
    dest: &Path,
    partials: &Partials,
) -> (Outcome, Outcome, Option<Progress>, Option<Progress>) {
    let cancel = CancellationToken::new();
    let (x, y) = duplex(4 << 20);
    let ((mut ar, mut aw), (mut br, mut bw)) = (split(x), split(y));
    let (mut first, mut last) = (None, None);
    let (sent, received) = tokio::join!(
        send(
            &mut aw,
            &mut ar,
            id,
            tree,
            |p| {
                first.get_or_insert(p);
            },
            &cancel
        ),
        receive(&mut bw, &mut br, dest, partials, allow, |p| last = Some(p), &cancel)
    );
    (sent, received, first, last)
}

#[tokio::test]
async fn a_dropped_link_resumes_from_the_last_verified_chunk() {
    let src = tempfile::tempdir().expect("temp");
    let file = src.path().join("big.bin");
    write_file(&file, 5 * CHUNK + 7, 42);
    let tree = scan(&file).expect("scan");
    let dest = tempfile::tempdir().expect("temp");
    let partials = Partials::default();
    let id = super::new_transfer_id();
    let bytes = std::fs::read(&file).expect("read");
    drop_after_two_chunks(&file, &tree, dest.path(), &partials, id).await;

    // Second attempt, same id: the receiver asks to resume at two chunks.
    let (sent, received, first_report, _) = resume(&tree, id, dest.path(), &partials).await;
    assert_eq!(sent.expect("sent"), vec!["big.bin"]);
    assert_eq!(received.expect("received"), vec!["big.bin"]);
    assert_eq!(first_report.expect("progress").done, 2 * CHUNK as u64, "resumed after two chunks");
    assert_eq!(std::fs::read(dest.path().join("big.bin")).expect("read"), bytes);
    assert_eq!(listing(dest.path()).len(), 1, "no temporary file left");
    assert!(partials.is_empty());
}

#[tokio::test]
async fn a_cancelled_transfer_leaves_nothing_behind() {
    let src = tempfile::tempdir().expect("temp");
    let file = src.path().join("big.bin");
    write_file(&file, 8 * CHUNK, 1);
    let tree = scan(&file).expect("scan");
    let dest_dir = tempfile::tempdir().expect("temp");
    let dest = dest_dir.path().to_path_buf();
    let (a, b) = duplex(1 << 16);
    let ((mut ar, mut aw), (mut br, mut bw)) = (split(a), split(b));
    let (send_cancel, recv_cancel) = (CancellationToken::new(), CancellationToken::new());
    let stopper = recv_cancel.clone();
    let partials = Partials::default();
    // The receiver's stream halves go away when it is done, as a QUIC stream does.
    let into = dest.clone();
    let receiver =
        async move { receive(&mut bw, &mut br, &into, &partials, allow, |_| {}, &recv_cancel).await };
    let (sent, received) = tokio::join!(
        send(
            &mut aw,
            &mut ar,
            [1; 16],
            &tree,
            |p| if p.done > 0 {
                stopper.cancel()
            },
            &send_cancel
        ),
        receiver
    );
    assert_eq!(received, Err(FileError::Cancelled));
    assert_eq!(sent, Err(FileError::Cancelled), "the sender hears why");
    assert!(listing(&dest).is_empty(), "{:?}", listing(&dest));
}

#[tokio::test]
async fn a_resume_against_a_changed_source_is_refused() {
    let src = tempfile::tempdir().expect("temp");
    let file = src.path().join("big.bin");
    write_file(&file, 3 * CHUNK, 7);
    let bytes = std::fs::read(&file).expect("read");
    let tree = scan(&file).expect("scan");
    let dest = tempfile::tempdir().expect("temp");
    let partials = Partials::default();
    let id = super::new_transfer_id();
    let cancel = CancellationToken::new();

    // First attempt: one chunk arrives, then the link drops.
    let (a, b) = duplex(4 << 20);
    let ((mut ar, mut aw), (mut br, mut bw)) = (split(a), split(b));
    let (tree_ref, bytes_ref) = (&tree, &bytes);
    let first_sender = async move {
        let offer = SenderMsg::Offer { id, entries: tree_ref.entries.clone(), total: tree_ref.total_bytes() };
        wire::write_msg(&mut aw, &offer, MAX_FILES_MSG).await.expect("offer");
        let _: Option<ReceiverMsg> = wire::read_msg(&mut ar, MAX_FILES_MSG).await.expect("accept");
        write_chunk(&mut aw, 0, 0, &bytes_ref[..CHUNK]).await;
        drop((ar, aw));
    };
    let (_, first) =
        tokio::join!(first_sender, receive(&mut bw, &mut br, dest.path(), &partials, allow, |_| {}, &cancel));
    assert!(matches!(first, Err(FileError::Io(_))), "{first:?}");
    assert_eq!(partials.len(), 1);

    // The source's first chunk changes (same size) before the retry: the receiver's kept chunk no longer
    // matches, and the file hash says so.
    write_file(&file, 3 * CHUNK, 8);
    let (a, b) = duplex(4 << 20);
    let ((mut ar, mut aw), (mut br, mut bw)) = (split(a), split(b));
    let (_, received) = tokio::join!(
        send(&mut aw, &mut ar, id, &tree, |_| {}, &cancel),
        receive(&mut bw, &mut br, dest.path(), &partials, allow, |_| {}, &cancel)
    );
    assert_eq!(received, Err(FileError::Corrupted { file: 0 }));
    assert!(listing(dest.path()).is_empty(), "{:?}", listing(dest.path()));
}

#[cfg(unix)]
#[test]
fn free_space_is_asked_of_the_nearest_folder_that_exists() {
    let dir = tempfile::tempdir().expect("temp");
    let here = super::disk::free_space(dir.path()).expect("statvfs answers on unix");
    assert!(here > 0, "a temporary folder with no room left");
    // A folder the receiver will create: its parent's filesystem is asked (within what others wrote
    // meanwhile).
    let later = super::disk::free_space(&dir.path().join("not/made/yet")).expect("a parent exists");
    assert!(later.abs_diff(here) < 1 << 30, "{later} vs {here}");
}

#[tokio::test]
async fn a_folder_resumed_after_some_files_arrived_sends_and_keeps_each_file_once() {
    let src = tempfile::tempdir().expect("temp");
    let root = src.path().join("proj");
    std::fs::create_dir(&root).expect("mkdir");
    write_file(&root.join("a.txt"), 10, 1);
    write_file(&root.join("b.bin"), 3 * CHUNK + 5, 2);
    let tree = scan(&root).expect("scan");
    let index = |name: &str| tree.entries.iter().position(|e| e.path.last().is_some_and(|n| n == name));
    let (a, b) = (index("a.txt").expect("a"), index("b.bin").expect("b"));
    let a_bytes = std::fs::read(root.join("a.txt")).expect("read");
    let b_bytes = std::fs::read(root.join("b.bin")).expect("read");
    let dest = tempfile::tempdir().expect("temp");
    let partials = Partials::default();
    let id = super::new_transfer_id();
    let cancel = CancellationToken::new();

    // First attempt: a.txt arrives whole and is committed, then the link drops two chunks into b.bin.
    let (x, y) = duplex(4 << 20);
    let ((mut ar, mut aw), (mut br, mut bw)) = (split(x), split(y));
    let first_sender = async {
        let offer = SenderMsg::Offer { id, entries: tree.entries.clone(), total: tree.total_bytes() };
        wire::write_msg(&mut aw, &offer, MAX_FILES_MSG).await.expect("offer");
        let _: Option<ReceiverMsg> = wire::read_msg(&mut ar, MAX_FILES_MSG).await.expect("accept");
        write_chunk(&mut aw, a as u32, 0, &a_bytes).await;
        let end = SenderMsg::FileEnd { file: a as u32, hash: FileDigest::of(&a_bytes) };
        wire::write_msg(&mut aw, &end, MAX_FILES_MSG).await.expect("end");
        for k in 0..2 {
            write_chunk(&mut aw, b as u32, (k * CHUNK) as u64, &b_bytes[k * CHUNK..(k + 1) * CHUNK]).await;
        }
        aw.flush().await.expect("flush");
        // Let the receiver commit a.txt before the link drops.
        while !dest.path().join("proj/a.txt").exists() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        drop((ar, aw));
    };
    let (_, first) =
        tokio::join!(first_sender, receive(&mut bw, &mut br, dest.path(), &partials, allow, |_| {}, &cancel));
    assert!(matches!(first, Err(FileError::Io(_))), "{first:?}");

    // Second attempt with the real sender: a.txt is confirmed, not sent again; b.bin resumes.
    let (sent, received, first_report, receiver_last) = resume(&tree, id, dest.path(), &partials).await;
    let receiver_last = receiver_last.expect("progress");
    assert_eq!(
        (receiver_last.files_done, receiver_last.files_total),
        (2, 2),
        "a.txt confirmed, b.bin received"
    );
    assert_eq!(sent.expect("sent"), vec!["proj"]);
    assert_eq!(received.expect("received"), vec!["proj"]);
    assert_eq!(first_report.expect("progress").done, 10 + 2 * CHUNK as u64, "resumed where it stopped");
    assert_eq!(
        listing(dest.path()),
        vec![
            ("proj".into(), None),
            ("proj/a.txt".into(), Some(a_bytes)),
            ("proj/b.bin".into(), Some(b_bytes))
        ],
        "each file once, no temporary file left"
    );
    assert!(partials.is_empty());
}

/// A sound chunk, its file end and the end of the transfer, for one small file (`rogue`'s script).
fn whole_file(file: u32, data: &[u8]) -> Vec<(SenderMsg, Vec<u8>)> {
    let hash = *blake3::hash(data).as_bytes();
    vec![
        (SenderMsg::Chunk { file, offset: 0, len: data.len() as u32, hash }, data.to_vec()),
        (SenderMsg::FileEnd { file, hash: FileDigest::of(data) }, vec![]),
        (SenderMsg::Done, vec![]),
    ]
}

#[cfg(unix)]
#[tokio::test]
async fn a_link_or_file_where_a_temporary_file_would_go_is_never_written_through() {
    // Temporary files used to be named after the transfer id, which the sender chooses: a link planted
    // under that name (by another local user of a shared download folder, say) was followed, and the
    // file it pointed at truncated and overwritten.
    let dest = tempfile::tempdir().expect("temp");
    let elsewhere = tempfile::tempdir().expect("temp");
    let victim = elsewhere.path().join("victim");
    std::fs::write(&victim, b"the technician's own file").expect("write");
    let old_name = format!(".tether-{}-0.part", "07".repeat(16));
    std::os::unix::fs::symlink(&victim, dest.path().join(&old_name)).expect("symlink");
    let data = b"sent bytes".to_vec();
    let entries = vec![Entry { path: vec!["note.txt".into()], kind: EntryKind::File { size: 10 } }];
    let got = rogue(dest.path(), entries, 10, whole_file(0, &data)).await;
    assert_eq!(got.expect("received"), vec!["note.txt"]);
    assert_eq!(std::fs::read(&victim).expect("read"), b"the technician's own file", "not written through");
    assert_eq!(std::fs::read(dest.path().join("note.txt")).expect("read"), data);
    let meta = std::fs::symlink_metadata(dest.path().join("note.txt")).expect("meta");
    assert!(meta.is_file(), "the received file is a file of its own, not the planted link");
    assert!(std::fs::symlink_metadata(dest.path().join(&old_name)).expect("meta").is_symlink(), "left alone");
}

#[cfg(unix)]
#[tokio::test]
async fn a_file_swapped_for_a_link_after_the_scan_is_refused_not_followed() {
    // A local user plants a link in a shared folder after the technician's fetch scanned it: the sender
    // refuses to open the link instead of sending what it points at.
    let share = tempfile::tempdir().expect("temp");
    let outside = tempfile::tempdir().expect("temp");
    let secret = outside.path().join("secret");
    std::fs::write(&secret, b"SECRET-SECRET").expect("write");
    let folder = share.path().join("docs");
    std::fs::create_dir(&folder).expect("mkdir");
    std::fs::write(folder.join("a.txt"), b"plain text 13").expect("write"); // as long as the secret
    let tree = scan(&folder).expect("scan");
    std::fs::remove_file(folder.join("a.txt")).expect("remove");
    std::os::unix::fs::symlink(&secret, folder.join("a.txt")).expect("symlink");

    let dest = tempfile::tempdir().expect("temp");
    let (a, b) = duplex(1 << 20);
    let ((mut ar, mut aw), (mut br, mut bw)) = (split(a), split(b));
    let (cancel, partials) = (CancellationToken::new(), Partials::default());
    let (sent, received) = tokio::join!(
        send(&mut aw, &mut ar, super::new_transfer_id(), &tree, |_| {}, &cancel),
        receive(&mut bw, &mut br, dest.path(), &partials, allow, |_| {}, &cancel)
    );
    let err = sent.expect_err("a link is not sent");
    assert!(
        matches!(&err, FileError::BadName(why) if why.contains("symbolic link")),
        "a clear error: {err:?}"
    );
    assert_eq!(received.expect_err("nothing arrives"), err, "the receiver hears why");
    for (name, bytes) in listing(dest.path()) {
        assert_ne!(bytes.as_deref(), Some(&b"SECRET-SECRET"[..]), "{name} holds the link's target");
    }
    assert_eq!(listing(dest.path()), vec![("docs".into(), None)], "no file, no temporary file");
}

#[tokio::test]
async fn a_top_level_dot_name_arrives_visible_and_is_named_so() {
    let src = tempfile::tempdir().expect("temp");
    write_file(&src.path().join(".bashrc"), 20, 1);
    std::fs::create_dir_all(src.path().join(".config/autostart")).expect("mkdir");
    write_file(&src.path().join(".config/autostart/.hidden inside"), 5, 2);
    let dest = tempfile::tempdir().expect("temp");
    let partials = Partials::default();
    let (sent, received) = transfer(&src.path().join(".bashrc"), dest.path(), &partials).await;
    assert_eq!(
        (sent.expect("sent"), received.expect("received")),
        (vec!["_bashrc".into()], vec!["_bashrc".into()])
    );
    let (_, received) = transfer(&src.path().join(".bashrc"), dest.path(), &partials).await;
    assert_eq!(received.expect("received"), vec!["_bashrc (1)"]);
    let (_, received) = transfer(&src.path().join(".config"), dest.path(), &partials).await;
    assert_eq!(received.expect("received"), vec!["_config"]);
    let names: Vec<String> = listing(dest.path()).into_iter().map(|(name, _)| name).collect();
    assert_eq!(
        names,
        ["_bashrc", "_bashrc (1)", "_config", "_config/autostart", "_config/autostart/.hidden inside"],
        "nothing hidden at the top; names inside a folder are kept"
    );
}

#[tokio::test]
async fn names_with_text_reordering_characters_are_refused_before_the_disk() {
    let dest = tempfile::tempdir().expect("temp");
    let entries =
        vec![Entry { path: vec!["invoice\u{202E}fdp.exe".into()], kind: EntryKind::File { size: 1 } }];
    let got = rogue(dest.path(), entries, 1, whole_file(0, b"x")).await;
    let err = got.expect_err("refused");
    assert_eq!(
        err.to_string(),
        "refused a name: “invoice\\u{202E}fdp.exe” contains an invisible or text-reordering character"
    );
    assert!(listing(dest.path()).is_empty());
}

#[test]
fn a_fetch_reply_must_be_what_was_asked_for_and_nothing_else() {
    use super::receive::check_reply;
    let file = |path: &[&str]| Entry {
        path: path.iter().map(|s| s.to_string()).collect(),
        kind: EntryKind::File { size: 1 },
    };
    let dir =
        |path: &[&str]| Entry { path: path.iter().map(|s| s.to_string()).collect(), kind: EntryKind::Dir };
    assert_eq!(check_reply("report.pdf", &[file(&["report.pdf"])]), Ok(()));
    assert_eq!(check_reply("photos", &[dir(&["photos"]), file(&["photos", "a.jpg"])]), Ok(()));
    let refused = |requested: &str, offered: &str| {
        Err(FileError::Unrequested { requested: requested.into(), offered: offered.into() })
    };
    assert_eq!(check_reply("report.pdf", &[file(&[".xsessionrc"])]), refused("report.pdf", ".xsessionrc"));
    assert_eq!(check_reply("report.pdf", &[]), refused("report.pdf", "nothing"));
    assert_eq!(
        check_reply("report.pdf", &[file(&["report.pdf"]), file(&[".profile"])]),
        refused("report.pdf", "report.pdf, .profile")
    );
    assert_eq!(
        check_reply("photos", &[dir(&["photos"]), file(&["photos", "a.jpg"]), file(&[".xsessionrc"])]),
        refused("photos", "photos, .xsessionrc")
    );
    assert_eq!(
        check_reply("photos", &[dir(&[".config"]), file(&[".config", "evil"])]),
        refused("photos", ".config")
    );
    let many: Vec<Entry> = ["a", "b", "c", "d", "e"].iter().map(|n| file(&[n])).collect();
    assert_eq!(check_reply("x", &many), refused("x", "a, b, c and 2 more"));
    let shown = check_reply("report.pdf", &[file(&[".xsessionrc"])]).expect_err("refused").to_string();
    assert_eq!(
        shown,
        "the host offered `.xsessionrc` in reply to a fetch of `report.pdf`: refused, nothing was written"
    );
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_folder_swapped_for_a_link_after_the_scan_is_not_followed() {
    // O_NOFOLLOW guards the last component only: the link here is the folder above the file.
    let share = tempfile::tempdir().expect("temp");
    let outside = tempfile::tempdir().expect("temp");
    std::fs::write(outside.path().join("inner.txt"), b"SECRET-SECRET").expect("write");
    let folder = share.path().join("docs");
    std::fs::create_dir_all(folder.join("sub")).expect("mkdir");
    std::fs::write(folder.join("sub/inner.txt"), b"plain text 13").expect("write");
    let tree = scan(&folder).expect("scan");
    std::fs::remove_dir_all(folder.join("sub")).expect("remove");
    std::os::unix::fs::symlink(outside.path(), folder.join("sub")).expect("symlink");

    let dest = tempfile::tempdir().expect("temp");
    let (a, b) = duplex(1 << 20);
    let ((mut ar, mut aw), (mut br, mut bw)) = (split(a), split(b));
    let (cancel, partials) = (CancellationToken::new(), Partials::default());
    let (sent, received) = tokio::join!(
        send(&mut aw, &mut ar, super::new_transfer_id(), &tree, |_| {}, &cancel),
        receive(&mut bw, &mut br, dest.path(), &partials, allow, |_| {}, &cancel)
    );
    let err = sent.expect_err("a link is not followed");
    assert!(matches!(&err, FileError::BadName(why) if why.contains("symbolic link")), "{err:?}");
    assert!(received.is_err());
    for (name, bytes) in listing(dest.path()) {
        assert_ne!(bytes.as_deref(), Some(&b"SECRET-SECRET"[..]), "{name} holds the link's target");
    }
}
