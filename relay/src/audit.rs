//! The audit log: metadata of every registered code, never content. One row per code a host registered
//! (plus one per rejoined part of a session, under the session's id, and one per failed-claim budget
//! spent, naming the viewer address that spent it):
//! session id, when it was registered / claimed / ended, the technician's verified account, both client
//! addresses, bytes forwarded each way, and how it ended ([`Outcome`]). Rows are written when the attempt
//! ends. `tether-relay audit list` and `audit export --format csv|json` read them.

use serde::Serialize;

use crate::store::{Store, StoreError};

/// How a registered code ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The session ran and one side closed it.
    Completed,
    /// Nobody claimed the code before it expired.
    Expired,
    /// The host left while waiting.
    HostLeftWaiting,
    /// A viewer claimed the code with a wrong secret.
    WrongCode,
    /// One side left during pairing.
    PeerLeftPairing,
    PairingTimeout,
    /// The relay was full.
    Busy,
    /// A side vanished without closing (its connection timed out).
    HostVanished,
    ViewerVanished,
    /// The technician's account was revoked during the session.
    Revoked,
    /// The relay ended it (shutdown) or a protocol error did.
    Aborted,
    /// The rejoined part of a session (its two ends found each other again after losing the relay) ended.
    Rejoined,
    /// The rejoined part of a session ended because the technician's account was revoked.
    RejoinedRevoked,
    /// Not a code: a viewer address used up its failed-claim budget (its claims are refused for a while).
    FailedClaimBudget,
    /// Not a code: the relay-wide failed-claim budget is spent (every claim is refused for a while).
    FailedClaimBudgetGlobal,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Expired => "expired",
            Self::HostLeftWaiting => "host_left_waiting",
            Self::WrongCode => "wrong_code",
            Self::PeerLeftPairing => "peer_left_pairing",
            Self::PairingTimeout => "pairing_timeout",
            Self::Busy => "busy",
            Self::HostVanished => "host_vanished",
            Self::ViewerVanished => "viewer_vanished",
            Self::Revoked => "revoked",
            Self::Aborted => "aborted",
            Self::Rejoined => "rejoined",
            Self::RejoinedRevoked => "rejoined_revoked",
            Self::FailedClaimBudget => "failed_claim_budget",
            Self::FailedClaimBudgetGlobal => "failed_claim_budget_global",
        }
    }
}

/// One audit row. Times are milliseconds since the Unix epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    pub session_id: String,
    pub registered_at: i64,
    pub claimed_at: Option<i64>,
    pub ended_at: i64,
    pub technician: Option<String>,
    pub host_addr: String,
    pub viewer_addr: Option<String>,
    pub bytes_host_to_viewer: u64,
    pub bytes_viewer_to_host: u64,
    pub outcome: String,
    /// For an invited colleague's row: the session id of the session they joined.
    pub part_of: Option<String>,
    /// The host's session record as the relay last heard of it: how many entries, and the head (hex).
    pub record_len: Option<u64>,
    pub record_head: Option<String>,
    /// The relay that wrote the row (its `name`; several relays may share one database).
    pub relay: Option<String>,
}

pub const CSV_HEADER: &str = "session_id,registered_at,claimed_at,ended_at,technician,host_addr,viewer_addr,\
bytes_host_to_viewer,bytes_viewer_to_host,outcome,part_of,record_len,record_head,relay";

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

impl AuditRecord {
    pub fn csv_line(&self) -> String {
        let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        [
            csv_field(&self.session_id),
            self.registered_at.to_string(),
            opt(self.claimed_at),
            self.ended_at.to_string(),
            csv_field(self.technician.as_deref().unwrap_or("")),
            csv_field(&self.host_addr),
            csv_field(self.viewer_addr.as_deref().unwrap_or("")),
            self.bytes_host_to_viewer.to_string(),
            self.bytes_viewer_to_host.to_string(),
            csv_field(&self.outcome),
            csv_field(self.part_of.as_deref().unwrap_or("")),
            self.record_len.map(|n| n.to_string()).unwrap_or_default(),
            csv_field(self.record_head.as_deref().unwrap_or("")),
            csv_field(self.relay.as_deref().unwrap_or("")),
        ]
        .join(",")
    }
}

impl Store {
    pub fn record(&self, r: &AuditRecord) -> Result<(), StoreError> {
        self.db().record_audit(r)
    }

    /// All rows, oldest first (of every relay sharing the database).
    pub fn audit_rows(&self) -> Result<Vec<AuditRecord>, StoreError> {
        self.db().audit_rows()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_and_csv_quotes() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(dir.path()).expect("open");
        let rec = AuditRecord {
            session_id: "s1".into(),
            registered_at: 1,
            claimed_at: Some(2),
            ended_at: 3,
            technician: Some("ann, \"the\" tech".into()),
            host_addr: "127.0.0.1:1".into(),
            viewer_addr: None,
            bytes_host_to_viewer: 10,
            bytes_viewer_to_host: 20,
            outcome: Outcome::Completed.as_str().into(),
            part_of: None,
            ..AuditRecord::default()
        };
        store.record(&rec).expect("insert");
        assert_eq!(store.audit_rows().expect("rows"), vec![rec.clone()]);
        assert_eq!(rec.csv_line(), "s1,1,2,3,\"ann, \"\"the\"\" tech\",127.0.0.1:1,,10,20,completed,,,,");
    }

    #[test]
    fn a_database_from_before_invites_gets_the_part_of_column() {
        let dir = tempfile::tempdir().expect("dir");
        let old = rusqlite::Connection::open(dir.path().join(crate::store::DB_FILE)).expect("sqlite");
        old.execute_batch(
            "CREATE TABLE audit (id INTEGER PRIMARY KEY, session_id TEXT NOT NULL, registered_at INTEGER NOT NULL, \
             claimed_at INTEGER, ended_at INTEGER NOT NULL, technician TEXT, host_addr TEXT NOT NULL, \
             viewer_addr TEXT, bytes_host_to_viewer INTEGER NOT NULL, bytes_viewer_to_host INTEGER NOT NULL, \
             outcome TEXT NOT NULL);
             INSERT INTO audit (session_id, registered_at, ended_at, host_addr, bytes_host_to_viewer, \
             bytes_viewer_to_host, outcome) VALUES ('old', 1, 2, 'h', 0, 0, 'expired');",
        )
        .expect("old schema");
        drop(old);
        let store = Store::open(dir.path()).expect("opens and adds the column");
        let joined = AuditRecord {
            session_id: "s2".into(),
            registered_at: 3,
            claimed_at: Some(4),
            ended_at: 5,
            technician: None,
            host_addr: "h".into(),
            viewer_addr: Some("v".into()),
            bytes_host_to_viewer: 0,
            bytes_viewer_to_host: 0,
            outcome: Outcome::Completed.as_str().into(),
            part_of: Some("old".into()),
            ..AuditRecord::default()
        };
        store.record(&joined).expect("insert");
        let rows = store.audit_rows().expect("rows");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].part_of, None, "the old row");
        assert_eq!(rows[1], joined);
        drop(store);
        Store::open(dir.path()).expect("opening again adds nothing twice");
    }
}
