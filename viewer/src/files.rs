//! The technician's side of files: browse what the host shares, fetch it, send files to the host.
//!
//! Every operation opens its own QUIC stream, so transfers never delay the screen or input. A running
//! transfer is a [`Transfer`]: progress (bytes, rate, time left) as it happens, `cancel()`, and its result
//! — the names the files were stored under, or why they were not (the same reason the host shows).
//!
//! A fetch takes only what it asked for: the host's offer must be that one file or folder, under the
//! requested name, with everything else inside it
//! ([`tether_shared::files::receive::check_reply`]). Anything else — a hostile host
//! offering `.xsessionrc` for `report.pdf`, or a folder with a stray file beside it — ends that transfer
//! with [`FileError::Unrequested`] before a byte is written; the session goes on (the technician reads
//! why, and can leave a host that does this). A top-level name that would be hidden arrives visible
//! (`.bashrc` as `_bashrc`, see [`tether_shared::files::names::unhidden`]).

use std::path::{Path, PathBuf};

use quinn::Connection;
use tether_shared::files::progress::Progress;
use tether_shared::files::proto::{FileError, FileRequest, ListReply, Listed, MAX_FILES_MSG};
use tether_shared::files::receive::{receive_reply_recorded, Partials};
use tether_shared::files::{names, new_transfer_id, send, stream, tree};
use tether_shared::record::{Direction, EventKind, FileRecord, Outcome, Transfer as RecordedTransfer};
use tether_shared::session_proto::priority;
use tether_shared::text::visible;
use tether_shared::wire;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::record::Recorder;

/// Where fetched files go unless the technician chose another folder: `~/Downloads/Tether` (`None`
/// without a home folder). The window's setting and the command line's `--to` both start here.
pub fn default_folder() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join("Downloads").join("Tether"))
}

/// What to tell the technician when a fetch of `asked` was stored under another name (`names`: what
/// [`Transfer::result`] gave): a hidden name made visible, or a taken name numbered. `None` when it kept
/// its name.
pub fn saved_as(asked: &str, names: &[String]) -> Option<String> {
    let stored = names.first()?;
    if stored == asked {
        return None;
    }
    let why = if names::unhidden(asked) != asked {
        "a name starting with a dot would be hidden"
    } else {
        "that name was taken"
    };
    Some(format!("`{}` was saved as `{}`: {why}.", visible(asked), visible(stored)))
}

/// File operations of one session.
#[derive(Debug, Clone)]
pub struct FileClient {
    conn: Connection,
    partials: Partials,
    record: Recorder,
}

/// A transfer in progress.
#[derive(Debug)]
pub struct Transfer {
    progress: watch::Receiver<Option<Progress>>,
    cancel: CancellationToken,
    task: JoinHandle<Result<Vec<String>, FileError>>,
}

impl Transfer {
    /// Progress, updated about four times a second (`None` until the other side accepted).
    pub fn progress(&self) -> watch::Receiver<Option<Progress>> {
        self.progress.clone()
    }

    /// Stop the transfer; the receiving side removes what it had written.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// A token that cancels this transfer, for whoever shows a Cancel button while another task awaits
    /// the result.
    pub fn canceller(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Wait for the end: the names the top-level entries were stored under.
    pub async fn result(self) -> Result<Vec<String>, FileError> {
        self.task.await.unwrap_or_else(|e| Err(FileError::Io(format!("transfer task: {e}"))))
    }
}

/// A stream for one file request, behind the screen, input and control (see
/// [`tether_shared::session_proto::priority`]).
async fn open_stream(conn: &Connection) -> Result<(quinn::SendStream, quinn::RecvStream), FileError> {
    let (send, recv) = conn.open_bi().await.map_err(stream_err)?;
    let _ = send.set_priority(priority::FILES); // fails only on a closed stream
    Ok((send, recv))
}

fn stream_err(e: impl std::fmt::Display) -> FileError {
    FileError::Io(format!("connection: {e}"))
}

impl FileClient {
    pub(crate) fn new(conn: Connection, record: Recorder) -> Self {
        Self { conn, partials: Partials::default(), record }
    }

    /// The largest UDP payload the end-to-end path carries from here, as path MTU discovery found it.
    pub fn path_mtu(&self) -> u16 {
        self.conn.stats().path.current_mtu
    }

    /// List a folder the host shares (`[]`: the shared folders themselves).
    pub async fn list(&self, path: &[String]) -> Result<Vec<Listed>, FileError> {
        let (mut send, mut recv) = open_stream(&self.conn).await?;
        let request = FileRequest::List { path: path.to_vec() };
        wire::write_msg(&mut send, &request, MAX_FILES_MSG).await.map_err(stream_err)?;
        let _ = send.finish();
        match wire::read_msg(&mut recv, MAX_FILES_MSG).await.map_err(stream_err)? {
            Some(ListReply::Entries(entries)) => Ok(entries),
            Some(ListReply::Failed(e)) => Err(e),
            None => Err(FileError::Io("the host closed the stream".into())),
        }
    }

    /// Send a local file or folder to the host's incoming folder. Recorded when it ends, with each file's
    /// size and hash ([`crate::record`]).
    pub fn upload(&self, local: &Path) -> Transfer {
        let (conn, local, record) = (self.conn.clone(), local.to_path_buf(), self.record.clone());
        self.spawn(move |report, cancel| async move {
            let sent = async {
                let tree =
                    tokio::task::spawn_blocking(move || tree::scan(&local)).await.map_err(stream_err)??;
                for (path, why) in &tree.skipped {
                    tracing::warn!("not sent: {}: {why}", path.display());
                }
                let (mut send, mut recv) = open_stream(&conn).await?;
                wire::write_msg(&mut send, &FileRequest::Upload, MAX_FILES_MSG).await.map_err(stream_err)?;
                let id = new_transfer_id();
                let result = send::send_recorded(&mut send, &mut recv, id, &tree, report, &cancel).await;
                stream::end_sending(&mut send, cancel.is_cancelled());
                result
            };
            let (names, files) = match sent.await {
                Ok(done) => done,
                Err(e) => return Err(record_failure(&record, Direction::Upload, String::new(), e)),
            };
            let outcome = Outcome::Completed { names: names.clone(), files };
            let what = names.join(", ");
            record.record(EventKind::Transfer(RecordedTransfer {
                direction: Direction::Upload,
                what,
                outcome,
            }));
            Ok(names)
        })
    }

    /// Fetch a file or folder the host shares into the local folder `to`, which is created if it does not
    /// exist yet (the technician chose it; a fresh account has no `~/Downloads`).
    pub fn fetch(&self, remote: Vec<String>, to: PathBuf) -> Transfer {
        let (conn, partials, record) = (self.conn.clone(), self.partials.clone(), self.record.clone());
        let what = remote.join("/");
        self.spawn(move |report, cancel| async move {
            let (names, files) = match fetch_into(&conn, &partials, remote, &to, report, &cancel).await {
                Ok(fetched) => fetched,
                Err(e) => return Err(record_failure(&record, Direction::Fetch, what, e)),
            };
            let outcome = Outcome::Completed { names: names.clone(), files };
            record.record(EventKind::Transfer(RecordedTransfer {
                direction: Direction::Fetch,
                what,
                outcome,
            }));
            Ok(names)
        })
    }

    fn spawn<F, Fut>(&self, run: F) -> Transfer
    where
        F: FnOnce(Box<dyn FnMut(Progress) + Send>, CancellationToken) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<String>, FileError>> + Send + 'static,
    {
        let (tx, progress) = watch::channel(None);
        let cancel = CancellationToken::new();
        let report = Box::new(move |p: Progress| {
            tx.send_replace(Some(p));
        });
        let task = tokio::spawn(run(report, cancel.clone()));
        Transfer { progress, cancel, task }
    }
}

/// Record a transfer that ended with `error`, and hand the error on.
fn record_failure(record: &Recorder, direction: Direction, what: String, error: FileError) -> FileError {
    let outcome = Outcome::from_error(error.clone());
    record.record(EventKind::Transfer(RecordedTransfer { direction, what, outcome }));
    error
}

/// Fetch `remote` into `to` (created if missing): the names the top-level entries were stored under, and
/// the files as received.
async fn fetch_into(
    conn: &Connection,
    partials: &Partials,
    remote: Vec<String>,
    to: &Path,
    report: impl FnMut(Progress),
    cancel: &CancellationToken,
) -> Result<(Vec<String>, Vec<FileRecord>), FileError> {
    if let Err(e) = tokio::fs::create_dir_all(to).await {
        let what = to.display().to_string();
        return Err(match tokio::fs::metadata(to).await {
            Ok(m) if !m.is_dir() => FileError::NotAFolder(what),
            _ => FileError::from_io(&e, &what),
        });
    }
    let (mut send, mut recv) = open_stream(conn).await?;
    let requested = remote.last().cloned().unwrap_or_default();
    let request = FileRequest::Fetch { path: remote, id: new_transfer_id() };
    wire::write_msg(&mut send, &request, MAX_FILES_MSG).await.map_err(stream_err)?;
    // The technician asked for these files: no question, but only what was asked for comes in.
    let result = receive_reply_recorded(&mut send, &mut recv, to, partials, &requested, report, cancel).await;
    let _ = send.finish();
    if result.is_err() {
        let _ = recv.stop(0u32.into());
    }
    result
}
