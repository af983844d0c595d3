//! What every participant of the host shares: the [`Display`] they all see, the [`Controller`] that
//! lets one of them at a time drive the input, the clipboard, the [`Roster`] of who is there and the
//! session's [`History`]. Each technician's session
//! ([`crate::session`]) joins the hub as a participant with an id of its own; the hub is borrowed, so
//! a second session is a second `session::run` on the same hub.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::clipboard::ClipboardHandle;
use crate::controller::{Controller, ParticipantId};
use crate::display::Display;
use crate::history::History;
use crate::participants::Roster;
use crate::Sources;

#[derive(Debug)]
pub struct Hub {
    pub display: Display,
    pub controller: Controller,
    pub clipboard: Option<ClipboardHandle>,
    /// Who is in the session (and the shared chat).
    pub roster: Roster,
    /// Every record event so far, for those who join later.
    pub(crate) history: Arc<History>,
    next_participant: AtomicU64,
}

impl Hub {
    /// The hub for `sources`. Needs a tokio runtime (the display runs small tasks).
    pub fn new(sources: Sources) -> Self {
        let (display, controller, clipboard) = Display::open(sources);
        let roster = Roster::new(controller.clone());
        Self {
            display,
            controller,
            clipboard,
            roster,
            history: Arc::default(),
            next_participant: AtomicU64::new(1),
        }
    }

    /// A new participant's id, never given before by this hub.
    pub fn join(&self) -> ParticipantId {
        ParticipantId(self.next_participant.fetch_add(1, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{self, CaptureHandle, Source};
    use crate::inject::record::RecordingSink;

    #[tokio::test]
    async fn participants_get_distinct_ids() {
        let capture = CaptureHandle::spawn(|| capture::open(Source::TestPattern { width: 8, height: 8 }))
            .expect("capture");
        let hub = Hub::new(Sources::new(capture, Box::new(RecordingSink::new())));
        assert_ne!(hub.join(), hub.join());
    }
}
