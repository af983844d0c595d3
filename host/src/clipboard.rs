//! The host's clipboard (text only), for clipboard sync with the technician.
//!
//! arboard reaches the Wayland clipboard through the data-control protocol where the compositor offers
//! it (`$WAYLAND_DISPLAY`: wlroots, KDE), else the X11 one (GNOME's Wayland offers no data-control: there
//! it is Xwayland's). It serves X11 selections from a thread of its own while its `Clipboard` lives, so
//! one long-lived `Clipboard` sits on a dedicated thread here and the session talks to it through a
//! [`ClipboardHandle`].
//! Sync only runs while the technician has `control` (text typed into the clipboard is as powerful as
//! typing) and asked to watch; what the technician sent is not echoed back.

use std::sync::mpsc as std_mpsc;
use std::thread;

use tokio::sync::oneshot;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ClipboardError {
    #[error("no clipboard: {0}")]
    Unavailable(String),
    #[error("the clipboard thread has stopped")]
    Stopped,
}

enum Command {
    Get(oneshot::Sender<Option<String>>),
    Set(String, oneshot::Sender<Result<(), ClipboardError>>),
}

/// Talks to the clipboard thread. Cheap to clone; the thread ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub struct ClipboardHandle {
    commands: std_mpsc::Sender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Get(_) => "Get",
            Command::Set(..) => "Set",
        })
    }
}

impl ClipboardHandle {
    /// Open the clipboard of the desktop (`$WAYLAND_DISPLAY`'s, else `$DISPLAY`'s).
    pub fn open() -> Result<Self, ClipboardError> {
        let (commands, rx) = std_mpsc::channel::<Command>();
        let (ready_tx, ready_rx) = std_mpsc::channel();
        thread::Builder::new()
            .name("tether-clipboard".into())
            .spawn(move || {
                let mut clipboard = match arboard::Clipboard::new() {
                    Ok(c) => {
                        let _ = ready_tx.send(Ok(()));
                        c
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(ClipboardError::Unavailable(e.to_string())));
                        return;
                    }
                };
                while let Ok(command) = rx.recv() {
                    match command {
                        Command::Get(reply) => {
                            let _ = reply.send(clipboard.get_text().ok());
                        }
                        Command::Set(text, reply) => {
                            let done = clipboard
                                .set_text(text)
                                .map_err(|e| ClipboardError::Unavailable(e.to_string()));
                            let _ = reply.send(done);
                        }
                    }
                }
            })
            .map_err(|e| ClipboardError::Unavailable(e.to_string()))?;
        ready_rx.recv().map_err(|_| ClipboardError::Stopped)??;
        Ok(Self { commands })
    }

    /// The clipboard's text now (`None`: empty or not text).
    pub async fn get(&self) -> Result<Option<String>, ClipboardError> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Get(reply)).map_err(|_| ClipboardError::Stopped)?;
        answer.await.map_err(|_| ClipboardError::Stopped)
    }

    /// Put `text` on the clipboard.
    pub async fn set(&self, text: String) -> Result<(), ClipboardError> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Set(text, reply)).map_err(|_| ClipboardError::Stopped)?;
        answer.await.map_err(|_| ClipboardError::Stopped)?
    }
}
