//! Publishing the decoded picture without copying the whole framebuffer per update.
//!
//! The decoder owns the authoritative picture and changes it in place; the window and the API get
//! immutable snapshots (`Arc<Frame>`) through a `watch` channel. Copying 8 MB (1080p) or 33 MB (4K) per
//! update for a typed character is what this avoids: two snapshot buffers take turns. When the
//! buffer published two updates ago is no longer held by anyone (the window has moved on), it is brought
//! up to date by copying only what the last two updates changed, and published again. When it is still
//! held, or the picture changed size, a full copy is made as before.

use std::sync::Arc;

use tether_shared::frame::Frame;

use crate::decode::Dirty;

#[derive(Debug, Default)]
pub struct Snapshots {
    /// The buffer published two updates ago, once the channel has handed it back.
    spare: Option<Arc<Frame>>,
    /// What the previous update changed (the spare lacks it as well as the current one's).
    last_dirty: Option<Dirty>,
    /// Snapshots made by copying only the changed rectangles (for tests and statistics).
    pub reused: u64,
}

impl Snapshots {
    /// A snapshot of `frame`, whose latest update changed `dirty`.
    pub fn take(&mut self, frame: &Frame, dirty: Dirty) -> Arc<Frame> {
        let previous = self.last_dirty.replace(dirty);
        if let (Some(mut spare), Some(previous)) = (self.spare.take(), previous) {
            if let Some(buffer) = Arc::get_mut(&mut spare) {
                if buffer.width() == frame.width() && buffer.height() == frame.height() {
                    // Overlapping changes (a scroll changes most of the page twice) go in one pass.
                    let both = previous.union(dirty);
                    if area(both) <= area(previous) + area(dirty) {
                        copy_region(frame, buffer, both);
                    } else {
                        copy_region(frame, buffer, previous);
                        copy_region(frame, buffer, dirty);
                    }
                    self.reused += 1;
                    return spare;
                }
            }
        }
        Arc::new(frame.clone())
    }

    /// The snapshot the channel replaced: the spare for the update after next.
    pub fn recycle(&mut self, old: Option<Arc<Frame>>) {
        self.spare = old;
    }
}

fn area(d: Dirty) -> u64 {
    u64::from(d.w) * u64::from(d.h)
}

/// Copy rectangle `d` of `from` into `to` (same size).
fn copy_region(from: &Frame, to: &mut Frame, d: Dirty) {
    let stride = from.width() as usize * 4;
    let (x, w) = (d.x.min(from.width()) as usize, d.w as usize);
    let w = w.min(from.width() as usize - x);
    for row in d.y..(d.y + d.h).min(from.height()) {
        let i = row as usize * stride + x * 4;
        to.bgrx_mut()[i..i + w * 4].copy_from_slice(&from.bgrx()[i..i + w * 4]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paint(frame: &mut Frame, d: Dirty, value: u8) {
        let stride = frame.width() as usize * 4;
        for row in d.y..d.y + d.h {
            let i = row as usize * stride + d.x as usize * 4;
            frame.bgrx_mut()[i..i + d.w as usize * 4].fill(value);
        }
    }

    #[test]
    fn every_snapshot_equals_the_picture_and_buffers_are_reused_once_released() {
        let mut picture = Frame::new(320, 200).expect("size");
        let mut snaps = Snapshots::default();
        let mut published: Option<Arc<Frame>> = None;
        for n in 1..=20u32 {
            let d = Dirty { x: (n * 13) % 300, y: (n * 7) % 180, w: 20, h: 20 };
            paint(&mut picture, d, n as u8);
            let snap = snaps.take(&picture, d);
            assert_eq!(*snap, picture, "update {n}");
            let old = published.replace(snap);
            snaps.recycle(old);
        }
        assert!(snaps.reused >= 17, "only {} snapshots reused a buffer", snaps.reused);
    }

    #[test]
    fn a_snapshot_still_held_is_never_written() {
        let mut picture = Frame::new(64, 64).expect("size");
        let mut snaps = Snapshots::default();
        let first = snaps.take(&picture, Dirty { x: 0, y: 0, w: 64, h: 64 });
        let held = first.clone(); // the window still shows it
        snaps.recycle(Some(first));
        let d = Dirty { x: 0, y: 0, w: 8, h: 8 };
        paint(&mut picture, d, 9);
        let second = snaps.take(&picture, d);
        assert_eq!(*second, picture);
        assert_ne!(*held, picture, "the held snapshot kept its picture");
        assert_eq!(snaps.reused, 0);
        // A new size is a full copy too.
        let bigger = Frame::new(80, 80).expect("size");
        snaps.recycle(Some(second));
        assert_eq!(*snaps.take(&bigger, Dirty { x: 0, y: 0, w: 80, h: 80 }), bigger);
    }
}
