//! Every error a user or technician can cause, as the programs print it: the exact text, one line, no
//! backtrace even with `RUST_BACKTRACE=1` (backtraces are for bugs), no internal names, a non-zero exit.
//! The README's table of errors is this file's expectations.

mod common;

use std::process::Stdio;

use common::cli_args;
use common::procs::{Proc, RelayProc};

/// What a finished run said.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Run `name` to its end as a person would in a terminal without a display: with backtraces asked for
/// (they must not appear), no settings file, no display.
async fn run(name: &str, args: &[&str]) -> Run {
    let out = tokio::process::Command::new(common::bin(name))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .env("TETHER_HOST_CONFIG", "/nonexistent/host.toml")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), out)
        .await
        .expect("the program ends")
        .expect("runs");
    let run = Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    for jargon in ["Caused by", "backtrace", "ViewerLeft", "WrongCode", "Error {", "Some("] {
        assert!(!run.stderr.contains(jargon), "{jargon:?} reached a person: {}", run.stderr);
    }
    run
}

/// A run that failed, saying exactly `error` (after `Error: `) as its only line.
#[track_caller]
fn refused(run: &Run, error: &str) {
    assert!(!run.ok, "exits non-zero: {}", run.stderr);
    assert_eq!(run.stderr, format!("Error: {error}\n"));
}

const NO_DISPLAY_PATTERN: &str =
    "No display (neither WAYLAND_DISPLAY nor DISPLAY is set): sharing the built-in test pattern \
     instead of a screen. Run it in your desktop session, or pass --source x11 or wlroots.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_addresses_and_certificates_people_get_wrong() {
    let dir = tempfile::tempdir().expect("temp");
    let relay = RelayProc::start(dir.path()).await;
    let pattern = ["--headless", "--source", "test-pattern"];

    let wrong = "ab".repeat(32);
    let changed = format!(
        "The relay at 127.0.0.1 answered with a different certificate than the one you were given (fingerprint \
         {}, not {wrong}). Check the fingerprint, or ask your administrator whether the relay was reinstalled.",
        relay.fingerprint
    );
    refused(&run("tether-host", &cli_args(&relay.addr, &wrong, &pattern)).await, &changed);
    let viewer = cli_args(&relay.addr, &wrong, &["--code", "123-456-7890", "--snapshot", "/dev/null"]);
    refused(&run("tether-viewer", &viewer).await, &changed);

    let unsigned = "The relay at 127.0.0.1 has a certificate no trusted authority signed; pass --relay-fingerprint \
         (in the viewer window: Relay fingerprint) with the fingerprint the relay printed when it started, or ask \
         your administrator for it.";
    let mut args = vec!["--relay", relay.addr.as_str()];
    args.extend(pattern);
    refused(&run("tether-host", &args).await, unsigned);

    let no_port = ["--relay", "127.0.0.1", "--headless", "--source", "test-pattern"];
    refused(
        &run("tether-host", &no_port).await,
        r#"The relay address "127.0.0.1" has no port: write it as HOST:PORT, e.g. relay.example.org:7700."#,
    );
    let unknown = ["--relay", "relay.invalid:7700", "--code", "123-456-7890", "--snapshot", "/dev/null"];
    refused(
        &run("tether-viewer", &unknown).await,
        r#"Cannot find the relay "relay.invalid": no such host name. Check the relay address (HOST:PORT)."#,
    );
    refused(
        &run("tether-host", &pattern).await,
        "No relay to connect to: pass --relay HOST:PORT, or put relay = \"HOST:PORT\" in /etc/tether/host.toml \
         or ~/.config/tether/host.toml (your organization's administrator has it)",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_without_a_display_say_what_to_do() {
    refused(
        &run("tether-host", &["--relay", "127.0.0.1:9"]).await,
        "There is no display to open the window on (DISPLAY is not set). Start Tether from your desktop's menu, \
         or use --headless to share from a terminal.",
    );
    refused(
        &run("tether-viewer", &[]).await,
        "There is no display to open the window on (DISPLAY is not set). Start the viewer from your desktop's \
         menu, or use --headless with --code for the command line.",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_s_errors_and_its_end_in_plain_words() {
    let dir = tempfile::tempdir().expect("temp");
    let relay = RelayProc::start(dir.path()).await;
    // No display: the host says it shares the test pattern, then gives its code.
    let args =
        cli_args(&relay.addr, &relay.fingerprint, &["--headless", "--grant", "view", "--size", "320x200"]);
    let mut cmd = tokio::process::Command::new(common::bin("tether-host"));
    cmd.args(&args).env_remove("DISPLAY").env_remove("WAYLAND_DISPLAY").env("RUST_BACKTRACE", "1");
    let mut host = Proc::spawn_command_logged(&mut cmd);
    let code = host.line("code").await;
    assert!(host.stderr_now().starts_with(&format!("{NO_DISPLAY_PATTERN}\n")), "{}", host.stderr_now());

    // A code whose secret part is wrong: said once, in words; the host's screen shows a new code.
    let mut guess = code.clone();
    let last = guess.pop().and_then(|d| d.to_digit(10)).expect("a code ends in a digit");
    guess.push(char::from_digit((last + 1) % 10, 10).expect("a digit"));
    let viewer = cli_args(&relay.addr, &relay.fingerprint, &["--code", &guess, "--snapshot", "/dev/null"]);
    refused(
        &run("tether-viewer", &viewer).await,
        "Wrong code: it does not match the one on the user's screen. That code no longer works; ask the user for \
         the new one their screen shows.",
    );
    let code = host.line("code").await;

    // Typing without control: refused with the reason, non-zero, nothing sent.
    let typing = cli_args(&relay.addr, &relay.fingerprint, &["--code", &code, "--type", "hello"]);
    let typed = run("tether-viewer", &typing).await;
    assert_eq!(typed.stdout, "connected\ngranted view\n");
    refused(
        &typed,
        "The user did not allow control (allowed: view), so nothing was typed or clicked. Ask them to allow \
         \"Use your mouse and keyboard\".",
    );
    assert_eq!(host.line("ended").await, "the technician left");

    let said = host.finish().await;
    assert!(said.contains("Session with technician ended: the technician left."), "{said}");

    // A normal visit (the headless host shares once, so a new one): nothing about the relay on the way out.
    let mut host = Proc::spawn_logged("tether-host", &args, &[("RUST_BACKTRACE", "1")]);
    let code = host.line("code").await;
    let shot = dir.path().join("shot.png");
    let shot_text = shot.to_str().expect("utf-8");
    let snapshot = cli_args(&relay.addr, &relay.fingerprint, &["--code", &code, "--snapshot", shot_text]);
    let visit = run("tether-viewer", &snapshot).await;
    assert!(visit.ok, "{}", visit.stderr);
    assert_eq!(visit.stderr, format!("Saved the host's screen (320x200) to {shot_text}\n"));
    assert_eq!(host.line("ended").await, "the technician left");
    let said = host.finish().await;
    assert!(!said.contains("lost the relay"), "{said}");
}
