//! Where received chunks go: a reused chunk buffer and the temporary file they are appended to.
//!
//! Writes go through the page cache, not `O_DIRECT`: a direct write saves some CPU but waits for the
//! device, and in a transfer those waits add up to the whole transfer time (measured in
//! `docs/BENCHMARKS.md`, "the receiver's write path"). Buffered writes return once the bytes are in memory,
//! and the receiver's background `fdatasync` every few megabytes keeps the disk writing along with the
//! transfer, so the sync before the final name only waits for the tail.
//!
//! Temporary files are made with exclusive create under a fresh random name ([`DiskFile::create_temp`]):
//! a file or link someone else put where the temporary file would go — another local user in a shared
//! folder, or one guessing the name — is never opened, truncated or written through; another name is
//! drawn. Reopening one to resume does not follow a link either.

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

/// How many random temporary names are tried before giving up (each clash is someone else's file).
const TEMP_TRIES: usize = 16;

/// `O_NOFOLLOW` where there is one: opening a symbolic link fails instead of opening what it points at.
pub fn no_follow(options: &mut std::fs::OpenOptions) -> &mut std::fs::OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
    }
    #[cfg(not(unix))]
    {
        options
    }
}

/// Whether `e` is what opening a symbolic link with [`no_follow`] gives (`ELOOP`).
pub fn is_link_refused(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error())
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

/// Open `path`, a file of the tree scanned at `root`, to send it: never through a symbolic link (a link
/// put where a scanned file or folder was is refused, [`is_link_refused`], not followed out of the shared
/// folder), and only a regular file — a FIFO or device put there is refused too, without waiting on it
/// (non-blocking open). On Linux the path below `root` is resolved with `openat2(RESOLVE_NO_SYMLINKS |
/// RESOLVE_BENEATH)`, so a folder swapped for a link is refused as well as a file; elsewhere (or on a
/// kernel without `openat2`) the last component is opened with `O_NOFOLLOW`.
pub fn open_to_send(root: &Path, path: &Path) -> std::io::Result<File> {
    let file = open_beneath(root, path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"));
    }
    Ok(file)
}

/// `path` for reading, not following a link in its last component, without blocking on a FIFO.
fn open_no_follow(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
        options.custom_flags(flags.bits() as i32);
    }
    options.open(path)
}

#[cfg(target_os = "linux")]
fn open_beneath(root: &Path, path: &Path) -> std::io::Result<File> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let rel = match path.strip_prefix(root) {
        Ok(rel) if !root.as_os_str().is_empty() && !rel.as_os_str().is_empty() => rel,
        _ => return open_no_follow(path), // the tree's top itself
    };
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    let dir = rustix::fs::open(root, dir_flags, Mode::empty())?;
    let read = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOFOLLOW;
    let resolve = ResolveFlags::NO_SYMLINKS | ResolveFlags::BENEATH;
    match rustix::fs::openat2(&dir, rel, read, Mode::empty(), resolve) {
        Ok(fd) => Ok(File::from(fd)),
        Err(e) if e == rustix::io::Errno::NOSYS => open_no_follow(path), // a kernel before 5.6
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(target_os = "linux"))]
fn open_beneath(_root: &Path, path: &Path) -> std::io::Result<File> {
    open_no_follow(path)
}

impl DiskFile {
    /// Create a new temporary file in `dir`, named `.tether-<random>.part`, with exclusive create: nothing
    /// that already exists there — a file, a link — is opened. On a clash another random name is tried.
    pub fn create_temp(dir: &Path) -> std::io::Result<(std::path::PathBuf, Self)> {
        use rand::{RngCore, TryRngCore};
        let mut last = None;
        for _ in 0..TEMP_TRIES {
            let mut random = [0u8; 12];
            rand::rngs::OsRng.unwrap_err().fill_bytes(&mut random);
            let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
            let path = dir.join(format!(".tether-{hex}.part"));
            match Self::create_new(&path) {
                Ok(file) => return Ok((path, file)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::from(std::io::ErrorKind::AlreadyExists)))
    }

    /// Create `path`, which must not exist yet (not even as a dangling link).
    pub fn create_new(path: &Path) -> std::io::Result<Self> {
        let file = no_follow(std::fs::OpenOptions::new().write(true).create_new(true)).open(path)?;
        Ok(Self { file })
    }

    /// Reopen a partial file to resume it: cut back to `verified` bytes, positioned there. Fails if the
    /// file holds fewer than `verified` bytes (it was changed behind our back).
    pub fn resume(path: &Path, verified: u64) -> std::io::Result<Self> {
        let mut file = no_follow(std::fs::OpenOptions::new().write(true)).open(path)?;
        let meta = file.metadata()?;
        if !meta.is_file() || meta.len() < verified {
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
        let mut file = DiskFile::create_new(&path).expect("create");
        write_all_chunks(&mut file, &data);
        file.file().sync_all().expect("sync");
        assert_eq!(std::fs::read(&path).expect("read"), data);
    }

    #[test]
    fn resume_cuts_back_and_appends() {
        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..(2 * CHUNK + 5)).map(|i| (i % 253) as u8).collect();
        let mut file = DiskFile::create_new(&path).expect("create");
        write_all_chunks(&mut file, &data[..2 * CHUNK]);
        drop(file);
        assert!(DiskFile::resume(&path, 3 * CHUNK as u64).is_err(), "more than the file holds");
        let mut file = DiskFile::resume(&path, CHUNK as u64).expect("resume");
        assert_eq!(file.file().metadata().expect("len").len(), CHUNK as u64);
        write_all_chunks(&mut file, &data[CHUNK..]);
        drop(file);
        assert_eq!(std::fs::read(&path).expect("read"), data);
    }

    #[test]
    fn a_temporary_file_never_opens_what_is_already_there() {
        let dir = tempfile::tempdir().expect("temp");
        let theirs = dir.path().join("theirs");
        std::fs::write(&theirs, b"not yours").expect("write");
        assert_eq!(
            DiskFile::create_new(&theirs).expect_err("exists").kind(),
            std::io::ErrorKind::AlreadyExists
        );
        #[cfg(unix)]
        {
            let link = dir.path().join("link");
            std::os::unix::fs::symlink(&theirs, &link).expect("symlink");
            assert!(DiskFile::create_new(&link).is_err(), "a link is not written through");
            let dangling = dir.path().join("dangling");
            std::os::unix::fs::symlink(dir.path().join("would-be-created"), &dangling).expect("symlink");
            assert!(DiskFile::create_new(&dangling).is_err(), "a dangling link is not followed");
            assert!(!dir.path().join("would-be-created").exists());
            let err = DiskFile::resume(&link, 0).expect_err("a link is not reopened");
            assert!(is_link_refused(&err), "{err}");
        }
        assert_eq!(std::fs::read(&theirs).expect("read"), b"not yours");
        let (path, mut file) = DiskFile::create_temp(dir.path()).expect("temp file");
        file.write_chunk(b"mine").expect("write");
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        assert!(name.starts_with(".tether-") && name.ends_with(".part"), "{name}");
        assert_eq!(std::fs::read(&path).expect("read"), b"mine");
    }
}
