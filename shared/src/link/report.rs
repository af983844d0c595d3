//! What the technician chooses ([`ScreenQuality`]) and what the host tells them about the line
//! ([`LinkReport`]: round trip, bandwidth, queueing delay, and what the screen sender does about it).
//! Both cross the control stream (`Request::SetQuality`, `HostControl::Link`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::codec::Quality;
use crate::human;

/// The technician's choice of screen quality.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScreenQuality {
    /// Follow the line: photographic regions as JPEG, at a lower quality when the line cannot carry the
    /// screen at a lower frame rate. Text and UI stay lossless.
    #[default]
    Auto,
    /// This quality whatever the line; only the frame rate follows it.
    Fixed(Quality),
}

impl From<Quality> for ScreenQuality {
    fn from(q: Quality) -> Self {
        Self::Fixed(q)
    }
}

impl ScreenQuality {
    /// A quality the host can use: a JPEG quality outside 1–100 is not.
    pub fn is_valid(self) -> bool {
        !matches!(self, Self::Fixed(Quality::Balanced { jpeg_quality: 0 | 101.. }))
    }
}

/// What the screen sender does about the line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SenderAction {
    /// Every change goes as it happens.
    #[default]
    FullRate,
    /// The screen changes faster than the line carries: each update is sized to the line, so updates
    /// come less often (and a large change arrives over several).
    ReducedRate,
    /// And photographic regions go at this lower JPEG quality.
    ReducedQuality { jpeg_quality: u8 },
}

/// The host's view of the line to this viewer, sent about once a second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkReport {
    /// The transport's smoothed round trip, ms.
    pub rtt_ms: u32,
    /// The path's own round trip (the smallest seen), ms (0: under a millisecond); `None` before it is
    /// measured.
    pub path_rtt_ms: Option<u32>,
    /// How long packets wait in the line's queue, ms (the last round trip over the path's own).
    pub queue_ms: u32,
    /// The host's estimate of the line towards the viewer, bits per second; `None` until a transfer or
    /// a busy screen has measured it.
    pub bandwidth_bps: Option<u64>,
    pub action: SenderAction,
}

impl fmt::Display for SenderAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FullRate => f.write_str("full frame rate"),
            Self::ReducedRate => f.write_str("reduced frame rate"),
            Self::ReducedQuality { jpeg_quality } => {
                write!(f, "reduced frame rate, photos at quality {jpeg_quality}")
            }
        }
    }
}

impl LinkReport {
    /// What the sender does, with the line's rate when it acts on it: "reduced frame rate: link 4.8 Mbit/s".
    pub fn action_text(&self) -> String {
        match (self.action, self.bandwidth_bps) {
            (SenderAction::FullRate, _) | (_, None) => self.action.to_string(),
            (action, Some(bps)) => format!("{action}: link {}", human::bits_per_second(bps as f64)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_action_names_the_links_rate() {
        let report = LinkReport {
            bandwidth_bps: Some(4_800_000),
            action: SenderAction::ReducedRate,
            ..LinkReport::default()
        };
        assert_eq!(report.action_text(), "reduced frame rate: link 4.8 Mbit/s");
        let full = LinkReport { action: SenderAction::FullRate, ..report };
        assert_eq!(full.action_text(), "full frame rate");
    }

    #[test]
    fn an_out_of_range_jpeg_quality_is_not_valid() {
        assert!(ScreenQuality::Auto.is_valid());
        assert!(ScreenQuality::Fixed(Quality::Lossless).is_valid());
        assert!(!ScreenQuality::Fixed(Quality::Balanced { jpeg_quality: 0 }).is_valid());
        assert!(!ScreenQuality::Fixed(Quality::Balanced { jpeg_quality: 101 }).is_valid());
    }
}
