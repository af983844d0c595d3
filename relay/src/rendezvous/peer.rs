//! What the two tasks of a pairing (or of a rejoin) tell each other: [`PeerEvent`]s through mailboxes.

use std::net::SocketAddr;

use tether_shared::relay_proto::{RelayErrorKind, Role, VerifiedTechnician};
use tokio::sync::mpsc;

use crate::audit::Outcome;

/// What one side of a pairing tells the other's task.
#[derive(Debug)]
pub enum PeerEvent {
    Joined {
        viewer: Mailbox,
        addr: SocketAddr,
        technician: Option<VerifiedTechnician>,
    },
    Tag(u64),
    Pake(Vec<u8>),
    Confirm(Vec<u8>),
    Result(bool),
    /// The viewer's commitment to the session's resume id.
    Commit([u8; 32]),
    Ready,
    Failed(RelayErrorKind),
    /// To the first of two rejoining ends: the routes are back, under `tag`; `partner` reaches the other;
    /// `heads` is where the host's record heads go, whichever end it is (the second writes the row).
    Rejoined {
        tag: u64,
        partner: Mailbox,
        heads: HeadSlot,
    },
    /// The viewer's side of a live session ended, and how.
    Ended(Outcome),
}

pub type Mailbox = mpsc::Sender<PeerEvent>;

/// The latest record head a host told the relay in a rejoined session (its count and 32 bytes), shared
/// by the two ends' tasks: the host's end keeps it, the end that writes the audit row reads it.
pub type HeadSlot = std::sync::Arc<std::sync::Mutex<Option<(u64, [u8; 32])>>>;

/// Room in a mailbox: a pairing exchanges a handful of messages.
pub(super) const MAILBOX: usize = 16;

/// One end of a paired session waiting for the other to rejoin ([`super::rejoin`]).
#[derive(Debug)]
pub struct Waiting {
    pub(super) role: Role,
    pub(super) addr: SocketAddr,
    pub(super) mailbox: Mailbox,
}
