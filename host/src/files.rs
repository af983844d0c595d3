//! Files on the host: the technician browses and fetches from the folders the user shares, and sends
//! files into the user's incoming folder — with the user's consent.
//!
//! Each request arrives on its own QUIC stream ([`tether_shared::files::proto`]); this module answers it
//! with the shared transfer engine. Paths from the viewer are checked component by component and walked
//! without following links, so nothing outside a shared folder can be read and nothing is written outside
//! the incoming folder. Every transfer is reported to the user's session log.
//!
//! Symbolic links inside a shared folder are left out: a listing does not show them, a fetched folder
//! does not hold them (the host's log says which were skipped), and fetching one by name is refused. A
//! file or folder that someone swaps for a link after it was scanned is refused when a file is opened to
//! be sent (`openat2` without links beneath the fetched folder, `O_NOFOLLOW` where there is none;
//! [`tether_shared::files::disk::open_to_send`]), so a link planted by another local user never hands the
//! technician what it points at.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use quinn::{Connection, RecvStream, SendStream};
use tether_shared::files::names::check_component;
use tether_shared::files::progress::Progress;
use tether_shared::files::proto::{
    file_count, Entry, FileError, FileRequest, ListReply, Listed, MAX_FILES_MSG,
};
use tether_shared::files::receive::{receive_recorded, Partials};
use tether_shared::files::{send, stream, tree};
use tether_shared::record::{Direction, EventKind, Outcome, SessionEvent, Transfer};
use tether_shared::session_proto::{priority, Permissions};
use tether_shared::wire;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::transfers::{Direction as Moving, Transfers};

/// What the host user decided about incoming files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    AllowOnce,
    AllowForSession,
    Deny,
}

/// A question for the host user: may these files come in?
#[derive(Debug)]
pub struct ConsentRequest {
    pub technician: String,
    pub names: Vec<String>,
    pub files: usize,
    pub bytes: u64,
    pub reply: oneshot::Sender<Decision>,
}

/// How uploads are approved.
#[derive(Debug, Clone)]
pub enum UploadPolicy {
    /// Ask the user each time (until they allow for the session).
    Ask(mpsc::Sender<ConsentRequest>),
    /// Allowed for the whole session without asking (headless `--accept-uploads`).
    Allow,
    Deny,
}

#[derive(Debug, Clone)]
pub struct FilesConfig {
    /// Where uploads go (none: uploads are refused).
    pub incoming: Option<PathBuf>,
    /// Folders the technician may browse and fetch from, by the name they see.
    pub shared: Vec<(String, PathBuf)>,
    pub uploads: UploadPolicy,
    /// Where every finished, failed or refused fetch and upload is recorded
    /// ([`EventKind::Transfer`], with each file's size and hash).
    pub log: Option<mpsc::UnboundedSender<SessionEvent>>,
    /// Where running transfers are listed for the user to watch and stop.
    pub transfers: Transfers,
}

impl Default for FilesConfig {
    fn default() -> Self {
        Self {
            incoming: None,
            shared: Vec::new(),
            uploads: UploadPolicy::Deny,
            log: None,
            transfers: Transfers::default(),
        }
    }
}

impl FilesConfig {
    /// Share `folder` under `name`, or under `name (2)`, `name (3)`… when an earlier share already has
    /// that name (`~/Documents` and `/media/usb/Documents`): every share stays reachable. Sharing the
    /// same folder twice keeps the first. Returns the name the technician sees.
    pub fn add_share(&mut self, name: &str, folder: PathBuf) -> String {
        if let Some((known, _)) = self.shared.iter().find(|(_, f)| *f == folder) {
            return known.clone();
        }
        let taken = |candidate: &str| self.shared.iter().any(|(n, _)| n == candidate);
        let chosen = std::iter::once(name.to_owned())
            .chain((2u32..).map(|n| format!("{name} ({n})")))
            .find(|candidate| !taken(candidate))
            .unwrap_or_else(|| unreachable!("an endless list of names always has a free one"));
        self.shared.push((chosen.clone(), folder));
        chosen
    }
}

/// State shared by the request handlers of one session.
struct Files {
    cfg: FilesConfig,
    technician: String,
    grants: watch::Receiver<Permissions>,
    partials: Partials,
    allowed_for_session: Mutex<bool>,
    cancel: CancellationToken,
}

/// Serve file requests until the connection closes. Each request runs in its own task.
pub async fn serve(
    conn: Connection,
    cfg: FilesConfig,
    technician: String,
    grants: watch::Receiver<Permissions>,
) {
    let cancel = CancellationToken::new();
    let _stop_all = cancel.clone().drop_guard();
    let files = Arc::new(Files {
        cfg,
        technician,
        grants,
        partials: Partials::default(),
        allowed_for_session: Mutex::new(false),
        cancel,
    });
    while let Ok((send, recv)) = conn.accept_bi().await {
        let _ = send.set_priority(priority::FILES);
        tokio::spawn(handle(files.clone(), send, recv));
    }
}

async fn handle(files: Arc<Files>, mut send: SendStream, mut recv: RecvStream) {
    let request = match wire::read_msg::<_, FileRequest>(&mut recv, MAX_FILES_MSG).await {
        Ok(Some(r)) => r,
        _ => return,
    };
    if !files.grants.borrow().files {
        let _ = reply_refusal(&mut send, &request, FileError::NotGranted).await;
        return;
    }
    let done = match request {
        FileRequest::List { path } => {
            let reply = match list(&files.cfg.shared, &path).await {
                Ok(entries) => ListReply::Entries(entries),
                Err(e) => ListReply::Failed(e),
            };
            let _ = wire::write_msg(&mut send, &reply, MAX_FILES_MSG).await;
            None
        }
        FileRequest::Fetch { path, id } => {
            let stop = files.transfer_stop();
            let _over = stop.clone().drop_guard();
            Some(fetch(&files, &mut send, &mut recv, &path, id, &stop).await)
        }
        FileRequest::Upload => {
            let stop = files.transfer_stop();
            let _over = stop.clone().drop_guard();
            upload(&files, &mut send, &mut recv, &stop).await
        }
    };
    if let Some(transfer) = done {
        if !matches!(transfer.outcome, Outcome::Completed { .. }) {
            tracing::info!("file transfer: {transfer:?}");
        }
        files.log(transfer);
    }
    let _ = send.finish();
    let _ = recv.stop(0u32.into());
}

impl Files {
    /// What stops one transfer: the end of the session, or the user taking back file access — unticking
    /// "Send and receive files" stops transfers under way, not just the next one. Cancel it when the
    /// transfer is over, to end the watch.
    fn transfer_stop(&self) -> CancellationToken {
        let stop = self.cancel.child_token();
        let mut grants = self.grants.clone();
        let watching = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = grants.wait_for(|g| !g.files) => watching.cancel(),
                () = watching.cancelled() => {}
            }
        });
        stop
    }

    fn log(&self, transfer: Transfer) {
        if let Some(log) = &self.cfg.log {
            let _ = log.send(SessionEvent::new(SystemTime::now(), EventKind::Transfer(transfer)));
        }
    }

    /// Ask the host user (unless already allowed for the session).
    async fn consent(&self, entries: &[Entry], bytes: u64) -> Result<(), FileError> {
        if *self.allowed_for_session.lock().map_err(|_| FileError::Declined)? {
            return Ok(());
        }
        let ask = match &self.cfg.uploads {
            UploadPolicy::Allow => return Ok(()),
            UploadPolicy::Deny => return Err(FileError::Declined),
            UploadPolicy::Ask(ask) => ask,
        };
        let names = top_names(entries);
        let files = file_count(entries) as usize;
        let (reply, answer) = oneshot::channel();
        let request = ConsentRequest { technician: self.technician.clone(), names, files, bytes, reply };
        ask.send(request).await.map_err(|_| FileError::Declined)?;
        match answer.await.unwrap_or(Decision::Deny) {
            Decision::AllowOnce => Ok(()),
            Decision::AllowForSession => {
                if let Ok(mut allowed) = self.allowed_for_session.lock() {
                    *allowed = true;
                }
                Ok(())
            }
            Decision::Deny => Err(FileError::Declined),
        }
    }
}

/// The names of an offer's top-level files and folders, as the user will see them.
fn top_names(entries: &[Entry]) -> Vec<String> {
    entries.iter().filter(|e| e.path.len() == 1).map(|e| e.path[0].clone()).collect()
}

async fn reply_refusal(
    send: &mut SendStream,
    request: &FileRequest,
    error: FileError,
) -> Result<(), wire::WireError> {
    use tether_shared::files::proto::{ReceiverMsg, SenderMsg};
    match request {
        FileRequest::List { .. } => wire::write_msg(send, &ListReply::Failed(error), MAX_FILES_MSG).await,
        FileRequest::Fetch { .. } => wire::write_msg(send, &SenderMsg::Failed(error), MAX_FILES_MSG).await,
        FileRequest::Upload => wire::write_msg(send, &ReceiverMsg::Decline(error), MAX_FILES_MSG).await,
    }
}

/// Receive an upload; what to record of it (`None`: the technician withdrew it before the user answered).
async fn upload(
    files: &Files,
    send: &mut SendStream,
    recv: &mut RecvStream,
    stop: &CancellationToken,
) -> Option<Transfer> {
    let failed = |error: FileError| Transfer {
        direction: Direction::Upload,
        what: String::new(),
        outcome: Outcome::from_error(error),
    };
    let Some(dest) = files.cfg.incoming.clone() else {
        let _ = reply_refusal(send, &FileRequest::Upload, FileError::Declined).await;
        return Some(failed(FileError::Declined));
    };
    let listed = files.cfg.transfers.start(Moving::FromTechnician, "files".into(), stop.clone());
    let listed = &listed;
    // Set once the question is answered (or needed no asking): a technician who stops sending before
    // that withdrew the question, which the user's window already says; it is no failed transfer.
    let answered = AtomicBool::new(false);
    let answered = &answered;
    let consent = |entries: Vec<Entry>, total: u64| async move {
        let answer = files.consent(&entries, total).await;
        answered.store(true, Ordering::Relaxed);
        answer?;
        listed.rename(top_names(&entries).join(", "));
        Ok(())
    };
    let report = |p: Progress| listed.progress(p);
    let received = receive_recorded(send, recv, &dest, &files.partials, consent, report, stop).await;
    let (names, files) = match received {
        Ok(received) => received,
        Err(FileError::Cancelled) if !answered.load(Ordering::Relaxed) => return None,
        Err(e) => return Some(failed(e)),
    };
    let what = names.join(", ");
    Some(Transfer { direction: Direction::Upload, what, outcome: Outcome::Completed { names, files } })
}

async fn fetch(
    files: &Files,
    send: &mut SendStream,
    recv: &mut RecvStream,
    path: &[String],
    id: [u8; 16],
    stop: &CancellationToken,
) -> Transfer {
    let what = path.join("/");
    let failed = |error: FileError| Transfer {
        direction: Direction::Fetch,
        what: what.clone(),
        outcome: Outcome::from_error(error),
    };
    let local = match resolve(&files.cfg.shared, path).await {
        Ok(local) => local,
        Err(e) => {
            let _ = reply_refusal(send, &FileRequest::Fetch { path: path.to_vec(), id }, e.clone()).await;
            return failed(e);
        }
    };
    // Named as the technician knows it: the last component, or the share's name for a whole share.
    let name = path.last().cloned().unwrap_or_default();
    let tree = match tokio::task::spawn_blocking(move || tree::scan_as(&local, &name)).await {
        Ok(Ok(tree)) => tree,
        Ok(Err(e)) => {
            let _ = reply_refusal(send, &FileRequest::Fetch { path: path.to_vec(), id }, e.clone()).await;
            return failed(e);
        }
        Err(e) => return failed(FileError::Io(e.to_string())),
    };
    for (skipped, why) in &tree.skipped {
        tracing::info!("not sent with {what}: {}: {why}", skipped.display());
    }
    // The log names what left this machine as the user knows it (`Documents/report.pdf`), not the name
    // the technician's side stored it under (`report (1).pdf` when theirs was taken).
    let listed = files.cfg.transfers.start(Moving::ToTechnician, what.clone(), stop.clone());
    let sent = send::send_recorded(send, recv, id, &tree, |p| listed.progress(p), stop).await;
    stream::end_sending(send, stop.is_cancelled());
    let (names, files) = match sent {
        Ok(sent) => sent,
        Err(e) => return failed(e),
    };
    Transfer { direction: Direction::Fetch, what, outcome: Outcome::Completed { names, files } }
}

/// Map a viewer path (`[share, components…]`) to a local path inside that share, refusing bad names and
/// links anywhere on the way.
async fn resolve(shared: &[(String, PathBuf)], path: &[String]) -> Result<PathBuf, FileError> {
    let not_shared = || FileError::NotShared(path.join("/"));
    let (share, rest) = path.split_first().ok_or_else(not_shared)?;
    let (_, root) = shared.iter().find(|(name, _)| name == share).ok_or_else(not_shared)?;
    let mut local = root.clone();
    for component in rest {
        check_component(component).map_err(|e| FileError::BadName(e.to_string()))?;
        local.push(component);
        let meta =
            tokio::fs::symlink_metadata(&local).await.map_err(|e| FileError::from_io(&e, &path.join("/")))?;
        if meta.file_type().is_symlink() {
            return Err(FileError::NotShared(format!("{} (a link)", path.join("/"))));
        }
    }
    Ok(local)
}

async fn list(shared: &[(String, PathBuf)], path: &[String]) -> Result<Vec<Listed>, FileError> {
    if path.is_empty() {
        return Ok(shared
            .iter()
            .map(|(name, _)| Listed { name: name.clone(), is_dir: true, size: 0 })
            .collect());
    }
    let dir = resolve(shared, path).await?;
    let io = |e: std::io::Error| FileError::from_io(&e, &path.join("/"));
    let mut out = Vec::new();
    let mut entries = tokio::fs::read_dir(&dir).await.map_err(io)?;
    while let Some(entry) = entries.next_entry().await.map_err(io)? {
        let (Some(name), Ok(meta)) = (entry.file_name().to_str().map(str::to_owned), entry.metadata().await)
        else {
            continue;
        };
        if meta.file_type().is_symlink() || check_component(&name).is_err() {
            continue;
        }
        out.push(Listed { name, is_dir: meta.is_dir(), size: if meta.is_file() { meta.len() } else { 0 } });
    }
    out.sort_by(|a, b| (!a.is_dir, &a.name).cmp(&(!b.is_dir, &b.name)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_with_the_same_name_all_stay_reachable() {
        let mut cfg = FilesConfig::default();
        assert_eq!(cfg.add_share("Documents", "/home/ana/Documents".into()), "Documents");
        assert_eq!(cfg.add_share("Documents", "/media/usb/Documents".into()), "Documents (2)");
        assert_eq!(cfg.add_share("Documents", "/home/ana/Documents".into()), "Documents", "same folder");
        assert_eq!(cfg.add_share("Documents", "/srv/Documents".into()), "Documents (3)");
        let names: Vec<&str> = cfg.shared.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["Documents", "Documents (2)", "Documents (3)"]);
    }
}
