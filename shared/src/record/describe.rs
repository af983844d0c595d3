//! The host user's plain-language line for each [`SessionEvent`]: the one formatter behind the host
//! window's session log and the headless host's terminal output.
//!
//! Lines name the technician as the host user knows them, so the [`Narrator`] remembers who connected
//! (from [`EventKind::Connected`]); everything else comes from the event itself. No clock, no I/O: the
//! caller stamps and shows the line. Names and text from the technician are escaped
//! ([`crate::text::visible`]), so a line reads as it was sent and a terminal obeys none of it.

use super::{Direction, EventKind, Outcome, SessionEvent, Side, Transfer, Verified};
use crate::files::proto::FileError;
use crate::human;
use crate::session_proto::Permissions;
use crate::text::visible;

/// "see the screen, use mouse and keyboard" — permissions in the host user's words ("nothing" for none).
pub fn permissions(p: Permissions) -> String {
    let words: Vec<&str> =
        [(p.view, "see the screen"), (p.control, "use mouse and keyboard"), (p.files, "files")]
            .into_iter()
            .filter_map(|(on, w)| on.then_some(w))
            .collect();
    if words.is_empty() {
        "nothing".to_owned()
    } else {
        words.join(", ")
    }
}

/// How the host names a technician in full: the verified account and who verified it, or the typed name
/// marked as unverified.
pub fn full_name(typed: &str, verified: Option<&Verified>) -> String {
    match verified {
        Some(v) => format!("{} (verified by {})", v.account, v.relay),
        None => format!("{typed} (name not verified)"),
    }
}

/// How a technician is named in short: the verified account, or else the name they typed.
pub fn short_name<'a>(typed: &'a str, verified: Option<&'a Verified>) -> &'a str {
    verified.map_or(typed, |v| &v.account)
}

/// Turns events into lines, in the host user's words ("you" is the host user).
#[derive(Debug, Clone, Default)]
pub struct Narrator {
    /// The technician's name as typed (what their chat lines are signed with).
    typed: Option<String>,
    /// The short name: the verified account, or the typed name.
    short: Option<String>,
    /// Where received files are saved, as the user reads it.
    incoming: Option<String>,
}

impl Narrator {
    /// A narrator whose "received" lines say where the files went.
    pub fn with_incoming(folder: impl Into<String>) -> Self {
        Self { incoming: Some(folder.into()), ..Self::default() }
    }

    /// The technician as short lines name them ("The technician" before anyone connected).
    pub fn technician(&self) -> &str {
        self.short.as_deref().unwrap_or("The technician")
    }

    /// The technician's name as typed, as their chat lines are signed ("The technician" before anyone
    /// connected).
    pub fn typed_name(&self) -> &str {
        self.typed.as_deref().unwrap_or("The technician")
    }

    /// The line for `event`; a [`EventKind::Connected`] also sets the names later lines use.
    pub fn line(&mut self, event: &SessionEvent) -> String {
        match &event.kind {
            EventKind::Connected { technician, verified, asked, granted } => {
                self.typed = Some(technician.clone());
                self.short = Some(short_name(technician, verified.as_ref()).to_owned());
                format!(
                    "{} connected. They asked to: {}. You allowed: {}.",
                    full_name(technician, verified.as_ref()),
                    permissions(*asked),
                    permissions(*granted)
                )
            }
            EventKind::Requested { asked } => {
                format!("{} asks to: {}.", self.technician(), permissions(*asked))
            }
            EventKind::PermissionsChanged { by: Side::Technician, now, .. } => {
                format!("{} may now: {}.", self.technician(), permissions(*now))
            }
            EventKind::PermissionsChanged { by: Side::Host, before, now } => {
                let gave = Permissions {
                    view: now.view && !before.view,
                    control: now.control && !before.control,
                    files: now.files && !before.files,
                };
                let verb = if gave == Permissions::default() { "took back" } else { "gave back" };
                let changed = permissions(Permissions {
                    view: before.view != now.view,
                    control: before.control != now.control,
                    files: before.files != now.files,
                });
                format!("You {verb}: {changed}. {} may now: {}.", self.technician(), permissions(*now))
            }
            EventKind::RequestDeclined { asked } => {
                format!("{} was not given: {}.", self.technician(), permissions(*asked))
            }
            EventKind::Transfer(transfer) => self.transfer(transfer),
            EventKind::Chat { from: Side::Host, text } => format!("You wrote: {text}"),
            EventKind::Chat { from: Side::Technician, text } => {
                format!("{} wrote: {text}", self.typed_name())
            }
            EventKind::ColleagueChat { from, text } => format!("{from} wrote: {text}"),
            EventKind::Notes(notes) => {
                let said: Vec<String> = notes
                    .fields()
                    .iter()
                    .filter(|(_, v)| !v.trim().is_empty())
                    .map(|(k, v)| format!("{k}: {}", crate::text::visible_lines(v)))
                    .collect();
                format!("{} saved notes. {}", self.technician(), said.join(" · "))
            }
            EventKind::MonitorSwitched { index } => {
                format!("The technician switched to screen {}.", u64::from(*index) + 1)
            }
            EventKind::Clipboard { by: Side::Technician, .. } => {
                format!("{} put text on this computer's clipboard.", self.technician())
            }
            EventKind::Clipboard { by: Side::Host, .. } => {
                format!("This computer's clipboard text was sent to {}.", self.technician())
            }
            EventKind::Inventory { summary, .. } => format!(
                "{} kept this computer's inventory in the session record ({summary}).",
                self.technician()
            ),
            EventKind::CodeIssued { relay, invited_by: None } => {
                format!("A code was made on the relay {relay}.")
            }
            EventKind::CodeIssued { relay, invited_by: Some(by) } => {
                format!("{by} asked for an invite code, made on the relay {relay}.")
            }
            EventKind::ColleagueJoined { name, invited_by: Some(by) } => {
                format!("{name} (invited by {by}) is in the session.")
            }
            EventKind::ColleagueJoined { name, invited_by: None } => format!("{name} is in the session."),
            EventKind::ColleagueLeft { name } => format!("{name} left the session."),
            EventKind::ControlMoved { to: Some(name) } => format!("{name} has the mouse and keyboard now."),
            EventKind::ControlMoved { to: None } => "Nobody has the mouse and keyboard now.".to_owned(),
            EventKind::Interrupted => "The connection was interrupted.".to_owned(),
            EventKind::Resumed => "The connection is back.".to_owned(),
            EventKind::Ended { reason } => format!("Session over: {reason}"),
        }
    }

    fn transfer(&self, transfer: &Transfer) -> String {
        // Names are chosen by the technician (uploads) or name what they asked for (fetches).
        let text = match (&transfer.outcome, transfer.direction) {
            (Outcome::Completed { names, files }, Direction::Upload) => {
                let amount = human::files_and_bytes(files.len() as u32, transfer.bytes());
                match &self.incoming {
                    Some(folder) => format!("You received {} ({amount}) in {folder}.", names.join(", ")),
                    None => format!("You received {} ({amount}).", names.join(", ")),
                }
            }
            (Outcome::Completed { files, .. }, Direction::Fetch) => {
                let amount = human::files_and_bytes(files.len() as u32, transfer.bytes());
                format!("Your technician copied {} ({amount}).", transfer.what)
            }
            (Outcome::Refused(error) | Outcome::Failed(error), _) => {
                format!("A file transfer did not complete ({}): {error}.", transfer.label())
            }
        };
        visible(&text).into_owned()
    }
}

/// Whether the host user should be told of this transfer beyond the log (a notice to dismiss): not for
/// their own "Deny".
pub fn worth_a_notice(transfer: &Transfer) -> bool {
    !matches!(transfer.outcome, Outcome::Refused(FileError::Declined))
}
