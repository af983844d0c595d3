//! The host's screen, shared by every participant: the capture of the monitor being shared, the cursor
//! on it, the monitor list, and switching monitors.
//!
//! Participants never hold the capture or the cursor feed themselves: they watch the current [`Screen`]
//! (a new one after every switch, with a new generation) and the [`CursorState`], so a monitor switch is
//! one call, [`Display::switch_monitor`], whoever asked for it and however many participants watch.
//! X Damage notices are relayed to every participant ([`Damage`]). The cursor thread's events are
//! folded into a state by one pump task; each participant sends its
//! technician what changed since it last looked ([`CursorState::news`]), so a participant that joins
//! late gets the shape and position at once, and a slow one skips positions instead of queueing them.

use std::sync::Arc;

use tether_shared::session_proto::{CursorShape, MonitorInfo};
use tokio::sync::{mpsc, watch, Mutex, Notify};
use tokio::task::JoinHandle;

use crate::capture::cursor::CursorEvent;
use crate::capture::damage::{DamageLog, Drawn};
use crate::capture::{CaptureHandle, Sharing, Source};
use crate::clipboard::ClipboardHandle;
use crate::controller::Controller;
use crate::Sources;

/// What is being shared now.
#[derive(Debug, Clone)]
pub struct Screen {
    pub capture: CaptureHandle,
    /// The display's monitors (empty when there is nothing to choose) and the shared one.
    pub monitors: Vec<MonitorInfo>,
    pub current: u32,
    /// Where the shared monitor's top-left pixel is on the display (X Damage reports in these coordinates).
    pub origin: (i32, i32),
    /// Counts switches: a participant that saw another generation starts its encoding afresh.
    pub generation: u64,
}

/// The cursor as last reported: its shape (numbered, so a change is seen even when it looks the same)
/// and position.
#[derive(Debug, Clone, Default)]
pub struct CursorState {
    shape: Option<(u64, Arc<CursorShape>)>,
    position: Option<(i32, i32, bool)>,
}

/// What one participant has sent of the cursor so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct CursorSent {
    shape: Option<u64>,
    position: Option<(i32, i32, bool)>,
}

impl CursorState {
    /// Fold in one event from the cursor thread.
    pub fn update(&mut self, event: CursorEvent) {
        match event {
            CursorEvent::Shape(shape) => {
                let number = self.shape.as_ref().map_or(0, |(n, _)| n + 1);
                self.shape = Some((number, Arc::new(shape)));
            }
            CursorEvent::Position { x, y, visible } => self.position = Some((x, y, visible)),
        }
    }

    /// What a participant that has sent `sent` must send now: a new shape first, then the position.
    pub fn news(&self, sent: &mut CursorSent) -> Vec<CursorEvent> {
        let mut news = Vec::new();
        if let Some((number, shape)) = &self.shape {
            if sent.shape != Some(*number) {
                sent.shape = Some(*number);
                news.push(CursorEvent::Shape(CursorShape::clone(shape)));
            }
        }
        if let Some(position @ (x, y, visible)) = self.position {
            if sent.position != Some(position) {
                sent.position = Some(position);
                news.push(CursorEvent::Position { x, y, visible });
            }
        }
        news
    }
}

/// Why a monitor switch did not happen (the text is what the technician is told).
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    #[error("this host shares no monitor to choose from")]
    NothingToChoose,
    #[error("there is no monitor {0}")]
    NoSuchMonitor(u32),
    #[error("could not switch to monitor {index}: {why}")]
    Failed { index: u32, why: String },
}

struct Inner {
    screen: watch::Sender<Screen>,
    cursor: watch::Sender<CursorState>,
    /// A new cursor feed for the pump after a switch.
    feeds: mpsc::Sender<Option<mpsc::Receiver<CursorEvent>>>,
    /// Counts X Damage notices, and the rectangles drawn; `None` without X Damage (capture on a timer).
    drawn: Option<(watch::Sender<u64>, Arc<DamageLog>)>,
    source: Option<Source>,
    /// One switch at a time.
    switching: Mutex<()>,
    controller: Controller,
    /// The cursor pump and the damage relay.
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// One participant's view of "something was drawn, and where": every participant wakes for each notice
/// (the X Damage thread pokes one waiter; the display relays that to all) and reads the rectangles drawn
/// from its own place in the log.
#[derive(Debug, Clone)]
pub struct Damage {
    notices: watch::Receiver<u64>,
    log: Arc<DamageLog>,
    /// The first rectangle of the log this participant has not read.
    next: u64,
}

impl Damage {
    /// Wait until something was drawn since the last call (at once if it was meanwhile).
    pub async fn notified(&mut self) {
        if self.notices.changed().await.is_err() {
            std::future::pending::<()>().await; // the display is gone: only the safety tick is left
        }
    }

    /// The rectangles drawn since the last call, on the display (see [`Screen::origin`]); `None` when
    /// that is not known (compare everything).
    pub fn take_drawn(&mut self) -> Option<Vec<Drawn>> {
        let (drawn, next) = self.log.since(self.next);
        self.next = next;
        drawn
    }
}

/// The host-wide screen; clones share it. Needs a tokio runtime (the cursor pump is a task).
#[derive(Clone)]
pub struct Display {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Display {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Display").field("screen", &*self.inner.screen.borrow()).finish_non_exhaustive()
    }
}

impl Display {
    /// The display for `sources`, and what is not the display's: the input [`Controller`] (which the
    /// display swaps the sink of on a monitor switch) and the clipboard.
    pub fn open(sources: Sources) -> (Self, Controller, Option<ClipboardHandle>) {
        let Sources { capture, cursor, changed, origin, sink, clipboard, source, monitors, current_monitor } =
            sources;
        let controller = Controller::new(sink);
        capture.share(match &changed {
            Some((_, log)) => Sharing::UnlessDrawn(log.clone()),
            None => Sharing::Always,
        });
        let screen = Screen { capture, monitors, current: current_monitor, origin, generation: 0 };
        let (cursor_tx, _) = watch::channel(CursorState::default());
        let (feeds, feeds_rx) = mpsc::channel(1);
        let mut tasks = vec![tokio::spawn(pump(cursor, feeds_rx, cursor_tx.clone()))];
        let drawn = changed.map(|(notify, log)| {
            let (drawn, _) = watch::channel(0u64);
            tasks.push(tokio::spawn(relay_damage(notify, drawn.clone())));
            (drawn, log)
        });
        let inner = Inner {
            screen: watch::channel(screen).0,
            cursor: cursor_tx,
            feeds,
            drawn,
            source,
            switching: Mutex::new(()),
            controller: controller.clone(),
            tasks,
        };
        (Self { inner: Arc::new(inner) }, controller, clipboard)
    }

    /// The screen now and after every switch.
    pub fn screen(&self) -> watch::Receiver<Screen> {
        self.inner.screen.subscribe()
    }

    /// The cursor now and as it changes (nothing for a source without a cursor, like the test pattern).
    pub fn cursor(&self) -> watch::Receiver<CursorState> {
        self.inner.cursor.subscribe()
    }

    /// Something was drawn (X Damage watches the whole display, so it outlives switches); `None`
    /// without X Damage.
    pub fn damage(&self) -> Option<Damage> {
        self.inner.drawn.as_ref().map(|(drawn, log)| {
            let mut notices = drawn.subscribe();
            notices.mark_changed(); // a new participant has seen nothing yet: its first look is at once
            Damage { notices, log: log.clone(), next: log.end() }
        })
    }

    /// Share monitor `index` instead: a new capture for every participant, the input sink swapped
    /// (releasing what was held), the cursor watched there. `Ok(None)` when it is shared already;
    /// otherwise the new monitor list and the current one.
    pub async fn switch_monitor(&self, index: u32) -> Result<Option<(Vec<MonitorInfo>, u32)>, SwitchError> {
        let Some(source) = self.inner.source.and_then(|s| s.on_monitor(index as usize)) else {
            return Err(SwitchError::NothingToChoose);
        };
        let _one_at_a_time = self.inner.switching.lock().await;
        let (count, current) = {
            let screen = self.inner.screen.borrow();
            (screen.monitors.len(), screen.current)
        };
        if index as usize >= count {
            return Err(SwitchError::NoSuchMonitor(index));
        }
        if index == current {
            return Ok(None);
        }
        let failed = |why: String| SwitchError::Failed { index, why };
        let new = tokio::task::spawn_blocking(move || Sources::open(source))
            .await
            .map_err(|e| failed(e.to_string()))?
            .map_err(|e| failed(e.to_string()))?;
        if let Some((_, log)) = &self.inner.drawn {
            new.capture.share(Sharing::UnlessDrawn(log.clone()));
        }
        self.inner.controller.swap_sink(new.sink);
        let _ = self.inner.feeds.send(new.cursor).await;
        let monitors = new.monitors.clone();
        self.inner.screen.send_modify(|screen| {
            screen.capture = new.capture;
            screen.monitors = new.monitors;
            screen.current = index;
            screen.origin = new.origin;
            screen.generation += 1;
        });
        Ok(Some((monitors, index)))
    }
}

/// Hands each X Damage notice to every participant.
async fn relay_damage(notify: Arc<Notify>, drawn: watch::Sender<u64>) {
    loop {
        notify.notified().await;
        drawn.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Folds the current cursor feed into the shared state; a switch brings a new feed. A feed that stops
/// leaves the last state in place.
async fn pump(
    mut feed: Option<mpsc::Receiver<CursorEvent>>,
    mut feeds: mpsc::Receiver<Option<mpsc::Receiver<CursorEvent>>>,
    state: watch::Sender<CursorState>,
) {
    loop {
        let event = match feed.as_mut() {
            Some(events) => tokio::select! {
                event = events.recv() => event,
                new = feeds.recv() => match new {
                    Some(new) => { feed = new; continue }
                    None => return,
                },
            },
            None => match feeds.recv().await {
                Some(new) => {
                    feed = new;
                    continue;
                }
                None => return,
            },
        };
        match event {
            Some(event) => state.send_modify(|state| state.update(event)),
            None => feed = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{self, Source};
    use crate::inject::record::RecordingSink;

    fn shape(width: u16) -> CursorShape {
        CursorShape { width, height: 1, hot_x: 0, hot_y: 0, rgba: vec![0; usize::from(width) * 4] }
    }

    fn position(x: i32) -> CursorEvent {
        CursorEvent::Position { x, y: 0, visible: true }
    }

    #[test]
    fn a_late_participant_gets_the_current_shape_and_position() {
        let mut state = CursorState::default();
        state.update(CursorEvent::Shape(shape(1)));
        state.update(position(1));
        state.update(position(2));
        let mut sent = CursorSent::default();
        assert_eq!(state.news(&mut sent), vec![CursorEvent::Shape(shape(1)), position(2)]);
        assert_eq!(state.news(&mut sent), vec![], "nothing new");
    }

    #[test]
    fn each_participant_gets_what_it_has_not_sent() {
        let mut state = CursorState::default();
        let (mut a, mut b) = (CursorSent::default(), CursorSent::default());
        state.update(position(1));
        assert_eq!(state.news(&mut a), vec![position(1)]);
        state.update(CursorEvent::Shape(shape(2)));
        state.update(position(3));
        assert_eq!(state.news(&mut a), vec![CursorEvent::Shape(shape(2)), position(3)]);
        assert_eq!(state.news(&mut b), vec![CursorEvent::Shape(shape(2)), position(3)]);
    }

    #[test]
    fn the_same_shape_again_is_sent_again() {
        let mut state = CursorState::default();
        let mut sent = CursorSent::default();
        state.update(CursorEvent::Shape(shape(1)));
        assert_eq!(state.news(&mut sent).len(), 1);
        state.update(CursorEvent::Shape(shape(1)));
        assert_eq!(state.news(&mut sent), vec![CursorEvent::Shape(shape(1))]);
    }

    fn test_display() -> Display {
        let capture = CaptureHandle::spawn(|| capture::open(Source::TestPattern { width: 8, height: 8 }))
            .expect("capture");
        Display::open(Sources::new(capture, Box::new(RecordingSink::new()))).0
    }

    #[tokio::test]
    async fn the_test_pattern_has_no_monitor_to_switch_to() {
        let display = test_display();
        let err = display.switch_monitor(1).await.expect_err("nothing to choose");
        assert_eq!(err.to_string(), "this host shares no monitor to choose from");
        assert_eq!(display.screen().borrow().generation, 0);
    }

    #[tokio::test]
    async fn the_pump_follows_the_feed_and_its_replacements() {
        let (tx, feed) = mpsc::channel(4);
        let (feeds_tx, feeds) = mpsc::channel(1);
        let (state, mut watched) = watch::channel(CursorState::default());
        let pump = tokio::spawn(pump(Some(feed), feeds, state));
        tx.send(position(1)).await.expect("pump listens");
        watched.changed().await.expect("updated");
        let mut sent = CursorSent::default();
        assert_eq!(watched.borrow_and_update().news(&mut sent), vec![position(1)]);
        let (new_tx, new_feed) = mpsc::channel(4);
        feeds_tx.send(Some(new_feed)).await.expect("pump listens");
        new_tx.send(position(5)).await.expect("pump reads the new feed");
        watched.changed().await.expect("updated");
        assert_eq!(watched.borrow_and_update().news(&mut sent), vec![position(5)]);
        drop(feeds_tx);
        pump.await.expect("the pump ends with the display");
    }

    #[tokio::test]
    async fn every_participant_wakes_for_a_damage_notice() {
        let capture = CaptureHandle::spawn(|| capture::open(Source::TestPattern { width: 8, height: 8 }))
            .expect("capture");
        let mut sources = Sources::new(capture, Box::new(RecordingSink::new()));
        let (notify, log) = (Arc::new(Notify::new()), Arc::new(DamageLog::default()));
        sources.changed = Some((notify.clone(), log.clone()));
        let display = Display::open(sources).0;
        let (mut a, mut b) = (display.damage().expect("damage"), display.damage().expect("damage"));
        a.notified().await; // the first look is at once
        b.notified().await;
        log.push([(1, 2, 3, 4)]);
        notify.notify_one();
        let both = async { tokio::join!(a.notified(), b.notified()) };
        tokio::time::timeout(std::time::Duration::from_secs(30), both).await.expect("both woke");
        // Each reads where it was drawn, once.
        assert_eq!(a.take_drawn(), Some(vec![(1, 2, 3, 4)]));
        assert_eq!(b.take_drawn(), Some(vec![(1, 2, 3, 4)]));
        assert_eq!(a.take_drawn(), Some(vec![]));
    }
}
