//! The audit log: one row of metadata per code, after a completed session, a failed code and a vanished
//! peer; and the `tether-relay audit` commands that read it.

mod common;

use std::time::Duration;

use common::procs::Proc;
use common::*;
use tether_host::capture::{self, Source};
use tether_relay::audit::AuditRecord;
use tether_shared::code::{Code, Secret};
use tether_shared::session_proto::Permissions;
use tether_viewer::session::ViewerSession;

/// Wait (bounded) until the audit log has a row with this outcome, and return it.
async fn row_with(relay: &TestRelay, outcome: &str) -> AuditRecord {
    let store = relay.store();
    let mut found = None;
    let find = || {
        found = store.audit_rows().expect("rows").into_iter().find(|r| r.outcome == outcome);
        found.is_some()
    };
    eventually(find, Later(|| format!("no {outcome:?} row; rows: {:?}", store.audit_rows()))).await;
    found.expect("found")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_session_is_recorded_with_its_technician_and_traffic() {
    let relay = start_relay(|cfg| cfg.organization = "Acme".into());
    let token = relay.add_account("carol");
    let mut cfg = viewer_config(&relay);
    cfg.token = Some(token.clone());
    let (host, viewer) =
        paired_with(&relay, Permissions { view: true, control: true, files: false }, &cfg).await;
    viewer.close().await;
    host.report().await.expect("session ran");

    let row = row_with(&relay, "completed").await;
    assert_eq!(row.technician.as_deref(), Some("carol"));
    assert!(row.claimed_at.is_some_and(|c| c >= row.registered_at && c <= row.ended_at), "{row:?}");
    assert!(row.viewer_addr.is_some() && row.host_addr.starts_with("127.0.0.1:"), "{row:?}");
    assert!(row.bytes_host_to_viewer > 0 && row.bytes_viewer_to_host > 0, "{row:?}");
    assert!(row.bytes_host_to_viewer > row.bytes_viewer_to_host, "the screen flows to the viewer: {row:?}");
    let everything = format!("{:?}", relay.store().audit_rows());
    assert!(!everything.contains(&token), "no secrets in the audit log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_code_is_recorded() {
    let relay = start_relay(|_| {});
    let mut host = start_host(&relay, Permissions::VIEW_ONLY);
    let code = host.next_code().await;
    let wrong = Code { nameplate: code.nameplate.clone(), secret: Secret::generate() };
    assert!(ViewerSession::connect(&viewer_config(&relay), &wrong).await.is_err());
    let row = row_with(&relay, "wrong_code").await;
    assert!(row.claimed_at.is_some() && row.viewer_addr.is_some(), "{row:?}");
    assert_eq!((row.bytes_host_to_viewer, row.bytes_viewer_to_host), (0, 0));
    assert_eq!(row.technician, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_viewer_is_recorded() {
    let relay = start_relay(|_| {});
    // Only the relay may end this session: were the host to time out first and leave, the relay would
    // rightly record that the host ended it.
    let mut cfg = host_config(&relay, Permissions::VIEW_ONLY);
    cfg.timeouts.e2e_idle = Duration::from_secs(30);
    let mut host = start_host_with(cfg, || capture::open(Source::TestPattern { width: W, height: H }));
    let code = host.next_code().await.to_string();
    let (addr, fp) = (relay.handle.local_addr().to_string(), relay.handle.fingerprint().to_string());
    let mut viewer =
        Proc::spawn("tether-viewer", &cli_args(&addr, &fp, &["--code", &code, "--stay-secs", "60"]));
    viewer.line("connected").await;
    viewer.kill().await;
    let row = row_with(&relay, "viewer_vanished").await;
    assert!(row.bytes_host_to_viewer > 0, "{row:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_commands_list_and_export_csv_and_json() {
    let relay = start_relay(|_| {});
    let mut host = start_host(&relay, Permissions::VIEW_ONLY);
    let code = host.next_code().await;
    let viewer = ViewerSession::connect(&viewer_config(&relay), &code).await.expect("pairs");
    viewer.close().await;
    let row = row_with(&relay, "completed").await;
    let admin = relay.admin_args();
    fn refs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let with = |more: &[&'static str]| {
        admin.iter().cloned().chain(more.iter().map(|s| s.to_string())).collect::<Vec<String>>()
    };

    let mut csv = Proc::spawn("tether-relay", &refs(&with(&["audit", "export", "--format", "csv"])));
    let lines = csv.rest().await;
    assert!(csv.wait().await.success());
    assert_eq!(lines[0], tether_relay::audit::CSV_HEADER);
    assert!(lines.iter().any(|l| l == &row.csv_line()), "{lines:?}");

    let mut json = Proc::spawn("tether-relay", &refs(&with(&["audit", "export", "--format", "json"])));
    let text = json.rest().await.join("\n");
    assert!(json.wait().await.success());
    let parsed: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let first = parsed.as_array().and_then(|rows| rows.iter().find(|r| r["outcome"] == "completed"));
    assert_eq!(first.and_then(|r| r["session_id"].as_str()), Some(row.session_id.as_str()));

    let mut list = Proc::spawn("tether-relay", &refs(&with(&["audit", "list"])));
    let lines = list.rest().await;
    assert!(list.wait().await.success());
    assert!(lines.iter().any(|l| l.starts_with(&row.session_id) && l.ends_with("completed")), "{lines:?}");
}
