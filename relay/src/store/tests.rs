//! The same behaviour from both backends: the suite runs on a fresh SQLite database and on a fresh
//! PostgreSQL cluster (started by the test, Debian's `postgresql`), and what only a shared database
//! does — two relays on one PostgreSQL — on PostgreSQL alone.

use std::time::Duration;

use tether_shared::token::RelayId;
use tether_testbed::postgres::Postgres as Server;

use super::Store;
use crate::audit::{AuditRecord, Outcome};
use crate::resume::ResumeRecord;

fn server() -> Server {
    Server::start_new().expect("a PostgreSQL server (apt-get install postgresql; scripts/packages.sh)")
}

fn resume(n: u8) -> ResumeRecord {
    ResumeRecord {
        commitment: [n; 32],
        session_id: format!("s{n}"),
        host_addr: "127.0.0.1:1".into(),
        viewer_addr: "127.0.0.1:2".into(),
        technician: Some("ann".into()),
        created_at: 1,
        part_of: None,
    }
}

/// What every backend must do.
fn behaves(store: &Store) {
    let relay = RelayId::Name("relay.example.org".into());
    let token = store.add_account("ann", &relay).expect("add");
    assert_eq!(store.verify_token(&token).expect("verify"), Some("ann".into()));
    assert!(store.add_account("ann", &relay).is_err(), "names are unique");
    let reissued = store.reissue_account("ann", &relay).expect("reissue");
    assert_eq!(store.verify_token(&token).expect("verify"), None, "the old token is replaced");
    assert_eq!(store.verify_token(&reissued).expect("verify"), Some("ann".into()));
    store.add_account("bob", &relay).expect("add");
    assert!(store.revoke_account("ann").expect("revoke"));
    assert!(!store.revoke_account("ann").expect("revoke"), "already revoked");
    assert_eq!(store.verify_token(&reissued).expect("verify"), None);
    assert_eq!(store.revoked_among(&["ann".into(), "bob".into()]).expect("q"), vec!["ann".to_string()]);
    let names: Vec<_> = store.list_accounts().expect("list").into_iter().map(|a| a.name).collect();
    assert_eq!(names, ["ann", "bob"]);

    let row = AuditRecord {
        session_id: "s1".into(),
        registered_at: 1,
        claimed_at: Some(2),
        ended_at: 3,
        technician: Some("ann".into()),
        host_addr: "127.0.0.1:1".into(),
        bytes_host_to_viewer: u64::from(u32::MAX) + 7,
        outcome: Outcome::Completed.as_str().into(),
        record_len: Some(4),
        relay: Some("relay-a".into()),
        ..AuditRecord::default()
    };
    store.record(&row).expect("insert");
    assert_eq!(store.audit_rows().expect("rows"), vec![row]);

    store.save_resume(&resume(1)).expect("save");
    store.save_resume(&resume(1)).expect("saving again replaces");
    assert_eq!(store.find_resume(&[1; 32], i64::MAX).expect("find"), Some(resume(1)));
    store.set_resume_expiry(&[1; 32], Some(100)).expect("expiry");
    assert!(store.find_resume(&[1; 32], 99).expect("find").is_some());
    assert_eq!(store.find_resume(&[1; 32], 100).expect("find"), None, "window over");
    store.save_resume(&resume(2)).expect("save");
    assert_eq!(store.resume_after_restart(500).expect("restart"), 1, "only the live one");
    assert_eq!(store.prune_resume(500).expect("prune"), 2);
    store.db().reachable().expect("reachable");
}

#[test]
fn sqlite_behaves() {
    let dir = tempfile::tempdir().expect("dir");
    behaves(&Store::open(dir.path()).expect("open"));
    Store::open(dir.path()).expect("opening again migrates nothing twice");
}

#[test]
fn postgres_behaves_and_two_relays_share_it() {
    let pg = server();
    let (a, mut revoked_on_a) = Store::connect_postgres(&pg.url(), "relay-a").expect("connect");
    behaves(&a);
    // A second relay: migrating again does nothing; accounts and audit are shared.
    let (b, _) = Store::connect_postgres(&pg.url(), "relay-b").expect("connect again");
    let token = b.add_account("carol", &RelayId::Name("relay.example.org".into())).expect("add on B");
    assert_eq!(a.verify_token(&token).expect("verify on A"), Some("carol".into()));
    assert_eq!(b.audit_rows().expect("rows").len(), 1, "B reads A's audit row");
    // Resume records are each relay's own.
    a.save_resume(&resume(3)).expect("save on A");
    assert_eq!(b.find_resume(&[3; 32], 0).expect("find on B"), None);
    assert_eq!(b.resume_after_restart(1).expect("restart B"), 0, "B leaves A's live record alone");
    assert!(a.find_resume(&[3; 32], i64::MAX).expect("find on A").is_some());
    // Revoking on B is announced to A at once.
    assert!(b.revoke_account("carol").expect("revoke on B"));
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
    let heard = rt.block_on(async {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), revoked_on_a.recv()).await {
                Ok(Some(name)) if name == "carol" => return Some(name),
                Ok(Some(_)) => continue, // ann, revoked by the suite above
                _ => return None,
            }
        }
    });
    assert_eq!(heard.as_deref(), Some("carol"), "A hears of the revocation");
    assert!(a.describe().contains("PostgreSQL") && !a.describe().contains("password"));
}

#[test]
fn the_nameplate_directory_is_one_for_every_relay() {
    let dir = tempfile::tempdir().expect("dir");
    assert!(Store::open(dir.path()).expect("open").db().directory().is_none(), "SQLite serves one relay");
    let pg = server();
    let (a, _) = Store::connect_postgres(&pg.url(), "relay-a").expect("connect");
    let (b, _) = Store::connect_postgres(&pg.url(), "relay-b").expect("connect");
    let (da, db) = (a.db().directory().expect("shared"), b.db().directory().expect("shared"));
    assert!(da.list_nameplate("123", "a.example:1", &[1; 32], 100, 0).expect("list"));
    assert!(!db.list_nameplate("123", "b.example:1", &[2; 32], 100, 50).expect("list"), "A holds it");
    let listing = db.find_nameplate("123", 50).expect("find").expect("listed");
    assert_eq!(
        listing,
        super::Listing { relay: "relay-a".into(), address: "a.example:1".into(), fingerprint: [1; 32] }
    );
    assert_eq!(db.find_nameplate("123", 100).expect("find"), None, "lapsed");
    assert!(
        db.list_nameplate("123", "b.example:1", &[2; 32], 300, 100).expect("list"),
        "a lapsed one is free"
    );
    assert_eq!(da.find_nameplate("123", 150).expect("find").expect("listed").relay, "relay-b");
    da.unlist_nameplate("123").expect("unlist");
    assert!(da.find_nameplate("123", 150).expect("find").is_some(), "A unlists only its own");
    db.unlist_nameplate("123").expect("unlist");
    assert_eq!(da.find_nameplate("123", 150).expect("find"), None);
    assert!(da.list_nameplate("7", "a.example:1", &[1; 32], 1000, 0).expect("list"));
    assert!(db.list_nameplate("8", "b.example:1", &[2; 32], 1000, 0).expect("list"));
    assert!(db.list_nameplate("9", "b.example:1", &[2; 32], 10, 0).expect("list"));
    assert_eq!(da.clear_nameplates(20).expect("clear"), 2, "A's own and the lapsed 9");
    assert_eq!(db.find_nameplate("8", 20).expect("find").expect("B's stays").relay, "relay-b");
    assert_eq!(db.prune_nameplates(1000).expect("prune"), 1);
}

#[test]
fn a_lost_postgres_is_an_error_until_it_is_back() {
    let pg = server();
    let (store, _) = Store::connect_postgres(&pg.url(), "relay-a").expect("connect");
    store.add_account("ann", &RelayId::Name("r".into())).expect("add");
    pg.stop().expect("stop");
    let err = store.list_accounts().expect_err("the server is gone");
    assert!(matches!(err, super::StoreError::Unreachable(_)), "{err:?}");
    assert!(store.db().reachable().is_err());
    pg.start().expect("start again");
    // Within a second of a failed attempt calls fail at once; then the next one connects.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let accounts = loop {
        match store.list_accounts() {
            Ok(accounts) => break accounts,
            Err(e) if std::time::Instant::now() > deadline => panic!("not back: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    assert_eq!(accounts.len(), 1, "reconnected by itself");
}
