//! The relay an organization runs: technician accounts (no token, bad token, revoked token ending a live
//! session), per-address claim limits, the admin listener's metrics, QUIC retry under load.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::*;
use tether_relay::store::Store;
use tether_shared::code::Nameplate;
use tether_shared::end::EndReason;
use tether_shared::net::link::RelayLink;
use tether_shared::net::ClientError;
use tether_shared::record::EventKind;
use tether_shared::relay_proto::{ClientToRelay, RelayErrorKind, Role, VerifiedTechnician};
use tether_shared::session_proto::Permissions;
use tether_viewer::session::{ViewerError, ViewerSession};

fn org_relay() -> TestRelay {
    start_relay(|cfg| {
        cfg.require_technician_auth = true;
        cfg.organization = "Acme IT".into();
        cfg.revocation_poll = Duration::from_millis(200);
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_technicians_with_a_valid_token_may_claim_and_the_host_sees_them_verified() {
    let relay = org_relay();
    let token = relay.add_account("ann");
    let mut host = start_host(&relay, Permissions::VIEW_ONLY);
    let code = host.next_code().await;

    let no_token = viewer_config(&relay);
    assert_eq!(relay_error(ViewerSession::connect(&no_token, &code).await), RelayErrorKind::AuthRequired);
    let bad = ViewerConfigExt::with_token(viewer_config(&relay), &format!("{token}0"));
    assert_eq!(relay_error(ViewerSession::connect(&bad, &code).await), RelayErrorKind::BadToken);
    let unknown = format!("tether1.{}.999.00ff", relay.handle.fingerprint());
    let unknown = ViewerConfigExt::with_token(viewer_config(&relay), &unknown);
    assert_eq!(relay_error(ViewerSession::connect(&unknown, &code).await), RelayErrorKind::BadToken);
    let garbage = ViewerConfigExt::with_token(viewer_config(&relay), "not a token");
    match ViewerSession::connect(&garbage, &code).await {
        Err(ViewerError::Connect(ClientError::Token(_))) => {}
        other => panic!("a token that is not one is not sent: {:?}", other.err().map(|e| e.to_string())),
    }

    // The code survived the refused claims: they never reached the nameplate.
    let good = ViewerConfigExt::with_token(viewer_config(&relay), &token);
    let viewer = ViewerSession::connect(&good, &code).await.expect("a valid token pairs");
    match record_kind(&host.next_event().await) {
        Some(EventKind::Connected { technician, verified, .. }) => {
            assert_eq!(technician, "Test Technician", "the typed name is still shown");
            let verified = verified.as_ref().map(VerifiedTechnician::from);
            let expected = VerifiedTechnician {
                verified_by: "localhost".into(),
                ..VerifiedTechnician::new("ann", "Acme IT")
            };
            assert_eq!(verified, Some(expected));
        }
        other => panic!("expected Connected, got {other:?}"),
    }
    viewer.next_frame(None).await.expect("the session works");
    viewer.close().await;
    host.report().await.expect("session ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_the_host_sees_the_name_unverified() {
    let relay = start_relay(|_| {});
    let mut host = start_host(&relay, Permissions::VIEW_ONLY);
    let code = host.next_code().await;
    let viewer = ViewerSession::connect(&viewer_config(&relay), &code).await.expect("pairs");
    match record_kind(&host.next_event().await) {
        Some(EventKind::Connected { verified, .. }) => assert_eq!(*verified, None),
        other => panic!("expected Connected, got {other:?}"),
    }
    viewer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_token_ends_the_live_session_and_later_claims() {
    let relay = org_relay();
    let token = relay.add_account("bob");
    let cfg = ViewerConfigExt::with_token(viewer_config(&relay), &token);
    let (host, viewer) = paired_with(&relay, Permissions::VIEW_ONLY, &cfg).await;
    assert_eq!(relay.handle.stats().sessions, 1);

    assert!(relay.store().revoke_account("bob").expect("revoke"));
    // Both sides end (bounded by the report's deadline), well before any idle timeout could matter.
    let report = host.report().await.expect("session ran");
    assert_eq!(report.end, EndReason::Relay(RelayErrorKind::Revoked), "{report:?}");
    let ended = tokio::time::timeout(Duration::from_secs(10), viewer.closed())
        .await
        .expect("the viewer's session ends");
    assert!(
        matches!(ended, ViewerError::Ended(EndReason::Relay(RelayErrorKind::Revoked))),
        "the viewer is told why: {ended:?}"
    );
    assert!(ended.to_string().contains("revoked"), "the viewer is told why: {ended}");
    assert!(relay.handle.metrics_text().contains("tether_relay_revoked_sessions_total 1"));

    let mut host = start_host(&relay, Permissions::VIEW_ONLY);
    let code = host.next_code().await;
    assert_eq!(relay_error(ViewerSession::connect(&cfg, &code).await), RelayErrorKind::BadToken);
}

/// Claim unknown nameplates as fast as the relay answers; count the answers that were not rate limits.
async fn claims_not_limited(relay: &TestRelay, from: IpAddr, attempts: usize) -> usize {
    let mut spec = relay.spec();
    spec.local_addr = Some(from);
    let mut link = RelayLink::connect(&spec, Role::Viewer, &fast_timeouts()).await.expect("connects");
    let mut passed = 0;
    for _ in 0..attempts {
        let nameplate = Nameplate::new("99999").expect("digits");
        link.send(&ClientToRelay::Claim { nameplate, token: None }).await.expect("send");
        match link.recv().await {
            Err(ClientError::Relay(RelayErrorKind::RateLimited)) => {}
            Err(ClientError::Relay(RelayErrorKind::UnknownCode)) => passed += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    link.close();
    passed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_flood_from_one_address_is_held_to_its_rate_while_another_address_pairs() {
    let relay = start_relay(|cfg| {
        cfg.claims_per_minute = 1;
        cfg.claim_burst = 3;
    });
    let flooder: IpAddr = "127.0.0.1".parse().expect("ip");
    assert_eq!(claims_not_limited(&relay, flooder, 40).await, 3, "the burst, then nothing this minute");

    let mut host = start_host(&relay, Permissions::VIEW_ONLY);
    let code = host.next_code().await;
    let mut from_flooder = viewer_config(&relay);
    from_flooder.relay.local_addr = Some(flooder);
    assert_eq!(relay_error(ViewerSession::connect(&from_flooder, &code).await), RelayErrorKind::RateLimited);

    let mut other = viewer_config(&relay);
    other.relay.local_addr = Some("127.0.0.2".parse().expect("ip"));
    let viewer = ViewerSession::connect(&other, &code).await.expect("another address still pairs");
    viewer.next_frame(None).await.expect("the session works");
    let metrics = relay.handle.metrics_text();
    assert!(metrics.contains("tether_relay_claims_refused_total{reason=\"rate_limited\"} 38"), "{metrics}");
    viewer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_serves_metrics_and_health_and_changes_nothing() {
    let off = start_relay(|_| {});
    assert_eq!(off.handle.admin_addr(), None, "off by default");

    let relay = start_relay(|cfg| cfg.admin_listen = Some("127.0.0.1:0".parse().expect("addr")));
    let admin = relay.handle.admin_addr().expect("admin listener on");
    let (_host, viewer) = paired(&relay, Permissions::VIEW_ONLY).await;

    let metrics = http(admin, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(metrics.starts_with("HTTP/1.1 200 OK"), "{metrics}");
    assert!(metrics.contains("\ntether_relay_sessions 1\n"), "{metrics}");
    assert!(metrics.contains("\ntether_relay_sessions_started_total 1\n"), "{metrics}");
    let forwarded = metrics
        .lines()
        .find(|l| l.starts_with("tether_relay_forwarded_bytes_total{direction=\"host_to_viewer\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .expect("forwarded bytes series");
    assert!(forwarded > 0);
    let dwell_count = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tether_relay_forward_dwell_seconds_count "))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .expect("dwell histogram");
    assert!(dwell_count > 0, "every forwarded datagram is timed");
    assert!(metrics.contains("tether_relay_forward_dwell_seconds_bucket{le=\"+Inf\"}"), "{metrics}");
    assert!(http(admin, "GET /healthz HTTP/1.1\r\n\r\n").await.ends_with("\r\n\r\nok\n"));
    assert!(http(admin, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        .await
        .starts_with("HTTP/1.1 405"));
    assert!(http(admin, "GET /users HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 404"));
    viewer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_pair_when_every_client_must_pass_a_quic_retry() {
    let relay = start_relay(|cfg| cfg.retry_above = 0);
    let (_host, viewer) = paired(&relay, Permissions::VIEW_ONLY).await;
    assert!(!relay.handle.metrics_text().contains("tether_relay_retries_total 0\n"));
    viewer.close().await;
}

/// Builder for a viewer config with a token.
trait ViewerConfigExt {
    fn with_token(self, token: &str) -> Self;
}

impl ViewerConfigExt for tether_viewer::session::ViewerConfig {
    fn with_token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_headless_host_prints_the_verified_account_of_a_viewer_with_a_token_from_the_environment() {
    use common::procs::Proc;
    let dir = tempfile::tempdir().expect("temp");
    let data = dir.path().to_str().expect("utf-8");
    let id =
        tether_relay::certs::relay_id(&tether_relay::TlsSource::SelfSigned, dir.path(), None).expect("id");
    let token = Store::open(dir.path()).expect("store").add_account("erin", &id).expect("account");
    let mut relay = Proc::spawn(
        "tether-relay",
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data,
            "--require-technician-auth",
            "--organization",
            "Acme",
        ],
    );
    let addr = relay.line("listening").await;
    let fp = relay.line("fingerprint").await;
    let mut host = Proc::spawn("tether-host", &cli_args(&addr, &fp, &["--headless"]));
    let code = host.line("code").await;
    let viewer_args = cli_args(&addr, &fp, &["--code", &code, "--name", "Erin", "--stay-secs", "1"]);
    let mut viewer = Proc::spawn_with_env("tether-viewer", &viewer_args, &[("TETHER_TOKEN", &token)]);
    viewer.line("connected").await;
    assert_eq!(host.line("connected").await, "Erin");
    let verified = host.line("verified").await;
    assert_eq!(verified, "erin by 127.0.0.1 (organization, as the relay states it: Acme)");
    viewer.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_over_its_bandwidth_cap_is_slowed_not_broken() {
    let relay = start_relay(|cfg| cfg.session_bytes_per_sec = 25_000); // 200 kbit/s each way
    let mut host = start_host(&relay, Permissions::VIEW_ONLY);
    let code = host.next_code().await;
    let viewer = ViewerSession::connect(&viewer_config(&relay), &code).await.expect("pairs");
    let mut last = None;
    let until = tokio::time::Instant::now() + Duration::from_secs(5); // longer than the idle timeout
    let mut frames = 0;
    while tokio::time::Instant::now() < until {
        let shown = tokio::time::timeout(Duration::from_secs(10), viewer.next_frame(last))
            .await
            .expect("frames keep coming")
            .expect("the session lives");
        last = Some(shown.info.seq);
        frames += 1;
    }
    let over = relay.metric("tether_relay_packets_over_cap_total").expect("series");
    assert!(over > 0, "the cap was reached ({frames} frames)");
    viewer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_with_its_certificate_from_pem_files_pairs_sessions() {
    // A lone certificate: clients pinning a fingerprint accept only that (a CA-issued chain is for clients
    // that check the name against their system roots, which loopback tests cannot have).
    let pem = tempfile::tempdir().expect("temp");
    let leaf = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let (cert, key) = (pem.path().join("cert.pem"), pem.path().join("privkey.pem"));
    std::fs::write(&cert, leaf.cert.pem()).expect("write");
    std::fs::write(&key, leaf.signing_key.serialize_pem()).expect("write");
    let relay = start_relay(|cfg| cfg.tls = tether_relay::TlsSource::Files { cert, key });
    assert_eq!(relay.handle.fingerprint(), tether_shared::tls::Fingerprint::of(leaf.cert.der()));
    let (_host, viewer) = paired(&relay, Permissions::VIEW_ONLY).await;
    viewer.close().await;
}
