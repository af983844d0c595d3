//! A session record saved to a file: the machine-readable JSON a report carries, and its check.
//!
//! The file names the session it belongs to (its public commitment, which the relay's audit also names),
//! holds every entry of the chain, and states the head. [`RecordFile::verify`] checks the chain from the
//! session's genesis and that the stated head is the chain's: a changed, dropped, moved or added entry is
//! named. Whoever rebuilds a whole chain with other content gets another head — which is why the head is
//! what the two ends confirmed to each other during the session and what an organization's relay keeps.

use serde::{Deserialize, Serialize};

use super::chain::{self, hex32, ChainError, Entry, Hash};
use super::EventKind;
use crate::inventory::{self, SystemInfo};

/// What the `format` field says for this layout.
pub const FORMAT: &str = "tether-session-record/1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordFile {
    pub format: String,
    /// The session's public commitment.
    #[serde(with = "hex32")]
    pub session: [u8; 32],
    pub entries: Vec<Entry>,
    /// The chain's head as the end that saved it held it.
    #[serde(with = "hex32")]
    pub head: Hash,
    /// The inventories the record names ([`EventKind::Inventory`]), each checked against its digest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inventories: Vec<SystemInfo>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordFileError {
    #[error("not a Tether session record ({0})")]
    Unreadable(String),
    #[error("a session record in format {0:?}, which this program does not read")]
    Format(String),
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error("the entries verify but end at head {found}, not the head the file states ({stated}): entries were removed from the end")]
    Head { stated: String, found: String },
    #[error("the relay's audit holds no head of this record: it was changed (and rebuilt), or it is not from a session through that relay")]
    NotAudited,
    #[error("the attached inventory of {0} is not the one the record names: it was changed, or added")]
    Inventory(String),
    #[error("the relay saw {relay} entries of this record, the file holds {file}: entries were removed from the end")]
    Shorter { relay: u64, file: u64 },
}

/// One audit row's word on a session record, as a relay's `audit export --format json` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AuditedHead {
    pub session_id: String,
    pub record_len: Option<u64>,
    pub record_head: Option<String>,
}

/// Where the relay's audit agrees with a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditMatch {
    pub session_id: String,
    /// Entries the relay had heard of (the file may hold a few more: ones made as the session ended).
    pub len: u64,
}

impl RecordFile {
    /// The file for the record of `session` made of `entries`.
    pub fn new(session: [u8; 32], entries: Vec<Entry>) -> Self {
        let head = entries.last().map_or_else(|| chain::genesis(&session), |e| e.hash);
        Self { format: FORMAT.to_owned(), session, entries, head, inventories: Vec::new() }
    }

    /// The file with those of `inventories` that the record names attached (each once).
    pub fn with_inventories<'a>(mut self, inventories: impl IntoIterator<Item = &'a SystemInfo>) -> Self {
        let mut wanted = self.inventory_digests();
        for info in inventories {
            let digest = inventory::digest(info);
            if let Some(at) = wanted.iter().position(|d| *d == digest) {
                wanted.remove(at);
                self.inventories.push(info.clone());
            }
        }
        self
    }

    /// The digests of the inventories the record names, in order, each once.
    pub fn inventory_digests(&self) -> Vec<Hash> {
        let mut digests: Vec<Hash> = Vec::new();
        for entry in &self.entries {
            if let EventKind::Inventory { digest, .. } = &entry.event.kind {
                if !digests.contains(digest) {
                    digests.push(*digest);
                }
            }
        }
        digests
    }

    /// Pretty JSON, ending in a newline.
    pub fn to_json(&self) -> String {
        // Plain data: serialising it does not fail.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// Save the report: this JSON at `json` and the HTML report beside it (same name, `.html`); the
    /// HTML's path. `title` names whose copy it is.
    pub fn save(&self, json: &std::path::Path, title: &str) -> std::io::Result<std::path::PathBuf> {
        let html = json.with_extension("html");
        std::fs::write(json, self.to_json())?;
        std::fs::write(&html, super::html::render(self, title))?;
        Ok(html)
    }

    /// A file name for this record's report in a folder: `Tether session 2026-12-05 10-42-07.json`
    /// (the first entry's time, UTC).
    pub fn default_name(&self) -> String {
        let stamp =
            self.entries.first().map_or_else(|| "empty".to_owned(), |e| super::html::stamp(e.event.at));
        format!("Tether session {stamp}.json")
    }

    /// "1 entry", "12 entries".
    pub fn describe_len(&self) -> String {
        match self.entries.len() {
            1 => "1 entry".to_owned(),
            n => format!("{n} entries"),
        }
    }

    pub fn from_json(text: &str) -> Result<Self, RecordFileError> {
        serde_json::from_str(text).map_err(|e| RecordFileError::Unreadable(e.to_string()))
    }

    /// Check the (verified) record against a relay's audit rows: some row must hold the head the chain had
    /// after that row's number of entries. The best match (most entries) is returned.
    pub fn check_audit(&self, rows: &[AuditedHead]) -> Result<AuditMatch, RecordFileError> {
        let mut chain = chain::Chain::new(&self.session);
        for entry in &self.entries {
            chain
                .accept(entry.clone())
                .map_err(|problem| ChainError { index: entry.seq as usize, problem })?;
        }
        let mut best: Option<AuditMatch> = None;
        let mut longer = None;
        for row in rows {
            let (Some(len), Some(head)) =
                (row.record_len, row.record_head.as_deref().and_then(hex32::from_hex))
            else {
                continue;
            };
            match chain.head_at(len) {
                Some(ours) if ours == head => {
                    if best.as_ref().is_none_or(|b| len > b.len) {
                        best = Some(AuditMatch { session_id: row.session_id.clone(), len });
                    }
                }
                None => longer = Some(len),
                Some(_) => {}
            }
        }
        match (best, longer) {
            (Some(found), _) => Ok(found),
            (None, Some(relay)) => Err(RecordFileError::Shorter { relay, file: chain.len() }),
            (None, None) => Err(RecordFileError::NotAudited),
        }
    }

    /// Check the chain and the stated head; the head if all holds.
    pub fn verify(&self) -> Result<Hash, RecordFileError> {
        if self.format != FORMAT {
            return Err(RecordFileError::Format(self.format.clone()));
        }
        let head = chain::verify(&self.session, &self.entries)?;
        if head != self.head {
            return Err(RecordFileError::Head {
                stated: hex32::to_hex(&self.head),
                found: hex32::to_hex(&head),
            });
        }
        let named = self.inventory_digests();
        if let Some(stray) = self.inventories.iter().find(|i| !named.contains(&inventory::digest(i))) {
            return Err(RecordFileError::Inventory(stray.hostname.clone()));
        }
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::record::chain::Chain;
    use crate::record::{EventKind, SessionEvent, Side};

    fn file(n: usize) -> RecordFile {
        let session = [1; 32];
        let mut chain = Chain::new(&session);
        for i in 0..n {
            let kind = EventKind::Chat { from: Side::Technician, text: format!("line {i}") };
            chain.append(SessionEvent::new(SystemTime::now(), kind));
        }
        RecordFile::new(session, chain.entries().to_vec())
    }

    #[test]
    fn a_saved_record_reads_back_and_verifies() {
        let saved = file(4);
        let back = RecordFile::from_json(&saved.to_json()).expect("reads");
        assert_eq!(back.verify().expect("verifies"), saved.head);
    }

    #[test]
    fn the_relay_s_head_confirms_a_record_and_catches_a_rebuilt_one() {
        let saved = file(4);
        let row = |len: u64, head: &Hash| AuditedHead {
            session_id: "s1".into(),
            record_len: Some(len),
            record_head: Some(hex32::to_hex(head)),
        };
        let rows = [
            row(3, &saved.entries[2].hash),
            AuditedHead { session_id: "other".into(), record_len: None, record_head: None },
        ];
        assert_eq!(
            saved.check_audit(&rows).expect("matches"),
            AuditMatch { session_id: "s1".into(), len: 3 }
        );
        // Rebuilt with other content from entry 1 on: a valid chain, but not the one the relay saw.
        let mut rebuilt = Chain::new(&saved.session);
        rebuilt.append(saved.entries[0].event.clone());
        for _ in 1..4 {
            let kind = EventKind::Chat { from: Side::Technician, text: "nothing happened".into() };
            rebuilt.append(SessionEvent::new(SystemTime::now(), kind));
        }
        let forged = RecordFile::new(saved.session, rebuilt.entries().to_vec());
        forged.verify().expect("a rebuilt chain holds together");
        assert!(matches!(forged.check_audit(&rows), Err(RecordFileError::NotAudited)));
        let mut cut = file(4);
        cut.entries.truncate(2);
        assert!(matches!(
            cut.check_audit(&[row(3, &saved.entries[2].hash)]),
            Err(RecordFileError::Shorter { relay: 3, file: 2 })
        ));
    }

    #[test]
    fn an_edited_file_is_caught_and_the_entry_named() {
        let saved = file(4).to_json().replace("line 2", "line X");
        match RecordFile::from_json(&saved).expect("reads").verify() {
            Err(RecordFileError::Chain(ChainError { index: 2, .. })) => {}
            other => panic!("{other:?}"),
        }
        let mut truncated = file(4);
        truncated.entries.pop();
        assert!(matches!(truncated.verify(), Err(RecordFileError::Head { .. })));
        assert!(matches!(RecordFile::from_json("{}"), Err(RecordFileError::Unreadable(_))));
        let mut other = file(1);
        other.format = "tether-session-record/9".into();
        assert!(matches!(other.verify(), Err(RecordFileError::Format(_))));
    }

    #[test]
    fn an_attached_inventory_must_be_the_one_the_record_names() {
        let session = [1; 32];
        let info =
            SystemInfo { hostname: "pc-17".into(), kernel: "6.1.0-27".into(), ..SystemInfo::default() };
        let mut chain = Chain::new(&session);
        let kind = EventKind::Inventory { digest: inventory::digest(&info), summary: info.summary() };
        chain.append(SessionEvent::new(SystemTime::now(), kind));
        let other = SystemInfo { hostname: "pc-18".into(), ..SystemInfo::default() };
        let file =
            RecordFile::new(session, chain.entries().to_vec()).with_inventories([&other, &info, &info]);
        assert_eq!(file.inventories, std::slice::from_ref(&info), "only the named one, once");
        let back = RecordFile::from_json(&file.to_json()).expect("reads");
        back.verify().expect("verifies with its inventory");
        // The kernel is in the attachment only (the entry's summary names host and system).
        let edited = file.to_json().replace("6.1.0-27", "6.1.0-99");
        match RecordFile::from_json(&edited).expect("reads").verify() {
            Err(RecordFileError::Inventory(host)) => assert_eq!(host, "pc-17"),
            other => panic!("{other:?}"),
        }
    }
}
