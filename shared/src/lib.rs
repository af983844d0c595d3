//! Tether's shared core: everything the host, the viewer and the relay must agree on.
//!
//! - [`code`]: the one-time code a user reads aloud (`nameplate` + `secret`).
//! - [`wire`]: length-prefixed postcard framing with a size cap checked before allocation.
//! - [`relay_proto`] / [`session_proto`]: messages named by direction
//!   (`ClientToRelay`, `RelayToClient`), and by stream (`ViewerControl`, `HostControl`, …).
//! - [`end`]: why a session ended ([`end::EndReason`]) and the pure machine that decides it.
//! - [`pake`]: SPAKE2 over the relay, then key confirmation that binds each side's certificate fingerprint.
//! - [`tls`]: ephemeral certificates, fingerprints and the pinned verifiers of the end-to-end QUIC connection.
//! - [`packet`]: the relay's tagged-packet header, shared by the relay and the clients' sockets.
//! - [`net`]: the client side of the relay (control link, tagged socket, pairing flow).
//! - [`token`]: technician account tokens, bound to the relay that issued them.
//! - [`shown`]: decode-time checks of the strings a relay sends that clients show.
//! - [`human`]: sizes and durations as people read them.
//! - [`record`]: the session record — typed events both ends build, never content — and its one formatter.
//! - [`text`]: names and chat from the other side, with invisible and text-reordering characters escaped.
//! - [`link`], [`codec`], [`frame`], [`input`]: pure screen and input state, no I/O ([`link`]: pacing
//!   and the link estimate).
//!
//! Protocol logic does no I/O: pairing, flow control and codecs are plain types tested without sockets; the
//! thin async glue lives in [`net`].

pub mod client_settings;
pub mod code;
pub mod codec;
pub mod end;
pub mod files;
pub mod frame;
pub mod fuzz;
pub mod human;
pub mod input;
pub mod inventory;
pub mod link;
pub mod logging;
pub mod net;
pub mod packet;
pub mod pake;
pub mod record;
pub mod relay_proto;
pub mod session_proto;
pub mod shown;
pub mod text;
pub mod tls;
pub mod token;
pub mod wire;

/// The protocol version every first message carries. A peer with another version is refused with an
/// error naming both.
///
/// 2: session requests (chat, clipboard, permissions, quality, monitor, system info) and the file digest
/// derived from the chunk hashes.
/// 3: `ResumeCommit` before `PairingResult { ok: true }` (the relay admits `Rejoin` only for sessions it
/// paired), `RelayErrorKind::{UnknownSession, TooManyWrongCodes}`.
/// 4: the session's end is said: `Bye { reason: EndReason }` both ways; one message type per stream
/// (`Hello`/`HelloReply`, `ViewerControl`/`HostControl` with `Request`s, `FrameUpdate`, `InputEvent`).
/// 5: `HostControl::Link` (the line's round trip, bandwidth, queue and what the sender does about it);
/// `SetQuality` takes a `ScreenQuality` (`Auto` or a fixed `Quality`).
/// 6: `TileData::Video` (a VP9 frame of a video region's stream).
/// 7: invites: `Request::{Invite, WithdrawInvite}`, `HostControl::Invite(InviteNews)` (a second technician
/// pairs with the host by an invite code while the session goes on).
/// 8: participants: `HostControl::{Participants(Roster), ColleagueChat, History}`,
/// `Request::{RequestControl, HandOverControl}`, `EndReason::Removed`.
/// 9: the session record: `HostControl::Record { entry, mac }`, `ViewerControl::RecordHead`,
/// `Violation::Record`.
/// 10: the inventory: `HostControl::Inventory(InventoryPart)` in place of `SystemInfo`,
/// `Request::IncludeInventory`, `EventKind::Inventory`.
/// 11: relays of one organization: `RelayToClient::Redirect` (a claim for a code another relay holds).
pub const PROTOCOL_VERSION: u32 = 11;
