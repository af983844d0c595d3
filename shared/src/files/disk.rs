//! Where received chunks go: a reused chunk buffer and the temporary file they are appended to.
//!
//! Writes go through the page cache. `O_DIRECT` was tried (`docs/BENCHMARKS.md`): it saves some system
//! time, but each 1 MiB direct write then waits for the device — about 5 ms on the development VM while the
//! transfer keeps both cores busy — and those waits add up to the whole transfer (170–230 MB/s for 1 GiB
//! through the relay, against 210–300 MB/s buffered). Buffered writes return once the bytes are in memory,
//! and the receiver's background `fdatasync` every few megabytes keeps the disk writing along with the
//! transfer, so the sync before the final name only waits for the tail.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use super::proto::CHUNK;

/// Bytes an unprivileged writer may still put on the filesystem holding `dir` (or, for a folder not made
/// yet, its nearest existing parent). `None` where that cannot be asked (not a Unix system): the transfer
/// then finds out as it writes.
pub fn free_space(dir: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        let fs = dir.ancestors().find_map(|d| rustix::fs::statvfs(d).ok())?;
        Some(fs.f_bavail.saturating_mul(fs.f_frsize))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// A reusable buffer for one chunk's bytes.
pub struct ChunkBuf {
    raw: Vec<u8>,
    len: usize,
}

impl Default for ChunkBuf {
    fn default() -> Self {
        Self { raw: vec![0u8; CHUNK], len: 0 }
    }
}

impl ChunkBuf {
    /// Room for the next `len` bytes (at most [`CHUNK`]), to be filled by the caller.
    pub fn fill(&mut self, len: usize) -> &mut [u8] {
        self.len = len.min(CHUNK);
        &mut self.raw[..self.len]
    }

    /// The bytes last filled.
    pub fn bytes(&self) -> &[u8] {
        &self.raw[..self.len]
    }
}

/// A file being received, written in order from its start (or from a resumed offset).
#[derive(Debug)]
pub struct DiskFile {
    file: File,
}

impl DiskFile {
    /// Create (or truncate) `path` for writing.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(path)?;
        Ok(Self { file })
    }

    /// Reopen a partial file to resume it: cut back to `verified` bytes, positioned there. Fails if the
    /// file holds fewer than `verified` bytes (it was changed behind our back).
    pub fn resume(path: &Path, verified: u64) -> std::io::Result<Self> {
        let mut file = std::fs::OpenOptions::new().write(true).open(path)?;
        if file.metadata()?.len() < verified {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "shorter than what was verified",
            ));
        }
        file.set_len(verified)?;
        file.seek(SeekFrom::Start(verified))?;
        Ok(Self { file })
    }

    /// Append `data` (one chunk).
    pub fn write_chunk(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.file.write_all(data)
    }

    /// The underlying file (for syncing, also from a duplicate handle).
    pub fn file(&self) -> &File {
        &self.file
    }

    pub fn into_file(self) -> File {
        self.file
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_all_chunks(file: &mut DiskFile, data: &[u8]) {
        let mut buf = ChunkBuf::default();
        for chunk in data.chunks(CHUNK) {
            buf.fill(chunk.len()).copy_from_slice(chunk);
            file.write_chunk(buf.bytes()).expect("write");
        }
    }

    #[test]
    fn a_buffer_never_holds_more_than_a_chunk() {
        let mut buf = ChunkBuf::default();
        assert_eq!(buf.fill(CHUNK + 1).len(), CHUNK);
        buf.fill(3).copy_from_slice(b"abc");
        assert_eq!(buf.bytes(), b"abc");
    }

    #[test]
    fn chunks_and_a_short_tail_give_the_exact_bytes() {
        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..(3 * CHUNK + 12345)).map(|i| (i * 7 % 251) as u8).collect();
        let mut file = DiskFile::create(&path).expect("create");
        write_all_chunks(&mut file, &data);
        file.file().sync_all().expect("sync");
        assert_eq!(std::fs::read(&path).expect("read"), data);
    }

    #[test]
    fn resume_cuts_back_and_appends() {
        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..(2 * CHUNK + 5)).map(|i| (i % 253) as u8).collect();
        let mut file = DiskFile::create(&path).expect("create");
        write_all_chunks(&mut file, &data[..2 * CHUNK]);
        drop(file);
        assert!(DiskFile::resume(&path, 3 * CHUNK as u64).is_err(), "more than the file holds");
        let mut file = DiskFile::resume(&path, CHUNK as u64).expect("resume");
        assert_eq!(file.file().metadata().expect("len").len(), CHUNK as u64);
        write_all_chunks(&mut file, &data[CHUNK..]);
        drop(file);
        assert_eq!(std::fs::read(&path).expect("read"), data);
    }
}
