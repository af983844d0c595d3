//! Screen capture behind one trait, one file per backend, chosen in [`open`]: [`x11`] (the X screen),
//! [`wlroots`] (wlroots Wayland compositors: sway, Hyprland…), [`portal`] (the desktop portal: GNOME and
//! KDE on Wayland, frames from [`pipewire`]) and [`test_pattern`] (synthetic and deterministic, for tests
//! and machines without a display). Screens that send pictures rather than being asked share [`stream`].
//!
//! Real capturers are often not `Send` (scrap's holds raw pointers), so every capturer lives on its own
//! thread and the session asks it for frames through a [`CaptureHandle`].

pub mod cursor;
pub mod damage;
pub mod monitors;
pub mod pipewire;
pub mod portal;
pub mod stream;
pub mod test_pattern;
pub mod wlroots;
pub mod x11;

use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use tether_shared::frame::Frame;

use damage::DamageLog;
use tokio::sync::{mpsc, oneshot};

/// One captured image and its identity (a counter per capturer, used by tests and latency probes). The
/// image is shared: one capture may answer several participants (see [`Sharing`]) without a copy.
#[derive(Debug, Clone)]
pub struct Captured {
    pub id: u64,
    pub frame: Arc<Frame>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum CaptureError {
    #[error("capture failed: {0}")]
    Failed(String),
    /// The user said no to sharing the screen, or did not answer (the desktop portal's dialog).
    #[error("the screen was not shared: {0}")]
    Refused(String),
    #[error("the capture thread has stopped")]
    Stopped,
}

/// A source of screen images.
pub trait Capturer {
    /// Capture the screen as it is now.
    fn capture(&mut self) -> Result<Captured, CaptureError>;
}

/// Which capturer to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// An animated, deterministic test pattern of the given size.
    TestPattern { width: u32, height: u32 },
    /// Monitor `monitor` of the X display in `$DISPLAY`.
    X11 { monitor: usize },
    /// Output `monitor` of the wlroots compositor at `$WAYLAND_DISPLAY`.
    Wlroots { monitor: usize },
    /// The screen the user picks in the desktop portal's dialog (GNOME, KDE); `remember`: keep the
    /// choice for the next session; `answer_within`: how long the user has to answer the dialog.
    Portal { remember: bool, answer_within: Duration },
}

impl Source {
    /// The same kind of source on monitor `index` (the test pattern has one).
    pub fn on_monitor(self, index: usize) -> Option<Self> {
        match self {
            Self::X11 { .. } => Some(Self::X11 { monitor: index }),
            Self::Wlroots { .. } => Some(Self::Wlroots { monitor: index }),
            // The user chose in the desktop's dialog; another screen means asking again.
            Self::TestPattern { .. } | Self::Portal { .. } => None,
        }
    }

    /// The monitors this kind of source can share.
    pub fn monitors(self) -> Result<Vec<monitors::Monitor>, CaptureError> {
        match self {
            Self::X11 { .. } => monitors::list(None),
            Self::Wlroots { .. } => wlroots::list(),
            Self::Portal { .. } => Err(CaptureError::Failed(
                "the desktop portal lists no monitors: the desktop asks the user which screen to share"
                    .into(),
            )),
            Self::TestPattern { width, height } => Ok(vec![monitors::Monitor {
                index: 0,
                name: "test-pattern".into(),
                x: 0,
                y: 0,
                width,
                height,
                primary: true,
            }]),
        }
    }
}

/// Build the capturer for `source` (on the capture thread).
pub fn open(source: Source) -> Result<Box<dyn Capturer>, CaptureError> {
    match source {
        Source::TestPattern { width, height } => Ok(Box::new(test_pattern::TestPattern::new(width, height)?)),
        Source::X11 { monitor } => Ok(Box::new(x11::X11Capturer::new(monitor)?)),
        Source::Wlroots { monitor } => Ok(Box::new(wlroots::stream(monitor)?.pictures())),
        Source::Portal { remember, answer_within } => {
            // Only the pictures: the session (and its dialog) ends with this capturer.
            let options = portal::Options { control: false, ..portal::Options::new(remember, answer_within) };
            let portal = portal::open(options)?;
            Ok(Box::new(PortalPictures { pictures: portal.stream.pictures(), _portal: portal }))
        }
    }
}

/// A portal's pictures, keeping its session open.
#[derive(Debug)]
struct PortalPictures {
    pictures: stream::LatestPicture,
    _portal: portal::Portal,
}

impl Capturer for PortalPictures {
    fn capture(&mut self) -> Result<Captured, CaptureError> {
        self.pictures.capture()
    }
}

type Request = oneshot::Sender<Result<Captured, CaptureError>>;

/// How long one capture answers every request: well under a frame at the highest rate a session sends
/// (60 a second, 16.7 ms), so no participant ever waits on an older picture than it would alone.
pub const SHARED_FOR: Duration = Duration::from_millis(8);

/// When one capture may answer several requests (see [`SHARED_FOR`]).
#[derive(Debug)]
pub enum Sharing {
    /// Within the window, always: the source has no damage rectangles, every participant compares the
    /// whole picture, so a picture a few milliseconds old only means its change goes in the next update.
    Always,
    /// Within the window, unless something was drawn since the capture began: a participant woken by a
    /// damage rectangle must see it in the picture it is given, or it would take the rectangle, find the
    /// tiles unchanged, and miss the change until its next full compare.
    UnlessDrawn(Arc<DamageLog>),
}

/// Asks a capturer on its own thread for frames.
#[derive(Debug, Clone)]
pub struct CaptureHandle {
    requests: mpsc::Sender<Request>,
    /// Unset: every request gets a capture of its own.
    sharing: Arc<OnceLock<Sharing>>,
}

impl CaptureHandle {
    /// Start a capture thread with the capturer `make` builds there.
    pub fn spawn<F>(make: F) -> Result<Self, CaptureError>
    where
        F: FnOnce() -> Result<Box<dyn Capturer>, CaptureError> + Send + 'static,
    {
        let (requests, mut rx) = mpsc::channel::<Request>(1);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let sharing = Arc::new(OnceLock::<Sharing>::new());
        let rules = sharing.clone();
        thread::Builder::new()
            .name("tether-capture".into())
            .spawn(move || {
                let mut capturer = match make() {
                    Ok(c) => {
                        let _ = ready_tx.send(Ok(()));
                        c
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                // Several participants ask for the screen at about the same moment (every one wakes for
                // the same X Damage notice, or paces to the same frame rate): one capture serves all who
                // ask within SHARED_FOR of it, so a second technician does not double the capture work
                // — by the rules of `sharing` (see `Sharing`).
                let drawn_so_far = || match rules.get() {
                    Some(Sharing::UnlessDrawn(log)) => log.end(),
                    _ => 0,
                };
                let mut last: Option<(Instant, u64, Captured)> = None;
                while let Some(reply) = rx.blocking_recv() {
                    let result = match &last {
                        Some((at, drawn, captured))
                            if at.elapsed() < SHARED_FOR && *drawn == drawn_so_far() =>
                        {
                            Ok(captured.clone())
                        }
                        _ => {
                            // What was drawn before the capture began is in it; its age counts from its end.
                            let drawn = drawn_so_far();
                            let captured = capturer.capture();
                            last = match (&captured, rules.get()) {
                                (Ok(captured), Some(_)) => Some((Instant::now(), drawn, captured.clone())),
                                _ => None,
                            };
                            captured
                        }
                    };
                    let _ = reply.send(result);
                }
            })
            .map_err(|e| CaptureError::Failed(e.to_string()))?;
        ready_rx.recv().map_err(|_| CaptureError::Stopped)??;
        Ok(Self { requests, sharing })
    }

    /// Let one capture answer the requests that follow it closely, by these rules (set once; unset, every
    /// request gets a capture of its own).
    pub fn share(&self, sharing: Sharing) {
        let _ = self.sharing.set(sharing);
    }

    /// Capture the screen now.
    pub async fn grab(&self) -> Result<Captured, CaptureError> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(tx).await.map_err(|_| CaptureError::Stopped)?;
        rx.await.map_err(|_| CaptureError::Stopped)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A capturer that takes `slow` per capture and numbers them.
    struct Slow {
        next: u64,
        slow: Duration,
    }

    impl Capturer for Slow {
        fn capture(&mut self) -> Result<Captured, CaptureError> {
            std::thread::sleep(self.slow);
            self.next += 1;
            let frame = tether_shared::frame::Frame::from_bgrx(1, 1, vec![0; 4])
                .map_err(|e| CaptureError::Failed(e.to_string()))?;
            Ok(Captured { id: self.next, frame: Arc::new(frame) })
        }
    }

    #[tokio::test]
    async fn requests_made_while_a_capture_runs_share_it_and_later_ones_get_a_new_one() {
        let slow = Duration::from_millis(50);
        let handle = CaptureHandle::spawn(move || Ok(Box::new(Slow { next: 0, slow }) as Box<dyn Capturer>))
            .expect("capture thread");
        handle.share(Sharing::Always);
        // The second request waits while the first capture runs, and is answered right after it.
        let (a, b) = tokio::join!(handle.grab(), handle.grab());
        assert_eq!(a.expect("a").id, b.expect("b").id, "one capture for both");
        tokio::time::sleep(SHARED_FOR * 3).await;
        let c = handle.grab().await.expect("c");
        assert_eq!(c.id, 2, "a request after the window gets a new capture");
    }

    #[tokio::test]
    async fn a_capture_is_not_shared_past_something_drawn_after_it_began_nor_when_sharing_is_off() {
        let slow = Duration::from_millis(50);
        let spawn = || {
            CaptureHandle::spawn(move || Ok(Box::new(Slow { next: 0, slow }) as Box<dyn Capturer>))
                .expect("capture thread")
        };
        let log = Arc::new(DamageLog::default());
        let handle = spawn();
        handle.share(Sharing::UnlessDrawn(log.clone()));
        let first = handle.grab();
        // Drawn while the first capture runs: the next request must see a capture that began after it.
        let drawn_meanwhile = async {
            tokio::time::sleep(slow / 2).await;
            log.push([(0, 0, 1, 1)]);
            handle.grab().await
        };
        let (a, b) = tokio::join!(first, drawn_meanwhile);
        assert_ne!(a.expect("a").id, b.expect("b").id, "a fresh capture after the drawing");

        let unshared = spawn();
        let (a, b) = tokio::join!(unshared.grab(), unshared.grab());
        assert_ne!(a.expect("a").id, b.expect("b").id, "no sharing unless asked for");
    }
}
