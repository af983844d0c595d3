//! Test harness: a real relay, host and viewer over QUIC on loopback, with short timeouts.
#![allow(dead_code)] // each test file uses a different part

pub mod canary;
pub mod procs;
pub mod view;
pub mod xvfb;

use std::path::PathBuf;
use std::time::Duration;

use tether_host::capture::{self, CaptureHandle, Capturer, Source};
use tether_host::inject::record::RecordingSink;
use tether_host::session::SessionReport;
use tether_host::{run_host, HostConfig, HostError, HostEvent, Sources};
use tether_relay::{RelayConfig, RelayHandle, Server};
use tether_shared::code::Code;
use tether_shared::codec::Quality;
use tether_shared::net::{RelaySpec, Timeouts};
use tether_shared::session_proto::Permissions;
use tether_shared::tls::RelayTrust;
use tether_viewer::session::{ViewerConfig, ViewerSession};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const W: u32 = 320;
pub const H: u32 = 240;

/// Timeouts short enough that tests of vanishing peers finish quickly.
pub fn fast_timeouts() -> Timeouts {
    Timeouts {
        relay_idle: Duration::from_secs(3),
        e2e_idle: Duration::from_secs(3),
        keep_alive: Duration::from_millis(500),
        pairing: Duration::from_secs(10),
    }
}

pub struct TestRelay {
    pub handle: RelayHandle,
    pub dir: tempfile::TempDir,
    /// Its configuration (the database it uses above all).
    pub cfg: RelayConfig,
    /// The PostgreSQL server it uses, when the suite runs on PostgreSQL ([`DATABASE_ENV`]).
    pub postgres: Option<std::sync::Arc<tether_testbed::postgres::Postgres>>,
}

/// With this variable set to `postgres`, every test relay keeps its accounts, audit log and resume records
/// in a PostgreSQL server of its own instead of SQLite: `scripts/test.sh` runs the relay-for-organizations
/// suite both ways.
pub const DATABASE_ENV: &str = "TETHER_TEST_RELAY_DATABASE";

impl TestRelay {
    /// This relay's database, as the admin's commands open it.
    pub fn store(&self) -> tether_relay::store::Store {
        tether_relay::store::Store::for_config(&self.cfg).expect("store").0
    }

    /// The arguments that point `tether-relay`'s admin commands at this relay's data (its data directory,
    /// and a configuration file naming its PostgreSQL when it has one).
    pub fn admin_args(&self) -> Vec<String> {
        let mut args = vec!["--data-dir".to_owned(), self.dir.path().display().to_string()];
        if let Some(url) = &self.cfg.database_url {
            let file = self.dir.path().join("admin.toml");
            std::fs::write(&file, format!("database_url = {url:?}\nname = {:?}\n", self.cfg.name))
                .expect("config");
            args.extend(["--config".to_owned(), file.display().to_string()]);
        }
        args
    }

    /// The value of a `/metrics` series: the line starting with `series` (a name, with its labels if it
    /// has any); `None` if there is none.
    pub fn metric(&self, series: &str) -> Option<u64> {
        let text = self.handle.metrics_text();
        text.lines().find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
    }

    /// A technician account on this relay (its store, bound to its certificate): the token, shown once.
    pub fn add_account(&self, name: &str) -> String {
        let id = tether_shared::token::RelayId::Fingerprint(self.handle.fingerprint());
        self.store().add_account(name, &id).expect("account")
    }

    /// A bare QUIC connection to this relay's control port (pinned to its certificate), from a fresh
    /// endpoint of its own: for tests that speak to the relay byte by byte, or not at all.
    pub async fn raw_connection(&self, transport: quinn::TransportConfig) -> quinn::Connection {
        use tether_shared::tls;
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let endpoint = quinn::Endpoint::new(
            tls::endpoint_config(),
            None,
            socket,
            std::sync::Arc::new(quinn::TokioRuntime),
        )
        .expect("endpoint");
        let cfg = tls::relay_client_config(&RelayTrust::Pinned(self.handle.fingerprint()), transport)
            .expect("config");
        endpoint
            .connect_with(cfg, self.handle.local_addr(), "localhost")
            .expect("connect")
            .await
            .expect("handshake")
    }

    pub fn spec(&self) -> RelaySpec {
        RelaySpec {
            addr: self.handle.local_addr(),
            server_name: "localhost".into(),
            trust: RelayTrust::Pinned(self.handle.fingerprint()),
            local_addr: None,
        }
    }
}

pub fn start_relay(tweak: impl FnOnce(&mut RelayConfig)) -> TestRelay {
    let postgres = (std::env::var(DATABASE_ENV).as_deref() == Ok("postgres")).then(|| {
        std::sync::Arc::new(tether_testbed::postgres::Postgres::start_new().expect("a PostgreSQL server"))
    });
    start_relay_on(postgres, tweak)
}

/// A relay on `postgres` (`None`: SQLite in its data directory).
pub fn start_relay_on(
    postgres: Option<std::sync::Arc<tether_testbed::postgres::Postgres>>,
    tweak: impl FnOnce(&mut RelayConfig),
) -> TestRelay {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = RelayConfig::new("127.0.0.1:0".parse().expect("addr"), dir.path().to_path_buf());
    cfg.idle_timeout = Duration::from_secs(3);
    cfg.handshake_timeout = Duration::from_secs(3);
    cfg.database_url = postgres.as_ref().map(|pg| pg.url());
    tweak(&mut cfg);
    let handle = Server::spawn(cfg.clone()).expect("relay starts");
    TestRelay { handle, dir, cfg, postgres }
}

/// A host running in the background, with its events and recorded input.
pub struct TestHost {
    pub events: mpsc::UnboundedReceiver<HostEvent>,
    pub sink: RecordingSink,
    pub stop: CancellationToken,
    pub task: JoinHandle<Result<SessionReport, HostError>>,
}

impl TestHost {
    /// The next code the host shows (skipping other events).
    pub async fn next_code(&mut self) -> Code {
        loop {
            match tokio::time::timeout(Duration::from_secs(10), self.events.recv()).await {
                Ok(Some(HostEvent::Code { code, .. })) => return code,
                Ok(Some(_)) => continue,
                Ok(None) => panic!("host ended before showing a code: {:?}", (&mut self.task).await),
                Err(_) => panic!("no code within 10 s"),
            }
        }
    }

    /// The next event but the participants lists and invite news (see [`Self::next_any_event`]).
    pub async fn next_event(&mut self) -> HostEvent {
        loop {
            match self.next_any_event().await {
                HostEvent::Participants(_) | HostEvent::Invite { .. } => continue,
                event => return event,
            }
        }
    }

    /// The next event, whatever it is.
    pub async fn next_any_event(&mut self) -> HostEvent {
        tokio::time::timeout(Duration::from_secs(10), self.events.recv())
            .await
            .expect("an event within 10 s")
            .expect("host still running")
    }

    /// The next list of participants that satisfies `ok`.
    pub async fn participants(
        &mut self,
        ok: impl Fn(&[tether_host::participants::Present]) -> bool,
    ) -> Vec<tether_host::participants::Present> {
        loop {
            if let HostEvent::Participants(now) = self.next_any_event().await {
                if ok(&now) {
                    return now;
                }
            }
        }
    }

    pub async fn report(self) -> Result<SessionReport, HostError> {
        tokio::time::timeout(Duration::from_secs(20), self.task).await.expect("host ends").expect("no panic")
    }
}

pub fn host_config(relay: &TestRelay, allowed: Permissions) -> HostConfig {
    let mut cfg = HostConfig::new(relay.spec(), allowed);
    cfg.timeouts = fast_timeouts();
    cfg.session.hello_timeout = Duration::from_secs(5);
    cfg.session.quality = Quality::Lossless.into(); // the tests compare pixels exactly
                                                    // Wrong-code back-off stays in force, at a pace that keeps the tests quick.
    cfg.codes.backoff = Duration::from_millis(100);
    cfg
}

pub fn start_host(relay: &TestRelay, allowed: Permissions) -> TestHost {
    start_host_with(host_config(relay, allowed), test_pattern)
}

/// The host's screen in most tests: the animated test pattern at [`W`]×[`H`].
/// A host sharing the test pattern with `allowed`, and a viewer paired with it through `relay` that
/// has shown its first frame: the setup most session tests start from.
pub async fn paired(relay: &TestRelay, allowed: Permissions) -> (TestHost, ViewerSession) {
    paired_with(relay, allowed, &viewer_config(relay)).await
}

/// [`paired`] with a viewer configured by the test (a token, other timeouts).
pub async fn paired_with(
    relay: &TestRelay,
    allowed: Permissions,
    viewer: &ViewerConfig,
) -> (TestHost, ViewerSession) {
    let mut host = start_host(relay, allowed);
    let code = host.next_code().await;
    let viewer = ViewerSession::connect(viewer, &code).await.expect("the viewer pairs");
    viewer.next_frame(None).await.expect("the first frame");
    (host, viewer)
}

pub fn test_pattern() -> Result<Box<dyn Capturer>, capture::CaptureError> {
    capture::open(Source::TestPattern { width: W, height: H })
}

/// One request to a relay's admin listener at `addr` and its whole answer (status line, headers, body).
pub async fn http(addr: std::net::SocketAddr, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("admin listener");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut response))
        .await
        .expect("answer in time")
        .expect("read");
    response
}

/// Wait (up to [`EVENTUALLY`], polling) until `cond` holds; fail naming `what` otherwise.
pub async fn eventually(mut cond: impl FnMut() -> bool, what: impl std::fmt::Display) {
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "not within {EVENTUALLY:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// [`eventually`] for a condition that needs the network to find out (a connection attempt, say).
pub async fn eventually_async<F>(mut cond: impl FnMut() -> F, what: impl std::fmt::Display)
where
    F: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    while !cond().await {
        assert!(tokio::time::Instant::now() < deadline, "not within {EVENTUALLY:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How long [`eventually`] waits: generous, since a loaded 2-core machine runs these tests.
pub const EVENTUALLY: Duration = Duration::from_secs(30);

/// A description for [`eventually`] worked out only when the wait fails, so it can show the state at
/// that moment: `eventually(cond, Later(|| format!("stats: {:?}", relay.handle.stats())))`.
pub struct Later<F>(pub F);

impl<F: Fn() -> String> std::fmt::Display for Later<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&(self.0)())
    }
}

pub fn start_host_with<F>(cfg: HostConfig, make: F) -> TestHost
where
    F: FnOnce() -> Result<Box<dyn Capturer>, capture::CaptureError> + Send + 'static,
{
    let capture = CaptureHandle::spawn(make).expect("capture thread");
    let sink = RecordingSink::new();
    let sources = Sources::new(capture, Box::new(sink.clone()));
    let (tx, events) = mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    let task = tokio::spawn(run_host(cfg, sources, tx, stop.clone()));
    TestHost { events, sink, stop, task }
}

/// A host the test drives by hand (to attack a real viewer): paired through the relay with a viewer that
/// asks for `want`, its control stream accepted and the viewer's hello read. The viewer's connect is
/// still under way: it finishes when the test writes a Welcome (or fails on whatever else it writes).
pub struct HandHost {
    pub session: tether_shared::net::pairing::Session,
    pub control: (quinn::SendStream, quinn::RecvStream),
    pub viewer: JoinHandle<Result<ViewerSession, tether_viewer::session::ViewerError>>,
}

impl HandHost {
    /// Welcome the viewer with `granted` on a 64×64 screen; its session, once open.
    pub async fn welcome(&mut self, granted: Permissions) -> ViewerSession {
        use tether_shared::session_proto::HelloReply;
        use tether_shared::wire::{self, MAX_CONTROL_MSG};
        let welcome =
            HelloReply::Welcome { version: tether_shared::PROTOCOL_VERSION, granted, width: 64, height: 64 };
        wire::write_msg(&mut self.control.0, &welcome, MAX_CONTROL_MSG).await.expect("welcome");
        (&mut self.viewer).await.expect("no panic").expect("viewer session opens")
    }
}

pub async fn host_by_hand(relay: &TestRelay, want: Permissions) -> HandHost {
    use tether_shared::net::pairing::{HostOutcome, HostRendezvous};
    use tether_shared::session_proto::Hello;
    use tether_shared::wire::{self, MAX_CONTROL_MSG};
    let mut rendezvous =
        HostRendezvous::connect(&relay.spec(), fast_timeouts()).await.expect("host connects");
    let (code, _) = rendezvous.register().await.expect("code");
    let mut viewer_cfg = viewer_config(relay);
    viewer_cfg.want = want;
    let claim = code.clone();
    let viewer = tokio::spawn(async move { ViewerSession::connect(&viewer_cfg, &claim).await });
    let HostOutcome::Paired(session) = rendezvous.wait_for_viewer(&code).await.expect("pairs") else {
        panic!("no pairing");
    };
    let (send, mut recv) = session.conn.accept_bi().await.expect("control stream");
    let _hello: Option<Hello> = wire::read_msg(&mut recv, MAX_CONTROL_MSG).await.expect("hello");
    HandHost { session, control: (send, recv), viewer }
}

/// The session record event in `event`, by kind (`None` for the host's other events).
pub fn record_kind(event: &HostEvent) -> Option<&tether_shared::record::EventKind> {
    event.record().map(|e| &e.kind)
}

/// A transfer in the session record that did not complete: how the log names it (`upload`,
/// `fetch Shared/x`) and why.
pub fn transfer_failure(event: &HostEvent) -> Option<(String, tether_shared::files::proto::FileError)> {
    use tether_shared::record::{EventKind, Outcome};
    match record_kind(event)? {
        EventKind::Transfer(t) => match &t.outcome {
            Outcome::Refused(error) | Outcome::Failed(error) => Some((t.label(), error.clone())),
            Outcome::Completed { .. } => None,
        },
        _ => None,
    }
}

/// The relay's refusal a viewer's connection ended with; anything else fails the test, saying what it was.
pub fn relay_error(
    result: Result<ViewerSession, tether_viewer::session::ViewerError>,
) -> tether_shared::relay_proto::RelayErrorKind {
    use tether_shared::net::ClientError;
    use tether_viewer::session::ViewerError;
    match result {
        Err(ViewerError::Connect(ClientError::Relay(kind))) => kind,
        Err(other) => panic!("expected a relay error, got {other}"),
        Ok(_) => panic!("expected a relay error, the viewer paired"),
    }
}

pub fn viewer_config(relay: &TestRelay) -> ViewerConfig {
    ViewerConfig {
        relay: relay.spec(),
        timeouts: fast_timeouts(),
        technician: "Test Technician".into(),
        want: Permissions { view: true, control: true, files: false },
        token: None,
    }
}

/// The arguments that point a program at a relay (`--relay ADDR --relay-fingerprint FP`), then `extra`.
pub fn cli_args<'a>(addr: &'a str, fingerprint: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--relay", addr, "--relay-fingerprint", fingerprint];
    args.extend_from_slice(extra);
    args
}

/// Path of a workspace binary (built by `cargo build --workspace --bins` before the tests).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` before the tests",
        path.display()
    );
    path
}
