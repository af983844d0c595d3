//! Clipboard sync on the technician's side (text only): while on, a thread owns the local clipboard
//! (arboard keeps X selections alive from its own thread), sends local changes to the host, and puts the
//! host's changes on the local clipboard. Turning it off (or ending the session) stops the thread.

use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;

use crate::session::ViewerSession;

/// How often the local clipboard is looked at.
const POLL: Duration = Duration::from_millis(400);

/// A running sync; dropping it stops the thread.
#[derive(Debug)]
pub struct ClipboardSync {
    from_host: std_mpsc::Sender<String>,
}

impl ClipboardSync {
    /// Start syncing; `Err` when there is no clipboard (no display, say).
    pub fn start(session: Arc<ViewerSession>, rt: tokio::runtime::Handle) -> Result<Self, String> {
        let (from_host, rx) = std_mpsc::channel::<String>();
        let (ready_tx, ready_rx) = std_mpsc::channel();
        std::thread::Builder::new()
            .name("tether-clipboard".into())
            .spawn(move || {
                let mut clipboard = match arboard::Clipboard::new() {
                    Ok(c) => {
                        let _ = ready_tx.send(Ok(()));
                        c
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let mut seen = clipboard.get_text().ok();
                loop {
                    match rx.recv_timeout(POLL) {
                        Ok(text) => {
                            if clipboard.set_text(text.clone()).is_ok() {
                                seen = Some(text);
                            }
                        }
                        Err(std_mpsc::RecvTimeoutError::Timeout) => {
                            let now = clipboard.get_text().ok();
                            if now.is_some() && now != seen {
                                seen = now.clone();
                                let text = now.unwrap_or_default();
                                if let Err(e) = rt.block_on(session.send_clipboard(&text)) {
                                    tracing::info!("clipboard not sent: {e}");
                                }
                            }
                        }
                        Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        ready_rx.recv().map_err(|_| "the clipboard thread stopped".to_string())??;
        Ok(Self { from_host })
    }

    /// The host's clipboard changed: put it on ours.
    pub fn from_host(&self, text: String) {
        let _ = self.from_host.send(text);
    }
}
