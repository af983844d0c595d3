//! Messages between viewer and host inside the end-to-end QUIC connection (the relay never sees them).
//!
//! Streams, one message type each way, so a message on the wrong stream cannot be expressed:
//! - **control** (bidirectional, opened by the viewer): [`Hello`] → [`HelloReply`] (`Welcome`/`Refused`),
//!   then [`ViewerControl`] from the viewer: `FrameAck`s (the credit of the pull flow control) and its
//!   [`Request`]s (chat, clipboard, more or less permission, quality, monitor, system info); and
//!   [`HostControl`] from the host: the cursor (`CursorShape` when it changes, `CursorPosition` often —
//!   small messages that never wait behind a frame), its answers and notices. The side that ends the
//!   session says so last: `Bye { reason }` ([`crate::end::EndReason`]), then it closes the connection
//!   once the `Bye` is acknowledged.
//! - **video** (unidirectional, host → viewer): [`FrameUpdate`]s, each a part of one screen update.
//! - **input** (unidirectional, viewer → host): [`crate::input::InputEvent`]s, in order.
//! - **files** (bidirectional, one per request, opened by the viewer): see [`crate::files::proto`].
//!
//! Each side gives its sending half of these streams a [`priority`], so a file transfer that fills the
//! link never holds back input, acks or the screen.

use serde::{Deserialize, Serialize};

/// quinn sends the data of higher-priority streams first (`SendStream::set_priority`); streams of equal
/// priority share the link round-robin. The order is what a person at either end notices first: a key
/// press, then the acks and cursor that keep the picture flowing, then the picture, and files last (a
/// transfer only takes what the screen leaves; a slower transfer is better than a frozen screen).
pub mod priority {
    pub const INPUT: i32 = 3;
    pub const CONTROL: i32 = 2;
    pub const SCREEN: i32 = 1;
    pub const FILES: i32 = -1;
}

use crate::codec::Tile;
use crate::end::EndReason;
pub use crate::inventory::pack::InventoryPart;
pub use crate::inventory::{DiskInfo, SystemInfo};
pub use crate::link::{LinkReport, ScreenQuality, SenderAction};
use crate::record::chain::Entry;

/// What the host user allows the technician to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permissions {
    pub view: bool,
    pub control: bool,
    pub files: bool,
}

impl Permissions {
    pub const VIEW_ONLY: Self = Self { view: true, control: false, files: false };
    pub const ALL: Self = Self { view: true, control: true, files: true };

    /// What is both asked for and allowed.
    pub fn intersect(self, other: Self) -> Self {
        Self {
            view: self.view && other.view,
            control: self.control && other.control,
            files: self.files && other.files,
        }
    }

    /// Parse a comma-separated list such as `view,control`.
    pub fn parse_list(text: &str) -> Result<Self, String> {
        let mut p = Self::default();
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "view" => p.view = true,
                "control" => p.control = true,
                "files" => p.files = true,
                other => return Err(format!("unknown permission {other:?} (use view, control, files)")),
            }
        }
        Ok(p)
    }
}

impl std::fmt::Display for Permissions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let words: Vec<&str> = [(self.view, "view"), (self.control, "control"), (self.files, "files")]
            .into_iter()
            .filter_map(|(on, w)| on.then_some(w))
            .collect();
        if words.is_empty() {
            f.write_str("nothing")
        } else {
            f.write_str(&words.join(", "))
        }
    }
}

/// The viewer's first message on the control stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub version: u32,
    pub technician: String,
    pub want: Permissions,
}

/// The host's answer to [`Hello`], its first message on the control stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    Welcome { version: u32, granted: Permissions, width: u32, height: u32 },
    Refused { reason: RefusalReason },
}

/// The viewer's control messages after [`Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ViewerControl {
    /// The viewer has applied frame `seq` completely: one more frame may be in flight.
    FrameAck { seq: u64 },
    /// Something the technician asks of the host.
    Request(Request),
    /// The viewer leaves, and why (sent last, after the input stream's end).
    Bye { reason: EndReason },
    /// The viewer holds this session's record up to `len` entries, and `mac` is its MAC of that head
    /// ([`crate::record::chain::head_mac`]): the host checks it against its own copy.
    RecordHead { len: u64, mac: [u8; 32] },
}

/// What the technician asks of the host (on control, answered there: [`HostControl`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// A chat line for the host user.
    Chat { text: String },
    /// The technician's clipboard text, to put on the host's clipboard (needs `control`).
    Clipboard { text: String },
    /// Send the host's clipboard text whenever it changes (`true`), or stop (`false`). Needs `control`.
    WatchClipboard(bool),
    /// Ask for these permissions. Less than granted now takes effect at once; more asks the host user.
    RequestPermissions(Permissions),
    /// Use this quality from the next update on.
    SetQuality(ScreenQuality),
    /// Share another monitor (an index into the host's `Monitors` list).
    SelectMonitor { index: u32 },
    /// Ask for the host's system information (answered with `SystemInfo`).
    SystemInfoRequest,
    /// Put the inventory with this digest (the last one the host sent us) into the session record.
    IncludeInventory { digest: [u8; 32] },
    /// Make an invite code for a colleague to join this session (answered with [`HostControl::Invite`]).
    Invite,
    /// Withdraw the open invite: its code stops working.
    WithdrawInvite,
    /// Ask for control of mouse and keyboard (needs `control`): taken when nobody has it; otherwise the
    /// holder and the host user see the wish in [`HostControl::Participants`].
    RequestControl,
    /// The holder of control gives it to participant `to` (an id from [`HostControl::Participants`], who
    /// must be granted `control`). Every key and button the giver held is let go first.
    HandOverControl { to: u64 },
    /// The technician saved their notes: into the session record (each field at most [`MAX_CHAT_TEXT`]).
    SaveNotes(Notes),
}

/// What a technician writes down about a session: the problem, what was done, how it ended, the ticket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notes {
    pub problem: String,
    pub steps: String,
    pub resolution: String,
    pub ticket: String,
}

impl Notes {
    /// The fields, in order, each with how a person reads its name.
    pub fn fields(&self) -> [(&'static str, &str); 4] {
        [
            ("Problem", &self.problem),
            ("Steps taken", &self.steps),
            ("Resolution", &self.resolution),
            ("Ticket", &self.ticket),
        ]
    }

    /// The same notes with `f` applied to every field.
    pub fn map(&self, f: impl Fn(&str) -> String) -> Self {
        Self {
            problem: f(&self.problem),
            steps: f(&self.steps),
            resolution: f(&self.resolution),
            ticket: f(&self.ticket),
        }
    }

    /// Every field within [`MAX_CHAT_TEXT`].
    pub fn fits(&self) -> bool {
        self.fields().iter().all(|(_, f)| f.len() <= MAX_CHAT_TEXT)
    }

    pub fn is_empty(&self) -> bool {
        self.fields().iter().all(|(_, f)| f.trim().is_empty())
    }
}

/// The host's control messages after [`HelloReply::Welcome`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostControl {
    PermissionsChanged(Permissions),
    /// The host's view of the line and what its screen sender does about it (about once a second).
    Link(LinkReport),
    CursorShape(CursorShape),
    /// Cursor position in screen pixels; `visible: false` when it is off the shared monitor.
    CursorPosition {
        x: i32,
        y: i32,
        visible: bool,
    },
    /// The host ends the session, and why. It closes the connection once this is acknowledged.
    Bye {
        reason: EndReason,
    },
    /// A chat line from the host user.
    Chat {
        text: String,
    },
    /// The host's clipboard text changed (only while the viewer watches it and control is granted).
    Clipboard {
        text: String,
    },
    /// The host user declined a `RequestPermissions`; what is granted stays as it was.
    RequestDeclined {
        asked: Permissions,
    },
    /// The host's monitors and which one is shared.
    Monitors {
        monitors: Vec<MonitorInfo>,
        current: u32,
    },
    /// One part of the host's inventory (an answer to `SystemInfoRequest`; see
    /// [`crate::inventory::pack`]).
    Inventory(InventoryPart),
    /// What became of the invite this technician asked for.
    Invite(InviteNews),
    /// Something the technician should know (a request that could not be done, for instance).
    Notice {
        text: String,
    },
    /// Who is in the session now, and who has control; sent to every participant at each change.
    Participants(Roster),
    /// A chat line another technician in the session wrote (the chat is shared by all).
    ColleagueChat {
        from: String,
        text: String,
    },
    /// The chat and the session log before this technician joined, sent once after the welcome when the
    /// host user agreed to share them.
    History(History),
    /// The next entry of this technician's session record ([`crate::record::chain`]; the host is its
    /// sequencer), and the host's MAC of the head it makes.
    Record {
        entry: Entry,
        mac: [u8; 32],
    },
}

/// Most participants a [`Roster`] may list (a host allows fewer).
pub const MAX_PARTICIPANTS: usize = 32;

/// The session's participants, as one of them sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roster {
    /// The receiving technician's own id.
    pub you: u64,
    pub members: Vec<Member>,
    /// Who has control of mouse and keyboard, if anyone.
    pub control: Option<u64>,
}

impl Roster {
    /// The member with this id.
    pub fn member(&self, id: u64) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    /// Whether the receiver has control now.
    pub fn you_control(&self) -> bool {
        self.control == Some(self.you)
    }
}

/// One technician in the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: u64,
    /// The name they typed (escaped by the host), or their verified account.
    pub name: String,
    /// Whether the relay verified the account `name` names.
    pub verified: bool,
    /// Who invited them (`None`: the first technician, who had the user's code).
    pub invited_by: Option<String>,
    pub permissions: Permissions,
    /// They asked for control and do not have it yet.
    pub wants_control: bool,
}

/// Most lines of chat and of session log a [`History`] carries (the latest are kept).
pub const MAX_HISTORY_LINES: usize = 200;

/// What happened before a technician joined ([`HostControl::History`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// Chat lines, oldest first.
    pub chat: Vec<ChatLine>,
    /// The host user's session log, oldest first, as their window shows it.
    pub log: Vec<String>,
}

/// One chat line and who wrote it (`the user` for the host user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatLine {
    pub from: String,
    pub text: String,
}

/// One of the host's monitors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorInfo {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub primary: bool,
}

/// Longest chat line or clipboard text carried (longer text is refused by the sender, cut by nobody).
pub const MAX_CHAT_TEXT: usize = 4096;

/// What became of an invite ([`Request::Invite`]), as the host tells the technician who asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InviteNews {
    /// The code to pass on (by phone or chat), valid for `expires_secs`. The viewer checks it parses as a
    /// code before showing it.
    Code { code: String, expires_secs: u32 },
    /// A colleague paired with it: the host user is asked about them now.
    Claimed,
    /// It expired unused.
    Expired,
    /// Someone tried a wrong code (or left mid-pairing): it no longer works. Ask for a new one.
    Burned,
    /// Withdrawn (by whoever asked for it, or because they left).
    Withdrawn,
    /// No invite: why (this host takes none, one is already open, the relay refused…).
    Unavailable { why: String },
}
/// Clipboard text must fit a control message with room to spare.
pub const MAX_CLIPBOARD_TEXT: usize = 60 * 1024;

/// A cursor image: RGBA (straight alpha), `width`×`height`, hot spot at (`hot_x`, `hot_y`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorShape {
    pub width: u16,
    pub height: u16,
    pub hot_x: u16,
    pub hot_y: u16,
    pub rgba: Vec<u8>,
}

impl std::fmt::Debug for CursorShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CursorShape({}x{}, hot {},{})", self.width, self.height, self.hot_x, self.hot_y)
    }
}

/// Largest cursor edge accepted (X servers allow 256 at most in practice).
pub const MAX_CURSOR_EDGE: u16 = 256;

impl CursorShape {
    /// Whether the pixel data matches the size and the size is sane (checked on receipt).
    pub fn is_valid(&self) -> bool {
        self.width <= MAX_CURSOR_EDGE
            && self.height <= MAX_CURSOR_EDGE
            && self.hot_x <= self.width
            && self.hot_y <= self.height
            && self.rgba.len() == self.width as usize * self.height as usize * 4
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum RefusalReason {
    #[error("protocol version mismatch: the host speaks version {host}, the viewer version {viewer}")]
    VersionMismatch { host: u32, viewer: u32 },
    #[error("the user declined the session")]
    Declined,
}

/// One part of a screen update. A frame is complete when the part with `last == true` arrives; only then
/// does the viewer acknowledge `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameUpdate {
    pub seq: u64,
    /// Identifies the captured image this update brings the viewer to (for tests and latency probes).
    pub capture_id: u64,
    pub width: u32,
    pub height: u32,
    pub tiles: Vec<Tile>,
    pub last: bool,
}

/// Longest technician name carried in `Hello`.
pub const MAX_TECHNICIAN_NAME: usize = 128;
