//! The host's inventory as a section of the HTML report: the machine at a glance, failed services first
//! (in red), the busiest processes, then every service and package behind a `<details>` fold (readable
//! without scripts; a browser prints a fold closed, which keeps a printed report to a few pages).

use std::fmt::Write as _;

use super::html::{esc, time};
use super::UnixMs;
use crate::human;
use crate::inventory::{Readable, SystemInfo};

/// The section for `info`.
pub(super) fn section(info: &SystemInfo) -> String {
    let mut out = format!("<h2>The host machine: {}</h2>\n<table>\n", esc(&info.hostname));
    let mut row = |k: &str, v: String| {
        let _ = writeln!(out, "<tr><th>{k}</th><td>{v}</td></tr>");
    };
    row("System", esc(&info.os));
    row("Kernel", esc(&info.kernel));
    row(
        "Hardware",
        match &info.hardware {
            Readable::Read(h) => {
                let serial = h.serial.as_deref().map_or_else(
                    || "serial number readable by root only".to_owned(),
                    |s| format!("serial number {}", esc(s)),
                );
                format!("{} {} ({serial}); firmware {}", esc(&h.vendor), esc(&h.model), esc(&h.firmware))
            }
            Readable::Unreadable(why) => format!("not readable: {}", esc(why)),
        },
    );
    row("Processor", format!("{} ({} cores)", esc(&info.cpu), info.cpu_cores));
    row("Memory", format!("{} used of {}", human::bytes(info.memory_used), human::bytes(info.memory_total)));
    for disk in &info.disks {
        row(
            "Disk",
            format!(
                "{}: {} free of {}",
                esc(&disk.mount),
                human::bytes(disk.available),
                human::bytes(disk.total)
            ),
        );
    }
    for net in &info.interfaces {
        let addresses =
            if net.addresses.is_empty() { "no address".to_owned() } else { net.addresses.join(", ") };
        row("Network", format!("{} ({}): {}", esc(&net.name), esc(&net.mac), esc(&addresses)));
    }
    row("User at the desktop", esc(&info.user));
    row(
        "Last boot",
        format!(
            "{} UTC (up for {})",
            time(UnixMs(info.boot_time.saturating_mul(1000))),
            human::duration(std::time::Duration::from_secs(info.uptime_secs))
        ),
    );
    out.push_str("</table>\n");
    services(&mut out, info);
    processes(&mut out, info);
    packages(&mut out, info);
    out
}

fn services(out: &mut String, info: &SystemInfo) {
    let all = match &info.services {
        Readable::Read(all) => all,
        Readable::Unreadable(why) => {
            let _ = writeln!(out, "<p>Services: {}.</p>", esc(why));
            return;
        }
    };
    let failed = info.failed_services();
    if failed.is_empty() {
        let _ = writeln!(out, "<p>Services: {} units, none failed.</p>", all.len());
    } else {
        let _ = writeln!(out, "<p class=failed>Failed services ({}):</p><ul>", failed.len());
        for s in failed {
            let _ = writeln!(out, "<li class=failed>{} — {}</li>", esc(&s.unit), esc(&s.description));
        }
        out.push_str("</ul>\n");
    }
    let _ = writeln!(
        out,
        "<details><summary>All {} services</summary><table><tr><th>Unit</th><th>State</th><th>Description</th></tr>",
        all.len()
    );
    for s in all {
        let class = if s.failed() { " class=failed" } else { "" };
        let _ = writeln!(
            out,
            "<tr{class}><td>{}</td><td>{} ({})</td><td>{}</td></tr>",
            esc(&s.unit),
            esc(&s.active),
            esc(&s.sub),
            esc(&s.description)
        );
    }
    out.push_str("</table></details>\n");
}

fn processes(out: &mut String, info: &SystemInfo) {
    if info.processes.is_empty() {
        return;
    }
    out.push_str("<p>Busiest processes:</p><table><tr><th>PID</th><th>Name</th><th>User</th><th>Processor</th><th>Memory</th></tr>\n");
    for p in &info.processes {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}.{} %</td><td>{}</td></tr>",
            p.pid,
            esc(&p.name),
            esc(&p.user),
            p.cpu_permille / 10,
            p.cpu_permille % 10,
            human::bytes(p.memory)
        );
    }
    out.push_str("</table>\n");
}

fn packages(out: &mut String, info: &SystemInfo) {
    match &info.packages {
        Readable::Read(all) => {
            let _ = writeln!(
                out,
                "<details><summary>{} installed packages</summary><table><tr><th>Package</th><th>Version</th><th>Architecture</th></tr>",
                all.len()
            );
            for p in all {
                let _ = writeln!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&p.name),
                    esc(&p.version),
                    esc(&p.arch)
                );
            }
            out.push_str("</table></details>\n");
        }
        Readable::Unreadable(why) => {
            let _ = writeln!(out, "<p>Installed packages: {}.</p>", esc(why));
        }
    }
}
