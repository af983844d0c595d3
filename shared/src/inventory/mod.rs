//! The host machine's inventory: what a helpdesk writes down about a machine it supports — name, system
//! and kernel, hardware, processor, memory, disks, network interfaces, the user at the desktop, uptime and
//! last boot, installed packages, services (failed ones stand out), the busiest processes.
//!
//! The host reads it (`tether-host`'s `inventory` module) when the technician asks, and only while they
//! may see the screen; it travels in parts ([`pack`]) because a desktop's package list outgrows one
//! control message. Parts a technician chooses to keep go into the session record by digest
//! ([`digest`]): the chain names the inventory, the report file carries it, and a verifier checks the one
//! against the other.
//!
//! Every string here comes from the host: a viewer shows it escaped ([`crate::text::visible`]).

pub mod pack;

use serde::{Deserialize, Serialize};

use crate::human;

/// What the technician's System panel shows about the host machine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemInfo {
    pub hostname: String,
    /// e.g. "Debian GNU/Linux 12 (bookworm)".
    pub os: String,
    pub kernel: String,
    pub cpu: String,
    pub cpu_cores: u32,
    pub memory_total: u64,
    pub memory_used: u64,
    pub disks: Vec<DiskInfo>,
    pub uptime_secs: u64,
    /// When the machine last booted, in seconds since the Unix epoch.
    pub boot_time: u64,
    /// The account whose desktop is shared (the one running the host).
    pub user: String,
    pub hardware: Readable<Hardware>,
    pub interfaces: Vec<NetInterface>,
    pub packages: Readable<Vec<Package>>,
    pub services: Readable<Vec<Service>>,
    /// The busiest processes by processor and by memory (one list, busiest processor first).
    pub processes: Vec<ProcessInfo>,
}

/// A part of the inventory the host could read, or why it could not (no systemd, no DMI tables…).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Readable<T> {
    Read(T),
    Unreadable(String),
}

impl<T: Default> Default for Readable<T> {
    fn default() -> Self {
        Self::Read(T::default())
    }
}

impl<T> Readable<T> {
    pub fn read(&self) -> Option<&T> {
        match self {
            Self::Read(value) => Some(value),
            Self::Unreadable(_) => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskInfo {
    pub mount: String,
    pub total: u64,
    pub available: u64,
}

/// The machine as its firmware describes it (DMI).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hardware {
    pub vendor: String,
    pub model: String,
    /// Readable by root only on most machines: `None` then.
    pub serial: Option<String>,
    /// Firmware vendor, version and date, as far as given.
    pub firmware: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetInterface {
    pub name: String,
    /// `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// Addresses with their prefix: `192.168.1.20/24`, `fe80::1/64`.
    pub addresses: Vec<String>,
}

/// An installed package.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub arch: String,
}

/// A service manager unit (systemd).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub unit: String,
    pub description: String,
    /// `active`, `inactive`, `failed`…
    pub active: String,
    /// `running`, `exited`, `dead`…
    pub sub: String,
}

impl Service {
    pub fn failed(&self) -> bool {
        self.active == "failed"
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub pid: u32,
    pub name: String,
    pub user: String,
    /// Processor use in tenths of a percent of one core (1234 = 123.4 %).
    pub cpu_permille: u32,
    pub memory: u64,
}

impl SystemInfo {
    /// The services that failed (empty when none, or when they could not be read).
    pub fn failed_services(&self) -> Vec<&Service> {
        self.services.read().map_or_else(Vec::new, |all| all.iter().filter(|s| s.failed()).collect())
    }

    /// One line for a log: `pc-17, Debian GNU/Linux 12 (bookworm), 1020 packages, 2 failed services`.
    pub fn summary(&self) -> String {
        let mut parts = vec![self.hostname.clone(), self.os.clone()];
        if let Some(packages) = self.packages.read() {
            parts.push(format!("{} packages", packages.len()));
        }
        if let Some(services) = self.services.read() {
            let failed = services.iter().filter(|s| s.failed()).count();
            parts.push(match failed {
                0 => format!("{} services, none failed", services.len()),
                1 => format!("{} services, 1 failed", services.len()),
                n => format!("{} services, {n} failed", services.len()),
            });
        }
        parts.push(format!("{} memory", human::bytes(self.memory_total)));
        parts.retain(|p| !p.is_empty());
        parts.join(", ")
    }
}

/// The inventory's fingerprint: BLAKE3 of its wire encoding, which both ends compute alike (postcard is
/// deterministic), so a record can name an inventory by 32 bytes.
pub fn digest(info: &SystemInfo) -> [u8; 32] {
    // Plain data: encoding it does not fail.
    let bytes = postcard::to_stdvec(info).unwrap_or_default();
    *blake3::hash(&bytes).as_bytes()
}
