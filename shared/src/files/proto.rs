//! Messages of the files family. Every request and every transfer runs on its own QUIC bidirectional
//! stream (opened by the viewer), so a big transfer never delays the screen or input.
//!
//! ```text
//! viewer → host: FileRequest::List{path}      host → viewer: ListReply
//! viewer → host: FileRequest::Upload          then the viewer is the sender below
//! viewer → host: FileRequest::Fetch{path, id} then the host is the sender below
//!
//! sender → receiver: Offer{id, entries, total}
//! receiver → sender: Accept{resume} | Decline(FileError)       (after the host user's consent)
//! sender → receiver: Chunk{file, offset, len, hash} + len raw bytes, …, FileEnd{file, hash}, …, Done
//!                    (or Failed(FileError) at any point)
//! receiver → sender: Finished{names} | Failed(FileError)
//! ```
//! Chunk data follows its header as raw bytes (no re-encoding of a megabyte per chunk). `resume[i]` is how
//! many bytes of file `i` the receiver already holds verified from an interrupted attempt with the same id.
//!
//! Hashes: a chunk's `hash` is the plain BLAKE3 of its bytes. A file's `FileEnd` hash is derived from the
//! file's size and the ordered list of its chunk hashes ([`FileDigest`]), so each side reads every byte
//! through BLAKE3 once. Each chunk is checked against its hash before it is written; the file hash then
//! binds the chunks' order, their number and the size, and — across a resume — that the bytes the receiver
//! kept from the first attempt are the bytes the sender has now.

use serde::{Deserialize, Serialize};

/// Bytes per chunk (and per BLAKE3 chunk hash).
pub const CHUNK: usize = 1 << 20;
/// Cap for file-family messages other than chunk data (an offer lists a whole tree).
pub const MAX_FILES_MSG: usize = 8 * 1024 * 1024;
/// Most entries in one offer.
pub const MAX_ENTRIES: usize = 100_000;

/// BLAKE3 key-derivation context of the whole-file hash.
const FILE_HASH_CONTEXT: &str = "tether 2025 files: whole-file hash over the size and chunk hashes";

/// The whole-file hash, built from chunk hashes: `BLAKE3-derive(size as u64 LE ‖ chunk hash 0 ‖ …)`, chunks
/// of [`CHUNK`] bytes in file order (the last one possibly shorter; none for an empty file).
#[derive(Debug, Clone)]
pub struct FileDigest(blake3::Hasher);

impl FileDigest {
    pub fn new(size: u64) -> Self {
        let mut h = blake3::Hasher::new_derive_key(FILE_HASH_CONTEXT);
        h.update(&size.to_le_bytes());
        Self(h)
    }

    /// Add the next chunk's hash.
    pub fn add(&mut self, chunk_hash: &[u8; 32]) {
        self.0.update(chunk_hash);
    }

    pub fn finish(&self) -> [u8; 32] {
        *self.0.finalize().as_bytes()
    }

    /// The whole-file hash of `data` (tests and tools; the transfer builds it chunk by chunk).
    pub fn of(data: &[u8]) -> [u8; 32] {
        let mut d = Self::new(data.len() as u64);
        for chunk in data.chunks(CHUNK) {
            d.add(blake3::hash(chunk).as_bytes());
        }
        d.finish()
    }
}

/// How many of `entries` are files (not folders).
pub fn file_count(entries: &[Entry]) -> u32 {
    entries.iter().filter(|e| matches!(e.kind, EntryKind::File { .. })).count() as u32
}

/// Identifies a transfer across attempts (resume).
pub type TransferId = [u8; 16];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    Dir,
    File { size: u64 },
}

/// One entry of a sent tree: a relative path (components) and what it is. There is no link kind: links
/// are never sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub path: Vec<String>,
    pub kind: EntryKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileRequest {
    /// List a folder the host shares; `[]` lists the shared folders themselves.
    List { path: Vec<String> },
    /// Send the file or folder at `path` (first component: the shared folder's name).
    Fetch { path: Vec<String>, id: TransferId },
    /// The viewer sends files to the host's incoming folder.
    Upload,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listed {
    pub name: String,
    pub is_dir: bool,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ListReply {
    Entries(Vec<Listed>),
    Failed(FileError),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SenderMsg {
    Offer {
        id: TransferId,
        entries: Vec<Entry>,
        total: u64,
    },
    /// `hash`: BLAKE3 of the `len` bytes that follow.
    Chunk {
        file: u32,
        offset: u64,
        len: u32,
        hash: [u8; 32],
    },
    /// `hash`: the [`FileDigest`] of the whole file (including chunks the receiver held from before).
    FileEnd {
        file: u32,
        hash: [u8; 32],
    },
    Done,
    Failed(FileError),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReceiverMsg {
    Accept {
        resume: Vec<u64>,
    },
    Decline(FileError),
    /// Every file verified and under its final name (names relative to the receiver's folder).
    Finished {
        names: Vec<String>,
    },
    Failed(FileError),
}

/// Why a transfer did not happen or did not finish. Sent to the other side, so both show the same reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum FileError {
    #[error("the host user declined the files")]
    Declined,
    #[error("file access was not granted")]
    NotGranted,
    #[error("{0} is not in a shared folder")]
    NotShared(String),
    #[error("{0} was not found")]
    NotFound(String),
    #[error("{0} is not a folder")]
    NotAFolder(String),
    #[error("refused a name: {0}")]
    BadName(String),
    #[error("the disk is full on the receiving side")]
    DiskFull,
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("file {file} does not match its checksum; nothing was kept")]
    Corrupted { file: u32 },
    #[error("cancelled")]
    Cancelled,
    #[error("i/o error: {0}")]
    Io(String),
    #[error("protocol error: {0}")]
    Protocol(String),
    // New variants go last: the wire tells variants apart by position.
    /// Found before a byte moved: the offer is larger than the free space where it would be written.
    #[error(
        "not enough space on the receiving side: {} needed, {} free",
        crate::human::bytes(*needed),
        crate::human::bytes(*free)
    )]
    NoRoom { needed: u64, free: u64 },
    /// A fetch was answered with something other than what was asked for — another name, more than that
    /// one file or folder, or nothing: the host broke the protocol. Found before a byte was written
    /// ([`crate::files::receive::check_reply`]).
    #[error(
        "the host offered `{}` in reply to a fetch of `{}`: refused, nothing was written",
        crate::text::visible(offered),
        crate::text::visible(requested)
    )]
    Unrequested { requested: String, offered: String },
    /// The file or folder to send holds more than [`MAX_ENTRIES`] files and folders: nothing was offered.
    #[error("more than {max} files and folders to send; send a smaller folder")]
    TooManyEntries { max: u32 },
}

impl FileError {
    /// Classify an I/O error of the local disk.
    pub fn from_io(e: &std::io::Error, what: &str) -> Self {
        match e.kind() {
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => Self::DiskFull,
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                Self::PermissionDenied(what.to_owned())
            }
            std::io::ErrorKind::NotFound => Self::NotFound(what.to_owned()),
            _ => Self::Io(format!("{what}: {e}")),
        }
    }
}
