//! Recorded clips on disk: a small header, then one zstd-compressed BGRX frame after another.
//!
//! Layout (little-endian): `b"TBCLIP01"`, width `u32`, height `u32`, frames per second `u32`, then per frame
//! the capture time in microseconds since the first frame (`u64`), the compressed length (`u32`) and the
//! zstd level-1 compressed pixels (tightly packed BGRX, fourth byte 0). The frame count is not stored: a
//! clip ends where the file ends, so a recorder that stops early still leaves a readable clip.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use tether_shared::frame::{Frame, FrameError};

const MAGIC: &[u8; 8] = b"TBCLIP01";
/// Fast enough to keep up with 30 fps capture on one core, and ~50–100× smaller on desktop content.
const ZSTD_LEVEL: i32 = 1;
/// File name extension of a clip.
pub const EXTENSION: &str = "tclip";

#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{0}: not a tether-bench clip (bad magic)")]
    BadMagic(PathBuf),
    #[error("{path}: frame {index} does not decompress to {want} bytes: {detail}")]
    BadFrame { path: PathBuf, index: usize, want: usize, detail: String },
    #[error("{path}: {source}")]
    Frame { path: PathBuf, source: FrameError },
}

/// Size and rate shared by every frame of a clip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClipHeader {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

impl ClipHeader {
    /// Bytes of one uncompressed BGRX frame.
    pub fn frame_len(&self) -> usize {
        self.width as usize * self.height as usize * 4
    }
}

/// Appends frames to a new clip file.
pub struct ClipWriter {
    path: PathBuf,
    out: BufWriter<File>,
    written: usize,
    stored_bytes: u64,
}

impl ClipWriter {
    pub fn create(path: &Path, header: ClipHeader) -> Result<Self, ClipError> {
        let io_err = |source| ClipError::Io { path: path.to_owned(), source };
        let mut out = BufWriter::new(File::create(path).map_err(io_err)?);
        out.write_all(MAGIC).map_err(io_err)?;
        for v in [header.width, header.height, header.fps] {
            out.write_all(&v.to_le_bytes()).map_err(io_err)?;
        }
        Ok(Self { path: path.to_owned(), out, written: 0, stored_bytes: 0 })
    }

    /// Compress and append one frame captured `t_us` microseconds after the first.
    pub fn write_frame(&mut self, t_us: u64, bgrx: &[u8]) -> Result<(), ClipError> {
        let io_err = |source| ClipError::Io { path: self.path.clone(), source };
        let z = zstd::bulk::compress(bgrx, ZSTD_LEVEL).map_err(io_err)?;
        self.out.write_all(&t_us.to_le_bytes()).map_err(io_err)?;
        self.out.write_all(&(z.len() as u32).to_le_bytes()).map_err(io_err)?;
        self.out.write_all(&z).map_err(io_err)?;
        self.written += 1;
        self.stored_bytes += z.len() as u64 + 12;
        Ok(())
    }

    /// Flush to disk; returns (frames, compressed bytes).
    pub fn finish(mut self) -> Result<(usize, u64), ClipError> {
        self.out.flush().map_err(|source| ClipError::Io { path: self.path.clone(), source })?;
        Ok((self.written, self.stored_bytes))
    }
}

/// Reads a clip frame by frame (an iterator), so a 150-frame 1080p clip never sits in memory at once.
pub struct ClipReader {
    path: PathBuf,
    input: BufReader<File>,
    header: ClipHeader,
    index: usize,
    compressed: Vec<u8>,
}

impl ClipReader {
    pub fn open(path: &Path) -> Result<Self, ClipError> {
        let io_err = |source| ClipError::Io { path: path.to_owned(), source };
        let mut input = BufReader::new(File::open(path).map_err(io_err)?);
        let mut magic = [0u8; 8];
        input.read_exact(&mut magic).map_err(io_err)?;
        if &magic != MAGIC {
            return Err(ClipError::BadMagic(path.to_owned()));
        }
        let mut field = || -> io::Result<u32> {
            let mut b = [0u8; 4];
            input.read_exact(&mut b)?;
            Ok(u32::from_le_bytes(b))
        };
        let header = ClipHeader {
            width: field().map_err(io_err)?,
            height: field().map_err(io_err)?,
            fps: field().map_err(io_err)?,
        };
        tether_shared::frame::check_size(header.width, header.height)
            .map_err(|source| ClipError::Frame { path: path.to_owned(), source })?;
        Ok(Self { path: path.to_owned(), input, header, index: 0, compressed: Vec::new() })
    }

    pub fn header(&self) -> ClipHeader {
        self.header
    }

    /// Capture time of every frame in microseconds after the first (reads the file without decoding).
    pub fn frame_times(path: &Path) -> Result<Vec<u64>, ClipError> {
        let mut reader = Self::open(path)?;
        let mut times = Vec::new();
        while let Some(t_us) = reader.next_compressed()? {
            times.push(t_us);
        }
        Ok(times)
    }

    /// The next frame's time and compressed bytes (left in `self.compressed`), or `None` at the end.
    fn next_compressed(&mut self) -> Result<Option<u64>, ClipError> {
        let io_err = |source| ClipError::Io { path: self.path.clone(), source };
        let mut t = [0u8; 8];
        match self.input.read_exact(&mut t) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(io_err(e)),
        }
        let mut len = [0u8; 4];
        self.input.read_exact(&mut len).map_err(io_err)?;
        self.compressed.resize(u32::from_le_bytes(len) as usize, 0);
        self.input.read_exact(&mut self.compressed).map_err(io_err)?;
        Ok(Some(u64::from_le_bytes(t)))
    }

    fn read_frame(&mut self) -> Result<Option<Frame>, ClipError> {
        if self.next_compressed()?.is_none() {
            return Ok(None);
        };
        let want = self.header.frame_len();
        let bad =
            |detail: String| ClipError::BadFrame { path: self.path.clone(), index: self.index, want, detail };
        let bgrx = zstd::bulk::decompress(&self.compressed, want).map_err(|e| bad(e.to_string()))?;
        if bgrx.len() != want {
            return Err(bad(format!("got {} bytes", bgrx.len())));
        }
        let frame = Frame::from_bgrx(self.header.width, self.header.height, bgrx)
            .map_err(|source| ClipError::Frame { path: self.path.clone(), source })?;
        self.index += 1;
        Ok(Some(frame))
    }
}

impl Iterator for ClipReader {
    type Item = Result<Frame, ClipError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.read_frame().transpose()
    }
}
