//! What the programs leave behind: logs without secrets or forged lines, and relay files only their owner
//! can read. Runs the real binaries (`cargo build --workspace --bins` first) and reads their stderr.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::procs::Proc;
use common::{cli_args, eventually};
use serde::Serialize;
use tether_relay::TlsSource;
use tether_shared::code::Nameplate;
use tether_shared::net::link::RelayLink;
use tether_shared::net::{ClientError, RelaySpec, Timeouts};
use tether_shared::relay_proto::{ClientToRelay, RelayErrorKind, RelayToClient, Role};
use tether_shared::tls::{self, Fingerprint, RelayTrust};
use tether_shared::token::Token;
use tether_shared::wire::{self, MAX_CONTROL_MSG};
use tether_shared::PROTOCOL_VERSION;
use tokio::process::Command;

/// A relay binary on a fresh port; its address and fingerprint.
async fn relay(data: &str, extra: &[&str], env: &[(&str, &str)]) -> (Proc, String, String) {
    let mut args = vec!["--listen", "127.0.0.1:0", "--data-dir", data];
    args.extend_from_slice(extra);
    let mut relay = Proc::spawn_logged("tether-relay", &args, env);
    let addr = relay.line("listening").await;
    let fp = relay.line("fingerprint").await;
    (relay, addr, fp)
}

fn spec(addr: &str, fp: &str) -> RelaySpec {
    RelaySpec {
        addr: addr.parse().expect("addr"),
        server_name: "localhost".into(),
        trust: RelayTrust::Pinned(fp.parse::<Fingerprint>().expect("fingerprint")),
        local_addr: None,
    }
}

/// Where `needle` occurs in `hay` as a whole number (no digit right before or after it).
fn contains_number(hay: &str, needle: &str) -> bool {
    hay.match_indices(needle).any(|(at, _)| {
        let before = hay[..at].chars().next_back();
        let after = hay[at + needle.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_and_no_secret_code_digits_in_any_log_at_trace_level() {
    let dir = tempfile::tempdir().expect("temp");
    let data = dir.path().to_str().expect("utf-8");
    let relay_id = tether_relay::certs::relay_id(&TlsSource::SelfSigned, dir.path(), None).expect("relay id");
    let store = tether_relay::store::Store::open(dir.path()).expect("store");
    let token = store.add_account("canary", &relay_id).expect("account");
    drop(store);
    let secret = token.rsplit('.').next().expect("secret part").to_owned();
    let trace = [("RUST_LOG", "trace")];
    let (relay, addr, fp) = relay(data, &["--require-technician-auth"], &trace).await;

    let mut host = Proc::spawn_logged("tether-host", &cli_args(&addr, &fp, &["--headless"]), &trace);
    let code = host.line("code").await;
    let digits: String = code.chars().filter(char::is_ascii_digit).collect();
    let code_secret = digits[digits.len() - 7..].to_owned();
    let spoken_secret = format!("{}-{}", &code_secret[..3], &code_secret[3..]);
    let viewer_args = cli_args(&addr, &fp, &["--code", &code, "--stay-secs", "1"]);
    let mut viewer =
        Proc::spawn_logged("tether-viewer", &viewer_args, &[("RUST_LOG", "trace"), ("TETHER_TOKEN", &token)]);
    viewer.line("connected").await;
    assert!(host.line("verified").await.starts_with("canary by "));
    let _ = tokio::time::timeout(Duration::from_secs(30), viewer.child.wait()).await;

    // A client that sends its Claim (with the token) where it does not belong: as a host, after
    // registering. The relay refuses it and logs what it got.
    let mut misplaced =
        RelayLink::connect(&spec(&addr, &fp), Role::Host, &Timeouts::default()).await.expect("link");
    misplaced.send(&ClientToRelay::Register).await.expect("send");
    let nameplate = match misplaced.recv().await.expect("registered") {
        RelayToClient::Registered { nameplate, .. } => nameplate,
        other => panic!("expected Registered, got {other:?}"),
    };
    misplaced
        .send(&ClientToRelay::Claim { nameplate, token: Some(Token::new(token.clone())) })
        .await
        .expect("send");
    let answer = match misplaced.recv().await {
        Err(ClientError::Relay(kind @ RelayErrorKind::Protocol(_))) => kind.to_string(),
        other => panic!("expected a protocol error, got {other:?}"),
    };
    assert!(answer.contains("Claim") && !answer.contains(&secret), "{answer}");

    let logs =
        [("relay", relay.finish().await), ("host", host.finish().await), ("viewer", viewer.finish().await)];
    let (_, relay_log) = &logs[0];
    assert!(relay_log.contains("unexpected Claim"), "the misplaced claim was logged: {relay_log}");
    assert!(relay_log.contains("TRACE") || relay_log.contains("DEBUG"), "logging at trace level");
    for (who, log) in &logs {
        // The headless host tells its user the code on the terminal, on purpose: that line is not a log.
        let log: String = log
            .lines()
            .filter(|l| !l.starts_with("Read this code to your technician: "))
            .collect::<Vec<_>>()
            .join("\n");
        let log = &log;
        assert!(!log.contains(&secret), "the {who}'s log holds the token");
        let line = log.lines().find(|l| contains_number(l, &code_secret));
        assert!(line.is_none(), "the {who}'s log holds the code's secret digits: {line:?}");
        assert!(!log.contains(&spoken_secret), "the {who}'s log holds the code's secret digits");
    }
}

/// `ClientToRelay` as a hostile client could encode it: a nameplate that is any text.
#[derive(Serialize)]
#[allow(dead_code)] // the variants before `Claim` only keep postcard's numbering
enum RawClient {
    Hello { version: u32, role: Role },
    Register,
    Claim { nameplate: String, token: Option<String> },
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cannot_forge_lines_in_the_relay_log() {
    let dir = tempfile::tempdir().expect("temp");
    let debug = [("RUST_LOG", "debug")];
    let (relay, addr, fp) = relay(dir.path().to_str().expect("utf-8"), &[], &debug).await;
    let forged = "2026-01-01T00:00:00.000000Z  INFO tether_relay: FORGED admin session approved";

    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let endpoint = quinn::Endpoint::new(tls::endpoint_config(), None, socket, Arc::new(quinn::TokioRuntime))
        .expect("endpoint");
    let trust = RelayTrust::Pinned(fp.parse().expect("fingerprint"));
    let cfg =
        tls::relay_client_config(&trust, tls::transport(Duration::from_secs(10), None)).expect("config");

    // A client that leaves before its hello, giving a reason of its own (quinn shows close reasons as
    // they are: the relay logs "hello failed" with it, at debug level).
    let early =
        endpoint.connect_with(cfg.clone(), addr.parse().expect("addr"), "localhost").expect("connect");
    let early = early.await.expect("handshake");
    early.close(0u32.into(), format!("bye\n{forged}").as_bytes());
    drop(early);
    let conn = endpoint
        .connect_with(cfg, addr.parse().expect("addr"), "localhost")
        .expect("connect")
        .await
        .expect("handshake");
    let (mut send, mut recv) = conn.open_bi().await.expect("stream");
    let hello = RawClient::Hello { version: PROTOCOL_VERSION, role: Role::Viewer };
    wire::write_msg(&mut send, &hello, MAX_CONTROL_MSG).await.expect("hello");
    let welcome = wire::read_msg::<_, RelayToClient>(&mut recv, MAX_CONTROL_MSG).await.expect("welcome");
    assert!(matches!(welcome, Some(RelayToClient::Welcome { .. })), "{welcome:?}");
    for nameplate in [format!("123\n{forged}"), format!("123\r{forged}"), format!("123\u{2028}{forged}")] {
        let claim = RawClient::Claim { nameplate, token: None };
        if wire::write_msg(&mut send, &claim, MAX_CONTROL_MSG).await.is_err() {
            break;
        }
        // Whatever the answer, the relay has handled the message once it answers or closes.
        let _ = tokio::time::timeout(
            Duration::from_secs(10),
            wire::read_msg::<_, RelayToClient>(&mut recv, MAX_CONTROL_MSG),
        )
        .await;
    }
    // A real claim from the same relay's log, so we know claims are logged at this level.
    let mut link =
        RelayLink::connect(&spec(&addr, &fp), Role::Viewer, &Timeouts::default()).await.expect("link");
    let nameplate = Nameplate::new("999").expect("digits");
    link.send(&ClientToRelay::Claim { nameplate, token: None }).await.expect("send");
    assert!(matches!(link.recv().await, Err(ClientError::Relay(RelayErrorKind::UnknownCode))));
    link.close();
    conn.close(0u32.into(), b"bye");
    // The early leaver's close is handled on the relay's own time (under load, after the claims above):
    // wait for its line rather than stop the relay first.
    eventually(|| relay.stderr_now().contains("hello failed"), "the early leaver's line").await;

    let log = relay.finish().await;
    assert!(log.contains("nameplate=999"), "claims are logged: {log}");
    assert!(log.contains("hello failed"), "the early leaver is logged: {log}");
    // The client's words may appear escaped inside a line of the relay's (the close reason), never as a
    // line of their own, and nothing can move the terminal's cursor or break a line another way.
    for line in log.lines() {
        assert!(!line.starts_with("2026-01-01"), "a forged line in the relay's log: {line:?}");
    }
    assert!(!log.contains('\r') && !log.contains('\u{2028}'), "{log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_keeps_its_data_dir_and_files_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp");
    let data = dir.path().join("fresh/relay-data");
    let script = "umask 022; exec \"$0\" --listen 127.0.0.1:0 --data-dir \"$1\"";
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        script,
        common::bin("tether-relay").to_str().expect("utf-8"),
        data.to_str().expect("utf-8"),
    ]);
    let mut relay = Proc::spawn_command_logged(&mut cmd);
    relay.line("listening").await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the data directory");
    for file in ["relay.sqlite3", "relay.sqlite3-wal", "relay-key.der", "relay-cert.der"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    relay.finish().await;

    // `user add` on a data directory of its own makes it private too.
    let other = dir.path().join("users");
    let script = "umask 022; exec \"$0\" --data-dir \"$1\" user add ann";
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        script,
        common::bin("tether-relay").to_str().expect("utf-8"),
        other.to_str().expect("utf-8"),
    ]);
    let mut add = Proc::spawn_command_logged(&mut cmd);
    assert!(add.line("token").await.starts_with("tether1."));
    add.finish().await;
    assert_eq!(mode(&other), 0o700);
    assert_eq!(mode(&other.join("relay.sqlite3")), 0o600);
}
