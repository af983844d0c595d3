//! An unauthenticated client on the internet against the relay: invented rejoins, rejoins after a
//! revocation, token checks in bulk, connections in bulk, silence after the handshake, and code guessing
//! spread over hosts. Each test attacks the real relay over real QUIC on loopback.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::*;
use tether_host::capture::{self, Source};
use tether_host::HostEvent;
use tether_relay::store::Store;
use tether_relay::{RelayConfig, Server};
use tether_shared::code::{Code, Nameplate, Secret};
use tether_shared::net::link::RelayLink;
use tether_shared::net::pairing::{connect_viewer, HostOutcome, HostRendezvous};
use tether_shared::net::{ClientError, RelaySpec, Timeouts};
use tether_shared::record::chain::hex32;
use tether_shared::record::EventKind;
use tether_shared::relay_proto::{ClientToRelay, RelayErrorKind, Role};
use tether_shared::session_proto::Permissions;
use tether_shared::tls;
use tether_shared::token::Token;
use tether_viewer::session::ViewerSession;
use tokio::sync::mpsc;

fn org(cfg: &mut RelayConfig) {
    cfg.require_technician_auth = true;
    cfg.organization = "Acme IT".into();
    cfg.revocation_poll = Duration::from_millis(200);
}

fn from(relay: &TestRelay, ip: &str) -> RelaySpec {
    let mut spec = relay.spec();
    spec.local_addr = Some(ip.parse().expect("address"));
    spec
}

/// Poll the audit log until a row satisfies `want` (rows are written off the async threads).
async fn audit_row(dir: &std::path::Path, want: impl Fn(&tether_relay::audit::AuditRecord) -> bool) {
    let store = Store::open(dir).expect("store");
    let found = || store.audit_rows().expect("rows").iter().any(&want);
    eventually(found, Later(|| format!("no such audit row in {:#?}", store.audit_rows().expect("rows"))))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_rejoining_with_invented_ids_get_no_route_and_take_no_session() {
    let relay = start_relay(|cfg| {
        org(cfg);
        cfg.max_sessions = 1;
    });
    let token = relay.add_account("ann");
    // Two strangers agree on an id nobody paired, one as each role.
    let mut a =
        RelayLink::connect(&from(&relay, "127.0.0.2"), Role::Host, &fast_timeouts()).await.expect("a");
    let mut b =
        RelayLink::connect(&from(&relay, "127.0.0.3"), Role::Viewer, &fast_timeouts()).await.expect("b");
    a.send(&ClientToRelay::Rejoin { resume_id: [7; 32] }).await.expect("send");
    b.send(&ClientToRelay::Rejoin { resume_id: [7; 32] }).await.expect("send");
    for link in [&mut a, &mut b] {
        let answer = tokio::time::timeout(Duration::from_secs(10), link.recv()).await.expect("an answer");
        assert!(
            matches!(answer, Err(ClientError::Relay(RelayErrorKind::UnknownSession))),
            "invented ids are refused: {answer:?}"
        );
    }
    assert_eq!(relay.handle.stats().sessions, 0, "no route was made");
    assert_eq!(relay.metric("tether_relay_rejoins_refused_total{reason=\"unknown_session\"}"), Some(2));

    // The relay's one session is still there for a real technician.
    let mut cfg = viewer_config(&relay);
    cfg.token = Some(token);
    let (_host, viewer) = paired_with(&relay, Permissions::VIEW_ONLY, &cfg).await;
    viewer.close().await;
}

/// Client timeouts that let a session wait out a relay restart.
fn patient() -> Timeouts {
    Timeouts {
        relay_idle: Duration::from_secs(3),
        e2e_idle: Duration::from_secs(30),
        keep_alive: Duration::from_millis(500),
        pairing: Duration::from_secs(10),
    }
}

/// An organization's relay on `dir`, on `listen` (retried while the old one lets go of the port).
async fn org_relay_at(dir: tempfile::TempDir, listen: std::net::SocketAddr) -> TestRelay {
    org_relay_with(dir, listen, |_| {}).await
}

async fn org_relay_with(
    dir: tempfile::TempDir,
    listen: std::net::SocketAddr,
    tweak: impl Fn(&mut RelayConfig),
) -> TestRelay {
    for _ in 0..100 {
        let mut cfg = RelayConfig::new(listen, dir.path().to_path_buf());
        cfg.idle_timeout = Duration::from_secs(3);
        cfg.handshake_timeout = Duration::from_secs(3);
        org(&mut cfg);
        tweak(&mut cfg);
        match Server::spawn(cfg.clone()) {
            Ok(handle) => return TestRelay { handle, dir, cfg, postgres: None },
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("the relay could not listen on {listen} again");
}

/// A host and a verified technician ("bob") in a session through an organization's relay.
async fn org_session(relay: &TestRelay) -> (TestHost, ViewerSession) {
    let token = relay.add_account("bob");
    let mut hcfg = host_config(relay, Permissions::VIEW_ONLY);
    hcfg.timeouts = patient();
    let mut host = start_host_with(hcfg, || capture::open(Source::TestPattern { width: W, height: H }));
    let code = host.next_code().await;
    let mut vcfg = viewer_config(relay);
    vcfg.timeouts = patient();
    vcfg.token = Some(token);
    let viewer = ViewerSession::connect(&vcfg, &code).await.expect("pairs");
    viewer.next_frame(None).await.expect("the session works");
    (host, viewer)
}

async fn stop(relay: TestRelay) -> (tempfile::TempDir, std::net::SocketAddr) {
    let TestRelay { handle, dir, .. } = relay;
    let addr = handle.local_addr();
    handle.shutdown().await;
    (dir, addr)
}

/// A verified session through an organization's relay that was stopped and started again on the same
/// address and data: the relay, once both ends have rejoined it.
async fn rejoined_after_a_restart() -> (TestRelay, TestHost, ViewerSession) {
    let relay = start_relay(org);
    let (mut host, viewer) = org_session(&relay).await;
    let (dir, addr) = stop(relay).await;
    let relay = org_relay_at(dir, addr).await;
    let rejoined = tokio::time::timeout(Duration::from_secs(30), async {
        while !matches!(host.next_event().await, HostEvent::Reconnected) {}
    })
    .await;
    assert!(rejoined.is_ok(), "the session rejoined the restarted relay");
    let mut reconnecting = viewer.reconnecting();
    let _ = tokio::time::timeout(Duration::from_secs(20), reconnecting.wait_for(|r| !*r)).await;
    (relay, host, viewer)
}

async fn ends_revoked(host: TestHost, viewer: ViewerSession) {
    let report = host.report().await;
    assert!(report.is_ok(), "{report:?}");
    let ended = tokio::time::timeout(Duration::from_secs(20), viewer.closed())
        .await
        .expect("the viewer's session ends");
    assert!(ended.to_string().contains("revoked"), "the viewer is told why: {ended}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_rejoined_after_a_relay_restart_ends_when_its_account_is_revoked() {
    let (relay, host, viewer) = rejoined_after_a_restart().await;

    assert!(relay.store().revoke_account("bob").expect("revoke"));
    ends_revoked(host, viewer).await;
    audit_row(relay.dir.path(), |r| {
        r.outcome == "rejoined_revoked" && r.technician.as_deref() == Some("bob")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_revoked_while_the_relay_was_down_does_not_rejoin() {
    let relay = start_relay(org);
    let (host, viewer) = org_session(&relay).await;
    let (dir, addr) = stop(relay).await;
    assert!(Store::open(dir.path()).expect("store").revoke_account("bob").expect("revoke"));
    let relay = org_relay_at(dir, addr).await;
    ends_revoked(host, viewer).await;
    assert_eq!(relay.handle.stats().sessions, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_whose_rejoin_window_passed_does_not_rejoin_and_its_ends_are_told() {
    let relay = start_relay(|cfg| {
        org(cfg);
        cfg.resume_window = Duration::ZERO;
    });
    let (host, viewer) = org_session(&relay).await;
    let (dir, addr) = stop(relay).await;
    let relay = org_relay_with(dir, addr, |cfg| cfg.resume_window = Duration::ZERO).await;
    let report = host.report().await;
    assert!(report.is_ok(), "{report:?}");
    let ended = tokio::time::timeout(Duration::from_secs(20), viewer.closed())
        .await
        .expect("the viewer's session ends");
    assert!(ended.to_string().contains("no session to rejoin"), "the viewer is told why: {ended}");
    assert_eq!(relay.handle.stats().sessions, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejoin_counts_against_the_session_cap() {
    let relay = start_relay(org);
    let (_host, _viewer) = org_session(&relay).await;
    let (dir, addr) = stop(relay).await;
    // The restarted relay is full (a cap of 0 stands for "every place is taken").
    let relay = org_relay_with(dir, addr, |cfg| cfg.max_sessions = 0).await;
    let refused = || relay.metric("tether_relay_rejoins_refused_total{reason=\"busy\"}").is_some();
    eventually(
        refused,
        Later(|| format!("the rejoin was refused as busy:\n{}", relay.handle.metrics_text())),
    )
    .await;
    assert_eq!(relay.handle.stats().sessions, 0, "no route over the cap");
    assert_eq!(relay.metric("tether_relay_rejoins_total"), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_token_claims_in_bulk_take_turns_at_the_token_check() {
    let relay = start_relay(|cfg| {
        org(cfg);
        cfg.claims_per_minute = 1000;
        cfg.claim_burst = 1000;
        cfg.max_token_checks = 2;
        cfg.token_check_wait = Duration::from_secs(120);
    });
    let token = relay.add_account("ann");
    // The right account id with a wrong secret: each claim costs a full argon2 verification.
    let bad = format!("{}{}", &token[..token.rfind('.').expect("token") + 1], "0".repeat(48));
    let mut claims = Vec::new();
    for i in 0..30 {
        let spec = from(&relay, &format!("127.0.0.{}", 10 + i % 3));
        let bad = bad.clone();
        claims.push(tokio::spawn(async move {
            let mut link = RelayLink::connect(&spec, Role::Viewer, &fast_timeouts()).await.expect("connects");
            let nameplate = Nameplate::new("123").expect("digits");
            link.send(&ClientToRelay::Claim { nameplate, token: Some(Token::new(bad)) }).await.expect("send");
            tokio::time::timeout(Duration::from_secs(120), link.recv()).await.expect("an answer")
        }));
    }
    for claim in claims {
        let answer = claim.await.expect("no panic");
        assert!(matches!(answer, Err(ClientError::Relay(RelayErrorKind::BadToken))), "{answer:?}");
    }
    let peak = relay.metric("tether_relay_token_checks_peak").expect("the peak is exported");
    assert!((1..=2).contains(&peak), "{peak} token checks ran at once; the cap is 2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_per_address_cap_are_refused_at_once() {
    let relay = start_relay(|cfg| cfg.max_connections_per_address = 3);
    let spec = from(&relay, "127.0.0.5");
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(RelayLink::connect(&spec, Role::Viewer, &fast_timeouts()).await.expect("under the cap"));
    }
    let over = RelayLink::connect(&spec, Role::Viewer, &fast_timeouts()).await;
    assert!(matches!(over, Err(ClientError::RelayUnreachable { .. })), "{over:?}");
    assert_eq!(relay.metric("tether_relay_connections_refused_total{reason=\"per_address\"}"), Some(1));
    let other = RelayLink::connect(&from(&relay, "127.0.0.6"), Role::Viewer, &fast_timeouts()).await;
    assert!(other.is_ok(), "another address is unaffected");
    // A connection that closes gives its place back.
    held.pop().expect("one").close();
    let again = || async { RelayLink::connect(&spec, Role::Viewer, &fast_timeouts()).await.is_ok() };
    eventually_async(again, "the place came back").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_completes_quic_but_never_opens_a_stream_is_dropped_at_the_hello_deadline() {
    let relay = start_relay(|cfg| cfg.handshake_timeout = Duration::from_secs(1));
    // Keep-alives, so only the relay's deadline (not its idle timeout) can end this connection.
    let conn =
        relay.raw_connection(tls::transport(Duration::from_secs(60), Some(Duration::from_millis(200)))).await;
    let closed = tokio::time::timeout(Duration::from_secs(20), conn.closed()).await.expect("dropped");
    assert!(closed.to_string().contains("handshake timeout"), "{closed}");
}

/// A host that registers codes one after another and hands each to the test.
fn code_host(relay: &TestRelay) -> mpsc::Receiver<Code> {
    let (tx, rx) = mpsc::channel(1);
    let spec = relay.spec();
    tokio::spawn(async move {
        let mut host = HostRendezvous::connect(&spec, fast_timeouts()).await.expect("host connects");
        loop {
            let (code, _) = host.register().await.expect("a code");
            if tx.send(code.clone()).await.is_err() {
                return;
            }
            match host.wait_for_viewer(&code).await.expect("host runs") {
                HostOutcome::Restart(again, _) => host = again,
                HostOutcome::Paired(_session) => return tx.closed().await,
                HostOutcome::RelayLost(e) => panic!("the relay was lost: {e}"),
            }
        }
    });
    rx
}

async fn guess_wrong(relay: &TestRelay, codes: &mut mpsc::Receiver<Code>, ip: &str) {
    let code = codes.recv().await.expect("a code");
    let wrong = Code { nameplate: code.nameplate, secret: Secret::generate() };
    let got = connect_viewer(&from(relay, ip), &wrong, fast_timeouts(), None).await.map(|_| ());
    assert!(matches!(got, Err(ClientError::WrongCode)), "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_that_spent_its_failed_claim_budget_is_refused_and_it_shows() {
    let relay = start_relay(|cfg| cfg.failed_claims_per_address = 3);
    let mut codes = code_host(&relay);
    for _ in 0..3 {
        guess_wrong(&relay, &mut codes, "127.0.0.7").await;
    }
    // Even the right code is refused from that address now; another address pairs with it.
    let code = codes.recv().await.expect("a code");
    let refused = connect_viewer(&from(&relay, "127.0.0.7"), &code, fast_timeouts(), None).await.map(|_| ());
    assert!(matches!(refused, Err(ClientError::Relay(RelayErrorKind::TooManyWrongCodes))), "{refused:?}");
    connect_viewer(&from(&relay, "127.0.0.8"), &code, fast_timeouts(), None).await.expect("pairs");

    assert_eq!(relay.metric("tether_relay_failed_claims_total"), Some(3));
    assert_eq!(relay.metric("tether_relay_claims_refused_total{reason=\"failed_budget\"}"), Some(1));
    audit_row(relay.dir.path(), |r| {
        r.outcome == "failed_claim_budget"
            && r.viewer_addr.as_deref().is_some_and(|a| a.starts_with("127.0.0.7:"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_wide_failed_claim_budget_stops_guesses_spread_over_addresses() {
    let relay = start_relay(|cfg| cfg.failed_claims_global = 2);
    let mut codes = code_host(&relay);
    guess_wrong(&relay, &mut codes, "127.0.0.20").await;
    guess_wrong(&relay, &mut codes, "127.0.0.21").await;
    let code = codes.recv().await.expect("a code");
    let refused = connect_viewer(&from(&relay, "127.0.0.22"), &code, fast_timeouts(), None).await.map(|_| ());
    assert!(matches!(refused, Err(ClientError::Relay(RelayErrorKind::TooManyWrongCodes))), "{refused:?}");
    audit_row(relay.dir.path(), |r| r.outcome == "failed_claim_budget_global").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_ipv6_the_relay_keys_its_limits_on_the_slash_64() {
    // Loopback has one IPv6 address, so two addresses of one /64 cannot both be bound here
    // (`client_key` has unit tests for that); this checks the relay's limits work over IPv6 at all.
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback: skipped");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = RelayConfig::new("[::1]:0".parse().expect("addr"), dir.path().to_path_buf());
    cfg.claims_per_minute = 1;
    cfg.claim_burst = 2;
    let relay =
        TestRelay { handle: Server::spawn(cfg.clone()).expect("relay starts"), dir, cfg, postgres: None };
    let spec = from(&relay, "::1");
    let mut answers = Vec::new();
    for _ in 0..2 {
        // A fresh connection each time: the budget belongs to the address, not the connection.
        let mut link = RelayLink::connect(&spec, Role::Viewer, &fast_timeouts()).await.expect("connects");
        for _ in 0..2 {
            let nameplate = Nameplate::new("99999").expect("digits");
            link.send(&ClientToRelay::Claim { nameplate, token: None }).await.expect("send");
            answers.push(link.recv().await.map(|_| ()));
        }
    }
    let limited =
        answers.iter().filter(|a| matches!(a, Err(ClientError::Relay(RelayErrorKind::RateLimited))));
    assert_eq!(limited.count(), 2, "{answers:?}");
    assert_eq!(
        tether_relay::limits::client_key("::1".parse::<IpAddr>().expect("ip")),
        "::".parse::<IpAddr>().expect("ip")
    );
}

/// After a relay restart the two ends rejoin in either order; the rejoined session's audit row holds the
/// host's record head either way (the host's heads reach the row even when the host came back first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejoined_session_s_audit_row_holds_the_host_s_final_record_head() {
    let (relay, host, viewer) = rejoined_after_a_restart().await;
    viewer.chat("back again").await.expect("sent");
    viewer.leave().await;
    let report = host.report().await.expect("a report");
    let last = report.record.last().expect("entries");
    assert!(matches!(last.event.kind, EventKind::Ended { .. }), "{:?}", last.event.kind);
    let (len, head) = (report.record.len() as u64, hex32::to_hex(&last.hash));
    audit_row(relay.dir.path(), |r| {
        r.outcome == "rejoined"
            && r.record_len == Some(len)
            && r.record_head.as_deref() == Some(head.as_str())
    })
    .await;
}
