//! The session record: what happened in a session, as typed events both ends build — who connected,
//! what was asked and allowed, permission changes and by whom, files (with size and whole-file hash),
//! chat lines, monitor switches, clipboard use, the end.
//!
//! A [`SessionEvent`] never carries content: no screen, no file bytes, no clipboard text (a clipboard
//! event says only who set it). Chat lines are the exception the record exists for: what was said.
//! Events are plain serde data, so a later tamper-evident record (issue 20) can store both sides as they
//! are. Time is what the caller read from its clock ([`UnixMs`]); nothing here reads a clock or a disk.
//! File hashes come from the transfer engine itself ([`crate::files::send::send_recorded`],
//! [`crate::files::receive::receive_recorded`]): the hash each side sent or verified, not a second read.
//!
//! [`describe::Narrator`] turns events into the host user's plain-language lines: the one formatter the
//! host window's session log and the headless output share.

pub mod chain;
pub mod describe;
pub mod file;
pub mod html;
mod html_inventory;

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::end::EndReason;
use crate::files::proto::FileError;
use crate::relay_proto::VerifiedTechnician;
use crate::session_proto::{Notes, Permissions};

pub use describe::Narrator;

/// What changed between two of the host's participant lists, as seen by the one they were sent to
/// (`now.you`): who else came, who left, where control went. `before`: `None` for the first list (the
/// others already there count as having come).
pub fn roster_changes(
    before: Option<&crate::session_proto::Roster>,
    now: &crate::session_proto::Roster,
) -> Vec<EventKind> {
    let mut out = Vec::new();
    let had = |id: u64| before.is_some_and(|b| b.member(id).is_some());
    for m in now.members.iter().filter(|m| m.id != now.you && !had(m.id)) {
        out.push(EventKind::ColleagueJoined { name: m.name.clone(), invited_by: m.invited_by.clone() });
    }
    for m in before.iter().flat_map(|b| b.members.iter()) {
        if m.id != now.you && now.member(m.id).is_none() {
            out.push(EventKind::ColleagueLeft { name: m.name.clone() });
        }
    }
    let before_control = before.and_then(|b| b.control);
    if now.control != before_control {
        // A holder who left took control with them: said once, as nobody, if the list has no name for them.
        let to = now.control.and_then(|id| now.member(id)).map(|m| m.name.clone());
        out.push(EventKind::ControlMoved { to });
    }
    out
}

/// Milliseconds since the Unix epoch, as the caller's clock said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct UnixMs(pub u64);

impl UnixMs {
    /// `time` in milliseconds since the epoch (0 for a clock set before 1970).
    pub fn from_system(time: SystemTime) -> Self {
        let ms = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        Self(u64::try_from(ms).unwrap_or(u64::MAX))
    }
}

/// One thing that happened in a session, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEvent {
    pub at: UnixMs,
    pub kind: EventKind,
}

impl SessionEvent {
    pub fn new(at: SystemTime, kind: EventKind) -> Self {
        Self { at: UnixMs::from_system(at), kind }
    }
}

/// Which side of the session did something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    /// The host user (the person sharing the screen) or the host's own policy.
    Host,
    /// The technician at the viewer.
    Technician,
}

/// The account a relay verified for the technician.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    pub account: String,
    /// The organization, as the relay states it (empty: it names none).
    pub organization: String,
    /// The relay that verified it, as the host names it.
    pub relay: String,
}

impl From<&VerifiedTechnician> for Verified {
    fn from(v: &VerifiedTechnician) -> Self {
        Self {
            account: v.account.clone(),
            organization: v.organization.clone(),
            relay: v.verifier().to_owned(),
        }
    }
}

impl From<&Verified> for VerifiedTechnician {
    fn from(v: &Verified) -> Self {
        Self { verified_by: v.relay.clone(), ..VerifiedTechnician::new(&v.account, &v.organization) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    /// The code this technician paired with was made (the entry's time), on `relay` as the host names it;
    /// `invited_by`: an invite code, and the technician who asked for it.
    CodeIssued { relay: String, invited_by: Option<String> },
    /// The session started: the technician's name as given (escaped for display on the host), the
    /// account the relay verified if any, what they asked for and what was granted.
    Connected { technician: String, verified: Option<Verified>, asked: Permissions, granted: Permissions },
    /// The technician asked for other permissions during the session.
    Requested { asked: Permissions },
    /// What the technician may do changed. `by`: [`Side::Host`] for the host user's own change,
    /// [`Side::Technician`] for the technician's request (given up, or granted).
    PermissionsChanged { by: Side, before: Permissions, now: Permissions },
    /// A request for more was turned down (the host user said no, or nobody answered).
    RequestDeclined { asked: Permissions },
    /// Files moved, or did not.
    Transfer(Transfer),
    /// A chat line: who wrote it and what (escaped for display where the other side wrote it).
    Chat { from: Side, text: String },
    /// A chat line another technician in the same session wrote (escaped), and their name.
    ColleagueChat { from: String, text: String },
    /// The technician saved their notes (escaped where the host shows them).
    Notes(Notes),
    /// The shared monitor is now `index` (from 0).
    MonitorSwitched { index: u32 },
    /// Someone put text on the other side's clipboard: how many bytes. The text is not recorded.
    Clipboard { by: Side, bytes: u64 },
    /// The technician kept the host's inventory in the record: its digest
    /// ([`crate::inventory::digest`]) and a one-line summary. The report file carries the inventory itself.
    Inventory {
        #[serde(with = "chain::hex32")]
        digest: [u8; 32],
        summary: String,
    },
    /// Another technician is in the session now (joined, or was there when this one joined), and who
    /// invited them.
    ColleagueJoined { name: String, invited_by: Option<String> },
    /// Another technician left the session.
    ColleagueLeft { name: String },
    /// Mouse and keyboard moved to `to` (a technician's name; `None`: nobody has them).
    ControlMoved { to: Option<String> },
    /// The relay went out of reach; the session waited for it.
    Interrupted,
    /// Back on the relay with the other end: the session went on.
    Resumed,
    /// The session ended, and how (who ended it and why).
    Ended { reason: EndReason },
}

/// Which way files go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// The technician fetches from the host's shared folders (host → technician).
    Fetch,
    /// The technician sends files into the host's incoming folder (technician → host).
    Upload,
}

/// One fetch or upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub direction: Direction,
    /// What was asked for: a fetch's path (`Shared/report.pdf`); an upload's top-level names (empty when
    /// it failed before they were known).
    pub what: String,
    pub outcome: Outcome,
}

impl Transfer {
    /// How a log names the transfer: `upload`, or `fetch Shared/report.pdf`.
    pub fn label(&self) -> String {
        match self.direction {
            Direction::Upload => "upload".to_owned(),
            Direction::Fetch => format!("fetch {}", self.what),
        }
    }

    /// Bytes in all of the completed transfer's files (0 otherwise).
    pub fn bytes(&self) -> u64 {
        match &self.outcome {
            Outcome::Completed { files, .. } => files.iter().map(|f| f.size).sum(),
            _ => 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Every file verified and stored. `names`: the top-level names on the receiving side; `files`: every
    /// file, by its path as offered, with the size and whole-file hash the transfer sent and verified —
    /// the same on both sides.
    Completed { names: Vec<String>, files: Vec<FileRecord> },
    /// Turned down before a byte moved: the host user declined, or files were not granted.
    Refused(FileError),
    /// Started (or tried to) and did not complete.
    Failed(FileError),
}

impl Outcome {
    /// A transfer that ended with `error`: refused when it was the host's decision, failed otherwise.
    pub fn from_error(error: FileError) -> Self {
        match error {
            FileError::Declined | FileError::NotGranted => Self::Refused(error),
            other => Self::Failed(other),
        }
    }
}

/// One file moved: its path within the transfer (`/`-separated, the top-level name first), size, and
/// whole-file hash ([`crate::files::proto::FileDigest`], the hash the transfer itself checked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    pub path: String,
    pub size: u64,
    pub hash: FileHash,
}

/// A whole-file hash; serialized as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileHash(pub [u8; 32]);

impl std::fmt::Display for FileHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl std::fmt::Debug for FileHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileHash({self})")
    }
}

impl std::str::FromStr for FileHash {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const BAD: &str = "a file hash is 64 hex digits";
        if s.len() != 64 || !s.is_ascii() {
            return Err(BAD);
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| BAD)?;
        }
        Ok(Self(out))
    }
}

impl Serialize for FileHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FileHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
