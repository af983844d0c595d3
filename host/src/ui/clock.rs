//! Wall-clock times for the session log ("14:02:31"), in the user's local time.
//!
//! The workspace has no time-zone crate, and std cannot tell the local offset, so the offset is asked of
//! `date +%z` once when the window opens (a fixed offset is right for any session that does not span a
//! daylight-saving change). If that fails the log shows UTC and says so.

use std::time::{SystemTime, UNIX_EPOCH};

/// Turns "now" into a time of day for the log.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Seconds east of UTC; `None`: unknown, show UTC.
    offset: Option<i64>,
}

impl Clock {
    /// The local clock, as `date` reports the offset now.
    pub fn local() -> Self {
        let offset = std::process::Command::new("date")
            .arg("+%z")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| parse_offset(text.trim()));
        Self { offset }
    }

    /// A clock with a known offset (tests).
    pub fn fixed(offset_secs: i64) -> Self {
        Self { offset: Some(offset_secs) }
    }

    /// "HH:MM:SS" for now.
    pub fn now(&self) -> String {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        self.format(secs)
    }

    /// "HH:MM:SS" for a Unix time.
    pub fn format(&self, unix_secs: i64) -> String {
        let day = (unix_secs + self.offset.unwrap_or(0)).rem_euclid(86_400);
        let utc = if self.offset.is_none() { " UTC" } else { "" };
        format!("{:02}:{:02}:{:02}{utc}", day / 3600, day / 60 % 60, day % 60)
    }
}

/// "+0130" / "-0500" → seconds east of UTC.
fn parse_offset(text: &str) -> Option<i64> {
    let (sign, digits) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i64 = digits[..2].parse().ok()?;
    let minutes: i64 = digits[2..].parse().ok()?;
    Some(sign * (hours * 3600 + minutes * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_parse() {
        assert_eq!(parse_offset("+0130"), Some(5400));
        assert_eq!(parse_offset("-0500"), Some(-18000));
        assert_eq!(parse_offset("0500"), None);
        assert_eq!(parse_offset("+05"), None);
    }

    #[test]
    fn times_of_day() {
        assert_eq!(Clock::fixed(0).format(3600 * 14 + 62), "14:01:02");
        assert_eq!(Clock::fixed(-3600).format(0), "23:00:00");
        assert_eq!(Clock { offset: None }.format(59), "00:00:59 UTC");
    }
}
