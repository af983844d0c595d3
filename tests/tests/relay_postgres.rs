//! Several relays of one organization sharing PostgreSQL (a real server, started by the test from
//! Debian's `postgresql`), and a relay whose database goes away and comes back.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use tether_relay::RelayConfig;
use tether_shared::end::EndReason;
use tether_shared::net::ClientError;
use tether_shared::relay_proto::RelayErrorKind;
use tether_shared::session_proto::Permissions;
use tether_shared::token::RelayId;
use tether_testbed::postgres::Postgres;
use tether_viewer::session::{ViewerError, ViewerSession};

fn server() -> Arc<Postgres> {
    Arc::new(Postgres::start_new().expect("a PostgreSQL server (apt-get install postgresql)"))
}

/// An organization's relay named `name` on `pg`; revocations are polled only every 30 s, so anything
/// faster is the database's announcement.
fn org_relay(pg: &Arc<Postgres>, name: &str) -> TestRelay {
    let name = name.to_owned();
    start_relay_on(Some(pg.clone()), move |cfg: &mut RelayConfig| {
        cfg.require_technician_auth = true;
        cfg.organization = "Acme IT".into();
        cfg.name = name;
        cfg.revocation_poll = Duration::from_secs(30);
        cfg.admin_listen = Some("127.0.0.1:0".parse().expect("addr"));
    })
}

fn with_token(relay: &TestRelay, token: &str) -> tether_viewer::session::ViewerConfig {
    let mut cfg = viewer_config(relay);
    cfg.token = Some(token.to_owned());
    cfg
}

async fn healthz(relay: &TestRelay) -> String {
    http(relay.handle.admin_addr().expect("admin listener"), "GET /healthz HTTP/1.1\r\n\r\n").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_share_accounts_revocations_and_the_audit_log() {
    let pg = server();
    let (a, b) = (org_relay(&pg, "relay-a"), org_relay(&pg, "relay-b"));
    // The account is made with relay B's admin command; its token names relay A (where this technician
    // works today: with self-signed certificates each relay is its own name).
    let token =
        b.store().add_account("dana", &RelayId::Fingerprint(a.handle.fingerprint())).expect("add on B");
    // The admin's commands find the database in the environment too (the systemd unit's root-only file).
    let empty = tempfile::tempdir().expect("dir");
    let url = a.cfg.database_url.clone().expect("on PostgreSQL");
    let mut list = common::procs::Proc::spawn_with_env(
        "tether-relay",
        &["--data-dir", empty.path().to_str().expect("utf-8"), "user", "list"],
        &[("TETHER_RELAY_DATABASE_URL", &url)],
    );
    let listed = list.rest().await;
    assert!(list.wait().await.success());
    assert!(listed.iter().any(|l| l.starts_with("dana\t")), "{listed:?}");
    let (host, viewer) = paired_with(&a, Permissions::VIEW_ONLY, &with_token(&a, &token)).await;
    // A session on B as well, so the audit log holds both relays' rows.
    let token_b = b.add_account("erin");
    let (host_b, viewer_b) = paired_with(&b, Permissions::VIEW_ONLY, &with_token(&b, &token_b)).await;
    viewer_b.close().await;
    host_b.report().await.expect("B's session ran");

    // Revoked with B's command: A ends the session within 2 s (its own check runs every 30 s).
    let revoked_at = Instant::now();
    let mut revoke = common::procs::Proc::spawn(
        "tether-relay",
        &b.admin_args().iter().map(String::as_str).chain(["user", "revoke", "dana"]).collect::<Vec<_>>(),
    );
    assert!(revoke.wait().await.success(), "the revoke command succeeds");
    let report = host.report().await.expect("session ran");
    assert_eq!(report.end, EndReason::Relay(RelayErrorKind::Revoked), "{report:?}");
    let took = revoked_at.elapsed();
    assert!(took < Duration::from_secs(2), "ended {took:?} after the revocation");
    let ended = tokio::time::timeout(Duration::from_secs(10), viewer.closed()).await.expect("viewer ends");
    assert!(matches!(ended, ViewerError::Ended(EndReason::Relay(RelayErrorKind::Revoked))), "{ended:?}");

    // Either relay's export lists both relays' sessions.
    for relay in [&a, &b] {
        let rows = {
            let store = relay.store();
            let mut rows = store.audit_rows().expect("rows");
            let deadline = Instant::now() + Duration::from_secs(10);
            while !(rows.iter().any(|r| r.relay.as_deref() == Some("relay-a") && r.outcome == "revoked")
                && rows.iter().any(|r| r.relay.as_deref() == Some("relay-b") && r.outcome == "completed"))
            {
                assert!(Instant::now() < deadline, "both relays' rows: {rows:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                rows = store.audit_rows().expect("rows");
            }
            rows
        };
        let args: Vec<String> =
            relay.admin_args().into_iter().chain(["audit".into(), "export".into()]).collect();
        let mut export =
            common::procs::Proc::spawn("tether-relay", &args.iter().map(String::as_str).collect::<Vec<_>>());
        let lines = export.rest().await;
        assert!(export.wait().await.success());
        for row in &rows {
            assert!(lines.contains(&row.csv_line()), "{} in the export: {lines:?}", row.csv_line());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_its_database_a_relay_keeps_live_sessions_and_refuses_only_verified_claims() {
    let pg = server();
    let relay = org_relay(&pg, "relay-a");
    let token = relay.add_account("ann");
    let cfg = with_token(&relay, &token);
    let (_host, viewer) = paired_with(&relay, Permissions::VIEW_ONLY, &cfg).await;
    assert!(healthz(&relay).await.ends_with("\r\n\r\nok\n"));

    pg.stop().expect("PostgreSQL stops");
    // The live session goes on.
    let seen = viewer.next_frame(None).await.expect("a frame").info.seq;
    viewer.next_frame(Some(seen)).await.expect("frames keep coming without the database");
    // A new verified claim is refused, saying why; /healthz says why.
    let mut host = start_host(&relay, Permissions::VIEW_ONLY);
    let code = host.next_code().await;
    match ViewerSession::connect(&cfg, &code).await {
        Err(ViewerError::Connect(ClientError::Relay(RelayErrorKind::AccountsUnavailable))) => {}
        other => panic!("expected AccountsUnavailable, got {:?}", other.err().map(|e| e.to_string())),
    }
    let health = healthz(&relay).await;
    assert!(health.starts_with("HTTP/1.1 503") && health.contains("database unreachable"), "{health}");
    assert!(relay.handle.metrics_text().contains("tether_relay_database_errors_total 1"));
    viewer.close().await;

    // Back: the next claim works, without restarting the relay, and the row written meanwhile is kept.
    pg.start().expect("PostgreSQL starts again");
    // The refused claim never reached the code: it is still the host's.
    let deadline = Instant::now() + Duration::from_secs(10);
    let viewer = loop {
        match ViewerSession::connect(&cfg, &code).await {
            Ok(viewer) => break viewer,
            Err(ViewerError::Connect(ClientError::Relay(RelayErrorKind::AccountsUnavailable)))
                if Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => panic!("the claim after the database came back: {e}"),
        }
    };
    viewer.next_frame(None).await.expect("the new session works");
    viewer.close().await;
    assert!(healthz(&relay).await.ends_with("\r\n\r\nok\n"));
    eventually_async(
        || async {
            relay
                .store()
                .audit_rows()
                .is_ok_and(|rows| rows.iter().filter(|r| r.outcome == "completed").count() == 2)
        },
        "the session that ended while the database was away is in the audit log",
    )
    .await;
}
