//! `tether-relay` as an admin runs it: a TOML config file (a typo is rejected with its line and key), flag
//! overrides, the example file in `deploy/` is valid, `user add|list|revoke`, graceful stop on SIGTERM.

mod common;

use std::process::Command;

use common::eventually_async;
use common::procs::Proc;
use tether_relay::config_file;

#[test]
fn a_config_file_with_a_typo_is_rejected_naming_the_line_and_key() {
    let dir = tempfile::tempdir().expect("temp");
    let path = dir.path().join("relay.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:0\"\n\n[limits]\nclaims_per_minute = 5\nmax_sesions = 3\n")
        .expect("write");
    let out = Command::new(common::bin("tether-relay"))
        .args(["--config", path.to_str().expect("utf-8")])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .expect("runs");
    assert!(!out.status.success(), "a typo must stop the relay");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 5"), "{stderr}");
    assert!(stderr.contains("max_sesions"), "{stderr}");
    assert!(out.stdout.is_empty(), "it never started listening");
}

#[test]
fn the_example_config_in_deploy_is_valid() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/tether-relay.example.toml");
    let text = std::fs::read_to_string(example).expect("deploy/tether-relay.example.toml exists");
    config_file::parse(&text).expect("the example parses");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_runs_from_a_config_file_with_flag_overrides_and_drains_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp");
    let data = dir.path().join("data");
    let path = dir.path().join("relay.toml");
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:1\"\ndata_dir = {:?}\n[admin]\nlisten = \"127.0.0.1:0\"\n",
            data.to_str().expect("utf-8")
        ),
    )
    .expect("write");
    let config = path.to_str().expect("utf-8");
    let mut relay = Proc::spawn("tether-relay", &["--config", config, "--listen", "127.0.0.1:0"]);
    let addr = relay.line("listening").await;
    assert_ne!(addr, "127.0.0.1:1", "the flag overrides the file");
    relay.line("fingerprint").await;
    relay.line("admin").await;
    assert!(data.join(tether_relay::store::DB_FILE).exists(), "data_dir from the file");

    let pid = relay.child.id().expect("pid").to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let status = relay.wait().await;
    assert!(status.success(), "a clean exit on SIGTERM: {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_commands_add_list_and_revoke() {
    let dir = tempfile::tempdir().expect("temp");
    let data = dir.path().to_str().expect("utf-8");
    let mut add = Proc::spawn("tether-relay", &["--data-dir", data, "user", "add", "dana"]);
    let token = add.line("token").await;
    assert!(add.wait().await.success());
    assert!(token.starts_with("tether1."), "{token}");
    let store = tether_relay::store::Store::open(dir.path()).expect("store");
    assert_eq!(store.verify_token(&token).expect("verify"), Some("dana".into()));

    let mut again = Proc::spawn("tether-relay", &["--data-dir", data, "user", "add", "dana"]);
    assert!(!again.wait().await.success(), "names are unique");

    let mut list = Proc::spawn("tether-relay", &["--data-dir", data, "user", "list"]);
    let lines = list.rest().await;
    assert!(lines.iter().any(|l| l.starts_with("dana\t") && l.ends_with("active")), "{lines:?}");
    let mut revoke = Proc::spawn("tether-relay", &["--data-dir", data, "user", "revoke", "dana"]);
    assert_eq!(revoke.line("revoked").await, "dana");
    assert!(revoke.wait().await.success());
    assert_eq!(store.verify_token(&token).expect("verify"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sigterm_live_sessions_go_on_new_ones_are_refused_and_the_relay_exits_when_they_end() {
    use tether_shared::net::pairing::{connect_viewer, HostOutcome, HostRendezvous};
    use tether_shared::net::{ClientError, RelaySpec};
    use tether_shared::tls::RelayTrust;

    let dir = tempfile::tempdir().expect("temp");
    let data = dir.path().to_str().expect("utf-8");
    let mut relay = Proc::spawn(
        "tether-relay",
        &["--listen", "127.0.0.1:0", "--data-dir", data, "--drain-deadline-secs", "60"],
    );
    let addr = relay.line("listening").await.parse().expect("addr");
    let fp = relay.line("fingerprint").await.parse().expect("fingerprint");
    let spec =
        RelaySpec { addr, server_name: "localhost".into(), trust: RelayTrust::Pinned(fp), local_addr: None };
    let timeouts = common::fast_timeouts();

    let mut host = HostRendezvous::connect(&spec, timeouts).await.expect("host connects");
    let (code, _) = host.register().await.expect("a code");
    let code2 = code.clone();
    let host = tokio::spawn(async move { host.wait_for_viewer(&code2).await });
    let viewer = connect_viewer(&spec, &code, timeouts, None).await.expect("pairs");
    let Ok(Ok(HostOutcome::Paired(host))) = host.await else { panic!("the host pairs") };

    let pid = relay.child.id().expect("pid").to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    // New connections are refused while the live session goes on.
    let refused = || async {
        matches!(HostRendezvous::connect(&spec, timeouts).await, Err(ClientError::RelayUnreachable { .. }))
    };
    eventually_async(refused, "new connections are refused after SIGTERM").await;
    assert!(relay.child.try_wait().expect("status").is_none(), "the relay waits for the live session");
    let mut out = viewer.conn.open_uni().await.expect("the session still carries data");
    out.write_all(b"still here").await.expect("write");
    out.finish().expect("finish");
    let mut inbound = host.conn.accept_uni().await.expect("stream arrives through the draining relay");
    assert_eq!(inbound.read_to_end(64).await.expect("read"), b"still here");

    // The session ends: the relay exits cleanly, long before its 60 s deadline matters.
    viewer.conn.close(0u32.into(), b"done");
    viewer.link.close();
    host.link.close();
    assert!(relay.wait().await.success());
}
