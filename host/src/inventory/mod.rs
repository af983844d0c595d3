//! The host machine's inventory for the technician's System panel and the session record
//! ([`tether_shared::inventory`]). Read only while the technician may see the screen: nothing here is
//! secret beyond what the screen shows, but it is still the user's machine, so it follows the same grant.
//!
//! Each part comes from the API that owns it: sysinfo (system, memory, disks, network, processes, users),
//! the firmware's DMI tables in sysfs ([`hardware`]), dpkg's database ([`packages`]), systemd over D-Bus
//! ([`services`]). A part that cannot be read says why instead ("systemd is not running here").

pub mod hardware;
pub mod packages;
mod processes;
pub mod services;

use std::path::Path;

use sysinfo::{Disks, Networks, System, Users};
use tether_shared::inventory::{DiskInfo, NetInterface, Readable, SystemInfo};

/// Read the inventory now (a few hundred milliseconds: processor use is measured over an interval).
pub async fn collect() -> SystemInfo {
    let services = services::read_system().await;
    let local = tokio::task::spawn_blocking(read_local).await;
    let mut info = local.unwrap_or_else(|e| SystemInfo {
        hostname: System::host_name().unwrap_or_default(),
        hardware: Readable::Unreadable(format!("the reader failed: {e}")),
        ..SystemInfo::default()
    });
    info.services = services;
    info
}

/// Everything but the services (blocking: file reads and a sleep between two process samples).
fn read_local() -> SystemInfo {
    let mut sys = System::new();
    sys.refresh_memory();
    sys.refresh_cpu_list(sysinfo::CpuRefreshKind::nothing());
    let cpu = sys.cpus().first().map(|c| c.brand().trim().to_owned()).unwrap_or_default();
    let disks = Disks::new_with_refreshed_list()
        .iter()
        .map(|d| DiskInfo {
            mount: d.mount_point().display().to_string(),
            total: d.total_space(),
            available: d.available_space(),
        })
        .collect();
    let users = Users::new_with_refreshed_list();
    let processes = processes::busiest(&mut sys, &users);
    SystemInfo {
        hostname: System::host_name().unwrap_or_default(),
        os: System::long_os_version().unwrap_or_else(|| "unknown".into()),
        kernel: System::kernel_version().unwrap_or_default(),
        cpu,
        cpu_cores: sys.cpus().len() as u32,
        memory_total: sys.total_memory(),
        memory_used: sys.used_memory(),
        disks,
        uptime_secs: System::uptime(),
        boot_time: System::boot_time(),
        user: processes::our_user(&sys, &users),
        hardware: hardware::read(Path::new(hardware::DMI)),
        interfaces: interfaces(),
        packages: packages::read(Path::new(packages::DPKG_STATUS)),
        services: Readable::Unreadable("not read yet".into()),
        processes,
    }
}

/// The network interfaces but loopback, by name, with their addresses.
fn interfaces() -> Vec<NetInterface> {
    let networks = Networks::new_with_refreshed_list();
    let mut out: Vec<NetInterface> = networks
        .iter()
        .filter(|(name, _)| name.as_str() != "lo")
        .map(|(name, data)| NetInterface {
            name: name.clone(),
            mac: data.mac_address().to_string(),
            addresses: data.ip_networks().iter().map(|n| format!("{}/{}", n.addr, n.prefix)).collect(),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
