//! An [`InputSink`] that records every event in order (shared with whoever holds a clone). `release_all`
//! records a release for each held key and button — as a real sink injects them.

use std::sync::{Arc, Mutex};

use tether_shared::input::InputEvent;

use super::{Held, InjectError, InputSink};

#[derive(Debug, Default)]
struct Log {
    events: Vec<InputEvent>,
    held: Held,
}

#[derive(Debug, Clone, Default)]
pub struct RecordingSink {
    log: Arc<Mutex<Log>>,
    echo: bool,
}

impl RecordingSink {
    pub fn new() -> Self {
        Self::default()
    }

    /// Also print each event as a line `input <event>` on stdout (the headless host's demo sink).
    pub fn echoing() -> Self {
        Self { echo: true, ..Self::default() }
    }

    /// Everything injected so far, in order.
    pub fn events(&self) -> Vec<InputEvent> {
        self.log.lock().map(|l| l.events.clone()).unwrap_or_default()
    }

    /// Press events of keys and buttons currently held.
    pub fn held(&self) -> Vec<InputEvent> {
        self.log.lock().map(|l| l.held.presses().to_vec()).unwrap_or_default()
    }

    fn record(&self, event: &InputEvent) -> Result<(), InjectError> {
        let mut log = self.log.lock().map_err(|_| InjectError::Failed("recorder poisoned".into()))?;
        if self.echo {
            println!("input {event:?}");
        }
        log.held.note(event);
        log.events.push(event.clone());
        Ok(())
    }
}

impl InputSink for RecordingSink {
    fn inject(&mut self, event: &InputEvent) -> Result<(), InjectError> {
        self.record(event)
    }

    fn release_all(&mut self) {
        let releases = self.log.lock().map(|mut l| l.held.take_releases()).unwrap_or_default();
        for release in releases {
            let _ = self.record(&release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_shared::input::{Key, MouseButton};

    #[test]
    fn release_all_releases_exactly_what_is_held() {
        let mut sink = RecordingSink::new();
        let ctrl = InputEvent::Key { key: Key::Control, pressed: true };
        let a = InputEvent::Key { key: Key::Char('a'), pressed: true };
        let left = InputEvent::MouseButton { button: MouseButton::Left, pressed: true };
        for e in [&ctrl, &a, &left] {
            sink.inject(e).expect("inject");
        }
        sink.inject(&InputEvent::Key { key: Key::Char('a'), pressed: false }).expect("inject");
        assert_eq!(sink.held(), vec![ctrl, left]);
        sink.release_all();
        assert!(sink.held().is_empty());
        let tail: Vec<_> = sink.events().into_iter().rev().take(2).collect();
        assert_eq!(
            tail,
            vec![
                InputEvent::Key { key: Key::Control, pressed: false },
                InputEvent::MouseButton { button: MouseButton::Left, pressed: false },
            ],
            "released last-pressed first"
        );
    }
}
