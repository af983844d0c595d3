//! `tether-relay` as an admin runs it: a TOML config file (a typo is rejected with its line and key), flag
//! overrides, the example file in `deploy/` is valid, `user add|list|revoke`, graceful stop on SIGTERM.

mod common;

use std::process::Command;

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
    assert!(token.starts_with("tether_"));
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
