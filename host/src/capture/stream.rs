//! A screen that *sends* pictures (wlroots screencopy with damage, the desktop portal's PipeWire stream)
//! rather than one we ask: the thread receiving them keeps the latest, puts where it changed in a
//! [`DamageLog`] and pokes a `Notify`, so the session wakes when the screen changes — the same signals X
//! Damage gives on X11. A capture is then the latest picture, at once.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use super::damage::{DamageLog, Drawn};
use super::{CaptureError, Captured, Capturer};

/// The receiving end a session uses: the wake-up, where it changed, and the pictures.
#[derive(Debug)]
pub struct Stream {
    pub notify: Arc<tokio::sync::Notify>,
    pub log: Arc<DamageLog>,
    latest: Arc<Latest>,
}

/// The sending end, for the thread that receives the pictures.
#[derive(Debug)]
pub struct Feed {
    notify: Arc<tokio::sync::Notify>,
    log: Arc<DamageLog>,
    latest: Arc<Latest>,
}

/// The latest picture (`Err`: the stream ended, and why), and a wake-up for whoever waits for the first.
#[derive(Debug, Default)]
struct Latest {
    picture: Mutex<Option<Result<Captured, CaptureError>>>,
    arrived: Condvar,
}

impl Latest {
    fn set(&self, picture: Result<Captured, CaptureError>) {
        *self.picture.lock().unwrap_or_else(PoisonError::into_inner) = Some(picture);
        self.arrived.notify_all();
    }
}

impl Stream {
    /// A stream and the feed that fills it.
    pub fn new() -> (Self, Feed) {
        let stream = Self {
            notify: Arc::new(tokio::sync::Notify::new()),
            log: Arc::new(DamageLog::default()),
            latest: Arc::default(),
        };
        let feed =
            Feed { notify: stream.notify.clone(), log: stream.log.clone(), latest: stream.latest.clone() };
        (stream, feed)
    }

    /// A capturer that answers with the latest picture.
    pub fn pictures(&self) -> LatestPicture {
        LatestPicture(self.latest.clone())
    }
}

impl Feed {
    /// A new picture, changed from the one before where `drawn` says (on the display's layout).
    pub fn picture(&self, picture: Captured, drawn: impl IntoIterator<Item = Drawn>) {
        self.latest.set(Ok(picture));
        self.log.push(drawn);
        self.notify.notify_one();
    }

    /// Whether the receiving end is gone (the [`Stream`] and every [`LatestPicture`] of it dropped).
    pub fn abandoned(&self) -> bool {
        Arc::strong_count(&self.latest) == 1
    }

    /// The stream ended: captures fail with `why` from now on.
    pub fn end(&self, why: CaptureError) {
        self.latest.set(Err(why));
        self.log.forget();
        self.notify.notify_one();
    }
}

/// The latest picture of a [`Stream`], as a [`Capturer`].
#[derive(Debug)]
pub struct LatestPicture(Arc<Latest>);

/// How long a capture waits for the stream's first picture.
const FIRST_PICTURE: Duration = Duration::from_secs(10);

impl Capturer for LatestPicture {
    fn capture(&mut self) -> Result<Captured, CaptureError> {
        let guard = self.0.picture.lock().unwrap_or_else(PoisonError::into_inner);
        let (guard, _) = self
            .0
            .arrived
            .wait_timeout_while(guard, FIRST_PICTURE, |p| p.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        guard.clone().unwrap_or_else(|| Err(CaptureError::Failed("the screen sent no picture".into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_feed_knows_when_nobody_reads_it_any_more() {
        let (stream, feed) = Stream::new();
        let pictures = stream.pictures();
        drop(stream);
        assert!(!feed.abandoned(), "a capturer still reads the pictures");
        drop(pictures);
        assert!(feed.abandoned());
    }
}
