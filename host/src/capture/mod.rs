//! Screen capture behind one trait, one file per backend, chosen in [`open`]: [`x11`] (scrap, the real
//! screen) and [`test_pattern`] (synthetic and deterministic, for tests and machines without a display).
//!
//! Real capturers are often not `Send` (scrap's holds raw pointers), so every capturer lives on its own
//! thread and the session asks it for frames through a [`CaptureHandle`].

pub mod cursor;
pub mod damage;
pub mod monitors;
pub mod test_pattern;
pub mod x11;

use std::thread;

use tether_shared::frame::Frame;
use tokio::sync::{mpsc, oneshot};

/// One captured image and its identity (a counter per capturer, used by tests and latency probes).
#[derive(Debug, Clone)]
pub struct Captured {
    pub id: u64,
    pub frame: Frame,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum CaptureError {
    #[error("capture failed: {0}")]
    Failed(String),
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
}

/// Build the capturer for `source` (on the capture thread).
pub fn open(source: Source) -> Result<Box<dyn Capturer>, CaptureError> {
    match source {
        Source::TestPattern { width, height } => Ok(Box::new(test_pattern::TestPattern::new(width, height)?)),
        Source::X11 { monitor } => Ok(Box::new(x11::X11Capturer::new(monitor)?)),
    }
}

type Request = oneshot::Sender<Result<Captured, CaptureError>>;

/// Asks a capturer on its own thread for frames.
#[derive(Debug, Clone)]
pub struct CaptureHandle {
    requests: mpsc::Sender<Request>,
}

impl CaptureHandle {
    /// Start a capture thread with the capturer `make` builds there.
    pub fn spawn<F>(make: F) -> Result<Self, CaptureError>
    where
        F: FnOnce() -> Result<Box<dyn Capturer>, CaptureError> + Send + 'static,
    {
        let (requests, mut rx) = mpsc::channel::<Request>(1);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
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
                while let Some(reply) = rx.blocking_recv() {
                    let _ = reply.send(capturer.capture());
                }
            })
            .map_err(|e| CaptureError::Failed(e.to_string()))?;
        ready_rx.recv().map_err(|_| CaptureError::Stopped)??;
        Ok(Self { requests })
    }

    /// Capture the screen now.
    pub async fn grab(&self) -> Result<Captured, CaptureError> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(tx).await.map_err(|_| CaptureError::Stopped)?;
        rx.await.map_err(|_| CaptureError::Stopped)?
    }
}
