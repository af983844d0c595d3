//! The host's inventory (issue 20) over the real relay and real QUIC: what the technician's viewer gets
//! is what this machine's own tools say (`uname`, `/etc/os-release`, `dpkg-query`, `/proc`, sysfs), the
//! parts it cannot read here say why (no DMI tables, no systemd in a container), and an inventory the
//! technician keeps goes into both ends' records by digest and into both report files, which verify.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::*;
use tether_shared::inventory::{self, Readable, SystemInfo};
use tether_shared::record::file::RecordFile;
use tether_shared::record::EventKind;
use tether_shared::session_proto::Permissions;
use tether_viewer::session::{HostNotice, ViewerSession};

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(out.status.success(), "{cmd} {args:?} failed");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `PRETTY_NAME` from /etc/os-release, unquoted.
fn os_release_name() -> String {
    let text = std::fs::read_to_string("/etc/os-release").expect("/etc/os-release");
    let line = text.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=")).expect("PRETTY_NAME");
    line.trim_matches('"').to_owned()
}

/// The installed packages as dpkg-query lists them: `name arch version`.
fn dpkg_installed() -> BTreeSet<String> {
    let listed =
        run("dpkg-query", &["-W", "-f", "${db:Status-Status} ${Package} ${Architecture} ${Version}\n"]);
    listed.lines().filter_map(|l| l.strip_prefix("installed ")).map(str::to_owned).collect()
}

/// The host's next notice (other news passes by).
async fn next_notice(notices: &mut tokio::sync::broadcast::Receiver<HostNotice>) -> String {
    loop {
        if let HostNotice::Notice(text) = notices.recv().await.expect("a notice") {
            return text;
        }
    }
}

async fn inventory(viewer: &ViewerSession) -> SystemInfo {
    let mut system = viewer.system_info();
    system.borrow_and_update();
    viewer.request_system_info().await.expect("asked");
    let info = tokio::time::timeout(std::time::Duration::from_secs(20), system.wait_for(Option::is_some))
        .await
        .expect("the inventory arrives")
        .expect("session alive")
        .clone();
    info.expect("some")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inventory_matches_this_machine_and_a_kept_one_goes_into_both_reports() {
    let relay = start_relay(|_| {});
    let (host, viewer) = paired_with(&relay, Permissions::VIEW_ONLY, &viewer_config(&relay)).await;
    let info = inventory(&viewer).await;

    assert_eq!(info.hostname, run("uname", &["-n"]));
    assert_eq!(info.kernel, run("uname", &["-r"]));
    let pretty = os_release_name();
    assert!(info.os.contains(pretty.split(" (").next().expect("name")), "{:?} vs {pretty:?}", info.os);
    assert_eq!(info.user, run("id", &["-un"]));
    assert!(info.cpu_cores as usize >= 1 && !info.cpu.is_empty());
    assert!(info.memory_total > 0 && info.memory_used <= info.memory_total);
    assert!(!info.disks.is_empty());
    // Boot time as the kernel states it (/proc/stat's btime), give or take a second of rounding.
    let stat = std::fs::read_to_string("/proc/stat").expect("/proc/stat");
    let btime: u64 =
        stat.lines().find_map(|l| l.strip_prefix("btime ")).expect("btime").parse().expect("number");
    assert!(info.boot_time.abs_diff(btime) <= 1, "{} vs {btime}", info.boot_time);

    // Every package dpkg calls installed, and nothing else.
    let Readable::Read(packages) = &info.packages else { panic!("packages: {:?}", info.packages) };
    let ours: BTreeSet<String> =
        packages.iter().map(|p| format!("{} {} {}", p.name, p.arch, p.version)).collect();
    assert_eq!(ours, dpkg_installed());
    assert!(packages.iter().any(|p| p.name == "dpkg"));

    // The interfaces sysfs lists (but loopback), each with its MAC.
    let mut net: Vec<String> = std::fs::read_dir("/sys/class/net")
        .expect("/sys/class/net")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != "lo")
        .collect();
    net.sort();
    let names: Vec<String> = info.interfaces.iter().map(|i| i.name.clone()).collect();
    assert_eq!(names, net);
    for interface in &info.interfaces {
        let mac =
            std::fs::read_to_string(format!("/sys/class/net/{}/address", interface.name)).expect("address");
        assert_eq!(interface.mac, mac.trim(), "{}", interface.name);
    }

    // Hardware and services: read where the machine has them, and said so where it does not.
    let dmi = std::path::Path::new("/sys/class/dmi/id/sys_vendor");
    match (&info.hardware, std::fs::read_to_string(dmi)) {
        (Readable::Read(hw), Ok(vendor)) => assert_eq!(hw.vendor, vendor.trim()),
        (Readable::Unreadable(why), Err(_)) => assert!(why.contains("no DMI"), "{why}"),
        (hw, vendor) => panic!("hardware {hw:?} but DMI says {vendor:?}"),
    }
    let systemd = std::path::Path::new("/run/systemd/system").exists();
    match &info.services {
        Readable::Read(services) => assert!(systemd && !services.is_empty()),
        Readable::Unreadable(why) => assert!(!systemd, "systemd runs, yet: {why}"),
    }
    // The busiest processes include this test.
    let me = std::process::id();
    assert!(info.processes.iter().any(|p| p.pid == me), "this test among {:?}", info.processes.len());

    // Kept in the record: both ends' copies name it, and both report files carry it and verify.
    let mut notices = viewer.notices();
    viewer.include_inventory().await.expect("asked");
    let digest = inventory::digest(&info);
    eventually(
        || {
            viewer
                .session_record()
                .iter()
                .any(|e| matches!(&e.event.kind, EventKind::Inventory { digest: d, .. } if *d == digest))
        },
        "the inventory in the viewer's record",
    )
    .await;
    let viewer_file = viewer.record_file();
    assert_eq!(viewer_file.inventories, std::slice::from_ref(&info));
    viewer_file.verify().expect("the viewer's file verifies");
    viewer.close().await;
    let report = host.report().await.expect("a report");
    let host_file =
        RecordFile::new(report.record_session, report.record.clone()).with_inventories(&report.inventories);
    assert_eq!(host_file.inventories, std::slice::from_ref(&info), "the host attached what it sent");
    host_file.verify().expect("the host's file verifies");
    let html = tether_shared::record::html::render(&host_file, "The user's copy");
    assert!(
        html.contains("installed packages") && html.contains(&info.kernel),
        "the report shows the inventory"
    );
    assert!(notices.try_recv().is_err(), "no complaint from the host");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_view_the_inventory_is_neither_kept_nor_sent() {
    let relay = start_relay(|_| {});
    let (mut host, viewer) = paired_with(&relay, Permissions::VIEW_ONLY, &viewer_config(&relay)).await;
    inventory(&viewer).await;
    let handle = loop {
        if let tether_host::HostEvent::Live(handle) = host.next_event().await {
            break handle;
        }
    };
    // The user takes "see the screen" back: keeping the inventory is refused, and so is a new one.
    let mut notices = viewer.notices();
    handle.set_permissions(Permissions { view: false, control: false, files: false });
    let mut grants = viewer.grants();
    grants.wait_for(|g| !g.view).await.expect("revoked");
    viewer.include_inventory().await.expect("asked");
    let notice = next_notice(&mut notices).await;
    assert!(notice.contains("only while you may see the screen"), "{notice}");
    viewer.request_system_info().await.expect("asked");
    let notice = next_notice(&mut notices).await;
    assert!(notice.contains("needs the view permission"), "{notice}");
    assert!(!viewer.session_record().iter().any(|e| matches!(e.event.kind, EventKind::Inventory { .. })));
    viewer.close().await;
}
