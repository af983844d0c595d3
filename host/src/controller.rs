//! Who drives the host's mouse and keyboard: one [`InputSink`] for the whole host, one participant at a
//! time in control of it.
//!
//! [`Control`] is the decision, pure (no I/O, no lock): who holds control, and when the keys and
//! buttons that are down must be let go — on hand-over, on release (a revoked grant, a participant that
//! leaves). [`Controller`] is the thin shell that owns the sink and applies those decisions; a monitor
//! switch swaps the sink through it, which also lets go of everything held on the old one.
//!
//! Held keys are released whatever way control ends: a participant's [`Seat`] releases on drop (a
//! session that ends, or is cancelled), and the sink itself is released when the last handle goes
//! ([`ReleaseOnDrop`]). No stuck Ctrl on the user's machine.

use std::sync::{Arc, Mutex, MutexGuard};

use tether_shared::input::InputEvent;
use tokio::sync::watch;

use crate::inject::{InjectError, InputSink};

/// One technician's place in the host's hub; never reused while the host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParticipantId(pub u64);

/// What [`Control::take`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Nobody had control: `who` has it now.
    Taken,
    /// `who` had it already.
    Held,
    /// Someone else has it; `who` gets nothing until they release it or hand it over.
    Busy(ParticipantId),
}

/// Whether the keys and buttons held down on the sink must be let go now.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    Keep,
    ReleaseAll,
}

/// Who controls the host's input: at most one participant.
#[derive(Debug, Default, Clone)]
pub struct Control {
    holder: Option<ParticipantId>,
}

impl Control {
    pub fn holder(&self) -> Option<ParticipantId> {
        self.holder
    }

    /// `who` asks for control: granted only when nobody else has it.
    pub fn take(&mut self, who: ParticipantId) -> Take {
        match self.holder {
            None => {
                self.holder = Some(who);
                Take::Taken
            }
            Some(holder) if holder == who => Take::Held,
            Some(holder) => Take::Busy(holder),
        }
    }

    /// The holder `from` gives control to `to`; what `from` held is let go first. `None` (nothing
    /// changes) when `from` does not hold control — a hand-over that lost a race with a release.
    pub fn hand_over(&mut self, from: ParticipantId, to: ParticipantId) -> Option<Keys> {
        if self.holder != Some(from) {
            return None;
        }
        self.holder = Some(to);
        Some(if from == to { Keys::Keep } else { Keys::ReleaseAll })
    }

    /// The host user gives control to `to`, whoever had it: what the previous holder held is let go.
    pub fn give(&mut self, to: ParticipantId) -> Keys {
        let before = self.holder.replace(to);
        if before.is_some_and(|b| b != to) {
            Keys::ReleaseAll
        } else {
            Keys::Keep
        }
    }

    /// `who` gives control up (grant revoked, participant gone): what they held is let go. Someone who
    /// does not hold control releases nothing — in particular not what the holder is pressing.
    pub fn release(&mut self, who: ParticipantId) -> Keys {
        if self.holder == Some(who) {
            self.holder = None;
            Keys::ReleaseAll
        } else {
            Keys::Keep
        }
    }

    /// May `who`'s input reach the sink?
    pub fn may_inject(&self, who: ParticipantId) -> bool {
        self.holder == Some(who)
    }
}

/// Releases every held key and button when dropped — whichever way the sink goes (host ends, sink
/// swapped on a monitor switch).
struct ReleaseOnDrop(Box<dyn InputSink>);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.0.release_all();
    }
}

struct Inner {
    control: Control,
    sink: ReleaseOnDrop,
}

impl Inner {
    fn apply(&mut self, keys: Keys) {
        if keys == Keys::ReleaseAll {
            self.sink.0.release_all();
        }
    }
}

/// Why input did not reach the sink.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("another participant has control")]
    NotInControl,
    #[error(transparent)]
    Inject(#[from] InjectError),
}

/// The host's input sink and who may drive it; clones share both.
#[derive(Clone)]
pub struct Controller {
    inner: Arc<Mutex<Inner>>,
    /// Who holds control, for whoever shows it (the roster).
    holder: Arc<watch::Sender<Option<ParticipantId>>>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller").field("holder", &self.lock().control.holder()).finish_non_exhaustive()
    }
}

impl Controller {
    pub fn new(sink: Box<dyn InputSink>) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner { control: Control::default(), sink: ReleaseOnDrop(sink) })),
            holder: Arc::new(watch::channel(None).0),
        }
    }

    /// Follow who holds control.
    pub fn holder_watch(&self) -> watch::Receiver<Option<ParticipantId>> {
        self.holder.subscribe()
    }

    /// Tell the watchers who holds control now (called with the lock held, so changes are seen in order).
    fn publish(&self, inner: &Inner) {
        let now = inner.control.holder();
        self.holder.send_if_modified(|h| std::mem::replace(h, now) != now);
    }

    /// Injection never leaves the sink half-updated in a way that matters more than a stuck key, so a
    /// panic elsewhere while locked does not stop input for good.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn holder(&self) -> Option<ParticipantId> {
        self.lock().control.holder()
    }

    /// See [`Control::take`].
    pub fn take(&self, who: ParticipantId) -> Take {
        let mut inner = self.lock();
        let took = inner.control.take(who);
        self.publish(&inner);
        took
    }

    /// See [`Control::hand_over`]; `false` when `from` did not hold control.
    pub fn hand_over(&self, from: ParticipantId, to: ParticipantId) -> bool {
        let mut inner = self.lock();
        match inner.control.hand_over(from, to) {
            Some(keys) => {
                inner.apply(keys);
                self.publish(&inner);
                true
            }
            None => false,
        }
    }

    /// See [`Control::release`].
    pub fn release(&self, who: ParticipantId) {
        let mut inner = self.lock();
        let keys = inner.control.release(who);
        inner.apply(keys);
        self.publish(&inner);
    }

    /// See [`Control::give`].
    pub fn give(&self, to: ParticipantId) {
        let mut inner = self.lock();
        let keys = inner.control.give(to);
        inner.apply(keys);
        self.publish(&inner);
    }

    /// Inject `event` for `who`, if `who` is in control.
    pub fn inject(&self, who: ParticipantId, event: &InputEvent) -> Result<(), Refused> {
        let mut inner = self.lock();
        if !inner.control.may_inject(who) {
            return Err(Refused::NotInControl);
        }
        Ok(inner.sink.0.inject(event)?)
    }

    /// A new sink (monitor switch): everything held on the old one is let go; control stays with its
    /// holder.
    pub fn swap_sink(&self, sink: Box<dyn InputSink>) {
        let old = std::mem::replace(&mut self.lock().sink, ReleaseOnDrop(sink));
        drop(old); // outside the lock would do too; the release is what matters
    }

    /// `who`'s place at the controls for as long as the guard lives: dropping it releases control.
    pub fn seat(&self, who: ParticipantId) -> Seat {
        Seat { controller: self.clone(), who }
    }
}

/// Releases its participant's control (and so the keys it holds) when dropped.
#[derive(Debug)]
pub struct Seat {
    controller: Controller,
    who: ParticipantId,
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.controller.release(self.who);
    }
}

#[cfg(test)]
mod tests {
    use tether_shared::input::Key;

    use super::*;
    use crate::inject::record::RecordingSink;

    const A: ParticipantId = ParticipantId(1);
    const B: ParticipantId = ParticipantId(2);

    #[test]
    fn one_holder_at_a_time() {
        let mut control = Control::default();
        assert_eq!(control.take(A), Take::Taken);
        assert_eq!(control.take(A), Take::Held);
        assert_eq!(control.take(B), Take::Busy(A));
        assert!(control.may_inject(A));
        assert!(!control.may_inject(B));
        assert_eq!(control.release(A), Keys::ReleaseAll);
        assert_eq!(control.holder(), None);
        assert_eq!(control.take(B), Take::Taken);
    }

    #[test]
    fn hand_over_releases_what_the_giver_held() {
        let mut control = Control::default();
        assert_eq!(control.take(A), Take::Taken);
        assert_eq!(control.hand_over(A, B), Some(Keys::ReleaseAll));
        assert_eq!(control.holder(), Some(B));
        assert_eq!(control.hand_over(A, A), None, "A gave control away");
        assert_eq!(control.hand_over(B, B), Some(Keys::Keep));
    }

    /// A revoke for the old holder that arrives after a hand-over must not take control (and the keys
    /// the new holder is pressing) away from the new holder.
    #[test]
    fn a_late_release_does_not_touch_the_new_holder() {
        let mut control = Control::default();
        assert_eq!(control.take(A), Take::Taken);
        assert_eq!(control.hand_over(A, B), Some(Keys::ReleaseAll));
        assert_eq!(control.release(A), Keys::Keep);
        assert_eq!(control.holder(), Some(B));
    }

    /// Two participants asking at once: whichever is handled first gets control; the other is told who.
    #[test]
    fn racing_takes_have_one_winner() {
        for (first, second) in [(A, B), (B, A)] {
            let mut control = Control::default();
            assert_eq!(control.take(first), Take::Taken);
            assert_eq!(control.take(second), Take::Busy(first));
        }
    }

    #[test]
    fn the_user_gives_control_to_anyone_and_the_old_holder_s_keys_go() {
        let mut control = Control::default();
        assert_eq!(control.give(A), Keys::Keep, "nobody had it");
        assert_eq!(control.give(A), Keys::Keep);
        assert_eq!(control.give(B), Keys::ReleaseAll);
        assert_eq!(control.holder(), Some(B));
    }

    #[tokio::test]
    async fn the_holder_is_published() {
        let controller = Controller::new(Box::new(RecordingSink::new()));
        let mut holder = controller.holder_watch();
        assert_eq!(controller.take(A), Take::Taken);
        assert!(holder.has_changed().expect("open"));
        assert_eq!(*holder.borrow_and_update(), Some(A));
        controller.give(B);
        assert_eq!(*holder.borrow_and_update(), Some(B));
        controller.release(B);
        assert_eq!(*holder.borrow_and_update(), None);
    }

    #[test]
    fn releasing_without_control_releases_nothing() {
        let mut control = Control::default();
        assert_eq!(control.release(A), Keys::Keep);
        assert_eq!(control.take(B), Take::Taken);
        assert_eq!(control.release(A), Keys::Keep);
        assert!(control.may_inject(B));
    }

    fn ctrl_down() -> InputEvent {
        InputEvent::Key { key: Key::Control, pressed: true }
    }

    fn ctrl_up() -> InputEvent {
        InputEvent::Key { key: Key::Control, pressed: false }
    }

    #[test]
    fn only_the_holder_reaches_the_sink() {
        let sink = RecordingSink::new();
        let controller = Controller::new(Box::new(sink.clone()));
        assert!(matches!(controller.inject(A, &ctrl_down()), Err(Refused::NotInControl)));
        assert_eq!(controller.take(A), Take::Taken);
        controller.inject(A, &ctrl_down()).expect("injected");
        assert!(matches!(controller.inject(B, &ctrl_up()), Err(Refused::NotInControl)));
        assert_eq!(sink.events(), vec![ctrl_down()]);
    }

    #[test]
    fn hand_over_lets_go_of_held_keys() {
        let sink = RecordingSink::new();
        let controller = Controller::new(Box::new(sink.clone()));
        assert_eq!(controller.take(A), Take::Taken);
        controller.inject(A, &ctrl_down()).expect("injected");
        assert!(controller.hand_over(A, B));
        assert!(sink.held().is_empty(), "released on hand-over");
        assert_eq!(sink.events(), vec![ctrl_down(), ctrl_up()]);
        controller.inject(B, &ctrl_down()).expect("the new holder types");
    }

    #[test]
    fn revoking_control_lets_go_of_held_keys() {
        let sink = RecordingSink::new();
        let controller = Controller::new(Box::new(sink.clone()));
        assert_eq!(controller.take(A), Take::Taken);
        controller.inject(A, &ctrl_down()).expect("injected");
        controller.release(A);
        assert!(sink.held().is_empty());
        assert!(matches!(controller.inject(A, &ctrl_down()), Err(Refused::NotInControl)));
    }

    #[test]
    fn swapping_the_sink_lets_go_of_the_old_one_and_keeps_the_holder() {
        let old = RecordingSink::new();
        let new = RecordingSink::new();
        let controller = Controller::new(Box::new(old.clone()));
        assert_eq!(controller.take(A), Take::Taken);
        controller.inject(A, &ctrl_down()).expect("injected");
        controller.swap_sink(Box::new(new.clone()));
        assert!(old.held().is_empty(), "the old sink let go");
        controller.inject(A, &ctrl_down()).expect("still in control");
        assert_eq!(new.events(), vec![ctrl_down()]);
    }

    #[test]
    fn a_dropped_seat_releases_control_and_keys() {
        let sink = RecordingSink::new();
        let controller = Controller::new(Box::new(sink.clone()));
        let seat = controller.seat(A);
        assert_eq!(controller.take(A), Take::Taken);
        controller.inject(A, &ctrl_down()).expect("injected");
        drop(seat);
        assert!(sink.held().is_empty());
        assert_eq!(controller.holder(), None);
    }

    #[test]
    fn the_last_handle_releases_the_sink() {
        let sink = RecordingSink::new();
        let controller = Controller::new(Box::new(sink.clone()));
        assert_eq!(controller.take(A), Take::Taken);
        controller.inject(A, &ctrl_down()).expect("injected");
        let other = controller.clone();
        drop(controller);
        assert_eq!(sink.held(), vec![ctrl_down()], "a handle is still alive");
        drop(other);
        assert!(sink.held().is_empty(), "released with the last handle");
    }
}
