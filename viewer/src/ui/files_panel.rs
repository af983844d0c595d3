//! The files panel: send files to the host (drop them on the window, or type a path), browse the
//! folders the host shares and fetch from them, and every transfer with a progress bar, rate, time
//! left and Cancel. Results stay listed, so the technician sees what went where (or why not), until they
//! clear the finished ones.
//!
//! Every name and error text from the host is shown through [`visible`]: a right-to-left override or a
//! zero-width character in a file name shows as `\u{202E}`, it does not disguise `exe` as `pdf`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tether_shared::files::progress::Progress;
use tether_shared::files::proto::Listed;
use tether_shared::human;
use tether_shared::text::visible;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::files::{FileClient, Transfer};

/// A result a background task fills in and the UI reads each frame.
type Slot<T> = Arc<Mutex<Option<T>>>;

/// One transfer as the panel shows it.
struct Row {
    label: String,
    progress: watch::Receiver<Option<Progress>>,
    cancel: CancellationToken,
    result: Slot<Result<String, String>>,
}

#[derive(Default)]
pub struct FilesPanel {
    /// Where we are in the host's shared folders (empty: the list of shared folders).
    path: Vec<String>,
    listing: Slot<Result<Vec<Listed>, String>>,
    listed_path: Option<Vec<String>>,
    upload_path: String,
    rows: Vec<Row>,
}

impl std::fmt::Debug for FilesPanel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilesPanel").field("path", &self.path).field("transfers", &self.rows.len()).finish()
    }
}

impl FilesPanel {
    /// Start sending `local` to the host.
    pub fn upload(&mut self, files: &FileClient, rt: &tokio::runtime::Handle, local: PathBuf) {
        let label = format!(
            "Send {}",
            local.file_name().map_or(local.display().to_string(), |n| n.to_string_lossy().into())
        );
        let _guard = rt.enter();
        let transfer = files.upload(&local);
        self.track(rt, label, transfer, None);
    }

    fn fetch(&mut self, files: &FileClient, rt: &tokio::runtime::Handle, remote: Vec<String>, to: PathBuf) {
        let label = format!("Fetch {} to {}", visible(&remote.join("/")), to.display());
        let asked = remote.last().cloned();
        let _guard = rt.enter();
        let transfer = files.fetch(remote, to);
        self.track(rt, label, transfer, asked);
    }

    /// `asked`: for a fetch, the name asked for, to say so when it was saved under another one.
    fn track(
        &mut self,
        rt: &tokio::runtime::Handle,
        label: String,
        transfer: Transfer,
        asked: Option<String>,
    ) {
        let result = Arc::new(Mutex::new(None));
        let row = Row {
            label,
            progress: transfer.progress(),
            cancel: transfer.canceller(),
            result: result.clone(),
        };
        rt.spawn(async move {
            let done = transfer
                .result()
                .await
                .map(|names| {
                    let shown = visible(&names.join(", ")).into_owned();
                    match asked.and_then(|asked| crate::files::saved_as(&asked, &names)) {
                        Some(note) => format!("{shown} — {note}"),
                        None => shown,
                    }
                })
                .map_err(|e| visible(&e.to_string()).into_owned());
            if let Ok(mut slot) = result.lock() {
                *slot = Some(done);
            }
        });
        self.rows.push(row);
    }

    /// Transfers still running.
    pub fn active(&self) -> usize {
        self.rows.iter().filter(|r| r.result.lock().map(|r| r.is_none()).unwrap_or(false)).count()
    }

    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        files: &FileClient,
        rt: &tokio::runtime::Handle,
        downloads: &mut String,
        allowed: bool,
    ) {
        if !allowed {
            ui.label(
                "The user has not allowed file transfer. Ask for it with \"Request files\" in the toolbar.",
            );
            return;
        }
        ui.heading("Send to the host");
        ui.label("Drop files or folders anywhere on this window, or enter a path:");
        ui.horizontal(|ui| {
            ui.add(
                egui::TextEdit::singleline(&mut self.upload_path)
                    .hint_text("/path/to/file")
                    .desired_width(220.0),
            );
            if ui.button("Send").clicked() && !self.upload_path.trim().is_empty() {
                let path = PathBuf::from(self.upload_path.trim());
                self.upload(files, rt, path);
                self.upload_path.clear();
            }
        });
        ui.separator();
        ui.heading("The host's shared folders");
        ui.horizontal(|ui| {
            ui.label("Save fetched files in");
            ui.add(egui::TextEdit::singleline(downloads).desired_width(200.0));
        });
        self.browse(ui, files, rt, downloads);
        ui.separator();
        let finished = |row: &Row| row.result.lock().map_or(true, |r| r.is_some());
        ui.horizontal(|ui| {
            ui.heading("Transfers");
            if self.rows.iter().any(finished) && ui.small_button("Clear finished").clicked() {
                self.rows.retain(|row| !finished(row));
            }
        });
        if self.rows.is_empty() {
            ui.label("None yet.");
        }
        // Newest first; a long session's list scrolls inside the panel instead of running off it.
        egui::ScrollArea::vertical().id_salt("transfers").show(ui, |ui| self.transfer_rows(ui));
    }

    fn transfer_rows(&self, ui: &mut egui::Ui) {
        for row in self.rows.iter().rev() {
            ui.label(&row.label);
            let result = row.result.lock().ok().and_then(|r| r.clone());
            match result {
                Some(Ok(names)) => {
                    let text = match *row.progress.borrow() {
                        Some(p) => format!("Done: {names} ({})", p.summary()),
                        None => format!("Done: {names}"),
                    };
                    ui.colored_label(egui::Color32::from_rgb(40, 140, 60), text);
                }
                Some(Err(why)) => {
                    ui.colored_label(egui::Color32::from_rgb(190, 40, 40), format!("Failed: {why}"));
                }
                None => {
                    let p = (*row.progress.borrow()).filter(|p| p.total > 0);
                    // The bar takes the panel's width beside Cancel, and the numbers go on a line of their
                    // own: a long description must not widen the panel (and shrink the remote screen).
                    let row_size = egui::vec2(ui.available_width(), ui.spacing().interact_size.y);
                    let layout = egui::Layout::right_to_left(egui::Align::Center);
                    ui.allocate_ui_with_layout(row_size, layout, |ui| {
                        if ui.button("Cancel").clicked() {
                            row.cancel.cancel();
                        }
                        let fraction = p.map_or(0.0, |p| p.done as f32 / p.total as f32);
                        let bar = egui::ProgressBar::new(fraction).show_percentage();
                        ui.add(bar.desired_width(ui.available_width()));
                    });
                    ui.add(
                        egui::Label::new(egui::RichText::new(
                            p.map_or("waiting for the host…".to_string(), |p| p.describe()),
                        ))
                        .wrap(),
                    );
                }
            }
        }
    }

    fn browse(
        &mut self,
        ui: &mut egui::Ui,
        files: &FileClient,
        rt: &tokio::runtime::Handle,
        downloads: &str,
    ) {
        if self.listed_path.as_ref() != Some(&self.path) {
            self.listed_path = Some(self.path.clone());
            let (files, path, slot) = (files.clone(), self.path.clone(), self.listing.clone());
            if let Ok(mut s) = slot.lock() {
                *s = None;
            }
            let ctx = ui.ctx().clone();
            rt.spawn(async move {
                let listed = files.list(&path).await.map_err(|e| e.to_string());
                if let Ok(mut s) = slot.lock() {
                    *s = Some(listed);
                }
                ctx.request_repaint();
            });
        }
        ui.horizontal(|ui| {
            if ui.add_enabled(!self.path.is_empty(), egui::Button::new("Up")).clicked() {
                self.path.pop();
            }
            ui.label(format!("/{}", visible(&self.path.join("/"))));
            if ui.button("Refresh").on_hover_text("List again").clicked() {
                self.listed_path = None;
            }
        });
        let listing = self.listing.lock().ok().and_then(|l| l.clone());
        let mut open = None;
        let mut fetch = None;
        egui::ScrollArea::vertical().id_salt("host-files").max_height(220.0).show(ui, |ui| match listing {
            None => {
                ui.label("Listing…");
            }
            Some(Err(why)) => {
                ui.colored_label(egui::Color32::from_rgb(190, 40, 40), visible(&why));
            }
            Some(Ok(entries)) if entries.is_empty() => {
                ui.label(if self.path.is_empty() { "The host shares no folders." } else { "(empty folder)" });
            }
            Some(Ok(entries)) => {
                // Name, size, Fetch: columns, so the buttons line up however long the names are.
                egui::Grid::new("host-files-grid").striped(true).show(ui, |ui| {
                    for entry in entries {
                        if entry.is_dir {
                            if ui.link(format!("{}/", visible(&entry.name))).clicked() {
                                open = Some(entry.name.clone());
                            }
                            ui.label("");
                        } else {
                            ui.label(visible(&entry.name));
                            ui.weak(human::bytes(entry.size));
                        }
                        if ui.small_button("Fetch").clicked() {
                            fetch = Some(entry.name.clone());
                        }
                        ui.end_row();
                    }
                });
            }
        });
        if let Some(name) = open {
            self.path.push(name);
        }
        if let Some(name) = fetch {
            let mut remote = self.path.clone();
            remote.push(name);
            self.fetch(files, rt, remote, PathBuf::from(downloads));
        }
    }
}
