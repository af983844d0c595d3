//! The System panel: the host machine's inventory as a helpdesk reads it — the machine at a glance,
//! failed services in red, then packages, services and the busiest processes, all filtered by one search
//! field. *Keep in record* puts the inventory shown into the session record (both ends' reports carry
//! it); the host accepts that only while the technician may see the screen.
//!
//! Everything shown came from the host: escaped with [`tether_shared::text::visible`].

use std::time::Duration;

use tether_shared::human;
use tether_shared::inventory::{Readable, SystemInfo};
use tether_shared::text::visible;

const FAILED: egui::Color32 = egui::Color32::from_rgb(220, 60, 60);

/// What the technician asked the panel for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemAction {
    Refresh,
    Keep,
}

/// The search text, and the digest of the inventory on show (computed once per inventory).
#[derive(Debug, Default)]
pub struct SystemPanel {
    pub search: String,
}

impl SystemPanel {
    /// Draw `info` (`None`: still asking); `kept`: whether the record holds this inventory already.
    pub fn show(&mut self, ui: &mut egui::Ui, info: Option<&SystemInfo>, kept: bool) -> Option<SystemAction> {
        let mut action = None;
        ui.horizontal(|ui| {
            ui.heading("The host machine");
            if ui.button("Refresh").clicked() {
                action = Some(SystemAction::Refresh);
            }
        });
        let Some(info) = info else {
            ui.label("Asking the host…");
            return action;
        };
        ui.horizontal(|ui| {
            if kept {
                ui.label("Kept in the session record.");
            } else if ui
                .button("Keep in record")
                .on_hover_text("Put this inventory into the session record: both reports carry it")
                .clicked()
            {
                action = Some(SystemAction::Keep);
            }
        });
        egui::ScrollArea::vertical().auto_shrink([false, false]).show(ui, |ui| {
            overview(ui, info);
            failed(ui, info);
            ui.add_space(6.0);
            ui.add(
                egui::TextEdit::singleline(&mut self.search)
                    .hint_text("Search packages, services, processes")
                    .desired_width(f32::INFINITY),
            );
            let needle = self.search.trim().to_lowercase();
            packages(ui, info, &needle);
            services(ui, info, &needle);
            processes(ui, info, &needle);
        });
        action
    }
}

fn overview(ui: &mut egui::Ui, info: &SystemInfo) {
    egui::Grid::new("sysinfo").num_columns(2).striped(true).show(ui, |ui| {
        let mut row = |k: &str, v: String| {
            ui.label(k);
            ui.label(visible(&v));
            ui.end_row();
        };
        row("Name", info.hostname.clone());
        row("System", info.os.clone());
        row("Kernel", info.kernel.clone());
        row(
            "Hardware",
            match &info.hardware {
                Readable::Read(h) => {
                    let serial =
                        h.serial.as_deref().map_or("serial: root only".to_owned(), |s| format!("serial {s}"));
                    format!("{} {} ({serial})", h.vendor, h.model)
                }
                Readable::Unreadable(why) => format!("not readable: {why}"),
            },
        );
        row("Processor", format!("{} ({} cores)", info.cpu, info.cpu_cores));
        row(
            "Memory",
            format!("{} used of {}", human::bytes(info.memory_used), human::bytes(info.memory_total)),
        );
        for disk in &info.disks {
            row(
                "Disk",
                format!(
                    "{}: {} free of {}",
                    disk.mount,
                    human::bytes(disk.available),
                    human::bytes(disk.total)
                ),
            );
        }
        for net in &info.interfaces {
            let addresses =
                if net.addresses.is_empty() { "no address".to_owned() } else { net.addresses.join(", ") };
            row("Network", format!("{} ({}): {addresses}", net.name, net.mac));
        }
        row("User", info.user.clone());
        row("Up for", human::duration(Duration::from_secs(info.uptime_secs)));
    });
}

fn failed(ui: &mut egui::Ui, info: &SystemInfo) {
    match &info.services {
        Readable::Unreadable(why) => {
            ui.label(format!("Services: {}", visible(why)));
        }
        Readable::Read(all) => {
            let failed = info.failed_services();
            if failed.is_empty() {
                ui.label(format!("Services: {} units, none failed", all.len()));
            }
            for s in failed {
                ui.colored_label(
                    FAILED,
                    format!("Failed: {} — {}", visible(&s.unit), visible(&s.description)),
                );
            }
        }
    }
}

/// Whether `needle` (lower case) is in any of `fields`.
fn matches(needle: &str, fields: &[&str]) -> bool {
    needle.is_empty() || fields.iter().any(|f| f.to_lowercase().contains(needle))
}

/// "12 of 1020 match" while searching, else the count.
fn count_line(shown: usize, all: usize, noun: &str, searching: bool) -> String {
    if searching {
        format!("{shown} of {all} {noun} match")
    } else {
        format!("{all} {noun}")
    }
}

fn packages(ui: &mut egui::Ui, info: &SystemInfo, needle: &str) {
    let all = match &info.packages {
        Readable::Read(all) => all,
        Readable::Unreadable(why) => {
            ui.label(format!("Packages: {}", visible(why)));
            return;
        }
    };
    let shown: Vec<_> = all.iter().filter(|p| matches(needle, &[&p.name, &p.version])).collect();
    let title = count_line(shown.len(), all.len(), "installed packages", !needle.is_empty());
    egui::CollapsingHeader::new(title).id_salt("packages").default_open(true).show(ui, |ui| {
        let height = ui.text_style_height(&egui::TextStyle::Body);
        egui::ScrollArea::vertical().id_salt("package-list").max_height(260.0).show_rows(
            ui,
            height,
            shown.len(),
            |ui, rows| {
                for p in &shown[rows] {
                    ui.label(visible(&format!("{} {} ({})", p.name, p.version, p.arch)));
                }
            },
        );
    });
}

fn services(ui: &mut egui::Ui, info: &SystemInfo, needle: &str) {
    let Readable::Read(all) = &info.services else { return };
    let shown: Vec<_> = all.iter().filter(|s| matches(needle, &[&s.unit, &s.description])).collect();
    let title = count_line(shown.len(), all.len(), "services", !needle.is_empty());
    egui::CollapsingHeader::new(title).id_salt("services").show(ui, |ui| {
        for s in shown {
            let text = visible(&format!("{} — {} ({})", s.unit, s.active, s.sub)).into_owned();
            if s.failed() {
                ui.colored_label(FAILED, text);
            } else {
                ui.label(text);
            }
        }
    });
}

fn processes(ui: &mut egui::Ui, info: &SystemInfo, needle: &str) {
    let shown: Vec<_> = info.processes.iter().filter(|p| matches(needle, &[&p.name, &p.user])).collect();
    let title = count_line(shown.len(), info.processes.len(), "busiest processes", !needle.is_empty());
    egui::CollapsingHeader::new(title).id_salt("processes").show(ui, |ui| {
        egui::Grid::new("processes").num_columns(4).striped(true).show(ui, |ui| {
            for p in shown {
                ui.label(visible(&p.name));
                ui.label(visible(&p.user));
                ui.label(format!("{}.{} %", p.cpu_permille / 10, p.cpu_permille % 10));
                ui.label(human::bytes(p.memory));
                ui.end_row();
            }
        });
    });
}
