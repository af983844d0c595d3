//! A Wayland proxy between xdg-desktop-portal-wlr and a headless sway, for the portal tests and benches: it tells
//! the portal that each screencopy frame could also be had as a GPU buffer.
//!
//! Why: xdg-desktop-portal-wlr 0.7 (Debian 12) refuses to start a screencast unless the compositor offers
//! a dma-buf format for screencopy frames besides shared memory (its upstream issue 289), which a
//! compositor rendering in software on a machine without a GPU (headless sway here: no `/dev/dri`)
//! never does — "unable to receive a valid format from wlr_screencopy". Told of one, the portal goes on,
//! finds no GPU to allocate such buffers with, and offers PipeWire shared memory only: the path every
//! real desktop without GPU buffers takes. So the proxy adds a `linux_dmabuf` event (the frame's size,
//! XRGB8888) before each frame's `buffer_done`; every other byte and file descriptor passes through
//! untouched, both ways. Nothing else of the compositor is changed, and the pictures are its own.

use std::collections::HashSet;
use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

const MANAGER: &str = "zwlr_screencopy_manager_v1";
/// DRM_FORMAT_XRGB8888 ('XR24').
const XRGB8888: u32 = 0x3432_5258;

/// What one connection's messages told: the objects that matter here, by id.
#[derive(Default)]
struct Objects {
    registries: HashSet<u32>,
    managers: HashSet<u32>,
    /// Screencopy frames, with the size their `buffer` event gave.
    frames: std::collections::HashMap<u32, (u32, u32)>,
}

/// Listen on `listen` and connect each client to the compositor socket `upstream`, until the process
/// ends (the threads are detached; the desktop's temporary directory goes with it).
pub fn spawn(listen: &Path, upstream: &Path) -> std::io::Result<()> {
    let listener = UnixListener::bind(listen)?;
    let upstream = upstream.to_path_buf();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = UnixStream::connect(&upstream) else { return };
            let objects = Arc::new(Mutex::new(Objects::default()));
            let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else { return };
            let seen = objects.clone();
            std::thread::spawn(move || pump(client, server, |msg, out| requests(msg, out, &seen)));
            std::thread::spawn(move || pump(s2, c2, |msg, out| events(msg, out, &objects)));
        }
    });
    Ok(())
}

/// Copy whole messages (and the descriptors that came with them) from `from` to `to`: `look` writes
/// what to send for each message (the message itself, and anything added). Ends when either side closes.
fn pump(from: UnixStream, to: UnixStream, mut look: impl FnMut(&[u8], &mut Vec<u8>)) {
    let mut pending: Vec<u8> = Vec::new();
    let mut fds: Vec<OwnedFd> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(28))];
        let mut ancillary = RecvAncillaryBuffer::new(&mut space);
        let received =
            recvmsg(&from, &mut [IoSliceMut::new(&mut buf)], &mut ancillary, RecvFlags::CMSG_CLOEXEC);
        let n = match received {
            Ok(msg) if msg.bytes > 0 => msg.bytes,
            _ => return,
        };
        for message in ancillary.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = message {
                fds.extend(received);
            }
        }
        pending.extend_from_slice(&buf[..n]);
        // Whole messages only: header = object id, then size (high 16 bits) and opcode.
        let mut whole = 0;
        let mut out = Vec::new();
        while pending.len() >= whole + 8 {
            let size = (word(&pending, whole + 4).unwrap_or(0) >> 16) as usize;
            if size < 8 || pending.len() < whole + size {
                break;
            }
            look(&pending[whole..whole + size], &mut out);
            whole += size;
        }
        pending.drain(..whole);
        // Descriptors travel with the first bytes sent after they came: never after the message using them.
        if out.is_empty() {
            continue;
        }
        let mut sent = 0;
        while sent < out.len() {
            let borrowed: Vec<_> = fds.iter().map(|fd| fd.as_fd()).collect();
            let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(28))];
            let mut ancillary = SendAncillaryBuffer::new(&mut space);
            if !borrowed.is_empty() {
                ancillary.push(SendAncillaryMessage::ScmRights(&borrowed));
            }
            let slice = [std::io::IoSlice::new(&out[sent..])];
            match sendmsg(&to, &slice, &mut ancillary, SendFlags::NOSIGNAL) {
                Ok(n) => sent += n,
                Err(_) => return,
            }
            drop(borrowed);
            fds.clear();
        }
    }
}

fn word(msg: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(msg.get(at..at + 4)?.try_into().ok()?))
}

fn opcode(msg: &[u8]) -> Option<u32> {
    word(msg, 4).map(|w| w & 0xffff)
}

/// A string argument at `at`: its bytes (without the NUL) and where the next argument starts.
fn string(msg: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let len = word(msg, at)? as usize;
    let bytes = msg.get(at + 4..at + 4 + len.saturating_sub(1))?;
    Some((bytes, at + 4 + len.div_ceil(4) * 4))
}

/// What the client asks for: note new registries, screencopy managers and frames; pass it on.
fn requests(msg: &[u8], out: &mut Vec<u8>, objects: &Mutex<Objects>) {
    out.extend_from_slice(msg);
    let (Some(object), Some(opcode)) = (word(msg, 0), opcode(msg)) else { return };
    let mut objects = objects.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    match opcode {
        // wl_display.get_registry(new_id)
        1 if object == 1 => objects.registries.extend(word(msg, 8)),
        // wl_registry.bind(name, interface, version, new_id)
        0 if objects.registries.contains(&object) => {
            if let Some((interface, next)) = string(msg, 12) {
                if interface == MANAGER.as_bytes() {
                    objects.managers.extend(word(msg, next + 4));
                }
            }
        }
        // capture_output / capture_output_region(new_id frame, …)
        0 | 1 if objects.managers.contains(&object) => {
            if let Some(frame) = word(msg, 8) {
                objects.frames.insert(frame, (0, 0));
            }
        }
        // frame.destroy
        1 if objects.frames.contains_key(&object) => {
            objects.frames.remove(&object);
        }
        _ => {}
    }
}

/// What the compositor says: before a frame's `buffer_done`, that it could be a dma-buf of its size.
fn events(msg: &[u8], out: &mut Vec<u8>, objects: &Mutex<Objects>) {
    let (Some(object), Some(opcode)) = (word(msg, 0), opcode(msg)) else { return out.extend_from_slice(msg) };
    let mut objects = objects.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(size) = objects.frames.get_mut(&object) {
        match opcode {
            // buffer(format, width, height, stride)
            0 => *size = (word(msg, 12).unwrap_or(0), word(msg, 16).unwrap_or(0)),
            // buffer_done: linux_dmabuf(format, width, height) first
            6 => {
                for w in [object, (20 << 16) | 5, XRGB8888, size.0, size.1] {
                    out.extend_from_slice(&w.to_ne_bytes());
                }
            }
            _ => {}
        }
    }
    out.extend_from_slice(msg);
}
