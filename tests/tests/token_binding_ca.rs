//! A relay with a CA-issued certificate: its tokens name the relay by its DNS name, and a viewer sends
//! such a token only when it verifies that name through its trusted roots — not to a relay it merely pins
//! (a self-signed certificate may claim any name).
//!
//! Its own test binary: the system roots come from `SSL_CERT_FILE`, set once before anything runs.

mod common;

use common::*;
use tether_relay::store::Store;
use tether_relay::TlsSource;
use tether_shared::net::{ClientError, RelaySpec};
use tether_shared::record::EventKind;
use tether_shared::session_proto::Permissions;
use tether_shared::tls::RelayTrust;
use tether_shared::token::{RelayId, TokenError};
use tether_viewer::session::{ViewerError, ViewerSession};

const NAME: &str = "relay.tether.test";

#[test]
fn a_name_bound_token_goes_only_to_a_relay_verified_by_that_name() {
    let pem = tempfile::tempdir().expect("temp");
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA");
    let leaf_key = rcgen::KeyPair::generate().expect("key");
    let leaf = rcgen::CertificateParams::new(vec![NAME.to_string()])
        .expect("params")
        .signed_by(&leaf_key, &ca)
        .expect("leaf");
    let (roots, cert, key) =
        (pem.path().join("ca.pem"), pem.path().join("cert.pem"), pem.path().join("key.pem"));
    std::fs::write(&roots, ca.pem()).expect("write");
    std::fs::write(&cert, leaf.pem()).expect("write");
    std::fs::write(&key, leaf_key.serialize_pem()).expect("write");
    // Before any thread of this test binary runs: the only trusted root is our CA.
    std::env::set_var("SSL_CERT_FILE", &roots);

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    rt.block_on(async {
        let tls = TlsSource::Files { cert, key };
        let relay = start_relay(|cfg| {
            cfg.tls = tls.clone();
            cfg.require_technician_auth = true;
        });
        let id = tether_relay::certs::relay_id(&tls, relay.dir.path(), None).expect("relay id");
        assert_eq!(id, RelayId::Name(NAME.into()), "the certificate's only name");
        let token = Store::open(relay.dir.path()).expect("store").add_account("ann", &id).expect("account");
        assert!(token.starts_with("tether1.relay.tether.test."), "{token}");

        let by_name = RelaySpec {
            addr: relay.handle.local_addr(),
            server_name: NAME.into(),
            trust: RelayTrust::SystemRoots,
            local_addr: None,
        };
        // Pinning the certificate proves nothing about its name: the token is held back.
        let mut host = start_host(&relay, Permissions::VIEW_ONLY);
        let code = host.next_code().await;
        let mut pinned = viewer_config(&relay);
        pinned.token = Some(token.clone());
        match ViewerSession::connect(&pinned, &code).await {
            Err(ViewerError::Connect(ClientError::Token(TokenError::WrongRelay { .. }))) => {}
            other => panic!("expected the token held back, got {:?}", other.err().map(|e| e.to_string())),
        }
        let metrics = relay.handle.metrics_text();
        assert!(metrics.contains("\ntether_relay_claims_total 0\n"), "{metrics}");

        // Verified by name through the CA, it is sent and verifies.
        let mut cfg = viewer_config(&relay);
        cfg.relay = by_name;
        cfg.token = Some(token);
        let viewer = ViewerSession::connect(&cfg, &code).await.expect("pairs by name");
        match record_kind(&host.next_event().await) {
            Some(EventKind::Connected { verified: Some(v), .. }) => assert_eq!(v.account, "ann"),
            other => panic!("expected a verified technician, got {other:?}"),
        }
        viewer.close().await;
    });
}
