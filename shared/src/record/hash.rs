//! Sizes and whole-file hashes of the files a transfer moved, for the session record.
//!
//! The hash is the protocol's own ([`FileDigest`]: BLAKE3 per [`CHUNK`], then the derived whole-file
//! hash), so the sender's record and the receiver's record of the same file carry the same value, and it
//! is the value the transfer verified. The sender has it from the transfer itself
//! ([`crate::files::send::send_recorded`]); the receiver computes it here from the files it stored, once
//! the transfer finished (blocking I/O: call it from `spawn_blocking`), reading each file once more.
// TODO(issue 15, slice RECV): once `receive` is split, let it hand out the digests it verified, so the
// receiver needs no second read (and records nothing else than what it checked).

use std::io::Read;
use std::path::Path;

use super::{FileHash, FileRecord};
use crate::files::disk::open_to_send;
use crate::files::proto::{EntryKind, FileDigest, FileError, CHUNK};
use crate::files::tree::{self, LocalTree};

/// A record of every file in `tree` (folders are implied by the paths), in the tree's order. Files are
/// opened as a sender opens them (beneath the tree's root, never through a link).
pub fn hash_tree(tree: &LocalTree) -> Result<Vec<FileRecord>, FileError> {
    let mut out = Vec::new();
    for (entry, source) in tree.entries.iter().zip(&tree.sources) {
        let EntryKind::File { .. } = entry.kind else { continue };
        let what = source.display().to_string();
        let file = open_to_send(&tree.root, source).map_err(|e| FileError::from_io(&e, &what))?;
        let (size, hash) = digest(file).map_err(|e| FileError::from_io(&e, &what))?;
        out.push(FileRecord { path: entry.path.join("/"), size, hash: FileHash(hash) });
    }
    Ok(out)
}

/// A record of the files a receiver stored under `names` in `folder` (what a finished transfer reports).
pub fn hash_received(folder: &Path, names: &[String]) -> Result<Vec<FileRecord>, FileError> {
    let mut out = Vec::new();
    for name in names {
        out.extend(hash_tree(&tree::scan(&folder.join(name))?)?);
    }
    Ok(out)
}

/// Size and [`FileDigest`] of everything `read` yields.
fn digest(mut read: impl Read) -> std::io::Result<(u64, [u8; 32])> {
    let mut chunk_hashes = Vec::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let mut filled = 0;
        while filled < CHUNK {
            match read.read(&mut buf[filled..])? {
                0 => break,
                n => filled += n,
            }
        }
        if filled == 0 {
            break;
        }
        size += filled as u64;
        chunk_hashes.push(*blake3::hash(&buf[..filled]).as_bytes());
        if filled < CHUNK {
            break;
        }
    }
    let mut digest = FileDigest::new(size);
    chunk_hashes.iter().for_each(|h| digest.add(h));
    Ok((size, digest.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_the_protocols_whole_file_hash() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 7] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let (size, hash) = digest(&data[..]).expect("in memory");
            assert_eq!(size, len as u64);
            assert_eq!(hash, FileDigest::of(&data), "{len} bytes");
        }
    }

    #[test]
    fn a_received_folder_is_recorded_file_by_file() {
        let dir = tempfile::tempdir().expect("temp");
        let top = dir.path().join("logs");
        std::fs::create_dir_all(top.join("old")).expect("dirs");
        std::fs::write(top.join("a.txt"), b"alpha").expect("a");
        std::fs::write(top.join("old").join("b.txt"), b"").expect("b");
        let mut records = hash_received(dir.path(), &["logs".to_owned()]).expect("hashed");
        records.sort_by(|a, b| a.path.cmp(&b.path));
        let expected = [("logs/a.txt", &b"alpha"[..]), ("logs/old/b.txt", &b""[..])];
        assert_eq!(records.len(), expected.len());
        for (record, (path, data)) in records.iter().zip(expected) {
            assert_eq!(record.path, path);
            assert_eq!(record.size, data.len() as u64);
            assert_eq!(record.hash, FileHash(FileDigest::of(data)));
        }
    }
}
