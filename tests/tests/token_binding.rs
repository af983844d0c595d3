//! A technician token names the relay that issued it, and the viewer sends it nowhere else: a rogue relay
//! the viewer is pointed at never receives an organization's tokens. The host says which relay verified a
//! name.

mod common;

use common::*;
use tether_shared::net::ClientError;
use tether_shared::record::EventKind;
use tether_shared::session_proto::Permissions;
use tether_shared::token::TokenError;
use tether_viewer::session::{ViewerError, ViewerSession};

fn token_error(result: Result<ViewerSession, ViewerError>) -> TokenError {
    match result {
        Err(ViewerError::Connect(ClientError::Token(e))) => e,
        Err(other) => panic!("expected the token to be held back, got {other}"),
        Ok(_) => panic!("expected the token to be held back, the viewer paired"),
    }
}

/// No claim reached this relay: none accepted, none refused (for a bad token or anything else).
fn saw_no_claim(relay: &TestRelay) {
    let metrics = relay.handle.metrics_text();
    assert!(metrics.contains("\ntether_relay_claims_total 0\n"), "{metrics}");
    assert!(!metrics.contains("tether_relay_claims_refused_total{"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_sent_only_to_the_relay_that_issued_it() {
    let ours = start_relay(|cfg| {
        cfg.require_technician_auth = true;
        cfg.organization = "Acme IT".into();
    });
    // The rogue: a relay the technician was pointed at, with a host waiting on it so a claim would go
    // through. It takes claims with or without a token; one that carried a token would show here as a
    // refused claim (the token is not its own), or as an accepted one.
    let rogue = start_relay(|_| {});
    let token = ours.add_account("ann");
    let mut lure = start_host(&rogue, Permissions::VIEW_ONLY);
    let code = lure.next_code().await;
    let mut cfg = viewer_config(&rogue);
    cfg.token = Some(token.clone());
    let error = token_error(ViewerSession::connect(&cfg, &code).await);
    let (ours_fp, rogue_fp) = (ours.handle.fingerprint(), rogue.handle.fingerprint());
    assert_eq!(
        error.to_string(),
        format!("this token belongs to relay {ours_fp}, not {rogue_fp}: not sent"),
        "the technician is told why"
    );
    saw_no_claim(&rogue);
    assert_eq!(rogue.handle.stats().pairings, 0);

    // With its own relay the same token verifies, and the host names the relay that verified it.
    let mut host = start_host(&ours, Permissions::VIEW_ONLY);
    let code = host.next_code().await;
    let mut cfg = viewer_config(&ours);
    cfg.token = Some(token);
    let viewer = ViewerSession::connect(&cfg, &code).await.expect("pairs on its own relay");
    match record_kind(&host.next_event().await) {
        Some(EventKind::Connected { verified: Some(v), .. }) => {
            assert_eq!((v.account.as_str(), v.organization.as_str()), ("ann", "Acme IT"));
            assert_eq!(v.relay, "localhost", "the relay the host connected to");
        }
        other => panic!("expected a verified technician, got {other:?}"),
    }
    viewer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_a_relay_is_not_sent_and_the_admin_is_asked_to_reissue_it() {
    let relay = start_relay(|cfg| cfg.require_technician_auth = true);
    let mut host = start_host(&relay, Permissions::VIEW_ONLY);
    let code = host.next_code().await;
    let mut cfg = viewer_config(&relay);
    cfg.token = Some("tether_1_0123456789abcdef".into());
    let error = token_error(ViewerSession::connect(&cfg, &code).await);
    assert_eq!(error, TokenError::Legacy);
    assert!(error.to_string().contains("tether-relay user reissue"), "{error}");
    saw_no_claim(&relay);
}
