//! The three programs as a person or a script runs them: machine-readable lines, a snapshot PNG of the
//! host's screen, input from the command line, clear errors, a relay certificate that survives restarts.

mod common;

use common::cli_args;
use common::procs::{Proc, RelayProc};
use tether_host::capture::test_pattern::render;

fn host(relay: &RelayProc, extra: &[&str]) -> Proc {
    let mut args = cli_args(&relay.addr, &relay.fingerprint, &["--headless"]);
    args.extend_from_slice(extra);
    Proc::spawn("tether-host", &args)
}

/// The frame number the test pattern writes into its top-left row (64 one-pixel bits).
fn pattern_counter(img: &image::RgbImage) -> u64 {
    (0..64).filter(|&x| img.get_pixel(x, 0).0 == [255, 255, 255]).fold(0, |n, x| n | 1 << x)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_session_snapshots_the_host_screen_and_types() {
    let dir = tempfile::tempdir().expect("temp");
    let relay = RelayProc::start(dir.path()).await;
    assert_eq!(relay.fingerprint.len(), 64);
    let mut host = host(&relay, &["--grant", "view,control", "--size", "640x360", "--quality", "lossless"]);
    let code = host.line("code").await;
    let shot = dir.path().join("shot.png");
    let shot_text = shot.to_str().expect("utf-8");
    let mut viewer = Proc::spawn(
        "tether-viewer",
        &cli_args(
            &relay.addr,
            &relay.fingerprint,
            &["--code", &code, "--snapshot", shot_text, "--type", "hello from the cli", "--click", "12,34"],
        ),
    );
    assert_eq!(viewer.line("granted").await, "view, control");
    assert_eq!(viewer.line("snapshot").await, shot_text);
    assert!(viewer.wait().await.success());

    let img = image::open(&shot).expect("a PNG").to_rgb8();
    let expected = render(640, 360, pattern_counter(&img));
    assert_eq!(img.as_raw(), &expected.to_rgb(), "the snapshot is the host's screen, pixel for pixel");

    assert!(host.line("connected").await.contains("technician"));
    let ended = host.line("ended").await;
    let lines = host.seen.join("\n");
    assert!(lines.contains(r#"input MouseMove { x: 12, y: 34 }"#), "{lines}");
    assert!(lines.contains(r#"input Text("hello from the cli")"#), "{lines}");
    assert_eq!(ended, "the technician left");
    assert!(host.wait().await.success());
    drop(relay.proc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_code_is_a_clear_error_and_the_host_gets_a_new_code() {
    let dir = tempfile::tempdir().expect("temp");
    let relay = RelayProc::start(dir.path()).await;
    let mut host = host(&relay, &[]);
    let code = host.line("code").await;
    let mut digits: Vec<char> = code.chars().collect();
    let last = digits.len() - 1;
    digits[last] = if digits[last] == '0' { '1' } else { '0' };
    let wrong: String = digits.into_iter().collect();
    let out = tokio::process::Command::new(common::bin("tether-viewer"))
        .args(cli_args(&relay.addr, &relay.fingerprint, &["--code", &wrong, "--headless"]))
        .output()
        .await
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Wrong code"), "{stderr}");
    assert_eq!(stderr.matches("Wrong code").count(), 1, "said once, not once per wrapping error: {stderr}");
    let fresh = host.line("code").await;
    assert_ne!(fresh, code);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_keeps_its_certificate_and_a_wrong_pin_is_refused() {
    let dir = tempfile::tempdir().expect("temp");
    let first = RelayProc::start(dir.path()).await;
    let fingerprint = first.fingerprint.clone();
    drop(first);
    let second = RelayProc::start(dir.path()).await;
    assert_eq!(second.fingerprint, fingerprint, "same certificate after a restart");

    let wrong_pin = "00".repeat(32);
    let out = tokio::process::Command::new(common::bin("tether-host"))
        .args(cli_args(&second.addr, &wrong_pin, &["--headless"]))
        .output()
        .await
        .expect("runs");
    assert!(!out.status.success(), "a host must not talk to a relay it cannot verify");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("a different certificate than the one you were given"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).is_empty(), "no code shown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_lines_list_send_and_fetch_files_into_folders_they_create() {
    let dir = tempfile::tempdir().expect("temp");
    let relay = RelayProc::start(dir.path()).await;
    let (share, local) = (dir.path().join("Reports"), dir.path().join("local"));
    std::fs::create_dir_all(&share).expect("mkdir");
    std::fs::create_dir_all(&local).expect("mkdir");
    std::fs::write(share.join("summary é.txt"), b"what the user has").expect("write");
    std::fs::write(local.join("fix.sh"), b"#!/bin/sh\necho fixed\n").expect("write");
    // Neither the host's incoming folder nor the viewer's destination exists yet.
    let (incoming, to) = (dir.path().join("in/coming"), dir.path().join("fetched/here"));
    let path = |p: &std::path::Path| p.to_str().expect("utf-8").to_owned();
    // The user shares the folder through a link to it: the link is the user's choice, and the share is
    // what it points to (links inside a share are still never followed).
    let link = dir.path().join("reports-link");
    std::os::unix::fs::symlink(&share, &link).expect("symlink");
    let (share_arg, incoming_arg) = (path(&link), path(&incoming));
    let host_args =
        ["--grant", "view,files", "--share", &share_arg, "--incoming", &incoming_arg, "--accept-uploads"];
    let mut host = host(&relay, &host_args);
    let code = host.line("code").await;
    assert!(incoming.is_dir(), "the host makes its incoming folder at start");

    let (upload, to_arg) = (path(&local.join("fix.sh")), path(&to));
    let mut viewer = Proc::spawn(
        "tether-viewer",
        &cli_args(
            &relay.addr,
            &relay.fingerprint,
            &[
                "--code",
                &code,
                "--want",
                "view,files",
                "--list",
                "Reports",
                "--upload",
                &upload,
                "--fetch",
                "Reports/summary é.txt",
                "--fetch",
                "Reports",
                "--to",
                &to_arg,
            ],
        ),
    );
    assert_eq!(viewer.line("granted").await, "view, files");
    assert_eq!(viewer.line("entry").await, "f 17 summary é.txt");
    assert_eq!(viewer.line("uploaded").await, "fix.sh");
    assert_eq!(viewer.line("fetched").await, "summary é.txt");
    assert_eq!(viewer.line("fetched").await, "Reports", "a whole share comes under its shared name");
    assert!(viewer.wait().await.success());
    assert_eq!(std::fs::read(to.join("Reports/summary é.txt")).expect("fetched"), b"what the user has");
    assert_eq!(std::fs::read(incoming.join("fix.sh")).expect("uploaded"), b"#!/bin/sh\necho fixed\n");
    assert_eq!(std::fs::read(to.join("summary é.txt")).expect("fetched"), b"what the user has");
    assert_eq!(host.line("received").await, "fix.sh");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_whose_incoming_folder_cannot_be_made_says_so_at_start() {
    let dir = tempfile::tempdir().expect("temp");
    let relay = RelayProc::start(dir.path()).await;
    let file = dir.path().join("a file");
    std::fs::write(&file, b"").expect("write");
    let incoming = file.join("incoming");
    let out = tokio::process::Command::new(common::bin("tether-host"))
        .args(cli_args(&relay.addr, &relay.fingerprint, &["--headless"]))
        .args(["--grant", "files", "--incoming", incoming.to_str().expect("utf-8")])
        .output()
        .await
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--incoming") && stderr.contains("a file/incoming"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).is_empty(), "no code shown");
}

/// The host started as a menu entry would: no flags about the relay, only the settings file an
/// organization installs. And without one, it says what is missing and where to put it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_finds_its_relay_in_the_settings_file_or_says_where_it_belongs() {
    let dir = tempfile::tempdir().expect("temp");
    let relay = RelayProc::start(dir.path()).await;
    let settings = dir.path().join("host.toml");
    let text = format!(
        "relay = \"{}\"\nrelay_fingerprint = \"{}\"\norganization = \"Example IT\"\npermissions = \"view,control\"\n",
        relay.addr, relay.fingerprint
    );
    std::fs::write(&settings, text).expect("write");
    let path = settings.to_str().expect("utf-8");
    let args = ["--headless", "--source", "test-pattern"];
    let mut host = Proc::spawn_with_env("tether-host", &args, &[("TETHER_HOST_CONFIG", path)]);
    let code = host.line("code").await;
    assert!(tether_shared::code::Code::parse(&code).is_ok(), "{code}");
    // The viewer reads the same file; the host grants the file's permissions without --grant.
    let shot = dir.path().join("shot.png");
    let viewer_args = ["--code", &code, "--snapshot", shot.to_str().expect("utf-8")];
    let mut viewer = Proc::spawn_with_env("tether-viewer", &viewer_args, &[("TETHER_HOST_CONFIG", path)]);
    assert_eq!(viewer.line("granted").await, "view, control");
    assert!(viewer.wait().await.success());
    assert_eq!(host.line("ended").await, "the technician left");

    // A host that must refuse to start: whether it did, and what it said.
    let refused = |settings: std::path::PathBuf| async move {
        let out = tokio::process::Command::new(common::bin("tether-host"))
            .args(args)
            .env("TETHER_HOST_CONFIG", settings)
            .output()
            .await
            .expect("runs");
        (!out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (failed, stderr) = refused(dir.path().join("none.toml")).await;
    assert!(failed);
    assert!(
        stderr.contains("No relay to connect to") && stderr.contains("/etc/tether/host.toml"),
        "{stderr}"
    );

    std::fs::write(&settings, "relay = \"a:1\"\nrelay_fingerprnt = \"ab\"\n").expect("write");
    let (failed, stderr) = refused(settings).await;
    assert!(failed && stderr.contains("relay_fingerprnt"), "{stderr}");
}

/// `client-config --other-relay` writes the organization's relays into the settings file; a host with it
/// makes its code on the relay of the list that answers — here the other one, as the first is down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_settings_from_client_config_list_other_relays_and_a_dead_one_does_not_stop_the_host() {
    let dir = tempfile::tempdir().expect("temp");
    let data = dir.path().join("relay");
    let relay = RelayProc::start(&data).await;
    let down = std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).expect("a free port");
    let config = |address: String, other: String| {
        let data = data.clone();
        async move {
            tokio::process::Command::new(common::bin("tether-relay"))
                .args(["--data-dir", data.to_str().expect("utf-8"), "client-config", "--address", &address])
                .args(["--other-relay", &other])
                .output()
                .await
                .expect("runs")
        }
    };
    let out = config(down.to_string(), format!("{}@{}", relay.addr, relay.fingerprint)).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let file = dir.path().join("host.toml");
    std::fs::write(&file, &out.stdout).expect("write");
    let settings = tether_shared::client_settings::load(std::slice::from_ref(&file)).expect("reads back");
    assert_eq!(settings.relay, Some(down.to_string()));
    assert_eq!(settings.other_relays.len(), 1);
    assert_eq!(settings.other_relays[0].address, relay.addr);
    assert_eq!(settings.other_relays[0].fingerprint.as_deref(), Some(relay.fingerprint.as_str()));
    let path = file.to_str().expect("utf-8");
    let args = ["--headless", "--source", "test-pattern"];
    let mut host = Proc::spawn_with_env("tether-host", &args, &[("TETHER_HOST_CONFIG", path)]);
    let code = host.line("code").await;
    let shot = dir.path().join("shot.png");
    let none = dir.path().join("none.toml");
    let viewer_args = cli_args(
        &relay.addr,
        &relay.fingerprint,
        &["--code", &code, "--snapshot", shot.to_str().expect("utf-8")],
    );
    let mut viewer = Proc::spawn_with_env(
        "tether-viewer",
        &viewer_args,
        &[("TETHER_HOST_CONFIG", none.to_str().expect("utf-8"))],
    );
    viewer.line("granted").await;
    assert!(viewer.wait().await.success());

    let bad = config(relay.addr.clone(), "relay-2.example.org:4433@nothex".into()).await;
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && stderr.contains("64 hexadecimal digits"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_technician_invites_a_colleague_from_the_command_line() {
    let dir = tempfile::tempdir().expect("temp");
    let relay = RelayProc::start(dir.path()).await;
    let mut host = host(&relay, &["--grant", "view", "--size", "320x200"]);
    let code = host.line("code").await;
    // Alice stays 4 s: long enough for Bob to join and leave.
    let alice_args =
        cli_args(&relay.addr, &relay.fingerprint, &["--code", &code, "--invite", "--stay-secs", "4"]);
    let mut alice = Proc::spawn("tether-viewer", &alice_args);
    let invite = alice.line("invite").await;
    assert!(tether_shared::code::Code::parse(&invite).is_ok(), "{invite}");
    assert_ne!(invite, code);

    let shot = dir.path().join("bob.png");
    let shot_text = shot.to_str().expect("utf-8");
    let bob_args = cli_args(&relay.addr, &relay.fingerprint, &["--code", &invite, "--snapshot", shot_text]);
    let mut bob = Proc::spawn("tether-viewer", &bob_args);
    assert_eq!(bob.line("granted").await, "view");
    assert!(bob.wait().await.success(), "Bob saw the screen and left");
    assert_eq!(alice.line("invite").await, "claimed");
    assert_eq!(image::open(&shot).expect("a PNG").width(), 320);
    // Bob left; Alice is still there, and so is the host (its one `ended` line comes when she leaves).
    assert!(host.child.try_wait().expect("status").is_none(), "the host still runs for Alice");
    assert!(alice.wait().await.success());
    assert_eq!(host.line("ended").await, "the technician left");
    assert!(host.wait().await.success());
    let connected: Vec<_> = host.seen.iter().filter(|l| l.starts_with("connected ")).collect();
    assert_eq!(connected.len(), 2, "both technicians connected: {connected:?}");
}
