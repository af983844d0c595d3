//! A relay that lies to its clients: a small QUIC server written here speaks the relay's control protocol
//! (its framing, [`tether_shared::wire`]) and sends what a real relay never would — a "code" that is not
//! digits, a verified name with hidden characters, another protocol version. The host must refuse each
//! with a clear error and show none of it.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde::Serialize;
use tether_host::capture::{self, Source};
use tether_host::{HostConfig, HostError, HostEvent};
use tether_shared::net::pairing::HostRendezvous;
use tether_shared::net::{ClientError, RelaySpec};
use tether_shared::relay_proto::ClientToRelay;
use tether_shared::session_proto::Permissions;
use tether_shared::tls::{self, Fingerprint, Identity, RelayTrust};
use tether_shared::wire::{self, MAX_CONTROL_MSG};
use tether_shared::PROTOCOL_VERSION;

/// `RelayToClient` as a relay could encode it: the same variants in the same order (postcard numbers
/// them), but with plain strings where the real type checks what it decodes.
#[derive(Debug, Clone, Serialize)]
enum Raw {
    Welcome {
        version: u32,
    },
    Registered {
        nameplate: String,
        expires_in_ms: u64,
    },
    /// `technician`: (account, organization), as `VerifiedTechnician` encodes.
    PeerJoined {
        tag: u64,
        technician: Option<(String, String)>,
    },
    // Variants 3 to 10 of the real enum, never sent here: only their places count.
    _PeerPake,
    _PeerConfirm,
    _SessionReady,
    _PairingFailed,
    _CodeExpired,
    _Rejoined,
    _PeerGone,
    _Error,
    /// `relay`: (address, fingerprint), as `RelayAddress` encodes.
    Redirect {
        relay: (String, [u8; 32]),
    },
}

/// What the fake relay does in answer to a client's message.
#[derive(Debug, Clone)]
enum Act {
    Send(Raw),
    /// Close the connection giving this reason (a relay chooses it freely).
    Close(&'static str),
}

impl From<Raw> for Act {
    fn from(raw: Raw) -> Self {
        Self::Send(raw)
    }
}

/// A fake relay: answers the client's hello, then each message the client sends, with the next batch of
/// scripted acts; keeps the connection open until the client leaves.
struct FakeRelay {
    addr: SocketAddr,
    fingerprint: Fingerprint,
    _endpoint: quinn::Endpoint,
}

impl FakeRelay {
    fn start(script: Vec<Vec<Raw>>) -> Self {
        Self::start_acts(script.into_iter().map(|b| b.into_iter().map(Act::from).collect()).collect())
    }

    fn start_acts(script: Vec<Vec<Act>>) -> Self {
        let identity = Identity::generate(&["localhost"]).expect("cert");
        let transport = tls::transport(Duration::from_secs(10), None);
        let server = tls::open_server_config(&identity, transport).expect("server config");
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let endpoint =
            quinn::Endpoint::new(tls::endpoint_config(), Some(server), socket, Arc::new(quinn::TokioRuntime))
                .expect("endpoint");
        let addr = endpoint.local_addr().expect("addr");
        let accepting = endpoint.clone();
        tokio::spawn(async move {
            let Some(incoming) = accepting.accept().await else { return };
            let Ok(conn) = incoming.await else { return };
            let Ok((mut send, mut recv)) = conn.accept_bi().await else { return };
            for batch in script {
                match wire::read_msg::<_, ClientToRelay>(&mut recv, MAX_CONTROL_MSG).await {
                    Ok(Some(_)) => {}
                    _ => return,
                }
                for act in batch {
                    match act {
                        Act::Send(msg) => {
                            if wire::write_msg(&mut send, &msg, MAX_CONTROL_MSG).await.is_err() {
                                return;
                            }
                        }
                        Act::Close(reason) => {
                            conn.close(0u32.into(), reason.as_bytes());
                            return;
                        }
                    }
                }
            }
            conn.closed().await;
        });
        Self { addr, fingerprint: identity.fingerprint(), _endpoint: endpoint }
    }

    fn spec(&self) -> RelaySpec {
        RelaySpec {
            addr: self.addr,
            server_name: "localhost".into(),
            trust: RelayTrust::Pinned(self.fingerprint),
            local_addr: None,
        }
    }
}

/// Run a host against the fake relay until it ends; return its error and every event it showed.
async fn host_against(relay: &FakeRelay) -> (HostError, Vec<HostEvent>) {
    let mut cfg = HostConfig::new(relay.spec(), Permissions::VIEW_ONLY);
    cfg.timeouts = fast_timeouts();
    let mut host = start_host_with(cfg, || capture::open(Source::TestPattern { width: W, height: H }));
    let error = tokio::time::timeout(Duration::from_secs(20), &mut host.task)
        .await
        .expect("the host ends")
        .expect("no panic")
        .expect_err("the host refuses the relay's message");
    let mut shown = Vec::new();
    while let Ok(event) = host.events.try_recv() {
        shown.push(event);
    }
    (error, shown)
}

fn welcome() -> Raw {
    Raw::Welcome { version: PROTOCOL_VERSION }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_cannot_make_the_host_show_other_text_as_its_code() {
    let scam = Raw::Registered { nameplate: "CALL 0800-SCAM".into(), expires_in_ms: 600_000 };
    let relay = FakeRelay::start(vec![vec![welcome()], vec![scam]]);
    let (error, shown) = host_against(&relay).await;
    assert!(matches!(error, HostError::Client(ClientError::RelayInvalid(_))), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("the relay sent an invalid message") && !text.contains("SCAM"), "{text}");
    assert!(shown.iter().all(|e| !matches!(e, HostEvent::Code { .. })), "no code was shown: {shown:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_cannot_put_hidden_characters_in_a_verified_name() {
    let registered = Raw::Registered { nameplate: "482".into(), expires_in_ms: 600_000 };
    for (account, organization) in [
        ("alice\u{202E}gpj.exe", "Acme IT"),
        ("alice", "Acme IT\nVerified by your bank"),
        ("alice", &*"A".repeat(200)),
    ] {
        let joined =
            Raw::PeerJoined { tag: 7, technician: Some((account.to_owned(), organization.to_owned())) };
        let relay = FakeRelay::start(vec![vec![welcome()], vec![registered.clone(), joined]]);
        let (error, shown) = host_against(&relay).await;
        assert!(matches!(error, HostError::Client(ClientError::RelayInvalid(_))), "{error:?}");
        assert!(
            shown.iter().all(|e| e.record().is_none() && !matches!(e, HostEvent::Live(_))),
            "nobody connected: {shown:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_of_another_protocol_version_is_named_too_old_or_too_new() {
    let newer = FakeRelay::start(vec![vec![Raw::Welcome { version: PROTOCOL_VERSION + 1 }]]);
    let err = HostRendezvous::connect(&newer.spec(), fast_timeouts()).await.expect_err("refused");
    assert!(matches!(err, ClientError::RelayTooNew { .. }), "{err:?}");
    assert!(err.to_string().contains("update Tether"), "{err}");

    let older = FakeRelay::start(vec![vec![Raw::Welcome { version: PROTOCOL_VERSION - 1 }]]);
    let err = HostRendezvous::connect(&older.spec(), fast_timeouts()).await.expect_err("refused");
    assert!(matches!(err, ClientError::RelayTooOld { .. }), "{err:?}");
    assert!(err.to_string().contains("update the relay"), "{err}");

    // The same relay with our version is fine: the refusals above are about the version alone.
    let same = FakeRelay::start(vec![vec![welcome()]]);
    HostRendezvous::connect(&same.spec(), fast_timeouts()).await.expect("same version");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_cannot_put_hidden_characters_in_its_close_reason() {
    let reason = "bye\nCALL 0800-SCAM to keep your account\u{202E}txt.exe";
    let relay = FakeRelay::start_acts(vec![vec![welcome().into()], vec![Act::Close(reason)]]);
    let (error, shown) = host_against(&relay).await;
    let text = error.to_string();
    assert!(text.contains("CALL 0800-SCAM"), "the reason is still shown, made safe: {text}");
    assert!(!text.contains('\n') && !text.contains('\u{202E}'), "{text:?}");
    assert!(shown.iter().all(|e| !matches!(e, HostEvent::Code { .. })), "{shown:?}");
}

/// A claim through a relay that redirects where it likes: an address that is not one is refused as it is
/// decoded; a redirect to a relay that redirects again ends the claim (no loops, no hops the first relay
/// did not vouch for).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_cannot_send_a_viewer_round_in_circles_or_to_a_name_that_is_not_an_address() {
    use tether_shared::net::pairing::connect_viewer;
    let code = tether_shared::code::Code::parse("123-4567890").expect("a code");

    let hostile = Raw::Redirect { relay: ("relay\u{202e}.example:1".into(), [1; 32]) };
    let relay = FakeRelay::start(vec![vec![welcome()], vec![hostile]]);
    let err = connect_viewer(&relay.spec(), &code, fast_timeouts(), None).await.expect_err("refused");
    assert!(matches!(err, ClientError::RelayInvalid(_)), "{err:?}");

    // Y sends the viewer on again; X sent it to Y.
    let y = FakeRelay::start(vec![
        vec![welcome()],
        vec![Raw::Redirect { relay: ("127.0.0.1:9".into(), [2; 32]) }],
    ]);
    let to_y = Raw::Redirect { relay: (y.addr.to_string(), y.fingerprint.0) };
    let x = FakeRelay::start(vec![vec![welcome()], vec![to_y]]);
    let err = connect_viewer(&x.spec(), &code, fast_timeouts(), None).await.expect_err("refused");
    assert!(matches!(&err, ClientError::Unexpected(why) if why.contains("second redirect")), "{err:?}");
}
