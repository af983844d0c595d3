//! Sizes, rates and durations as people read them, so the host window, the viewer window and the command
//! lines all say "838.9 MB", "12.4 Mbit/s" and "1 min 05 s" the same way.

use std::time::Duration;

/// "999 bytes", "1.5 MB", "2.1 GB" (decimal units, as file managers and disk makers count).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// "838.9 MB" for one file (or none), "120 files, 838.9 MB" for more.
pub fn files_and_bytes(files: u32, bytes: u64) -> String {
    match files {
        0 | 1 => self::bytes(bytes),
        n => format!("{n} files, {}", self::bytes(bytes)),
    }
}

/// A link rate: "850 kbit/s", "12.4 Mbit/s", "1.29 Gbit/s".
pub fn bits_per_second(bits: f64) -> String {
    match bits {
        b if b < 1e6 => format!("{:.0} kbit/s", b / 1e3),
        b if b < 1e9 => format!("{:.1} Mbit/s", b / 1e6),
        b => format!("{:.2} Gbit/s", b / 1e9),
    }
}

/// "45 s", "3 min 05 s", "2 h 07 min": the two largest units, rounded to whole seconds.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs().saturating_add(u64::from(d.subsec_millis() >= 500));
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
    }
}

/// An error and its causes as the one line a person reads: "what happened: why", each part once.
///
/// Error types here and in the libraries below often repeat their cause in their own message (thiserror's
/// `"…: {0}"`, anyhow's context), so a cause whose text the line already holds is left out, and the
/// ones left are joined with ": ". No backtrace: an expected error is not a bug (a panic still prints
/// one with `RUST_BACKTRACE=1`).
pub fn error_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let text = e.to_string();
        if !text.is_empty() && !line.contains(&text) {
            line = format!("{line}: {text}");
        }
        cause = e.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Plain(&'static str, #[source] Option<Box<Plain>>);

    #[test]
    fn an_error_line_names_each_cause_once() {
        let inner = Plain("handshake failed", None);
        let middle = Plain("could not reach the relay: handshake failed", Some(Box::new(inner)));
        let outer = Plain("connecting", Some(Box::new(middle)));
        assert_eq!(error_line(&outer), "connecting: could not reach the relay: handshake failed");
    }

    #[test]
    fn sizes_read_like_a_file_manager() {
        assert_eq!(bytes(0), "0 bytes");
        assert_eq!(bytes(999), "999 bytes");
        assert_eq!(bytes(1_000), "1.0 KB");
        assert_eq!(bytes(1_500_000), "1.5 MB");
        assert_eq!(bytes(838_860_800), "838.9 MB");
        assert_eq!(bytes(1 << 30), "1.1 GB");
        assert_eq!(bytes(u64::MAX), "18446744.1 TB");
    }

    #[test]
    fn link_rates_switch_units() {
        assert_eq!(bits_per_second(0.0), "0 kbit/s");
        assert_eq!(bits_per_second(27_400.0), "27 kbit/s");
        assert_eq!(bits_per_second(12_400_000.0), "12.4 Mbit/s");
        assert_eq!(bits_per_second(1_294_085_000.0), "1.29 Gbit/s");
    }

    #[test]
    fn durations_use_the_two_largest_units() {
        assert_eq!(duration(Duration::from_millis(400)), "0 s");
        assert_eq!(duration(Duration::from_millis(59_400)), "59 s");
        assert_eq!(duration(Duration::from_secs(65)), "1 min 05 s");
        assert_eq!(duration(Duration::from_secs(3599)), "59 min 59 s");
        assert_eq!(duration(Duration::from_secs(3600 * 2 + 7 * 60 + 30)), "2 h 07 min");
        assert_eq!(duration(Duration::MAX), format!("{} h {:02} min", u64::MAX / 3600, u64::MAX % 3600 / 60));
    }
}
