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
    // A relay of the organization that admits viewers without accounts.
    let open = start_relay_on(Some(pg.clone()), |cfg: &mut RelayConfig| cfg.name = "relay-open".into());

    pg.stop().expect("PostgreSQL stops");
    // A code the open relay does not hold may wait on another relay; it cannot ask now, and says so.
    let elsewhere = tether_shared::code::Code::parse("987654321-1234567").expect("a code");
    assert_eq!(
        relay_error(ViewerSession::connect(&viewer_config(&open), &elsewhere).await),
        RelayErrorKind::DirectoryUnavailable
    );
    assert_eq!(open.metric("tether_relay_directory_errors_total"), Some(1));
    // The live session goes on.
    let seen = viewer.next_frame(None).await.expect("a frame").info.seq;
    viewer.next_frame(Some(seen)).await.expect("frames keep coming without the database");
    // A new verified claim is refused, saying why; /healthz says why.
    let mut host = start_host(&relay, Permissions::VIEW_ONLY);
    let code = host.next_code().await;
    assert_eq!(relay_error(ViewerSession::connect(&cfg, &code).await), RelayErrorKind::AccountsUnavailable);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_on_relay_a_and_a_viewer_that_only_knows_relay_b_pair() {
    let pg = server();
    let (a, b) = (org_relay(&pg, "relay-a"), org_relay(&pg, "relay-b"));
    // The technician works on relay B: the account is made there and the token names B.
    let token = b.add_account("dana");
    let mut host = start_host(&a, Permissions::VIEW_ONLY);
    let code = host.next_code().await;

    // B does not hold the code: a code it knows nowhere is still unknown…
    let nowhere = tether_shared::code::Code::parse("987654321-1234567").expect("a code");
    assert_eq!(
        relay_error(ViewerSession::connect(&with_token(&b, &token), &nowhere).await),
        RelayErrorKind::UnknownCode
    );
    // …and a wrong secret sent on to A fails the PAKE there, as on one relay: the redirect decides nothing.
    let mut wrong = code.clone();
    wrong.secret = tether_shared::code::Secret::generate();
    match ViewerSession::connect(&with_token(&b, &token), &wrong).await {
        Err(ViewerError::Connect(ClientError::WrongCode)) => {}
        other => panic!("expected WrongCode, got {:?}", other.err().map(|e| e.to_string())),
    }
    let code = host.next_code().await;
    assert_eq!(b.metric("tether_relay_claims_redirected_total"), Some(1));

    // The right code through B: sent to A, paired there, the account verified by A.
    let viewer = ViewerSession::connect(&with_token(&b, &token), &code).await.expect("pairs through B");
    match record_kind(&host.next_event().await) {
        Some(tether_shared::record::EventKind::Connected { verified, .. }) => {
            let verified = verified.as_ref().map(tether_shared::relay_proto::VerifiedTechnician::from);
            assert_eq!(verified.map(|v| v.account), Some("dana".to_owned()));
        }
        other => panic!("expected Connected, got {other:?}"),
    }
    let seen = viewer.next_frame(None).await.expect("a frame").info.seq;
    viewer.next_frame(Some(seen)).await.expect("frames keep coming");
    assert_eq!(b.metric("tether_relay_claims_redirected_total"), Some(2));
    assert_eq!(b.metric("tether_relay_claims_total"), Some(0), "B paired nobody");
    assert_eq!(a.metric("tether_relay_sessions_started_total"), Some(1), "the session runs on A");
    viewer.close().await;
    host.report().await.expect("session ran");
    eventually_async(
        || async {
            b.store().audit_rows().is_ok_and(|rows| {
                rows.iter().any(|r| {
                    r.relay.as_deref() == Some("relay-a")
                        && r.outcome == "completed"
                        && r.technician.as_deref() == Some("dana")
                })
            })
        },
        "A's audit row of the session, read on B",
    )
    .await;
}

/// A redirect is only as good as the fingerprint it names: a listing that names relay A's address with
/// another certificate (a relay that lies, or a database someone wrote to) sends the viewer nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_pins_the_certificate_the_redirect_names() {
    let pg = server();
    let (a, b) = (org_relay(&pg, "relay-a"), org_relay(&pg, "relay-b"));
    let token = b.add_account("dana");
    let mut host = start_host(&a, Permissions::VIEW_ONLY);
    let code = host.next_code().await;
    let (forger, _) = tether_relay::store::Store::connect_postgres(&pg.url(), "relay-a").expect("connect");
    let listed = forger.db().directory().expect("shared").list_nameplate(
        code.nameplate.as_str(),
        &a.handle.local_addr().to_string(),
        &[0x66; 32],
        i64::MAX,
        0,
    );
    assert!(listed.expect("rewritten"), "the row is relay A's, so its name may rewrite it");
    match ViewerSession::connect(&with_token(&b, &token), &code).await {
        Err(ViewerError::Connect(ClientError::RelayCertificateChanged { given, .. })) => {
            assert_eq!(given.0, [0x66; 32])
        }
        other => panic!("expected a refused certificate, got {:?}", other.err().map(|e| e.to_string())),
    }
    assert_eq!(a.metric("tether_relay_claims_total"), Some(0), "nothing reached A's code");
}

/// The host makes its code on whichever relay answers first: here relay B, while A sits behind a
/// 150 ms line and a third relay of the list is down. A viewer that knows only A is sent to B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_uses_the_nearest_relay_and_a_viewer_on_another_finds_it() {
    use tether_linkemu::{Direction, Emulator, LinkConfig};
    let pg = server();
    let (a, b) = (org_relay(&pg, "relay-a"), org_relay(&pg, "relay-b"));
    let far = Direction::mbit(100.0).delay(Duration::from_millis(75));
    let emu = Emulator::start(a.handle.local_addr(), LinkConfig::symmetric(far)).await.expect("emulator");
    let down = {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket.local_addr().expect("addr")
    }; // closed again: nothing answers there
    let mut cfg = host_config(&a, Permissions::VIEW_ONLY);
    cfg.relay.addr = emu.local_addr();
    let mut dead = b.spec();
    dead.addr = down;
    cfg.other_relays = vec![dead, b.spec()];
    let mut host = start_host_with(cfg, test_pattern);
    let code = host.next_code().await;
    assert_eq!(b.metric("tether_relay_registrations_total"), Some(1), "the code was made on B");
    assert_eq!(a.metric("tether_relay_registrations_total"), Some(0));

    let token = a.add_account("erin");
    let viewer = ViewerSession::connect(&with_token(&a, &token), &code).await.expect("pairs through A");
    viewer.next_frame(None).await.expect("the session works");
    assert_eq!(a.metric("tether_relay_claims_redirected_total"), Some(1));
    assert_eq!(b.metric("tether_relay_sessions_started_total"), Some(1));
    viewer.close().await;
    host.report().await.expect("session ran");
}
