//! A session record as a report a helpdesk attaches to a ticket: one self-contained HTML file (no
//! scripts, no external files; readable offline and printable) listing what happened, in words both the
//! user and the technician read the same way ("the user allowed…", "Alice wrote…"), with the record's
//! head and how to check the machine-readable JSON that goes with it.
//!
//! Every text that came from a person (names, chat, notes, file names) is HTML-escaped and shown with
//! invisible and text-reordering characters made visible ([`crate::text::visible_lines`]).

use std::fmt::Write as _;

use super::chain::hex32;
use super::describe::permissions;
use super::file::RecordFile;
use super::{EventKind, Side, UnixMs};
use crate::text::visible_lines;

/// The report for `file`; `title` names whose copy it is ("The technician's copy").
pub fn render(file: &RecordFile, title: &str) -> String {
    let mut technician = "The technician".to_owned();
    let mut rows = String::new();
    for entry in &file.entries {
        if let EventKind::Connected { technician: typed, verified, .. } = &entry.event.kind {
            technician = super::describe::short_name(typed, verified.as_ref()).to_owned();
        }
        let _ = writeln!(
            rows,
            "<tr><td class=n>{}</td><td class=t>{}</td><td>{}</td></tr>",
            entry.seq + 1,
            time(entry.event.at),
            line(&entry.event.kind, &technician)
        );
    }
    let (first, last) = match (file.entries.first(), file.entries.last()) {
        (Some(a), Some(b)) => (time(a.event.at), time(b.event.at)),
        _ => ("—".to_owned(), "—".to_owned()),
    };
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Tether session record</title>
<style>
body {{ font-family: sans-serif; margin: 2em auto; max-width: 56em; color: #222; }}
h1 {{ font-size: 1.5em; margin-bottom: 0.2em; }}
.sub {{ color: #555; margin-top: 0; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 0.35em 0.5em; text-align: left; vertical-align: top; }}
th {{ background: #f3f3f3; }}
td.n {{ color: #888; width: 2.5em; }} td.t {{ white-space: nowrap; width: 11em; color: #444; }}
.mono {{ font-family: monospace; word-break: break-all; }}
.failed {{ color: #b00020; font-weight: bold; }}
h2 {{ font-size: 1.2em; margin-top: 1.5em; }}
details {{ margin: 0.6em 0; }} summary {{ cursor: pointer; color: #1a4f8b; }}
.box {{ background: #f7f7f7; border: 1px solid #ddd; padding: 0.8em 1em; margin: 1em 0; }}
</style></head><body>
<h1>Tether session record</h1>
<p class=sub>{title} · {technician} · {first} to {last} (UTC) · {count}</p>
<table><tr><th>#</th><th>When (UTC)</th><th>What happened</th></tr>
{rows}</table>
{inventories}<div class=box>
<p><b>Checking this record.</b> Both ends of the session held the same record, entry by entry, and
confirmed its state to each other during the session. The file <span class=mono>.json</span> saved with
this report holds it; <span class=mono>tether-viewer report verify FILE.json</span> checks that no entry
was changed, removed, moved or added.</p>
<p>Session <span class=mono>{session}</span><br>Record head <span class=mono>{head}</span></p>
<p>This record never holds the screen, typed text, clipboard text or the content of files: only what
happened, by whom, and files by name, size and BLAKE3 hash.</p>
</div>
</body></html>
"#,
        title = esc(title),
        technician = esc(&technician),
        count = esc(&file.describe_len()),
        session = hex32::to_hex(&file.session),
        head = hex32::to_hex(&file.head),
        inventories = file.inventories.iter().map(super::html_inventory::section).collect::<String>(),
    )
}

/// One event in words both sides read the same way.
fn line(kind: &EventKind, technician: &str) -> String {
    let who = esc(technician);
    match kind {
        EventKind::Connected { technician, verified, asked, granted } => {
            let name = match verified {
                Some(v) => format!("{} (account verified by {})", esc(&v.account), esc(&v.relay)),
                None => format!("{} (name not verified)", esc(technician)),
            };
            format!(
                "{name} connected and asked to: {}. The user allowed: {}.",
                permissions(*asked),
                permissions(*granted)
            )
        }
        EventKind::Requested { asked } => format!("{who} asked to: {}.", permissions(*asked)),
        EventKind::PermissionsChanged { by: Side::Host, now, .. } => {
            format!("The user changed what {who} may do: {}.", permissions(*now))
        }
        EventKind::PermissionsChanged { by: Side::Technician, now, .. } => {
            format!("{who} may now: {}.", permissions(*now))
        }
        EventKind::RequestDeclined { asked } => format!("The user did not allow: {}.", permissions(*asked)),
        EventKind::Transfer(transfer) => {
            let what = match transfer.direction {
                super::Direction::Upload => format!("{who} sent files to the host"),
                super::Direction::Fetch => format!("{who} copied {} from the host", esc(&transfer.what)),
            };
            match &transfer.outcome {
                super::Outcome::Completed { files, .. } => {
                    let listed: Vec<String> = files
                        .iter()
                        .map(|f| {
                            format!(
                                "{} ({}, BLAKE3 <span class=mono>{}</span>)",
                                esc(&f.path),
                                crate::human::bytes(f.size),
                                f.hash
                            )
                        })
                        .collect();
                    format!("{what}: {}", listed.join("; "))
                }
                super::Outcome::Refused(e) => format!("{what}: refused ({})", esc(&e.to_string())),
                super::Outcome::Failed(e) => format!("{what}: failed ({})", esc(&e.to_string())),
            }
        }
        EventKind::Chat { from: Side::Host, text } => format!("<b>The user:</b> {}", esc(text)),
        EventKind::Chat { from: Side::Technician, text } => format!("<b>{who}:</b> {}", esc(text)),
        EventKind::ColleagueChat { from, text } => format!("<b>{}:</b> {}", esc(from), esc(text)),
        EventKind::MonitorSwitched { index } => format!("Screen {} is shared now.", u64::from(*index) + 1),
        EventKind::Clipboard { by: Side::Host, bytes } => format!(
            "The host's clipboard text ({}) went to {who} (its content is not recorded).",
            crate::human::bytes(*bytes)
        ),
        EventKind::Clipboard { by: Side::Technician, bytes } => format!(
            "{who} put text ({}) on the host's clipboard (its content is not recorded).",
            crate::human::bytes(*bytes)
        ),
        EventKind::Ended { reason } => format!("The session ended: {}.", esc(&reason.to_string())),
        EventKind::CodeIssued { relay, invited_by: None } => {
            format!("The user's computer made a one-time code on the relay {}.", esc(relay))
        }
        EventKind::CodeIssued { relay, invited_by: Some(by) } => {
            format!("{} asked for an invite code for a colleague, made on the relay {}.", esc(by), esc(relay))
        }
        EventKind::ColleagueJoined { name, invited_by: Some(by) } => {
            format!("{} (invited by {}) is in the session.", esc(name), esc(by))
        }
        EventKind::ColleagueJoined { name, invited_by: None } => format!("{} is in the session.", esc(name)),
        EventKind::ColleagueLeft { name } => format!("{} left the session.", esc(name)),
        EventKind::ControlMoved { to: Some(name) } => {
            format!("{} has the mouse and keyboard now.", esc(name))
        }
        EventKind::ControlMoved { to: None } => "Nobody has the mouse and keyboard now.".to_owned(),
        EventKind::Interrupted => "The connection was interrupted; the session waited for it.".to_owned(),
        EventKind::Resumed => "The connection is back; the session went on.".to_owned(),
        EventKind::Inventory { summary, digest } => format!(
            "{who} kept the host's inventory in this record: {} (BLAKE3 <span class=mono>{}</span>).",
            esc(summary),
            hex32::to_hex(digest)
        ),
        EventKind::Notes(notes) => {
            let mut out = format!("<b>{who} saved notes.</b>");
            for (label, text) in notes.fields() {
                if !text.trim().is_empty() {
                    let _ = write!(out, "<br>{label}: {}", esc(text));
                }
            }
            out
        }
    }
}

/// `2026-12-05 10-42-07`: a time for a file name (UTC).
pub fn stamp(at: UnixMs) -> String {
    time(at).replace(':', "-")
}

/// `2026-12-05 10:42:07` from milliseconds since the epoch (UTC).
pub(super) fn time(at: UnixMs) -> String {
    let secs = at.0 / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// Days since 1970-01-01 to a (year, month, day) in the proleptic Gregorian calendar (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// HTML-escaped, invisible and reordering characters shown, line breaks kept.
pub(super) fn esc(text: &str) -> String {
    let shown = visible_lines(text);
    let mut out = String::with_capacity(shown.len());
    for c in shown.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("<br>"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::record::chain::Chain;
    use crate::record::SessionEvent;
    use crate::session_proto::{Notes, Permissions};

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(time(UnixMs(0)), "1970-01-01 00:00:00");
        assert_eq!(time(UnixMs(1_796_467_521_043)), "2026-12-05 10:45:21");
        assert_eq!(time(UnixMs(951_782_400_000)), "2000-02-29 00:00:00");
    }

    #[test]
    fn the_report_lists_every_entry_and_escapes_what_people_wrote() {
        let mut chain = Chain::new(&[2; 32]);
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(1_796_467_500 + s);
        let connected = EventKind::Connected {
            technician: "Alice".into(),
            verified: None,
            asked: Permissions::ALL,
            granted: Permissions::VIEW_ONLY,
        };
        chain.append(SessionEvent::new(at(0), connected));
        let chat = EventKind::Chat { from: Side::Technician, text: "<script>alert(1)</script>".into() };
        chain.append(SessionEvent::new(at(5), chat));
        let notes = Notes { problem: "printer".into(), ticket: "HD-1".into(), ..Notes::default() };
        chain.append(SessionEvent::new(at(9), EventKind::Notes(notes)));
        let file = RecordFile::new([2; 32], chain.entries().to_vec());
        let html = render(&file, "The technician's copy");
        assert!(html.contains("Alice (name not verified) connected and asked to: see the screen"));
        assert!(html.contains("The user allowed: see the screen."));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !html.contains("<script>"));
        assert!(html.contains("Ticket: HD-1") && html.contains("3 entries"));
        assert!(html.contains(&hex32::to_hex(&file.head)));
        assert!(!html.contains("src=") && !html.contains("href="), "nothing loaded from elsewhere");
    }
}
