//! The session so far, for a technician who joins later: every record event of every participant, in
//! order, turned on request into the chat (with who wrote each line) and the host user's session log
//! (the lines their window shows, from a [`Narrator`] per participant). Only sent when the user agreed,
//! in the card that admits the newcomer.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use tether_shared::record::{EventKind, Narrator, SessionEvent, Side};
use tether_shared::session_proto::{self as proto, ChatLine, MAX_HISTORY_LINES};

use crate::controller::ParticipantId;

/// Events kept at most (the oldest go first).
const KEPT: usize = 2000;

/// Text carried at most in one [`proto::History`]: well inside a control message.
const MAX_HISTORY_TEXT: usize = 40 * 1024;

#[derive(Debug, Default)]
pub struct History {
    events: Mutex<VecDeque<(ParticipantId, SessionEvent)>>,
}

impl History {
    fn lock(&self) -> MutexGuard<'_, VecDeque<(ParticipantId, SessionEvent)>> {
        self.events.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn push(&self, who: ParticipantId, event: SessionEvent) {
        let mut events = self.lock();
        if events.len() == KEPT {
            events.pop_front();
        }
        events.push_back((who, event));
    }

    /// The chat and the log so far, the latest lines that fit.
    pub fn so_far(&self) -> proto::History {
        let mut narrators: HashMap<ParticipantId, Narrator> = HashMap::new();
        let (mut chat, mut log) = (Vec::new(), Vec::new());
        for (who, event) in self.lock().iter() {
            let narrator = narrators.entry(*who).or_default();
            let line = narrator.line(event);
            match &event.kind {
                EventKind::Chat { from: Side::Host, text } => {
                    chat.push(ChatLine { from: "the user".into(), text: text.clone() })
                }
                EventKind::Chat { from: Side::Technician, text } => {
                    chat.push(ChatLine { from: narrator.typed_name().to_owned(), text: text.clone() })
                }
                _ => log.push(line),
            }
        }
        let mut budget = MAX_HISTORY_TEXT;
        let chat = latest(chat, &mut budget, |c| c.from.len() + c.text.len());
        let log = latest(log, &mut budget, String::len);
        proto::History { chat, log }
    }
}

/// The last items of `all` (at most [`MAX_HISTORY_LINES`]) whose sizes fit in `budget`, oldest first.
fn latest<T>(all: Vec<T>, budget: &mut usize, size: impl Fn(&T) -> usize) -> Vec<T> {
    let mut kept: Vec<T> = Vec::new();
    for item in all.into_iter().rev() {
        let n = size(&item);
        if kept.len() == MAX_HISTORY_LINES || n > *budget {
            break;
        }
        *budget -= n;
        kept.push(item);
    }
    kept.reverse();
    kept
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use tether_shared::session_proto::Permissions;

    use super::*;

    fn at(kind: EventKind) -> SessionEvent {
        SessionEvent::new(SystemTime::now(), kind)
    }

    fn connected(name: &str) -> EventKind {
        EventKind::Connected {
            technician: name.into(),
            verified: None,
            asked: Permissions::ALL,
            granted: Permissions::VIEW_ONLY,
        }
    }

    #[test]
    fn chat_lines_name_their_writer_and_the_log_tells_the_rest() {
        let history = History::default();
        let (alice, bob) = (ParticipantId(1), ParticipantId(2));
        history.push(alice, at(connected("Alice")));
        history.push(alice, at(EventKind::Chat { from: Side::Technician, text: "printer?".into() }));
        history.push(alice, at(EventKind::Chat { from: Side::Host, text: "yes".into() }));
        history.push(bob, at(connected("Bob")));
        let so_far = history.so_far();
        let chat: Vec<_> = so_far.chat.iter().map(|c| (c.from.as_str(), c.text.as_str())).collect();
        assert_eq!(chat, [("Alice", "printer?"), ("the user", "yes")]);
        assert_eq!(so_far.log.len(), 2);
        assert!(so_far.log[0].starts_with("Alice (name not verified) connected"), "{:?}", so_far.log);
        assert!(so_far.log[1].starts_with("Bob"), "{:?}", so_far.log);
    }

    #[test]
    fn only_the_latest_lines_that_fit_are_sent() {
        let history = History::default();
        let who = ParticipantId(1);
        history.push(who, at(connected("Alice")));
        let long = "x".repeat(4000);
        for _ in 0..50 {
            history.push(who, at(EventKind::Chat { from: Side::Technician, text: long.clone() }));
        }
        let so_far = history.so_far();
        let text: usize = so_far.chat.iter().map(|c| c.from.len() + c.text.len()).sum();
        assert!(text <= MAX_HISTORY_TEXT);
        assert!(so_far.chat.len() >= 9 && so_far.chat.len() < 50, "{}", so_far.chat.len());
        assert!(so_far.log.is_empty() || so_far.log.len() == 1);
    }
}
