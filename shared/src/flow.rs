//! Pull flow control for screen updates (ARCHITECTURE §3): the viewer's acknowledgements are credit.
//!
//! The host may have at most [`MAX_IN_FLIGHT`] frames sent but not yet acknowledged. When the link is
//! slow, acknowledgements come back slowly, the host captures less often, and every frame it does send
//! is the *current* screen: fewer, fresher frames instead of a backlog. Pure state, no I/O.

use std::collections::VecDeque;

/// Frames in flight at most.
pub const MAX_IN_FLIGHT: usize = 2;

/// An acknowledgement that does not match a frame in flight.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("acknowledgement for frame {seq}, which is not in flight")]
pub struct UnexpectedAck {
    pub seq: u64,
}

/// The host's side of the credit scheme.
#[derive(Debug, Default)]
pub struct Credit {
    in_flight: VecDeque<u64>,
    next_seq: u64,
}

impl Credit {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether another frame may be sent now.
    pub fn can_send(&self) -> bool {
        self.in_flight.len() < MAX_IN_FLIGHT
    }

    /// Take the sequence number for the frame about to be sent. Call only when [`Self::can_send`].
    pub fn on_send(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.in_flight.push_back(seq);
        seq
    }

    /// The viewer applied frame `seq`. Acks arrive in order because frames do.
    pub fn on_ack(&mut self, seq: u64) -> Result<(), UnexpectedAck> {
        match self.in_flight.front() {
            Some(&front) if front == seq => {
                self.in_flight.pop_front();
                Ok(())
            }
            _ => Err(UnexpectedAck { seq }),
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_two_frames_in_flight() {
        let mut c = Credit::new();
        assert!(c.can_send());
        let a = c.on_send();
        let b = c.on_send();
        assert!(!c.can_send());
        c.on_ack(a).expect("in order");
        assert!(c.can_send());
        c.on_ack(b).expect("in order");
        assert_eq!(c.in_flight(), 0);
    }

    #[test]
    fn bogus_or_reordered_acks_are_errors() {
        let mut c = Credit::new();
        assert_eq!(c.on_ack(0), Err(UnexpectedAck { seq: 0 }));
        let _a = c.on_send();
        let b = c.on_send();
        assert_eq!(c.on_ack(b), Err(UnexpectedAck { seq: b }));
    }
}
