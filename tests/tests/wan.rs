//! Sessions over an emulated internet link ([`tether_linkemu`]): the host reaches the relay through a
//! narrow, delayed, lossy path, as a home uplink would carry it. Functional checks only — nothing lost,
//! nothing stuck; how fast is the benchmark's job (`tether-bench`).

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use tether_host::capture::{self, Source};
use tether_linkemu::{Direction, Emulator, LinkConfig, Queue};
use tether_shared::input::InputEvent;
use tether_shared::session_proto::Permissions;
use tether_viewer::session::ViewerSession;

const MS: Duration = Duration::from_millis(1);

/// A host sharing the test pattern and a folder holding `file` (`len` pseudo-random bytes), reaching
/// the relay through `link`; and a viewer (on the plain loopback) paired with it, first frame shown.
async fn paired_over(
    relay: &TestRelay,
    link: LinkConfig,
    len: usize,
) -> (TestHost, ViewerSession, Emulator, tempfile::TempDir) {
    let emu = Emulator::start(relay.handle.local_addr(), link).await.expect("emulator");
    let share = tempfile::tempdir().expect("temp");
    let data: Vec<u8> = (0..len as u64).map(|i| (i.wrapping_mul(0x9E37_79B9) >> 11) as u8).collect();
    std::fs::write(share.path().join("file.bin"), data).expect("write");
    let mut cfg = host_config(relay, Permissions::ALL);
    cfg.relay.addr = emu.local_addr();
    cfg.session.files.shared = vec![("Shared".into(), share.path().to_path_buf())];
    let mut host = start_host_with(cfg, || capture::open(Source::TestPattern { width: W, height: H }));
    let code = host.next_code().await;
    let mut viewer_cfg = viewer_config(relay);
    viewer_cfg.want = Permissions::ALL;
    let viewer = ViewerSession::connect(&viewer_cfg, &code).await.expect("the viewer pairs");
    tokio::time::timeout(Duration::from_secs(30), viewer.next_frame(None))
        .await
        .expect("a first frame within 30 s")
        .expect("the first frame");
    (host, viewer, emu, share)
}

fn b3(path: &Path) -> blake3::Hash {
    blake3::hash(&std::fs::read(path).expect("read"))
}

/// The host's uplink at 4 Mbit/s with a 100 ms queue, 40 ms round trip: a fetch fills it for seconds.
/// Meanwhile every input event arrives, in order, and the screen keeps updating.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_and_screen_go_on_while_a_fetch_fills_a_slow_uplink() {
    let relay = start_relay(|_| {});
    let up = Direction::mbit(4.0).delay(20 * MS).queue(Queue::Time(100 * MS));
    let down = Direction::mbit(50.0).delay(20 * MS);
    let (host, viewer, emu, share) = paired_over(&relay, LinkConfig::asymmetric(up, down), 3 << 20).await;

    let to = tempfile::tempdir().expect("temp");
    let fetch = viewer.files().fetch(vec!["Shared".into(), "file.bin".into()], to.path().to_path_buf());
    let mut progress = fetch.progress();
    // Wait until the fetch is moving, so what follows happens while it fills the link.
    tokio::time::timeout(Duration::from_secs(30), progress.wait_for(|p| p.is_some_and(|p| p.done > 0)))
        .await
        .expect("the fetch starts within 30 s")
        .expect("progress");

    let sent: Vec<InputEvent> = (0..100).map(|i| InputEvent::MouseMove { x: i, y: i }).collect();
    for event in &sent {
        viewer.send_input(event.clone()).await.expect("send");
    }
    // Fresh frames keep coming while the transfer runs.
    let mut last = viewer.frames().borrow().as_ref().map(|s| s.info.seq);
    for i in 0..3 {
        let shown = tokio::time::timeout(Duration::from_secs(30), viewer.next_frame(last))
            .await
            .expect("a frame within 30 s while the fetch runs")
            .expect("session");
        last = Some(shown.info.seq);
        if i == 0 {
            // The screen did not wait for the file (3 MiB take over 6 s at 4 Mbit/s).
            let moved = progress.borrow().map(|p| (p.done, p.total));
            assert!(
                moved.is_some_and(|(done, total)| done < total),
                "a frame came only after the fetch: {moved:?}"
            );
        }
    }
    let sink = host.sink.clone();
    eventually(|| sink.events().len() >= sent.len(), "every input event injected").await;
    assert_eq!(&sink.events()[..sent.len()], &sent[..], "complete and in order");

    let names = tokio::time::timeout(Duration::from_secs(120), fetch.result()).await.expect("fetch ends");
    assert_eq!(names.expect("fetched"), vec!["file.bin"]);
    assert_eq!(b3(&to.path().join("file.bin")), b3(&share.path().join("file.bin")));
    let stats = emu.stats();
    assert!(stats.up.bytes > 3 << 20, "the file crossed the emulated uplink: {stats:?}");
    assert!(stats.up.queue_max > Duration::ZERO, "the uplink queued: {stats:?}");
    viewer.close().await;
}

/// 2 % loss, 2 % reordering and 1 % duplication both ways: the fetched file is still exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_is_exact_over_a_lossy_reordering_link() {
    let relay = start_relay(|_| {});
    let rough =
        Direction::mbit(20.0).delay(10 * MS).jitter(2 * MS).loss(0.02).reorder(0.02, 5 * MS).duplicate(0.01);
    let (_host, viewer, emu, share) =
        paired_over(&relay, LinkConfig::symmetric(rough).seed(15), 2 << 20).await;
    let to = tempfile::tempdir().expect("temp");
    let fetch = viewer.files().fetch(vec!["Shared".into(), "file.bin".into()], to.path().to_path_buf());
    let names = tokio::time::timeout(Duration::from_secs(120), fetch.result()).await.expect("fetch ends");
    assert_eq!(names.expect("fetched"), vec!["file.bin"]);
    assert_eq!(b3(&to.path().join("file.bin")), b3(&share.path().join("file.bin")));
    let stats = emu.stats();
    assert!(stats.up.lost > 0 && stats.up.reordered > 0 && stats.up.duplicated > 0, "{stats:?}");
    viewer.close().await;
}

/// The host's estimate of its uplink in bits per second, as the viewer hears it, once `ok` holds for
/// it; waits up to a minute.
async fn estimate_reaches(viewer: &ViewerSession, ok: impl Fn(u64) -> bool, what: &str) -> u64 {
    let mut line = viewer.host_line();
    let report = tokio::time::timeout(
        Duration::from_secs(60),
        line.wait_for(|r| r.and_then(|r| r.bandwidth_bps).is_some_and(&ok)),
    )
    .await
    .unwrap_or_else(|_| panic!("the host's estimate never {what}: last {:?}", *viewer.host_line().borrow()))
    .expect("session");
    report.and_then(|r| r.bandwidth_bps).unwrap_or_default()
}

/// A fetch fills a 20 Mbit/s uplink and the host's estimate finds it; the line is then cut to 2 Mbit/s
/// mid-transfer (the emulator's rate changes under the running session) and the estimate follows it
/// down. The viewer sees both through the host's line reports (`HostControl::Link`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hosts_bandwidth_estimate_follows_a_rate_cut() {
    let relay = start_relay(|_| {});
    let side = |mbit| {
        Direction::mbit(mbit)
            .delay(20 * MS)
            .queue(Queue::Time(200 * MS))
            .mtu(tether_linkemu::ETHERNET_UDP_PAYLOAD)
    };
    let (_host, viewer, emu, _share) =
        paired_over(&relay, LinkConfig::asymmetric(side(20.0), side(50.0)), 24 << 20).await;
    let to = tempfile::tempdir().expect("temp");
    let fetch = viewer.files().fetch(vec!["Shared".into(), "file.bin".into()], to.path().to_path_buf());

    let fast =
        estimate_reaches(&viewer, |bps| bps >= 12_000_000, "reached 12 Mbit/s on a 20 Mbit/s line").await;
    emu.set(LinkConfig::asymmetric(side(2.0), side(50.0)));
    let slow = estimate_reaches(&viewer, |bps| bps <= 4_000_000, "fell to 4 Mbit/s on a 2 Mbit/s line").await;
    assert!(slow < fast / 3, "{fast} → {slow} bit/s");
    let progress = fetch.progress().borrow().map(|p| (p.done, p.total));
    assert!(progress.is_some_and(|(done, total)| done < total), "the cut came mid-transfer: {progress:?}");
    viewer.close().await;
}
