//! The host machine's system information for the technician's "system info" panel (sysinfo).
//! Only answered while the technician may view the screen; nothing here is secret beyond what the screen
//! shows, but it is still the user's machine, so it follows the same grant.

use sysinfo::{Disks, System};
use tether_shared::session_proto::{DiskInfo, SystemInfo};

/// Read the system information now (blocking: run it off the async threads).
pub fn collect() -> SystemInfo {
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
    }
}
